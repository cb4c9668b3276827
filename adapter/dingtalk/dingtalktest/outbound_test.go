package dingtalktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func getToken(t *testing.T, s *Server) string {
	t.Helper()
	status, out := postJSON(t, s.URL+"/v1.0/oauth2/accessToken", nil,
		map[string]string{"appKey": s.ClientID, "appSecret": s.ClientSecret})
	tok, _ := out["accessToken"].(string)
	if status != http.StatusOK || tok == "" || out["expireIn"] != float64(7200) {
		t.Fatalf("accessToken: status %d %v", status, out)
	}
	return tok
}

func mdParam(t *testing.T, title, text string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"title": title, "text": text})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAccessTokenAndOTO(t *testing.T) {
	s := newServer(t)
	status, out := postJSON(t, s.URL+"/v1.0/oauth2/accessToken", nil,
		map[string]string{"appKey": s.ClientID, "appSecret": "bad"})
	if status != http.StatusBadRequest || out["code"] != "invalidClientIdOrSecret" {
		t.Fatalf("bad secret: %d %v", status, out)
	}
	tok := getToken(t, s)
	if n := s.TokenRequests(); n != 2 {
		t.Fatalf("TokenRequests = %d, want 2", n)
	}

	hdr := map[string]string{"x-acs-dingtalk-access-token": tok}
	body := map[string]any{
		"robotCode": s.ClientID, "userIds": []string{"u1"},
		"msgKey": "sampleMarkdown", "msgParam": mdParam(t, "T", "**hi**"),
	}
	status, out = postJSON(t, s.URL+"/v1.0/robot/oToMessages/batchSend", hdr, body)
	if status != http.StatusOK || out["processQueryKey"] == "" {
		t.Fatalf("batchSend: %d %v", status, out)
	}
	for _, k := range []string{"invalidStaffIdList", "flowControlledStaffIdList", "filteredStaffIdList"} {
		if l, ok := out[k].([]any); !ok || len(l) != 0 {
			t.Fatalf("%s = %v, want []", k, out[k])
		}
	}
	sent, err := s.WaitSent(1, wait)
	if err != nil {
		t.Fatal(err)
	}
	m := sent[0]
	if m.Via != "oto" || m.RobotCode != s.ClientID || len(m.UserIDs) != 1 || m.UserIDs[0] != "u1" ||
		m.MsgType != "markdown" || m.MsgKey != "sampleMarkdown" || m.Title != "T" || m.Text != "**hi**" {
		t.Fatalf("sent = %+v", m)
	}

	s.ExpireTokens()
	status, out = postJSON(t, s.URL+"/v1.0/robot/oToMessages/batchSend", hdr, body)
	if status != http.StatusBadRequest || out["code"] != "InvalidAuthentication" || out["message"] != "不合法的access_token" {
		t.Fatalf("expired token: %d %v", status, out)
	}
	status, out = postJSON(t, s.URL+"/v1.0/robot/oToMessages/batchSend", nil, body)
	if status != http.StatusBadRequest || out["code"] != "InvalidAuthentication" {
		t.Fatalf("no token: %d %v", status, out)
	}
	hdr["x-acs-dingtalk-access-token"] = getToken(t, s)
	if status, out = postJSON(t, s.URL+"/v1.0/robot/oToMessages/batchSend", hdr, body); status != http.StatusOK {
		t.Fatalf("fresh token: %d %v", status, out)
	}
	if len(s.Sent()) != 2 {
		t.Fatalf("sent = %d, want 2", len(s.Sent()))
	}
}

func TestTokenTTL(t *testing.T) {
	s := newServer(t)
	s.SetTokenTTL(time.Second)
	tok := getTokenTTL(t, s, 1)
	time.Sleep(1100 * time.Millisecond)
	status, out := postJSON(t, s.URL+"/v1.0/robot/groupMessages/send", map[string]string{"x-acs-dingtalk-access-token": tok},
		map[string]any{"robotCode": s.ClientID, "openConversationId": "cid", "msgKey": "sampleText", "msgParam": `{"content":"x"}`})
	if status != http.StatusBadRequest || out["code"] != "InvalidAuthentication" {
		t.Fatalf("stale token: %d %v", status, out)
	}
}

func getTokenTTL(t *testing.T, s *Server, want float64) string {
	t.Helper()
	_, out := postJSON(t, s.URL+"/v1.0/oauth2/accessToken", nil,
		map[string]string{"appKey": s.ClientID, "appSecret": s.ClientSecret})
	if out["expireIn"] != want {
		t.Fatalf("expireIn = %v, want %v", out["expireIn"], want)
	}
	return out["accessToken"].(string)
}

func TestGroupSendValidation(t *testing.T) {
	s := newServer(t)
	hdr := map[string]string{"x-acs-dingtalk-access-token": getToken(t, s)}
	url := s.URL + "/v1.0/robot/groupMessages/send"
	good := func() map[string]any {
		return map[string]any{"robotCode": s.ClientID, "openConversationId": "cid-g1", "msgKey": "sampleText", "msgParam": `{"content":"hello"}`}
	}
	cases := map[string]struct {
		edit func(map[string]any)
		code string
	}{
		"msgParamObject":   {func(b map[string]any) { b["msgParam"] = map[string]string{"content": "hello"} }, "InvalidParameter"},
		"msgParamNotJSON":  {func(b map[string]any) { b["msgParam"] = "hello" }, "InvalidParameter"},
		"missingMsgParam":  {func(b map[string]any) { delete(b, "msgParam") }, "MissingmsgParam"},
		"missingRobotCode": {func(b map[string]any) { delete(b, "robotCode") }, "MissingrobotCode"},
		"wrongRobotCode":   {func(b map[string]any) { b["robotCode"] = "normal" }, "InvalidParameter"},
		"missingMsgKey":    {func(b map[string]any) { delete(b, "msgKey") }, "MissingmsgKey"},
		"unknownMsgKey":    {func(b map[string]any) { b["msgKey"] = "text" }, "InvalidParameter"},
		"missingConv":      {func(b map[string]any) { delete(b, "openConversationId") }, "MissingopenConversationId"},
		"emptyContent":     {func(b map[string]any) { b["msgParam"] = `{"text":"hello"}` }, "InvalidParameter"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := good()
			c.edit(b)
			status, out := postJSON(t, url, hdr, b)
			if status != http.StatusBadRequest || out["code"] != c.code {
				t.Fatalf("status %d %v, want 400 %s", status, out, c.code)
			}
		})
	}
	if len(s.Sent()) != 0 {
		t.Fatal("rejected sends were recorded")
	}

	status, out := postJSON(t, url, hdr, good())
	if status != http.StatusOK || out["processQueryKey"] == "" {
		t.Fatalf("good send: %d %v", status, out)
	}
	m := s.Sent()[0]
	if m.Via != "group" || m.ConversationID != "cid-g1" || m.MsgType != "text" || m.Text != "hello" {
		t.Fatalf("sent = %+v", m)
	}
}

func TestFaultInjection(t *testing.T) {
	s := newServer(t)
	hdr := map[string]string{"x-acs-dingtalk-access-token": getToken(t, s)}
	url := s.URL + "/v1.0/robot/oToMessages/batchSend"
	body := map[string]any{"robotCode": s.ClientID, "userIds": []string{"u1"}, "msgKey": "sampleText", "msgParam": `{"content":"x"}`}
	send := func() (int, string) {
		status, out := postJSON(t, url, hdr, body)
		code, _ := out["code"].(string)
		return status, code
	}

	s.Throttle(2)
	for range 2 {
		if st, code := send(); st != http.StatusForbidden || code != "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi" {
			t.Fatalf("throttled: %d %s", st, code)
		}
	}
	if st, _ := send(); st != http.StatusOK {
		t.Fatalf("after throttle: %d", st)
	}

	s.FailNext(http.StatusGatewayTimeout, 1)
	if st, _ := send(); st != http.StatusGatewayTimeout {
		t.Fatalf("FailNext: %d", st)
	}
	if st, _ := send(); st != http.StatusOK {
		t.Fatalf("after FailNext: %d", st)
	}

	s.QuotaExhausted(true)
	if st, code := send(); st != http.StatusForbidden || code != "Forbidden.AccessDenied.ApiCountLimitForOrg" {
		t.Fatalf("quota: %d %s", st, code)
	}
	s.QuotaExhausted(false)

	s.SetQPSLimit(3)
	var ok, limited int
	for range 5 {
		switch st, code := send(); {
		case st == http.StatusOK:
			ok++
		case code == "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi":
			limited++
		}
	}
	if ok != 3 || limited != 2 {
		t.Fatalf("qps: ok %d limited %d, want 3 and 2", ok, limited)
	}
	if n := len(s.Sent()); n != 2+3 {
		t.Fatalf("sent = %d, want 5", n)
	}
	calls := s.Calls()
	if last := calls[len(calls)-1]; last.Path != "/v1.0/robot/oToMessages/batchSend" || last.Status != http.StatusForbidden {
		t.Fatalf("last call = %+v", last)
	}
}

// sessionURL extracts sessionWebhook from a payload.
func sessionURL(t *testing.T, body []byte) string {
	t.Helper()
	var p struct {
		SessionWebhook string `json:"sessionWebhook"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	return p.SessionWebhook
}

func TestSessionWebhook(t *testing.T) {
	s := newServer(t)
	msgID, body := s.Payload(Msg{ConversationType: Group, ConversationID: "cid-g1", SenderStaffID: "u1"})
	url := sessionURL(t, body)
	if !strings.HasPrefix(url, s.URL+"/robot/sendBySession?session=") {
		t.Fatalf("sessionWebhook = %q", url)
	}

	status, out := postJSON(t, url, nil, map[string]any{
		"msgtype": "markdown", "markdown": map[string]string{"title": "T", "text": "hi @u1"},
		"at": map[string]any{"atUserIds": []string{"u1"}},
	})
	if status != http.StatusOK || out["errcode"] != float64(0) || out["errmsg"] != "ok" {
		t.Fatalf("send: %d %v", status, out)
	}
	m := s.Sent()[0]
	if m.Via != "session" || m.Session != s.SessionFor(msgID) || m.ConversationID != "cid-g1" || m.MsgType != "markdown" ||
		m.Title != "T" || m.Text != "hi @u1" || len(m.AtUserIDs) != 1 || m.AtUserIDs[0] != "u1" {
		t.Fatalf("sent = %+v", m)
	}

	status, out = postJSON(t, url, nil, map[string]any{"msgtype": "text", "text": map[string]string{"content": strings.Repeat("长", 7000)}})
	if status != http.StatusOK || out["errcode"] != float64(460101) || !strings.Contains(out["errmsg"].(string), "20000bytes") {
		t.Fatalf("oversized: %d %v", status, out)
	}
	status, out = postJSON(t, url, nil, map[string]any{"msgtype": "text", "text": map[string]string{"content": ""}})
	if status != http.StatusOK || out["errcode"] != float64(40035) {
		t.Fatalf("empty text: %d %v", status, out)
	}

	s.ExpireSession(s.SessionFor(msgID))
	status, out = postJSON(t, url, nil, map[string]any{"msgtype": "text", "text": map[string]string{"content": "late"}})
	if status != http.StatusOK || out["errcode"] != float64(300001) || out["errmsg"] != "session 不存在" {
		t.Fatalf("expired: %d %v", status, out)
	}
	if len(s.Sent()) != 1 {
		t.Fatal("failed session sends were recorded")
	}

	_, old := s.Payload(Msg{CreateAt: time.Now().Add(-2 * time.Hour)})
	if _, out = postJSON(t, sessionURL(t, old), nil, map[string]any{"msgtype": "text", "text": map[string]string{"content": "x"}}); out["errcode"] != float64(300001) {
		t.Fatalf("session past its TTL: %v", out)
	}
	_, fresh := s.Payload(Msg{})
	s.ExpireAllSessions()
	if _, out = postJSON(t, sessionURL(t, fresh), nil, map[string]any{"msgtype": "text", "text": map[string]string{"content": "x"}}); out["errcode"] != float64(300001) {
		t.Fatalf("after ExpireAllSessions: %v", out)
	}
}

func TestPayloadShapes(t *testing.T) {
	s := newServer(t)
	decode := func(b []byte) map[string]any {
		var p map[string]any
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	created := time.UnixMilli(1700000000000)

	id, b := s.Payload(Msg{SenderStaffID: "u1", Text: "hello", CreateAt: created})
	p := decode(b)
	for _, k := range []string{"isInAtList", "atUsers", "conversationTitle", "content"} {
		if _, ok := p[k]; ok {
			t.Errorf("private payload has %q", k)
		}
	}
	if p["msgId"] != id || !strings.HasPrefix(id, "msg") || p["conversationType"] != "1" || p["conversationId"] != "cid-private-u1" ||
		p["text"].(map[string]any)["content"] != "hello" || p["robotCode"] != s.ClientID || p["chatbotUserId"] != s.BotUserID ||
		p["senderCorpId"] != s.CorpID || p["msgtype"] != "text" || !strings.HasPrefix(p["senderId"].(string), "$:LWCP_v1:$") ||
		p["createAt"] != float64(created.UnixMilli()) || p["sessionWebhookExpiredTime"] != float64(created.Add(90*time.Minute).UnixMilli()) {
		t.Errorf("private payload = %v", p)
	}

	_, b = s.Payload(Msg{ConversationType: Group, NotAtBot: true, Text: "x", SenderStaffID: ""})
	p = decode(b)
	if p["isInAtList"] != false || p["text"].(map[string]any)["content"] != "x" || p["atUsers"] != nil ||
		p["senderStaffId"] != "" || p["conversationTitle"] != "Test Group" {
		t.Errorf("group payload without @ = %v", p)
	}
	_, b = s.Payload(Msg{ConversationType: Group, Text: "x", AtUsers: []AtUser{{DingtalkID: "$:other", StaffID: "u2"}}})
	p = decode(b)
	at := p["atUsers"].([]any)
	if len(at) != 2 || at[0].(map[string]any)["dingtalkId"] != s.BotUserID || at[0].(map[string]any)["staffId"] != nil {
		t.Errorf("atUsers = %v", at)
	}

	_, b = s.Payload(Msg{MsgType: "picture"})
	p = decode(b)
	if c, ok := p["content"].(map[string]any); !ok || c["downloadCode"] == "" || p["text"] != nil {
		t.Errorf("picture payload = %v", p)
	}
	_, b = s.Payload(Msg{MsgType: "audio", Text: "识别文本"})
	if c := decode(b)["content"].(map[string]any); c["recognition"] != "识别文本" {
		t.Errorf("audio content = %v", c)
	}
	_, b = s.Payload(Msg{MsgType: "file", Content: map[string]string{"fileName": "a.pdf"}})
	if c := decode(b)["content"].(map[string]any); c["fileName"] != "a.pdf" {
		t.Errorf("file content = %v", c)
	}
	_, b = s.Payload(Msg{Extra: map[string]any{"robotCode": "normal", "senderNick": nil}})
	p = decode(b)
	if _, ok := p["senderNick"]; ok || p["robotCode"] != "normal" {
		t.Errorf("Extra not applied: %v", p)
	}
}

func TestSign(t *testing.T) {
	// Independent computation of the documented algorithm.
	mac := hmac.New(sha256.New, []byte("sec"))
	mac.Write([]byte("1700000000000\nsec"))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if got := Sign("sec", 1700000000000); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestPostWebhook(t *testing.T) {
	s := newServer(t)
	type got struct {
		ts, sign, ctype string
		body            []byte
	}
	ch := make(chan got, 2)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- got{r.Header.Get("timestamp"), r.Header.Get("sign"), r.Header.Get("Content-Type"), b}
	}))
	defer hook.Close()

	msgID, resp, err := s.PostWebhook(hook.URL, Msg{Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	g := <-ch
	ms, err := strconv.ParseInt(g.ts, 10, 64)
	if err != nil || time.Since(time.UnixMilli(ms)) > time.Minute {
		t.Fatalf("timestamp header %q", g.ts)
	}
	if g.sign != Sign(s.ClientSecret, ms) || !strings.HasPrefix(g.ctype, "application/json") {
		t.Fatalf("headers: %+v", g)
	}
	var p map[string]any
	if json.Unmarshal(g.body, &p) != nil || p["msgId"] != msgID {
		t.Fatalf("body = %s", g.body)
	}

	resp, err = s.PostWebhookRaw(hook.URL, []byte(`{`), time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if g = <-ch; g.ts != "" || g.sign != "" || string(g.body) != "{" {
		t.Fatalf("raw: %+v", g)
	}
}
