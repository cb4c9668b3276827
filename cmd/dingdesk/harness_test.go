package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
)

// service is the real `serve` wiring on 127.0.0.1:0 against a fake DingTalk.
type service struct {
	t    testing.TB
	fake *dingtalktest.Server
	main *Main
	dir  string
	cfg  string // config file path
	url  string // http://127.0.0.1:port
}

type serviceOpts struct {
	mode    string // webhook (default) | stream | both
	driver  string // sqlite (default) | mysql
	storage *config.Storage
	fake    *dingtalktest.Server
	// Sections replacing the defaults below.
	routing, rules, groups, extra string
}

const defaultRouting = `
routing:
  mode: bot_first
  no_answer_limit: 2
  transfer_keywords: ["转人工"]
  skill_group: it
`

const defaultRules = `
service_rules:
  - name: always
    hours: { mon-sun: ["00:00-24:00"] }
`

const defaultGroups = `
skill_groups:
  - name: it
    display_name: IT 服务台
    rule: always
    members: [ { staff_id: agent1, name: 小王, max_chats: 1 } ]
  - name: hr
    display_name: 人事
    rule: always
    members: [ { staff_id: agent2, name: 小李, max_chats: 2 } ]
canned_replies:
  - { category: 问候, text: "您好，我是人工客服。" }
`

func (o serviceOpts) yaml(fake *dingtalktest.Server, dsn string) string {
	pick := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	return fmt.Sprintf(`
server: { listen: "127.0.0.1:0", shutdown_timeout: 10s }
dingtalk:
  mode: %s
  client_id: %q
  client_secret: %q
  api_base: %q
  oapi_base: %q
  login_base: %q
storage: { driver: %s, dsn: %q }
log: { level: debug, format: text }
bot:
  knowledge: ["kb.yaml"]
%s%s%s%s`, pick(o.mode, "webhook"), fake.ClientID, fake.ClientSecret, fake.URL, fake.URL, fake.URL,
		pick(o.driver, "sqlite"), dsn,
		pick(o.routing, defaultRouting), pick(o.rules, defaultRules), pick(o.groups, defaultGroups), o.extra)
}

// startService writes a config for o, starts Main and stops it at cleanup.
func startService(t testing.TB, o serviceOpts) *service {
	t.Helper()
	fake := o.fake
	if fake == nil {
		fake = dingtalktest.NewServer()
		t.Cleanup(fake.Close)
	}
	st := o.storage
	if st == nil {
		s := gormstoretest.NewStorage(t, pickDriver(o.driver))
		st = &s
	}
	o.driver = st.Driver
	dir := t.TempDir()
	kb, err := os.ReadFile("testdata/kb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "kb.yaml"), string(kb))
	path := filepath.Join(dir, "dingdesk.yaml")
	writeFile(t, path, o.yaml(fake, st.DSN.Reveal()))
	s := &service{t: t, fake: fake, dir: dir, cfg: path}
	s.start()
	return s
}

func pickDriver(d string) string {
	if d == "" {
		return "sqlite"
	}
	return d
}

func (s *service) start() {
	s.t.Helper()
	cfg, err := config.Load(s.cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	m := NewMain(cfg, testLogger(s.t))
	if err := m.Run(context.Background()); err != nil {
		m.Close(context.Background())
		s.t.Fatal(err)
	}
	s.main, s.url = m, "http://"+m.Addr
	s.t.Cleanup(func() { s.stop() })
}

// stop shuts the service down (idempotent), as SIGTERM would.
func (s *service) stop() {
	if s.main == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.main.Close(ctx); err != nil {
		s.t.Logf("close: %v", err)
	}
	s.main = nil
}

// restart stops the service and starts a new one on the same config and
// database, as after a crash or a deploy.
func (s *service) restart() {
	s.stop()
	s.start()
}

func (s *service) webhookURL() string { return s.url + "/dingtalk/callback" }

// post delivers m through the signed webhook and expects 200.
func (s *service) post(m dingtalktest.Msg) string {
	s.t.Helper()
	id, resp, err := s.fake.PostWebhook(s.webhookURL(), m)
	if err != nil {
		s.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("webhook answered %d: %s", resp.StatusCode, body)
	}
	return id
}

// waitSent waits until the fake recorded n sends in all and returns them.
func (s *service) waitSent(n int) []dingtalktest.Sent {
	s.t.Helper()
	sent, err := s.fake.WaitSent(n, 10*time.Second)
	if err != nil {
		s.t.Fatalf("waiting for %d sends: %v (got %d: %s)", n, err, len(sent), texts(sent))
	}
	return sent
}

// expectNoMoreSends fails if anything beyond n sends arrives shortly.
func (s *service) expectNoMoreSends(n int) {
	s.t.Helper()
	time.Sleep(700 * time.Millisecond)
	if got := s.fake.Sent(); len(got) != n {
		s.t.Fatalf("want exactly %d sends, got %d: %s", n, len(got), texts(got))
	}
}

// ask sends a private text from user and returns the next send.
func (s *service) ask(user, text string) dingtalktest.Sent {
	s.t.Helper()
	n := len(s.fake.Sent())
	s.post(dingtalktest.Msg{SenderStaffID: user, SenderNick: "用户" + user, Text: text})
	return s.waitSent(n + 1)[n]
}

func texts(sent []dingtalktest.Sent) string {
	var b strings.Builder
	for i, x := range sent {
		fmt.Fprintf(&b, "\n  [%d] %s→%s%s: %q", i, x.Via, x.ConversationID, strings.Join(x.UserIDs, ","), x.Text)
	}
	return b.String()
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile saves like an editor does: write a temp file, rename it over.
func replaceFile(t testing.TB, path, text string) {
	t.Helper()
	tmp := path + ".tmp~"
	writeFile(t, tmp, text)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// eventually polls cond until it holds or 10s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// privateChat is the fake's default conversation id of a user's 1:1 chat.
func privateChat(user string) string { return "cid-private-" + user }

// isTo reports whether x reached user in their private chat (through its
// sessionWebhook or the OpenAPI 1:1 send).
func isTo(x dingtalktest.Sent, user string) bool {
	switch x.Via {
	case "oto":
		return len(x.UserIDs) == 1 && x.UserIDs[0] == user
	case "session":
		return x.ConversationID == privateChat(user)
	}
	return false
}

// isInGroup reports whether x went to group cid.
func isInGroup(x dingtalktest.Sent, cid string) bool {
	return (x.Via == "group" || x.Via == "session") && x.ConversationID == cid
}

// mark is a position in the fake's send log; waitFor looks after it.
func (s *service) mark() int { return len(s.fake.Sent()) }

// waitFor waits for a send after mark matching pred and returns it.
func (s *service) waitFor(after int, what string, pred func(dingtalktest.Sent) bool) dingtalktest.Sent {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sent := s.fake.Sent()
		for _, x := range sent[min(after, len(sent)):] {
			if pred(x) {
				return x
			}
		}
		time.Sleep(30 * time.Millisecond)
	}
	s.t.Fatalf("no send %s; sends after mark %d:%s", what, after, texts(s.fake.Sent()[min(after, len(s.fake.Sent())):]))
	return dingtalktest.Sent{}
}

// toUser waits for a message to user (private) containing substr.
func (s *service) toUser(after int, user, substr string) dingtalktest.Sent {
	s.t.Helper()
	return s.waitFor(after, "to "+user+" containing "+strconv.Quote(substr), func(x dingtalktest.Sent) bool {
		return isTo(x, user) && strings.Contains(x.Text, substr)
	})
}

// say posts a private text from user (or agent) and returns the mark
// before it.
func (s *service) say(user, text string) int {
	s.t.Helper()
	m := s.mark()
	s.post(dingtalktest.Msg{SenderStaffID: user, SenderNick: nick(user), Text: text})
	return m
}

// nick names the test users and agents.
func nick(user string) string {
	switch user {
	case "agent1":
		return "小王"
	case "agent2":
		return "小李"
	}
	return "用户" + user
}

// quietFor fails if anything is sent to user after mark within a moment.
func (s *service) quietFor(after int, user string) {
	s.t.Helper()
	time.Sleep(600 * time.Millisecond)
	for _, x := range s.fake.Sent()[after:] {
		if isTo(x, user) {
			s.t.Fatalf("unexpected message to %s: %q", user, x.Text)
		}
	}
}
