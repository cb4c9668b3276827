package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/config"
)

func TestCheckCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "-c", "../../examples/dingdesk.yaml"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("check of the example config exited %d: %s", code, errOut.String())
	}
	dir := t.TempDir()
	bad := dir + "/bad.yaml"
	writeFile(t, bad, "dingtalk: { mode: webhook, client_secret: x }\nrouting: { mode: sometimes, no_answer_limit: -1 }\n")
	out.Reset()
	errOut.Reset()
	if code := run([]string{"check", "-c", bad}, nil, &out, &errOut); code == 0 {
		t.Fatal("check of an invalid config exited 0")
	}
	for _, key := range []string{"routing.mode:", "routing.no_answer_limit:"} {
		if !strings.Contains(errOut.String(), key) {
			t.Errorf("check output does not name %s:\n%s", key, errOut.String())
		}
	}
}

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"version"}, nil, &out, &out); code != 0 || !strings.Contains(out.String(), "dingdesk") {
		t.Fatalf("version: %d %q", code, out.String())
	}
}

// DINGDESK_SERVER_LISTEN overrides server.listen for the real service.
func TestListenFromEnvironment(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("DINGDESK_SERVER_LISTEN", addr)
	t.Setenv("DINGDESK_STORAGE_DSN", t.TempDir()+"/env.db")
	cfg, err := config.Load("../../examples/dingdesk.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMain(cfg, testLogger(t))
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	if m.Addr != addr {
		t.Fatalf("listening on %s, want %s", m.Addr, addr)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s = %d", path, resp.StatusCode)
		}
	}
}

// A valid edit of the config file under the running service is applied; an
// invalid one is refused and the previous config keeps serving.
func TestConfigEditsUnderRunningService(t *testing.T) {
	s := startService(t, serviceOpts{})
	reply := s.ask("u1", "今天天气怎么样呀朋友")
	if !strings.Contains(reply.Text, "抱歉") {
		t.Fatalf("no-answer reply = %q", reply.Text)
	}
	base := serviceOpts{}.yaml(s.fake, s.main.Config.Current().Storage.DSN.Reveal())
	replaceFile(t, s.cfg, strings.Replace(base, "bot:\n", "bot:\n  no_answer_reply: \"换了一个无答案回复\"\n", 1))
	eventually(t, "the valid edit to apply", func() bool {
		return s.main.Config.Current().Bot.NoAnswerReply == "换了一个无答案回复"
	})
	if reply := s.ask("u2", "今天天气怎么样呀朋友"); reply.Text != "换了一个无答案回复" {
		t.Fatalf("after the edit the reply is %q", reply.Text)
	}
	before := s.main.Config.Current()
	replaceFile(t, s.cfg, strings.Replace(base, "mode: bot_first", "mode: sometimes", 1))
	time.Sleep(time.Second)  // the watcher sees the edit and refuses it
	for i := 0; i < 3; i++ { // distinct users: a user's second miss hands off
		if s.main.Config.Current() != before {
			t.Fatal("an invalid config replaced the running one")
		}
		if reply := s.ask(fmt.Sprintf("u3-%d", i), "今天天气怎么样呀朋友"); reply.Text != "换了一个无答案回复" {
			t.Fatalf("after an invalid edit the reply is %q", reply.Text)
		}
	}
}

// /metrics counts what the message path did, including the grouped
// commits of the hand-off transactions on SQLite.
func TestMetricsCountTheMessagePath(t *testing.T) {
	s := startService(t, serviceOpts{})
	s.ask("u1", "今天天气怎么样呀朋友")
	names := []string{"dingdesk_inbound_accepted_total", "dingdesk_inbound_handled_total", "dingdesk_outbound_sent_total",
		"dingdesk_storage_group_commits_total", "dingdesk_storage_grouped_transactions_total"}
	// The reply reaches the fake a moment before the sender counts it.
	eventually(t, "every counter to count the answered message", func() bool {
		resp, err := http.Get(s.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		counters := map[string]int64{}
		for _, l := range strings.Split(string(body), "\n") {
			var name string
			var v int64
			if _, err := fmt.Sscanf(l, "%s %d", &name, &v); err == nil {
				counters[name] = v
			}
		}
		for _, name := range names {
			if counters[name] < 1 {
				return false
			}
		}
		return true
	})
}
