package main

import (
	"context"
	"encoding/json"
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
	if os.Getenv(EnvBrowserTests) == "" {
		t.Skip("browser tests are off; set " + EnvBrowserTests + "=1 (.ci/run does, after installing chromium and playwright-core)")
	}
	dir, _ := filepath.Abs("../../web/e2e")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed: run npm ci in %s", dir)
	}
	driver := "sqlite"
	if len(gormstoretest.Drivers(t)) > 1 {
		driver = "mysql"
	}
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

	var mu sync.Mutex // the control API runs one request at a time
	mux := http.NewServeMux()
	handle := func(path string, fn func(req map[string]string) (any, error)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			req := map[string]string{}
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
	handle("/say", func(r map[string]string) (any, error) {
		svc := a
		if r["replica"] == "b" {
			if b == nil {
				return nil, errString("no replica b (sqlite)")
			}
			svc = b
		}
		mark := svc.mark()
		if _, _, err := a.fake.PostWebhook(svc.webhookURL(), dingtalktest.Msg{SenderStaffID: r["user"], SenderNick: "用户" + r["user"], Text: r["text"]}); err != nil {
			return nil, err
		}
		return map[string]int{"mark": mark}, nil
	})
	handle("/mark", func(map[string]string) (any, error) { return map[string]int{"mark": a.mark()}, nil })
	handle("/sent", func(r map[string]string) (any, error) {
		// Texts sent to user after mark, waiting up to 10 s for one containing substr.
		deadline := time.Now().Add(10 * time.Second)
		for {
			sent := a.fake.Sent()
			var texts []string
			for _, x := range sent[min(atoi(r["after"]), len(sent)):] {
				if isTo(x, r["user"]) {
					texts = append(texts, x.Text)
					if strings.Contains(x.Text, r["substr"]) {
						return map[string]any{"text": x.Text, "texts": texts}, nil
					}
				}
			}
			if time.Now().After(deadline) {
				return nil, errString("no message to " + r["user"] + " containing " + r["substr"] + "; got: " + strings.Join(texts, " | "))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	handle("/login-link", func(r map[string]string) (any, error) {
		var out, errOut strings.Builder
		if code := run([]string{"login-link", "-c", a.cfg, "--staff", r["staff"]}, nil, &out, &errOut); code != 0 {
			return nil, errString("login-link: " + errOut.String())
		}
		return map[string]string{"url": strings.TrimSpace(out.String())}, nil
	})
	handle("/expired-link", func(r map[string]string) (any, error) {
		tok := web.NewToken()
		now := time.Now()
		err := gormstore.NewWebStore(a.main.DB).CreateLoginLink(context.Background(), web.HashToken(tok), r["staff"], now.Add(-10*time.Minute), now.Add(-5*time.Minute))
		return map[string]string{"url": a.url + "/auth/link?t=" + tok}, err
	})
	handle("/oauth-user", func(r map[string]string) (any, error) {
		a.fake.SelectLoginUser(r["userid"])
		return map[string]bool{"ok": true}, nil
	})
	handle("/jsapi-code", func(r map[string]string) (any, error) {
		return map[string]string{"code": a.fake.MintJSAPICode(r["userid"])}, nil
	})
	handle("/restart", func(map[string]string) (any, error) {
		restartSamePort(t, a)
		return map[string]bool{"ok": true}, nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	shot := os.Getenv("DINGDESK_SCREENSHOT") // where to save the README screenshot
	cmd := exec.Command("node", "workbench.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BASE_URL="+a.url, "CONTROL_URL=http://"+ln.Addr().String(),
		"REPLICA_B="+boolStr(b != nil), "SCREENSHOT="+shot)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("browser tests failed: %v", err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return ""
}
