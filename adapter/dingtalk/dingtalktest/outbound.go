package dingtalktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sent is one message the bot sent successfully. Failed calls are not
// recorded (see Calls).
type Sent struct {
	// Via is "session" (sessionWebhook), "oto" (oToMessages/batchSend) or
	// "group" (groupMessages/send).
	Via string
	// Session is the session token, for "session".
	Session string
	// ConversationID is openConversationId for "group", and the conversation
	// the session was minted for, for "session".
	ConversationID string
	// UserIDs is userIds, for "oto".
	UserIDs []string
	// RobotCode is robotCode, for "oto" and "group".
	RobotCode string
	// MsgType is "text" or "markdown" (from msgtype, or from msgKey
	// sampleText/sampleMarkdown); other kinds map to "actionCard", "link",
	// "feedCard", "image", "file", "audio" or "video".
	MsgType string
	// MsgKey is the OpenAPI msgKey ("" for "session").
	MsgKey string
	// Text is text.content / markdown.text / actionCard.text, or msgParam
	// content|text.
	Text string
	// Title is markdown.title / actionCard.title, or msgParam title.
	Title string
	// AtUserIDs is at.atUserIds; for OpenAPI sends, whatever the body's
	// at.atUserIds or msgParam's atUserIds held.
	AtUserIDs []string
	AtMobiles []string
	AtAll     bool
	// Param is the decoded msgParam, for OpenAPI sends.
	Param map[string]any
	Body  []byte
	At    time.Time
}

// Sent returns the successfully sent messages, in order.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// WaitSent waits until at least n messages are recorded and returns all of
// them.
func (s *Server) WaitSent(n int, timeout time.Duration) ([]Sent, error) {
	err := s.waitFor(timeout, func() bool { return len(s.sent) >= n })
	got := s.Sent()
	if err != nil {
		return got, fmt.Errorf("waiting for %d sent messages (have %d): %w", n, len(got), err)
	}
	return got, nil
}

func (s *Server) recordSent(m Sent) {
	m.At = time.Now()
	s.mu.Lock()
	s.sent = append(s.sent, m)
	s.broadcastLocked()
	s.mu.Unlock()
}

// ExpireSession makes one sessionWebhook answer errcode 300001.
func (s *Server) ExpireSession(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.sessions[token]; ok {
		sess.expired = true
	}
}

// ExpireAllSessions expires every sessionWebhook minted so far.
func (s *Server) ExpireAllSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.sessions {
		sess.expired = true
	}
}

// ExpireTokens invalidates every access token issued so far: OpenAPI calls
// with them answer 400 InvalidAuthentication. New tokens work.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// SetTokenTTL sets the lifetime (and expireIn) of tokens issued from now on;
// default 7200 s.
func (s *Server) SetTokenTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenTTL = max(d, time.Second)
}

// TokenRequests counts POST /v1.0/oauth2/accessToken calls, failed ones
// included.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenReqs
}

// Throttle makes the next n OpenAPI send calls with a valid token answer 403
// Forbidden.AccessDenied.QpsLimitForAppkeyAndApi (retryable).
func (s *Server) Throttle(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = max(n, 0)
}

// FailNext makes the next n OpenAPI send calls with a valid token answer
// that HTTP status (e.g. 500, or 504 as DingTalk does on backend timeouts).
func (s *Server) FailNext(status int, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failStatus, s.failN = status, max(n, 0)
}

// Unavailable makes every send call, sessionWebhook posts included, answer
// HTTP 503 while on: DingTalk down or overloaded for a while.
func (s *Server) Unavailable(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unavailable = on
}

func (s *Server) refuseUnavailable(w http.ResponseWriter) bool {
	s.mu.Lock()
	down := s.unavailable
	s.mu.Unlock()
	if down {
		writeAPIError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "dingtalktest: unavailable")
	}
	return down
}

// SetQPSLimit makes OpenAPI send calls above n per second (sliding 1 s
// window, per API path) answer the 403 QPS error. 0 (default) turns it off;
// DingTalk's standard limit is 20.
func (s *Server) SetQPSLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.qpsLimit = max(n, 0)
	clear(s.qpsWindow)
}

// QuotaExhausted makes OpenAPI send calls answer 403
// Forbidden.AccessDenied.ApiCountLimitForOrg (monthly quota; not retryable)
// while on.
func (s *Server) QuotaExhausted(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quotaOut = on
}

func writeErrcode(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, http.StatusOK, map[string]any{"errcode": code, "errmsg": msg})
}

// handleSessionSend is POST /robot/sendBySession?session= (§2.3, §2.4).
func (s *Server) handleSessionSend(w http.ResponseWriter, r *http.Request) {
	if s.refuseUnavailable(w) {
		return
	}
	token := r.URL.Query().Get("session")
	body, err := readBody(r)
	s.mu.Lock()
	sess := s.sessions[token]
	valid := sess != nil && !sess.expired && time.Now().Before(sess.expires)
	var conv string
	if sess != nil {
		conv = sess.conversationID
	}
	s.mu.Unlock()
	if !valid {
		writeErrcode(w, 300001, "session 不存在")
		return
	}
	if len(body) > sessionMaxBody {
		writeErrcode(w, 460101, "description: body 大小不合法;solution:请保持大小在 20000bytes 以内;")
		return
	}
	var in struct {
		MsgType string `json:"msgtype"`
		Text    *struct {
			Content string `json:"content"`
		} `json:"text"`
		Markdown *struct {
			Title string `json:"title"`
			Text  string `json:"text"`
		} `json:"markdown"`
		ActionCard *struct {
			Title string `json:"title"`
			Text  string `json:"text"`
		} `json:"actionCard"`
		Link *struct {
			Title string `json:"title"`
			Text  string `json:"text"`
		} `json:"link"`
		FeedCard json.RawMessage `json:"feedCard"`
		At       *struct {
			AtUserIDs []string `json:"atUserIds"`
			AtMobiles []string `json:"atMobiles"`
			IsAtAll   bool     `json:"isAtAll"`
		} `json:"at"`
	}
	if err != nil || len(bytes.TrimSpace(body)) == 0 || json.Unmarshal(body, &in) != nil {
		writeErrcode(w, 40035, "缺少参数 json")
		return
	}
	m := Sent{Via: "session", Session: token, ConversationID: conv, MsgType: in.MsgType, Body: body}
	missing := ""
	switch in.MsgType {
	case "":
		missing = "msgtype"
	case "text":
		if in.Text == nil || in.Text.Content == "" {
			missing = "text.content"
		} else {
			m.Text = in.Text.Content
		}
	case "markdown":
		switch {
		case in.Markdown == nil || in.Markdown.Text == "":
			missing = "markdown.text"
		case in.Markdown.Title == "":
			missing = "markdown.title"
		default:
			m.Title, m.Text = in.Markdown.Title, in.Markdown.Text
		}
	case "actionCard":
		if in.ActionCard == nil || in.ActionCard.Text == "" {
			missing = "actionCard.text"
		} else {
			m.Title, m.Text = in.ActionCard.Title, in.ActionCard.Text
		}
	case "link":
		if in.Link == nil || in.Link.Text == "" {
			missing = "link.text"
		} else {
			m.Title, m.Text = in.Link.Title, in.Link.Text
		}
	case "feedCard":
		if len(in.FeedCard) == 0 {
			missing = "feedCard"
		}
	default:
		writeErrcode(w, 40035, "缺少参数 msgtype: 不支持的消息类型 "+in.MsgType)
		return
	}
	if missing != "" {
		writeErrcode(w, 40035, "缺少参数 "+missing)
		return
	}
	if in.At != nil {
		m.AtUserIDs, m.AtMobiles, m.AtAll = in.At.AtUserIDs, in.At.AtMobiles, in.At.IsAtAll
	}
	s.recordSent(m)
	writeErrcode(w, 0, "ok")
}

// handleAccessToken is POST /v1.0/oauth2/accessToken (§3.1).
func (s *Server) handleAccessToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenReqs++
	s.mu.Unlock()
	body, err := readBody(r)
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		writeAPIError(w, http.StatusBadRequest, "Missingbody", "body is mandatory for this action.")
		return
	}
	var req struct {
		AppKey    string `json:"appKey"`
		AppSecret string `json:"appSecret"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeAPIError(w, http.StatusBadRequest, "InvalidParameter", "body is not valid JSON: "+err.Error())
		return
	}
	switch {
	case req.AppKey == "":
		writeAPIError(w, http.StatusBadRequest, "MissingappKey", "appKey is mandatory for this action.")
		return
	case req.AppSecret == "":
		writeAPIError(w, http.StatusBadRequest, "MissingappSecret", "appSecret is mandatory for this action.")
		return
	case !s.credentialsOK(req.AppKey, req.AppSecret):
		writeAPIError(w, http.StatusBadRequest, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
		return
	}
	tok := randHex(16)
	s.mu.Lock()
	ttl := s.tokenTTL
	s.tokens[tok] = time.Now().Add(ttl)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"accessToken": tok, "expireIn": int64(ttl / time.Second)})
}

// admitSend applies authentication and the injected faults common to the
// OpenAPI send calls. It answers and returns false when the call must fail.
func (s *Server) admitSend(w http.ResponseWriter, r *http.Request) bool {
	if s.refuseUnavailable(w) {
		return false
	}
	tok := r.Header.Get("x-acs-dingtalk-access-token")
	now := time.Now()
	s.mu.Lock()
	exp, ok := s.tokens[tok]
	if !ok || !now.Before(exp) {
		s.mu.Unlock()
		writeAPIError(w, http.StatusBadRequest, "InvalidAuthentication", "不合法的access_token")
		return false
	}
	status, code, msg := 0, "", ""
	switch {
	case s.quotaOut:
		status, code, msg = http.StatusForbidden, "Forbidden.AccessDenied.ApiCountLimitForOrg", "组织接口月调用次数已达上限"
	case s.throttle > 0:
		s.throttle--
		status, code, msg = http.StatusForbidden, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "应用调用该接口的频率超过限流阈值"
	case s.qpsLimit > 0 && !s.qpsAdmitLocked(r.URL.Path, now):
		status, code, msg = http.StatusForbidden, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "应用调用该接口的频率超过限流阈值"
	case s.failN > 0:
		s.failN--
		status = s.failStatus
		code = strings.ReplaceAll(http.StatusText(status), " ", "")
		if code == "" {
			code = "UnknownError"
		}
		msg = "dingtalktest: injected failure"
	}
	s.mu.Unlock()
	if status != 0 {
		writeAPIError(w, status, code, msg)
		return false
	}
	return true
}

// qpsAdmitLocked is a sliding one-second window per path. s.mu must be held.
func (s *Server) qpsAdmitLocked(path string, now time.Time) bool {
	win := s.qpsWindow[path]
	i := 0
	for i < len(win) && now.Sub(win[i]) >= time.Second {
		i++
	}
	win = win[i:]
	if len(win) >= s.qpsLimit {
		s.qpsWindow[path] = win
		return false
	}
	s.qpsWindow[path] = append(win, now)
	return true
}

var msgKeyTypes = map[string]string{
	"sampleText":        "text",
	"sampleMarkdown":    "markdown",
	"sampleImageMsg":    "image",
	"sampleLink":        "link",
	"sampleActionCard":  "actionCard",
	"sampleActionCard2": "actionCard",
	"sampleActionCard3": "actionCard",
	"sampleActionCard4": "actionCard",
	"sampleActionCard5": "actionCard",
	"sampleActionCard6": "actionCard",
	"sampleFile":        "file",
	"sampleAudio":       "audio",
	"sampleVideo":       "video",
}

// parseSend validates the fields shared by batchSend and groupMessages/send
// and fills m. It answers and returns false on a bad request.
func (s *Server) parseSend(w http.ResponseWriter, m *Sent, fields map[string]json.RawMessage) bool {
	bad := func(code, msg string) bool {
		writeAPIError(w, http.StatusBadRequest, code, msg)
		return false
	}
	str := func(name string) (string, bool) {
		raw, ok := fields[name]
		if !ok || string(raw) == "null" {
			return "", false
		}
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return "", false
		}
		return v, v != ""
	}

	robot, ok := str("robotCode")
	if !ok {
		return bad("MissingrobotCode", "robotCode is mandatory for this action.")
	}
	if robot != s.ClientID {
		return bad("InvalidParameter", "robotCode "+robot+" 不存在: robot not found")
	}
	m.RobotCode = robot

	key, ok := str("msgKey")
	if !ok {
		return bad("MissingmsgKey", "msgKey is mandatory for this action.")
	}
	kind, known := msgKeyTypes[key]
	if !known {
		return bad("InvalidParameter", "msgKey "+key+" 不合法")
	}
	m.MsgKey, m.MsgType = key, kind

	raw, ok := fields["msgParam"]
	if !ok || string(raw) == "null" {
		return bad("MissingmsgParam", "msgParam is mandatory for this action.")
	}
	var paramStr string
	if err := json.Unmarshal(raw, &paramStr); err != nil {
		return bad("InvalidParameter", "msgParam must be a string containing JSON, got "+jsonKind(raw))
	}
	if err := json.Unmarshal([]byte(paramStr), &m.Param); err != nil || m.Param == nil {
		return bad("InvalidParameter", "msgParam is not a JSON object: "+paramStr)
	}
	pstr := func(k string) string { v, _ := m.Param[k].(string); return v }
	switch key {
	case "sampleText":
		if m.Text = pstr("content"); m.Text == "" {
			return bad("InvalidParameter", "msgParam.content is mandatory for sampleText")
		}
	case "sampleMarkdown":
		m.Title, m.Text = pstr("title"), pstr("text")
		if m.Text == "" || m.Title == "" {
			return bad("InvalidParameter", "msgParam.title and msgParam.text are mandatory for sampleMarkdown")
		}
	default:
		m.Title, m.Text = pstr("title"), pstr("text")
		if m.Text == "" {
			m.Text = pstr("content")
		}
	}

	// @-mentions are not part of these APIs; record whatever was sent.
	if ids, ok := m.Param["atUserIds"].([]any); ok {
		for _, id := range ids {
			if v, ok := id.(string); ok {
				m.AtUserIDs = append(m.AtUserIDs, v)
			}
		}
	}
	if raw, ok := fields["at"]; ok {
		var at struct {
			AtUserIDs []string `json:"atUserIds"`
			AtMobiles []string `json:"atMobiles"`
			IsAtAll   bool     `json:"isAtAll"`
		}
		if json.Unmarshal(raw, &at) == nil {
			m.AtUserIDs = append(m.AtUserIDs, at.AtUserIDs...)
			m.AtMobiles, m.AtAll = at.AtMobiles, at.IsAtAll
		}
	}
	return true
}

func jsonKind(raw json.RawMessage) string {
	switch t := bytes.TrimSpace(raw); {
	case len(t) == 0:
		return "nothing"
	case t[0] == '{':
		return "an object"
	case t[0] == '[':
		return "an array"
	case t[0] == 't' || t[0] == 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

// readSendBody decodes the body as a JSON object. It answers and returns
// false when it is not one.
func readSendBody(w http.ResponseWriter, r *http.Request) ([]byte, map[string]json.RawMessage, bool) {
	body, err := readBody(r)
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		writeAPIError(w, http.StatusBadRequest, "Missingbody", "body is mandatory for this action.")
		return nil, nil, false
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		writeAPIError(w, http.StatusBadRequest, "InvalidParameter", "body is not a JSON object")
		return nil, nil, false
	}
	return body, fields, true
}

// handleBatchSend is POST /v1.0/robot/oToMessages/batchSend (§3.2).
func (s *Server) handleBatchSend(w http.ResponseWriter, r *http.Request) {
	if !s.admitSend(w, r) {
		return
	}
	body, fields, ok := readSendBody(w, r)
	if !ok {
		return
	}
	m := Sent{Via: "oto", Body: body}
	if raw, ok := fields["userIds"]; !ok || json.Unmarshal(raw, &m.UserIDs) != nil || len(m.UserIDs) == 0 {
		writeAPIError(w, http.StatusBadRequest, "MissinguserIds", "userIds is mandatory for this action.")
		return
	}
	if !s.parseSend(w, &m, fields) {
		return
	}
	s.recordSent(m)
	writeJSON(w, http.StatusOK, map[string]any{
		"processQueryKey":           randB64(32),
		"invalidStaffIdList":        []string{},
		"flowControlledStaffIdList": []string{},
		"filteredStaffIdList":       []string{},
	})
}

// handleGroupSend is POST /v1.0/robot/groupMessages/send (§3.3).
func (s *Server) handleGroupSend(w http.ResponseWriter, r *http.Request) {
	if !s.admitSend(w, r) {
		return
	}
	body, fields, ok := readSendBody(w, r)
	if !ok {
		return
	}
	m := Sent{Via: "group", Body: body}
	if raw, ok := fields["openConversationId"]; !ok || json.Unmarshal(raw, &m.ConversationID) != nil || m.ConversationID == "" {
		writeAPIError(w, http.StatusBadRequest, "MissingopenConversationId", "openConversationId is mandatory for this action.")
		return
	}
	if !s.parseSend(w, &m, fields) {
		return
	}
	s.recordSent(m)
	writeJSON(w, http.StatusOK, map[string]any{"processQueryKey": randB64(32)})
}
