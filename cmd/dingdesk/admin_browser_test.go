package main

import (
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

	"github.com/xuri/excelize/v2"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
)

// adminGroups: two agents of one chat each in it, so a third user queues.
const adminGroups = `
skill_groups:
  - name: it
    display_name: IT 服务台
    rule: always
    members: [ { staff_id: agent1, name: 小王, max_chats: 1 }, { staff_id: agent3, name: 小赵, max_chats: 1 } ]
  - name: hr
    display_name: 人事
    rule: always
    members: [ { staff_id: agent2, name: 小李, max_chats: 2 } ]
`

// TestAdminBrowser runs web/e2e/admin.test.mjs (the admin console in
// chromium) against the real serve wiring, with a control API that plays
// the users and agents through the webhook and writes workbooks to upload.
func TestAdminBrowser(t *testing.T) {
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
	s := startService(t, serviceOpts{driver: driver, groups: adminGroups, extra: adminExtra})
	t.Setenv("DINGDESK_SERVER_PUBLIC_URL", s.url)
	files := t.TempDir()

	var mu sync.Mutex
	mux := http.NewServeMux()
	handle := func(path string, fn func(req map[string]any) (any, error)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			req := map[string]any{}
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
	str := func(r map[string]any, k string) string { v, _ := r[k].(string); return v }
	handle("/say", func(r map[string]any) (any, error) {
		mark := s.mark()
		if _, _, err := s.fake.PostWebhook(s.webhookURL(), dingtalktest.Msg{SenderStaffID: str(r, "user"), SenderNick: "用户" + str(r, "user"), Text: str(r, "text")}); err != nil {
			return nil, err
		}
		return map[string]int{"mark": mark}, nil
	})
	handle("/sent", func(r map[string]any) (any, error) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			sent := s.fake.Sent()
			var texts []string
			for _, x := range sent[min(int(r["after"].(float64)), len(sent)):] {
				if isTo(x, str(r, "user")) {
					texts = append(texts, x.Text)
					if strings.Contains(x.Text, str(r, "substr")) {
						return map[string]any{"text": x.Text, "texts": texts}, nil
					}
				}
			}
			if time.Now().After(deadline) {
				return nil, errString("no message to " + str(r, "user") + " containing " + str(r, "substr") + "; got: " + strings.Join(texts, " | "))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	handle("/login-link", func(r map[string]any) (any, error) {
		var out, errOut strings.Builder
		if code := run([]string{"login-link", "-c", s.cfg, "--staff", str(r, "staff")}, nil, &out, &errOut); code != 0 {
			return nil, errString("login-link: " + errOut.String())
		}
		return map[string]string{"url": strings.TrimSpace(out.String())}, nil
	})
	// /xlsx writes a workbook of rows (arrays of cells) and returns its path.
	handle("/xlsx", func(r map[string]any) (any, error) {
		f := excelize.NewFile()
		rows, _ := r["rows"].([]any)
		for i, row := range rows {
			cells, _ := row.([]any)
			cell, _ := excelize.CoordinatesToCellName(1, i+1)
			if err := f.SetSheetRow("Sheet1", cell, &cells); err != nil {
				return nil, err
			}
		}
		path := filepath.Join(files, str(r, "name"))
		return map[string]string{"path": path}, f.SaveAs(path)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	cmd := exec.Command("node", "admin.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BASE_URL="+s.url, "CONTROL_URL=http://"+ln.Addr().String(), "DOWNLOADS="+files, "ADMIN_SHOTS="+os.Getenv("DINGDESK_ADMIN_SHOTS"))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("admin browser tests failed: %v", err)
	}
}
