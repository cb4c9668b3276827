package dingtalk

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
)

// webhookServer mounts the adapter's handler as the wiring does.
func webhookServer(t *testing.T, a *Adapter) string {
	t.Helper()
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.POST(a.cfg.WebhookPath, a.WebhookHandler())
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL + a.cfg.WebhookPath
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWebhook(t *testing.T) {
	fake := newFake(t)
	a, _ := mustNew(t, testConfig(fake, "webhook"), Options{})
	rec := newRecorder()
	if err := a.Start(t.Context(), rec.handle); err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(); err != nil {
		t.Errorf("Ready in webhook mode = %v", err)
	}
	url := webhookServer(t, a)
	now := time.Now()

	t.Run("valid private message", func(t *testing.T) {
		msgID, resp, err := fake.PostWebhook(url, dingtalktest.Msg{SenderStaffID: "user001", SenderNick: "张三", Text: "  怎么报销？ "})
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); resp.StatusCode != 200 || body != "{}" {
			t.Fatalf("got %d %s, want 200 {}", resp.StatusCode, body)
		}
		m := rec.wait(t, time.Second)
		if m.ID != msgID || m.Kind != adapter.KindText || m.Text != "怎么报销？" || m.ConversationType != adapter.Private ||
			m.SenderID != "user001" || m.SenderStaffID != "user001" || m.SenderNick != "张三" || m.SenderCorpID != fake.CorpID ||
			m.RobotCode != fake.ClientID || m.AtBot || m.ConversationID == "" || m.SenderDingTalkID == "" {
			t.Errorf("message = %+v", m)
		}
		if !strings.HasPrefix(m.SessionWebhook, fake.URL+"/robot/sendBySession?session=") {
			t.Errorf("SessionWebhook = %q", m.SessionWebhook)
		}
		if d := m.SessionWebhookExpiry.Sub(m.CreatedAt); d != dingtalktest.DefaultSessionTTL {
			t.Errorf("session lifetime = %v", d)
		}
		if d := time.Since(m.CreatedAt); d < 0 || d > time.Minute {
			t.Errorf("CreatedAt = %v", m.CreatedAt)
		}
	})

	_, body := fake.Payload(dingtalktest.Msg{SenderStaffID: "user001", Text: "hi"})
	rejected := map[string]struct {
		body   []byte
		ts     time.Time
		sign   string
		status int
		code   string
	}{
		"forged sign":            {body, now, dingtalktest.Sign("not-the-secret", now.UnixMilli()), 401, "invalid_signature"},
		"garbage sign":           {body, now, "Zm9yZ2Vk", 401, "invalid_signature"},
		"2 hours old":            {body, now.Add(-2 * time.Hour), dingtalktest.Sign(fake.ClientSecret, now.Add(-2*time.Hour).UnixMilli()), 401, "invalid_signature"},
		"2 hours ahead":          {body, now.Add(2 * time.Hour), dingtalktest.Sign(fake.ClientSecret, now.Add(2*time.Hour).UnixMilli()), 401, "invalid_signature"},
		"no headers":             {body, time.Time{}, "", 401, "invalid_signature"},
		"malformed JSON":         {[]byte(`{"msgtype":"text",`), now, dingtalktest.Sign(fake.ClientSecret, now.UnixMilli()), 400, "malformed_json"},
		"no msgId":               {[]byte(`{"msgtype":"text","text":{"content":"x"}}`), now, dingtalktest.Sign(fake.ClientSecret, now.UnixMilli()), 400, "missing_msg_id"},
		"3 MiB body":             {bytes.Repeat([]byte("a"), 3<<20), now, dingtalktest.Sign(fake.ClientSecret, now.UnixMilli()), 413, "body_too_large"},
		"forged sign, huge body": {bytes.Repeat([]byte("a"), 3<<20), now, "Zm9yZ2Vk", 401, "invalid_signature"},
	}
	for name, tc := range rejected {
		t.Run(name, func(t *testing.T) {
			before := rec.count()
			resp, err := fake.PostWebhookRaw(url, tc.body, tc.ts, tc.sign)
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, tc.status)
			}
			var e struct{ Error, Message string }
			if err := json.Unmarshal([]byte(got), &e); err != nil || e.Error != tc.code || e.Message == "" {
				t.Errorf("body %s, want error %q with a message", got, tc.code)
			}
			if rec.count() != before {
				t.Error("handler was called")
			}
		})
	}

	t.Run("413 without Content-Length", func(t *testing.T) {
		ts := time.Now()
		req, _ := http.NewRequest(http.MethodPost, url, io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("a"), 2<<20))))
		req.Header.Set("timestamp", strconvMillis(ts))
		req.Header.Set("sign", dingtalktest.Sign(fake.ClientSecret, ts.UnixMilli()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, resp); resp.StatusCode != 413 {
			t.Errorf("status %d %s, want 413", resp.StatusCode, got)
		}
	})

	for _, msgType := range []string{"unknownMsgType", "interactiveCard"} {
		t.Run("msgtype "+msgType, func(t *testing.T) {
			msgID, resp, err := fake.PostWebhook(url, dingtalktest.Msg{SenderStaffID: "user001", MsgType: msgType, Content: map[string]string{"x": "y"}})
			if err != nil {
				t.Fatal(err)
			}
			if body := readAll(t, resp); resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			m := rec.wait(t, time.Second)
			if m.ID != msgID || m.Kind != adapter.KindUnknown || m.RawType != msgType || m.Text != "" {
				t.Errorf("message = %+v", m)
			}
		})
	}

	t.Run("group message", func(t *testing.T) {
		_, resp, err := fake.PostWebhook(url, dingtalktest.Msg{ConversationType: dingtalktest.Group, SenderStaffID: "user002", Text: "转人工",
			AtUsers: []dingtalktest.AtUser{{DingtalkID: "$:LWCP_v1:$x", StaffID: "user003"}}})
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		m := rec.wait(t, time.Second)
		if m.Text != "转人工" || !m.AtBot || m.ConversationType != adapter.Group || m.ConversationTitle == "" ||
			len(m.AtUserIDs) != 1 || m.AtUserIDs[0] != "user003" {
			t.Errorf("message = %+v", m)
		}
	})

	t.Run("handler error is 500", func(t *testing.T) {
		rec.setFail(errStore)
		defer rec.setFail(nil)
		_, resp, err := fake.PostWebhook(url, dingtalktest.Msg{SenderStaffID: "user001", Text: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != 500 || !strings.Contains(body, "not_stored") || strings.Contains(body, "secret-path") {
			t.Errorf("got %d %s, want 500 without internals", resp.StatusCode, body)
		}
	})
}

func TestWebhookLifecycle(t *testing.T) {
	fake := newFake(t)
	a, _ := mustNew(t, testConfig(fake, "webhook"), Options{})
	url := webhookServer(t, a)
	if err := a.Ready(); err == nil {
		t.Error("Ready before Start = nil")
	}
	_, resp, err := fake.PostWebhook(url, dingtalktest.Msg{SenderStaffID: "u", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 503 {
		t.Errorf("before Start: %d %s, want 503", resp.StatusCode, body)
	}
	rec := newRecorder()
	if err := a.Start(t.Context(), rec.handle); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context(), rec.handle); err == nil {
		t.Error("second Start = nil")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	_, resp, err = fake.PostWebhook(url, dingtalktest.Msg{SenderStaffID: "u", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 503 {
		t.Errorf("after Close: %d %s, want 503", resp.StatusCode, body)
	}
	if a.Ready() == nil {
		t.Error("Ready after Close = nil")
	}
}

func TestVerifySign(t *testing.T) {
	fake := newFake(t)
	now := time.UnixMilli(1700000000000)
	a, _ := mustNew(t, testConfig(fake, "webhook"), Options{Now: func() time.Time { return now }})
	ok := func(ts time.Time) error {
		return a.verifySign(strconvMillis(ts), dingtalktest.Sign(fake.ClientSecret, ts.UnixMilli()))
	}
	if err := ok(now); err != nil {
		t.Errorf("now: %v", err)
	}
	if err := ok(now.Add(-59 * time.Minute)); err != nil {
		t.Errorf("59 min old: %v", err)
	}
	if err := ok(now.Add(-61 * time.Minute)); err == nil {
		t.Error("61 min old accepted")
	}
	if err := a.verifySign("abc", "x"); err == nil {
		t.Error("non-numeric timestamp accepted")
	}
	// The documented algorithm, written out independently.
	if got, want := computeSign("SECret", "1700000000000"), dingtalktest.Sign("SECret", 1700000000000); got != want {
		t.Errorf("computeSign = %q, want %q", got, want)
	}
}

func strconvMillis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
