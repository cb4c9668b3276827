package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/web"
)

// EnvBrowserTests enables the browser tests (web/e2e): Debian's chromium
// driven by playwright-core against the real serve wiring. .ci/run sets it
// after installing both.
const EnvBrowserTests = "DINGDESK_BROWSER_TESTS"

const browserGroups = `
skill_groups:
  - name: it
    display_name: IT 服务台
    rule: always
    members: [ { staff_id: agent1, name: 小王, max_chats: 5 } ]
  - name: hr
    display_name: 人事
    rule: always
    members: [ { staff_id: agent2, name: 小李, max_chats: 5 } ]
canned_replies:
  - { category: 问候, text: "您好，我是人工客服。" }
`

// TestWebBrowser starts the service (on MariaDB when available, with a
// second replica on the same database) and the fake DingTalk, serves a
// small control API that lets the browser script play the users and the
// operator, and runs web/e2e/workbench.test.mjs.
func TestWebBrowser(t *testing.T) {
	driver := browserDriver(t)
	st := gormstoretest.NewStorage(t, driver)
	a := startService(t, serviceOpts{storage: &st, groups: browserGroups})
	var b *service
	if driver == "mysql" {
		b = startService(t, serviceOpts{storage: &st, groups: browserGroups, fake: a.fake})
	}
	a.fake.AllowRedirect(a.url + "/auth/dingtalk/callback")
	a.fake.AddLoginUser(dingtalktest.LoginUser{UserID: "agent1", Nick: "小王"})
	a.fake.AddLoginUser(dingtalktest.LoginUser{UserID: "agent2", Nick: "小李"})
	t.Setenv("DINGDESK_SERVER_PUBLIC_URL", a.url)

	c := newBrowserControl(a, b)
	c.handle("/expired-link", func(r controlReq) (any, error) {
		tok := web.NewToken()
		now := time.Now()
		err := gormstore.NewWebStore(a.main.DB).CreateLoginLink(context.Background(), web.HashToken(tok), r.str("staff"), now.Add(-10*time.Minute), now.Add(-5*time.Minute))
		return map[string]string{"url": a.url + "/auth/link?t=" + tok}, err
	})
	c.handle("/oauth-user", func(r controlReq) (any, error) {
		a.fake.SelectLoginUser(r.str("userid"))
		return map[string]bool{"ok": true}, nil
	})
	c.handle("/jsapi-code", func(r controlReq) (any, error) {
		return map[string]string{"code": a.fake.MintJSAPICode(r.str("userid"))}, nil
	})
	c.handle("/restart", func(controlReq) (any, error) {
		restartSamePort(t, a)
		return map[string]bool{"ok": true}, nil
	})
	replicaB := ""
	if b != nil {
		replicaB = "1"
	}
	c.runScript(t, "workbench.test.mjs", "REPLICA_B="+replicaB, "SCREENSHOT="+os.Getenv("DINGDESK_SCREENSHOT"))
}

// browserDriver skips the test unless browser tests are on, fails it when
// playwright-core is not installed, and names the database the suite runs
// on: MariaDB when available, else SQLite.
func browserDriver(t *testing.T) string {
	t.Helper()
	if os.Getenv(EnvBrowserTests) == "" {
		t.Skip("browser tests are off; set " + EnvBrowserTests + "=1 (.ci/run does, after installing chromium and playwright-core)")
	}
	if _, err := os.Stat(filepath.Join(browserSuiteDir(t), "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed: run npm ci in %s", browserSuiteDir(t))
	}
	if len(gormstoretest.Drivers(t)) > 1 {
		return "mysql"
	}
	return "sqlite"
}

func browserSuiteDir(t *testing.T) string {
	dir, err := filepath.Abs("../../web/e2e")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// browserControl is the control API a browser suite calls
// (web/e2e/harness.mjs's control): it plays the users, agents and the
// operator, one request at a time.
type browserControl struct {
	base string // the service under test (BASE_URL)
	mu   sync.Mutex
	mux  *http.ServeMux
}

// controlReq is a control call's JSON body.
type controlReq map[string]any

func (r controlReq) str(k string) string { v, _ := r[k].(string); return v }

// int reads a number, sent as a JSON number or a numeric string.
func (r controlReq) int(k string) int {
	switch v := r[k].(type) {
	case float64:
		return int(v)
	case string:
		var n int
		fmt.Sscan(v, &n)
		return n
	}
	return 0
}

// newBrowserControl serves the calls both suites make: /say (to replica b
// with "replica":"b"; b is nil without a second replica), /mark, /sent
// and /login-link.
func newBrowserControl(a, b *service) *browserControl {
	c := &browserControl{base: a.url, mux: http.NewServeMux()}
	c.handle("/say", func(r controlReq) (any, error) {
		svc := a
		if r.str("replica") == "b" {
			if b == nil {
				return nil, errString("no replica b (sqlite)")
			}
			svc = b
		}
		mark := svc.mark()
		if _, _, err := a.fake.PostWebhook(svc.webhookURL(), dingtalktest.Msg{SenderStaffID: r.str("user"), SenderNick: "用户" + r.str("user"), Text: r.str("text")}); err != nil {
			return nil, err
		}
		return map[string]int{"mark": mark}, nil
	})
	c.handle("/mark", func(controlReq) (any, error) { return map[string]int{"mark": a.mark()}, nil })
	c.handle("/sent", func(r controlReq) (any, error) {
		// Texts sent to user after mark, waiting up to 10 s for one containing substr.
		user, substr := r.str("user"), r.str("substr")
		deadline := time.Now().Add(10 * time.Second)
		for {
			sent := a.fake.Sent()
			var texts []string
			for _, x := range sent[min(r.int("after"), len(sent)):] {
				if isTo(x, user) {
					texts = append(texts, x.Text)
					if strings.Contains(x.Text, substr) {
						return map[string]any{"text": x.Text, "texts": texts}, nil
					}
				}
			}
			if time.Now().After(deadline) {
				return nil, errString("no message to " + user + " containing " + substr + "; got: " + strings.Join(texts, " | "))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	c.handle("/login-link", func(r controlReq) (any, error) {
		var out, errOut strings.Builder
		if code := run([]string{"login-link", "-c", a.cfg, "--staff", r.str("staff")}, nil, &out, &errOut); code != 0 {
			return nil, errString("login-link: " + errOut.String())
		}
		return map[string]string{"url": strings.TrimSpace(out.String())}, nil
	})
	return c
}

// handle adds a call; fn's error answers 500 with {"error": …}.
func (c *browserControl) handle(path string, fn func(controlReq) (any, error)) {
	c.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		req := controlReq{}
		_ = json.NewDecoder(r.Body).Decode(&req)
		out, err := fn(req)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(out)
	})
}

// runScript serves the control API on port 0 and runs web/e2e/script
// with node against the service; env adds the script's own variables.
func (c *browserControl) runScript(t *testing.T, script string, env ...string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: c.mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	cmd := exec.Command("node", script)
	cmd.Dir = browserSuiteDir(t)
	cmd.Env = append(os.Environ(), append([]string{"BASE_URL=" + c.base, "CONTROL_URL=http://" + ln.Addr().String()}, env...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s failed: %v", script, err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
