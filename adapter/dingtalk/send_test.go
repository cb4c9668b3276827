package dingtalk

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
)

const waitSent = 5 * time.Second

func newSender(t *testing.T) (*dingtalktest.Server, *Adapter) {
	t.Helper()
	fake := newFake(t)
	a, _ := mustNew(t, testConfig(fake, "webhook"), Options{})
	return fake, a
}

func TestSendPrivateViaSession(t *testing.T) {
	fake, a := newSender(t)
	m := inbound(t, fake, dingtalktest.Msg{SenderStaffID: "user001", Text: "怎么报销"})
	if err := a.Send(t.Context(), replyTo(m, adapter.Text, "请登录报销系统。")); err != nil {
		t.Fatal(err)
	}
	sent, err := fake.WaitSent(1, waitSent)
	if err != nil {
		t.Fatal(err)
	}
	s := sent[0]
	if s.Via != "session" || s.MsgType != "text" || s.Text != "请登录报销系统。" || len(s.AtUserIDs) != 0 || s.ConversationID != m.ConversationID {
		t.Errorf("sent %+v", s)
	}
	if fake.TokenRequests() != 0 {
		t.Errorf("session reply fetched %d tokens", fake.TokenRequests())
	}
}

func TestSendGroupViaSessionMentions(t *testing.T) {
	fake, a := newSender(t)
	m := inbound(t, fake, dingtalktest.Msg{ConversationType: dingtalktest.Group, SenderStaffID: "user002", Text: "转人工"})
	if err := a.Send(t.Context(), replyTo(m, adapter.Text, "正在为您转接")); err != nil {
		t.Fatal(err)
	}
	md := replyTo(m, adapter.Markdown, "## 报销流程\n1. 填单\n2. 审批")
	if err := a.Send(t.Context(), md); err != nil {
		t.Fatal(err)
	}
	sent, err := fake.WaitSent(2, waitSent)
	if err != nil {
		t.Fatal(err)
	}
	if s := sent[0]; s.Via != "session" || s.Text != "正在为您转接" || len(s.AtUserIDs) != 1 || s.AtUserIDs[0] != "user002" {
		t.Errorf("text: %+v", s)
	}
	if s := sent[1]; s.Via != "session" || s.MsgType != "markdown" || s.Title != "报销流程" ||
		!strings.HasPrefix(s.Text, "@user002\n\n## 报销流程") || len(s.AtUserIDs) != 1 || s.AtUserIDs[0] != "user002" {
		t.Errorf("markdown: %+v", s)
	}
}

func TestSendExpiredSessionFallsBackToBatchSend(t *testing.T) {
	fake, a := newSender(t)
	msgID, body := fake.Payload(dingtalktest.Msg{SenderStaffID: "user001", Text: "x"})
	raw, _ := decodePayload(body)
	m := toMessage(raw)
	fake.ExpireSession(fake.SessionFor(msgID)) // DingTalk answers 300001 now
	if err := a.Send(t.Context(), replyTo(m, adapter.Markdown, "**稍后回复**")); err != nil {
		t.Fatal(err)
	}
	sent, err := fake.WaitSent(1, waitSent)
	if err != nil {
		t.Fatal(err)
	}
	s := sent[0]
	if s.Via != "oto" || len(s.UserIDs) != 1 || s.UserIDs[0] != "user001" || s.RobotCode != fake.ClientID ||
		s.MsgType != "markdown" || s.Text != "**稍后回复**" || s.Title != "稍后回复" {
		t.Errorf("sent %+v", s)
	}
}

func TestSendGroupWithoutWebhookUsesOpenAPI(t *testing.T) {
	fake, a := newSender(t)
	r := adapter.Reply{ConversationID: "cidGroup123==", ConversationType: adapter.Group, UserID: "user002", Format: adapter.Text, Text: "客服 小王 为您服务"}
	if err := a.Send(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	sent, err := fake.WaitSent(1, waitSent)
	if err != nil {
		t.Fatal(err)
	}
	s := sent[0]
	if s.Via != "group" || s.ConversationID != "cidGroup123==" || s.RobotCode != fake.ClientID || s.Text != "@user002 客服 小王 为您服务" {
		t.Errorf("sent %+v", s)
	}
}

func TestSendTokenCachedAndRefreshed(t *testing.T) {
	fake, a := newSender(t)
	private := adapter.Reply{ConversationType: adapter.Private, UserID: "user001", Text: "hi"}
	for i := 0; i < 3; i++ {
		if err := a.Send(t.Context(), private); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.TokenRequests(); n != 1 {
		t.Errorf("TokenRequests = %d after 3 sends, want 1", n)
	}
	fake.ExpireTokens() // the cached token is now rejected with InvalidAuthentication
	if err := a.Send(t.Context(), private); err != nil {
		t.Fatal(err)
	}
	if n := fake.TokenRequests(); n != 2 {
		t.Errorf("TokenRequests = %d after expiry, want 2", n)
	}
	if _, err := fake.WaitSent(4, waitSent); err != nil {
		t.Error(err)
	}
}

func TestSendRetriesThrottleAnd5xx(t *testing.T) {
	fake, a := newSender(t)
	r := adapter.Reply{ConversationType: adapter.Private, UserID: "user001", Text: "hi"}
	fake.Throttle(2)
	if err := a.Send(t.Context(), r); err != nil {
		t.Fatalf("after Throttle(2): %v", err)
	}
	fake.FailNext(http.StatusGatewayTimeout, 2)
	if err := a.Send(t.Context(), r); err != nil {
		t.Fatalf("after FailNext(504, 2): %v", err)
	}
	if _, err := fake.WaitSent(2, waitSent); err != nil {
		t.Fatal(err)
	}
	var throttled, failed int
	for _, c := range fake.Calls() {
		switch c.Status {
		case http.StatusForbidden:
			throttled++
		case http.StatusGatewayTimeout:
			failed++
		}
	}
	if throttled != 2 || failed != 2 {
		t.Errorf("calls: %d throttled, %d failed; want 2 and 2", throttled, failed)
	}

	fake.FailNext(http.StatusInternalServerError, 10)
	err := a.Send(t.Context(), r)
	if err == nil || adapter.IsPermanent(err) || !strings.Contains(err.Error(), "500") {
		t.Errorf("persistent 500: err = %v, want a retryable error with the reason", err)
	}
}

func TestSendPermanentErrors(t *testing.T) {
	fake, a := newSender(t)
	r := adapter.Reply{ConversationType: adapter.Private, UserID: "user001", Text: "hi"}

	fake.QuotaExhausted(true)
	err := a.Send(t.Context(), r)
	if !adapter.IsPermanent(err) || !strings.Contains(err.Error(), "ApiCountLimitForOrg") {
		t.Errorf("quota exhausted: err = %v, want permanent with the code", err)
	}
	fake.QuotaExhausted(false)

	fake.FailNext(http.StatusBadRequest, 1)
	if err := a.Send(t.Context(), r); !adapter.IsPermanent(err) {
		t.Errorf("400: err = %v, want permanent", err)
	}
	if err := a.Send(t.Context(), adapter.Reply{ConversationType: adapter.Private, Text: "no user"}); !adapter.IsPermanent(err) {
		t.Errorf("no user: err = %v, want permanent", err)
	}
	if err := a.Send(t.Context(), adapter.Reply{ConversationType: adapter.Private, UserID: "u", Text: "  "}); !adapter.IsPermanent(err) {
		t.Errorf("empty text: err = %v, want permanent", err)
	}
}

func TestSendLongTextSplitInOrder(t *testing.T) {
	fake, a := newSender(t)
	var b strings.Builder
	for i := 0; b.Len() < 40000; i++ {
		b.WriteString(strings.Repeat("钉钉客服回复第", 3))
		b.WriteString(string(rune('0' + i%10)))
		b.WriteString("段，包含中文与 emoji 😀。\n")
	}
	text := strings.TrimSpace(b.String())
	m := inbound(t, fake, dingtalktest.Msg{ConversationType: dingtalktest.Group, SenderStaffID: "user002", Text: "长"})
	if err := a.Send(t.Context(), replyTo(m, adapter.Text, text)); err != nil {
		t.Fatal(err)
	}
	sent := fake.Sent()
	if len(sent) < 2 {
		t.Fatalf("%d messages, want a split", len(sent))
	}
	var parts []string
	for i, s := range sent {
		if s.Via != "session" || !utf8.ValidString(s.Text) || utf8.RuneCountInString(s.Text) > maxPartRunes || len(s.Body) >= maxBodyBytes {
			t.Errorf("part %d: via %s, %d runes, %d bytes", i, s.Via, utf8.RuneCountInString(s.Text), len(s.Body))
		}
		if (i == 0) != (len(s.AtUserIDs) == 1) {
			t.Errorf("part %d at = %v; only the first part mentions", i, s.AtUserIDs)
		}
		parts = append(parts, s.Text)
	}
	if got := strings.Join(parts, "\n"); got != text {
		t.Error("parts joined by newlines differ from the text (order or content lost)")
	}
}

func TestSendSessionHostGuard(t *testing.T) {
	fake, a := newSender(t)
	var hits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"errcode":0}`))
	}))
	defer evil.Close()
	r := adapter.Reply{ConversationType: adapter.Private, UserID: "user001", Text: "hi",
		SessionWebhook: evil.URL + "/robot/sendBySession?session=x", SessionWebhookExpiry: time.Now().Add(time.Hour)}
	if err := a.Send(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 0 {
		t.Error("untrusted sessionWebhook host was called")
	}
	if sent := fake.Sent(); len(sent) != 1 || sent[0].Via != "oto" {
		t.Errorf("sent %+v, want one OpenAPI send", sent)
	}

	// Expiring within the safety margin: straight to the OpenAPI.
	m := inbound(t, fake, dingtalktest.Msg{SenderStaffID: "user001", Text: "x"})
	r = replyTo(m, adapter.Text, "late")
	r.SessionWebhookExpiry = time.Now().Add(5 * time.Second)
	if err := a.Send(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if sent := fake.Sent(); len(sent) != 2 || sent[1].Via != "oto" {
		t.Errorf("sent %+v, want the OpenAPI", sent)
	}
}

func TestSendHonoursContext(t *testing.T) {
	fake, a := newSender(t)
	a.api.backoff = func(int, bool) time.Duration { return time.Second }
	fake.FailNext(http.StatusServiceUnavailable, 100)
	ctx, cancel := contextWithTimeout(t, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := a.Send(ctx, adapter.Reply{ConversationType: adapter.Private, UserID: "u", Text: "x"})
	if err == nil || adapter.IsPermanent(err) {
		t.Errorf("err = %v, want retryable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Send took %v with a 300 ms context", d)
	}
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("err %v lacks the reason", err)
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		t.Errorf("err %v does not wrap *apiError", err)
	}
}
