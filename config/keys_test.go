package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// problemsOf loads text as a config file and returns its problems by key.
func problemsOf(t *testing.T, text string) (map[string]Problem, *Config) {
	t.Helper()
	path := write(t, t.TempDir(), "dingdesk.yaml", text)
	cfg, err := Read(path)
	got := map[string]Problem{}
	var ve *ValidationError
	if err != nil && !errors.As(err, &ve) {
		t.Fatalf("Read = %v, want nil or a *ValidationError", err)
	}
	if ve != nil {
		for _, p := range ve.Problems {
			got[p.Key] = p
		}
	}
	if cfg == nil {
		t.Fatal("Read returned no config")
	}
	if _, err := Load(path); (err == nil) != (len(got) == 0) {
		t.Fatalf("Load = %v, but Read found %d problems", err, len(got))
	}
	return got, cfg
}

func TestUnknownKeysAreRefusedByPath(t *testing.T) {
	got, _ := problemsOf(t, minimal+`
routingg: { mode: bot_only }
bot_typo: 1
bot:
  no_answer_limit: 3
  Clarify_Prompt: "x"
skill_groups_x: []
service_rules:
  - name: r
    quue_timeout: 5m
agents:
  - { staff_id: b1, skill_groups: [it], max_chat: 2 }
`)
	for key, want := range map[string]string{
		"routingg":                      `did you mean "routing"?`,
		"bot_typo":                      "unknown key",
		"bot.no_answer_limit":           "unknown key",
		"bot.Clarify_Prompt":            `did you mean "clarify_prompt"?`,
		"skill_groups_x":                `did you mean "skill_groups"?`,
		"service_rules[0].quue_timeout": `did you mean "queue_timeout"?`,
		"agents[0].max_chat":            `did you mean "max_chats"?`,
	} {
		p, ok := got[key]
		if !ok {
			t.Errorf("no problem for %s; got %v", key, got)
			continue
		}
		if !strings.Contains(p.Message, want) {
			t.Errorf("%s: %q, want it to contain %q", key, p.Message, want)
		}
		if p.Line == 0 {
			t.Errorf("%s: no line number", key)
		}
	}
	if p := got["bot_typo"]; strings.Contains(p.Message, "did you mean") {
		t.Errorf("bot_typo is not close to any key, yet: %q", p.Message)
	}
	if p := got["routingg"]; p.Line != 7 || !strings.HasPrefix(p.String(), "routingg: unknown key") || !strings.HasSuffix(p.String(), "(line 7)") {
		t.Errorf("routingg printed as %q (line %d)", p.String(), p.Line)
	}
	if len(got) != 7 {
		t.Errorf("%d problems, want 7: %v", len(got), got)
	}
}

// A bad duration is one problem among the others, not the end of checking.
func TestBadValuesDoNotHideOtherProblems(t *testing.T) {
	got, cfg := problemsOf(t, minimal+`
routing: { mode: sometimes, no_answer_limit: many }
bot: { answer_threshold: high, knowledge: { a: b } }
service_rules:
  - name: r
    customer_idle_timeout: ten minutes
    queue_timeout: 600
    hours: { mon-fri: ["09:00-18:00"], sat: ["25:00-26:00"] }
outbox: { workers: 0 }
unknownn: 1
`)
	for _, key := range []string{
		"routing.mode", "routing.no_answer_limit", "bot.answer_threshold", "bot.knowledge",
		"service_rules[0].customer_idle_timeout", "service_rules[0].queue_timeout",
		"service_rules[0].hours.sat[0]", "outbox.workers", "unknownn",
	} {
		if _, ok := got[key]; !ok {
			t.Errorf("no problem reported for %s; got %v", key, got)
		}
	}
	if m := got["service_rules[0].customer_idle_timeout"].Message; !strings.Contains(m, `"ten minutes" is not a duration`) {
		t.Errorf("customer_idle_timeout: %q", m)
	}
	if m := got["service_rules[0].queue_timeout"].Message; !strings.Contains(m, "with a unit") {
		t.Errorf("a bare 600 for a duration: %q", m)
	}
	// The bad keys kept their defaults; the good ones were read.
	if r := cfg.ServiceRules[0]; r.CustomerIdleTimeout != 10*time.Minute || r.Name != "r" {
		t.Errorf("rule after a bad duration: %+v", r)
	}
}

func TestBadEnvironmentValueIsAProblem(t *testing.T) {
	t.Setenv("DINGDESK_OUTBOX_MAX_AGE", "an hour")
	t.Setenv("DINGDESK_ROUTING_NO_ANSWER_LIMIT", "0")
	got, _ := problemsOf(t, minimal)
	if m := got["outbox.max_age"].Message; !strings.Contains(m, "DINGDESK_OUTBOX_MAX_AGE") || !strings.Contains(m, "not a duration") {
		t.Errorf("outbox.max_age: %q", m)
	}
	if _, ok := got["routing.no_answer_limit"]; !ok {
		t.Errorf("the valid-looking but invalid env value was not validated: %v", got)
	}
}

func TestValidFilesHaveNoKeyProblems(t *testing.T) {
	if _, err := Load("../examples/dingdesk.yaml"); err != nil {
		t.Fatal(err)
	}
	// Empty keys keep defaults; comma lists, zero durations and a null
	// section are fine.
	got, cfg := problemsOf(t, minimal+`
server:
log:
routing: { transfer_keywords: "转人工,人工" }
service_rules: [ { name: r, queue_timeout: 0 } ]
`)
	if len(got) != 0 {
		t.Fatalf("problems: %v", got)
	}
	if len(cfg.Routing.TransferKeywords) != 2 || cfg.ServiceRules[0].QueueTimeout != 0 || cfg.Server.Listen != ":8080" {
		t.Fatalf("decoded %+v %+v", cfg.Routing, cfg.ServiceRules[0])
	}
}

// 钉小蜜 makes the hand-off group optional in 机器人优先.
func TestBotFirstWithoutSkillGroups(t *testing.T) {
	got, cfg := problemsOf(t, "dingtalk: { mode: webhook, client_secret: s }\nrouting: { mode: bot_first }\n")
	if len(got) != 0 {
		t.Fatalf("a bot_first config without skill groups is refused: %v", got)
	}
	ws := cfg.Warnings()
	if len(ws) != 1 || ws[0].Key != "skill_groups" || !strings.Contains(ws[0].Message, "no-agent") {
		t.Fatalf("warnings = %v", ws)
	}
	got, _ = problemsOf(t, "dingtalk: { mode: webhook, client_secret: s }\nrouting: { mode: human_only }\n")
	if _, ok := got["skill_groups"]; !ok {
		t.Fatalf("human_only without a group passes: %v", got)
	}
	got, _ = problemsOf(t, "dingtalk: { mode: webhook, client_secret: s }\nrouting: { mode: bot_only, overrides: [ { conversation_id: c, mode: human_only } ] }\n")
	if _, ok := got["skill_groups"]; !ok {
		t.Fatalf("a human_only override without a group passes: %v", got)
	}
	_, cfg = problemsOf(t, minimal)
	if ws := cfg.Warnings(); len(ws) != 0 {
		t.Fatalf("warnings for a config with a group: %v", ws)
	}
}

// storage.dsn means the same file whatever the working directory.
func TestRelativeSQLitePathIsRelativeToTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	for dsn, want := range map[string]string{
		"data/x.db":                    filepath.Join(dir, "data/x.db"),
		"x.db?_pragma=busy_timeout(1)": filepath.Join(dir, "x.db") + "?_pragma=busy_timeout(1)",
		":memory:":                     ":memory:",
		"file:x.db?mode=memory":        "file:x.db?mode=memory",
		"/var/lib/dingdesk/x.db":       "/var/lib/dingdesk/x.db",
	} {
		p := write(t, dir, "dingdesk.yaml", minimal+"storage: { dsn: \""+dsn+"\" }\n")
		cfg, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Storage.DSN.Reveal(); got != want {
			t.Errorf("dsn %q → %q, want %q", dsn, got, want)
		}
	}
	p := write(t, dir, "dingdesk.yaml", minimal+"storage: { driver: mysql, dsn: \"u:p@tcp(db:3306)/d\" }\n")
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Storage.DSN.Reveal(); got != "u:p@tcp(db:3306)/d" {
		t.Errorf("a MySQL DSN was changed: %q", got)
	}
}

func TestServerTimeoutDefaults(t *testing.T) {
	s := Default().Server
	// A slow-body client must be cut off within 15 s of connecting.
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.ReadTimeout > 15*time.Second ||
		s.WriteTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Fatalf("server timeouts: %+v", s)
	}
	got, _ := problemsOf(t, minimal+"server: { read_timeout: 0s, idle_timeout: -1s }\n")
	for _, key := range []string{"server.read_timeout", "server.idle_timeout"} {
		if _, ok := got[key]; !ok {
			t.Errorf("no problem for %s", key)
		}
	}
}

func TestClosest(t *testing.T) {
	known := []string{"server", "dingtalk", "storage", "log", "bot", "routing", "service_rules", "skill_groups"}
	for in, want := range map[string]string{
		"routingg": "routing", "Routing": "routing", "servicerules": "service_rules", "skil_groups": "skill_groups",
		"lg": "log", "bot_typo": "", "database": "", "": "",
	} {
		if got := closest(in, known); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}

// A key that is empty or not text still gets a path.
func TestOddKeysAreNamed(t *testing.T) {
	got, _ := problemsOf(t, minimal+"\"\": 1\n? [a, b]\n: 2\nbot: { \"\": x }\n")
	for _, key := range []string{`""`, "(a list)", `bot.""`} {
		if _, ok := got[key]; !ok {
			t.Errorf("no problem for %s: %v", key, got)
		}
	}
}
