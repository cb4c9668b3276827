package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
)

// One run of check reports every problem: unknown keys (with a "did you
// mean"), a bad duration, invalid settings and the knowledge files'.
func TestCheckReportsEveryProblemInOneRun(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/bad.yaml", "- id: a\n  question: 问题\n")
	cfg := writeFileAt(t, dir, "dingdesk.yaml", `
dingtalk: { mode: webhook, client_secret: x }
routingg: { mode: bot_only }
bot_typo: true
bot: { knowledge: [bad.yaml, missing.yaml] }
routing: { no_answer_limit: 0 }
service_rules:
  - name: r
    customer_idle_timeout: ten minutes
`)
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "-c", cfg}, nil, &out, &errOut); code != 1 {
		t.Fatalf("check exited %d, want 1:\n%s%s", code, out.String(), errOut.String())
	}
	got := errOut.String()
	for _, want := range []string{
		`routingg: unknown key; did you mean "routing"? (line 3)`,
		"bot_typo: unknown key",
		`service_rules[0].customer_idle_timeout: "ten minutes" is not a duration`,
		"routing.no_answer_limit: must be at least 1",
		"bad.yaml:1:",  // the knowledge file's own problem
		"missing.yaml", // and the missing one
	} {
		if !strings.Contains(got, want) {
			t.Errorf("check output lacks %q:\n%s", want, got)
		}
	}
}

// A bot_first config with no skill group passes check, with a warning.
func TestCheckWarnsAboutBotFirstWithoutGroups(t *testing.T) {
	dir := t.TempDir()
	kb := readFile(t, "testdata/kb.yaml")
	writeFile(t, dir+"/kb.yaml", kb)
	cfg := writeFileAt(t, dir, "dingdesk.yaml", "dingtalk: { mode: webhook, client_secret: x }\nbot: { knowledge: [kb.yaml] }\n")
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "-c", cfg}, nil, &out, &errOut); code != 0 {
		t.Fatalf("check exited %d:\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "warning: skill_groups: no skill group") || !strings.Contains(out.String(), "OK") {
		t.Fatalf("check output:\n%s", out.String())
	}
}

// The bot alone (bot_first, no skill groups) starts and answers.
func TestBotAloneStartsAndAnswers(t *testing.T) {
	s := startService(t, serviceOpts{routing: "\nrouting: { mode: bot_first }\n", groups: "\n"})
	if n := len(s.main.Config.Current().SkillGroups); n != 0 {
		t.Fatalf("%d skill groups", n)
	}
	if reply := s.ask("u1", "VPN 连不上怎么办"); !strings.Contains(reply.Text, "VPN答案") {
		t.Fatalf("reply = %q", reply.Text)
	}
}

// A live edit applies whole or not at all: pointing bot.knowledge at a
// missing file, or a typo in a key, refuses the whole edit, and the old
// config and knowledge keep serving.
func TestInvalidEditIsRefusedWhole(t *testing.T) {
	s := startService(t, serviceOpts{})
	base := serviceOpts{}.yaml(s.fake, s.main.Config.Current().Storage.DSN.Reveal())
	before := s.main.Config.Current()
	kbBefore := s.main.Bot.KB()
	for i, edit := range []string{
		// a new no-answer text with a knowledge file that does not exist
		strings.Replace(base, "bot:\n  knowledge: [\"kb.yaml\"]", "bot:\n  no_answer_reply: \"改了\"\n  knowledge: [\"kb.yaml\", \"nope.yaml\"]", 1),
		// a new no-answer text with a typo elsewhere
		strings.Replace(base, "bot:\n", "bot:\n  no_answer_reply: \"改了\"\n", 1) + "routingg: { mode: bot_only }\n",
	} {
		if !strings.Contains(edit, "改了") {
			t.Fatalf("edit %d did not change the config", i)
		}
		replaceFile(t, s.cfg, edit)
		time.Sleep(time.Second) // the watcher sees the edit and refuses it
		if s.main.Config.Current() != before || s.main.Bot.KB() != kbBefore {
			t.Fatalf("edit %d: an invalid edit was applied (in part)", i)
		}
		if reply := s.ask("u1", "VPN 连不上怎么办"); !strings.Contains(reply.Text, "VPN答案") {
			t.Fatalf("edit %d: reply = %q", i, reply.Text)
		}
	}
	// The watcher still applies a valid edit afterwards.
	replaceFile(t, s.cfg, strings.Replace(base, "bot:\n", "bot:\n  no_answer_reply: \"改了\"\n", 1))
	eventually(t, "the valid edit to apply", func() bool {
		return s.main.Config.Current().Bot.NoAnswerReply == "改了"
	})
}

func writeFileAt(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := dir + "/" + name
	writeFile(t, p, text)
	return p
}

// A refused reload logs every problem of the config and of the knowledge
// files by its path, in one line.
func TestReloadLogsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/kb.yaml", readFile(t, "testdata/kb.yaml"))
	good := "dingtalk: { mode: webhook, client_secret: x }\nbot: { knowledge: [kb.yaml] }\n"
	path := writeFileAt(t, dir, "dingdesk.yaml", good)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncLog
	m := NewMain(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	kb, err := readKnowledge(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Bot = bot.New(kb)
	m.kbInputs = knowledgeInputs(cfg)
	writeFile(t, path, "dingtalk: { mode: webhook, client_secret: x }\nroutingg: {}\nbot: { knowledge: [kb.yaml, nope.yaml], no_answer_reply: 改了 }\n")
	m.Reload()
	out := logs.String()
	for _, want := range []string{"config change rejected", `routingg: unknown key; did you mean \"routing\"?`, "nope.yaml"} {
		if !strings.Contains(out, want) {
			t.Errorf("reload log lacks %q:\n%s", want, out)
		}
	}
	if m.Config.Current() != cfg || m.Bot.KB() != kb {
		t.Fatal("the refused edit was applied")
	}
	writeFile(t, path, strings.Replace(good, "bot: {", "bot: { no_answer_reply: 改了,", 1))
	m.Reload()
	if m.Config.Current().Bot.NoAnswerReply != "改了" {
		t.Fatalf("a valid edit was not applied:\n%s", logs.String())
	}
}

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The tools that open storage (report, kb import/export) open the config's
// database: a relative SQLite file is relative to the config, as for serve,
// whatever the working directory. Problems outside storage and bot are
// warnings; a bad storage key stops them.
func TestToolsOpenTheConfigsDatabase(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	writeFile(t, dir+"/kb.yaml", readFile(t, "testdata/kb.yaml"))
	t.Chdir(elsewhere)
	cfg := writeFileAt(t, dir, "dingdesk.yaml", "dingtalk: { mode: webhook }\nroutingg: {}\nbot: { knowledge: [kb.yaml] }\nstorage: { dsn: data/tools.db }\n")
	for _, args := range [][]string{{"report", "-c", cfg}, {"kb", "export", "-c", cfg, filepath.Join(dir, "out.yaml")}} {
		var out, errOut bytes.Buffer
		if code := run(args, nil, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errOut.String())
		}
		if !strings.Contains(errOut.String(), "warning: routingg") {
			t.Errorf("%v: no warning for the unknown key:\n%s", args, errOut.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "data", "tools.db")); err != nil {
			t.Fatalf("%v: the config's database was not opened: %v", args, err)
		}
		if _, err := os.Stat(filepath.Join(elsewhere, "data")); err == nil {
			t.Fatalf("%v: opened a database in the working directory", args)
		}
	}
	bad := writeFileAt(t, dir, "bad.yaml", "dingtalk: { mode: webhook }\nstorage: { driver: oracle }\n")
	for _, args := range [][]string{{"report", "-c", bad}, {"kb", "export", "-c", bad, filepath.Join(dir, "out.yaml")}} {
		var out, errOut bytes.Buffer
		if code := run(args, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "storage.driver") {
			t.Fatalf("%v: exit %d\n%s", args, code, errOut.String())
		}
	}
}
