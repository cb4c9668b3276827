package dingtalk

import (
	"strings"
	"testing"
)

func TestSDKLogBridge(t *testing.T) {
	fake := newFake(t)
	a, logs := mustNew(t, testConfig(fake, "stream"), Options{})
	bridge.add(a)
	defer bridge.remove(a)
	secret := fake.ClientSecret

	// The SDK's wire dump of the open request (client.go GetConnectionEndpoint).
	bridge.Debugf("[wire] [http] local => remote:\n%s %s %s\nHost: %s\n%s\n\n%s", "POST", "/v1.0/gateway/connections/open", "HTTP/1.1",
		"api.dingtalk.com", "Content-Type: application/json", `{"clientId":"ding-test-app","clientSecret":"`+secret+`"}`)
	bridge.Infof("connect success, sessionId=[%s]", "5f3c0e62-ticket-value")
	if err := a.conn.ready(); err != nil {
		t.Errorf("after connect success: %v", err)
	}
	bridge.Errorf("connection process read message error: messageType=[%d] message=[%s] error=[%s]", -1, "", "EOF")
	if err := a.conn.ready(); err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Errorf("after read error: %v", err)
	}
	bridge.Errorf("unexpected: %s", "body "+secret+` "accessToken":"tok-xyz" x-acs-dingtalk-access-token: tok-abc`+
		" https://oapi.dingtalk.com/robot/sendBySession?session=sess-123")
	bridge.Fatalf("fatal %d", 1) // must not exit

	out := logs.String()
	for _, leak := range []string{secret, "clientSecret", "5f3c0e62-ticket-value", "tok-xyz", "tok-abc", "sess-123"} {
		if strings.Contains(out, leak) {
			t.Errorf("log contains %q:\n%s", leak, out)
		}
	}
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, `msg="stream sdk"`) || !strings.Contains(out, "fatal 1") {
		t.Errorf("unexpected log:\n%s", out)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		`{"clientId":"a","clientSecret":"s3"}`: `{"clientId":"a","clientSecret":"******"}`,
		`ws://h/connect?ticket=abc-123&x=1`:    `ws://h/connect?ticket=******&x=1`,
		`sessionId=[abc]`:                      `sessionId=[******]`,
		`nothing secret here`:                  `nothing secret here`,
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
