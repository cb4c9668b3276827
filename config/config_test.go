package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const minimal = `
dingtalk: { mode: webhook, client_secret: s3cret }
skill_groups:
  - name: it
    members: [ { staff_id: a1 } ]
`

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := Load("../examples/dingdesk.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Routing.Mode != "bot_first" || len(cfg.SkillGroups) != 3 || cfg.DingTalk.Mode != "webhook" {
		t.Fatalf("unexpected example config: %+v", cfg.Routing)
	}
	// agents[] are merged into their groups.
	if _, ok := cfg.Member("after_sales", "lead01"); !ok {
		t.Fatal("agents[0] not merged into after_sales")
	}
	if cfg.Resolve(cfg.Bot.Knowledge[0]) != filepath.Join(filepath.Dir(cfg.Path), "kb/faq.yaml") {
		t.Fatalf("knowledge path not resolved against the config file: %s", cfg.Resolve(cfg.Bot.Knowledge[0]))
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal + "\nservice_rules: [ { name: r1, queue_timeout: 0s } ]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	def := Default()
	if cfg.Server.Listen != ":8080" || cfg.Storage.Driver != "sqlite" || cfg.Storage.DSN != "data/dingdesk.db" ||
		cfg.DingTalk.APIBase != def.DingTalk.APIBase || cfg.DingTalk.WebhookPath != "/dingtalk/callback" ||
		cfg.Routing.NoAnswerLimit != 3 || cfg.Routing.EndKeywords[0] != "结束会话" {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	r := cfg.ServiceRules[0]
	if r.Timezone != "Asia/Shanghai" || r.CustomerIdleTimeout != 10*time.Minute || r.NoAgentMessage == "" {
		t.Fatalf("rule defaults not applied: %+v", r)
	}
	if r.QueueTimeout != 0 {
		t.Fatalf("an explicit 0s queue_timeout (off) was replaced by the default: %v", r.QueueTimeout)
	}
	g := cfg.SkillGroups[0]
	if g.Rule != "r1" || g.DisplayName != "it" || g.Members[0].MaxChats != DefaultMaxChats || g.Members[0].Name != "a1" {
		t.Fatalf("group defaults not applied: %+v", g)
	}
	if cfg.DingTalk.EffectiveRobotCode() != "" || cfg.DefaultSkillGroup() != "it" {
		t.Fatal("derived defaults wrong")
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	t.Setenv("DINGDESK_SERVER_LISTEN", "127.0.0.1:9999")
	t.Setenv("DINGDESK_DINGTALK_CLIENT_SECRET", "from-env")
	t.Setenv("DINGDESK_ROUTING_NO_ANSWER_LIMIT", "2")
	t.Setenv("DINGDESK_STORAGE_DSN", "/tmp/x.db")
	t.Setenv("DINGDESK_ROUTING_TRANSFER_KEYWORDS", "转人工,找客服")
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "127.0.0.1:9999" || cfg.DingTalk.ClientSecret.Reveal() != "from-env" ||
		cfg.Routing.NoAnswerLimit != 2 || cfg.Storage.DSN.Reveal() != "/tmp/x.db" {
		t.Fatalf("env overrides not applied: listen=%s limit=%d", cfg.Server.Listen, cfg.Routing.NoAnswerLimit)
	}
	if kw := cfg.Routing.TransferKeywords; len(kw) != 2 || kw[0] != "转人工" || kw[1] != "找客服" {
		t.Fatalf("list from env = %q, want [转人工 找客服]", kw)
	}
	if s := cfg.DingTalk.ClientSecret.String(); strings.Contains(s, "from-env") {
		t.Fatal("secret printed")
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	text := `
routing: { mode: sometimes, no_answer_limit: -1, skill_group: nope,
  overrides: [ { conversation_id: c1, mode: maybe, skill_group: ghost } ] }
dingtalk: { mode: stream }
storage: { driver: postgres }
service_rules:
  - name: day
    timezone: Mars/Olympus
    hours: { mon-fry: ["09:00-18:00"], sat: ["25:00-26:00"] }
    holidays: ["2026-02-30"]
    customer_idle_timeout: -5m
skill_groups:
  - name: a
    rule: day
    members: [ { staff_id: x, max_chats: 0 }, { staff_id: x } ]
  - name: b
    rule: nightt
agents: [ { staff_id: y, skill_groups: [zzz] } ]
`
	cfg, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v, want *ValidationError", err)
	}
	got := map[string]string{}
	for _, p := range ve.Problems {
		got[p.Key] = p.Message
	}
	for _, key := range []string{
		"routing.mode", "routing.no_answer_limit", "routing.skill_group",
		"routing.overrides[0].mode", "routing.overrides[0].skill_group",
		"dingtalk.client_id", "dingtalk.client_secret", "storage.driver",
		"service_rules[0].timezone", "service_rules[0].hours.mon-fry", "service_rules[0].hours.sat[0]",
		"service_rules[0].holidays[0]", "service_rules[0].customer_idle_timeout",
		"skill_groups[0].members[0].max_chats", "skill_groups[0].members[1].staff_id",
		"skill_groups[1].rule", "agents[0].skill_groups[0]",
	} {
		if _, ok := got[key]; !ok {
			t.Errorf("no problem reported for %s", key)
		}
	}
	// Every problem names a key an admin can find in the file: its first
	// segment is a top-level key of Config (a package rename once turned
	// storage.driver into gormstore.driver).
	top := map[string]bool{}
	eachKey(reflect.TypeOf(Config{}), func(key string, _ []int, _ bool) {
		top[strings.FieldsFunc(key, func(r rune) bool { return r == '.' || r == '[' })[0]] = true
	})
	for _, p := range ve.Problems {
		if first := strings.FieldsFunc(p.Key, func(r rune) bool { return r == '.' || r == '[' })[0]; !top[first] {
			t.Errorf("problem key %q does not start with a config key", p.Key)
		}
	}
	if !strings.Contains(got["routing.mode"], "bot_first, bot_only, human_only") {
		t.Errorf("routing.mode message = %q", got["routing.mode"])
	}
	if !strings.Contains(got["skill_groups[1].rule"], `unknown service rule "nightt"`) {
		t.Errorf("skill_groups[1].rule message = %q", got["skill_groups[1].rule"])
	}
}

func TestBadDurationNamesItsKey(t *testing.T) {
	_, err := Parse([]byte(minimal + "\nservice_rules: [ { name: r, queue_timeout: soon } ]\n"))
	if err == nil || !strings.Contains(err.Error(), "queue_timeout") {
		t.Fatalf("Parse = %v, want an error naming queue_timeout", err)
	}
}

func TestWatchSeesRenameAndWrite(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "dingdesk.yaml", minimal)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan struct{}, 10)
	go Watch(ctx, func() []string { return []string{p} }, 50*time.Millisecond, func() { changes <- struct{}{} })
	time.Sleep(100 * time.Millisecond)
	expect := func(what string) {
		t.Helper()
		select {
		case <-changes:
		case <-time.After(3 * time.Second):
			t.Fatalf("no change seen after %s", what)
		}
	}
	write(t, dir, "dingdesk.yaml", minimal+"\n# edited in place\n")
	expect("an in-place write")
	tmp := write(t, dir, ".dingdesk.yaml.swp", minimal+"\n# saved by rename\n")
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	expect("a rename over the file")
	write(t, dir, "other.yaml", "x: 1")
	select {
	case <-changes:
		t.Fatal("a change to an unrelated file triggered a reload")
	case <-time.After(300 * time.Millisecond):
	}
}
