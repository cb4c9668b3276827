package dingtalktest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const wait = 5 * time.Second

var botSubs = []Subscription{
	{Type: TypeSystem, Topic: TopicDisconnect},
	{Type: TypeSystem, Topic: TopicPing},
	{Type: TypeCallback, Topic: TopicBotMessage},
}

func newServer(t *testing.T) *Server {
	t.Helper()
	s := NewServer()
	t.Cleanup(s.Close)
	return s
}

// postJSON POSTs body (marshalled unless it is []byte) and decodes the answer.
func postJSON(t *testing.T, url string, header map[string]string, body any) (int, map[string]any) {
	t.Helper()
	b, ok := body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("POST %s: status %d, body not JSON: %s", url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

// openTicket performs the gateway open call and returns endpoint and ticket.
func openTicket(t *testing.T, s *Server, subs []Subscription) (string, string) {
	t.Helper()
	status, out := postJSON(t, s.URL+"/v1.0/gateway/connections/open", nil, map[string]any{
		"clientId": s.ClientID, "clientSecret": s.ClientSecret, "subscriptions": subs,
		"ua": "handwritten-test/1.0", "localIp": "10.0.0.7", "extras": nil,
	})
	if status != http.StatusOK {
		t.Fatalf("open: status %d %v", status, out)
	}
	endpoint, _ := out["endpoint"].(string)
	ticket, _ := out["ticket"].(string)
	if !strings.HasPrefix(endpoint, "ws://127.0.0.1:") || ticket == "" {
		t.Fatalf("open: got %v", out)
	}
	return endpoint, ticket
}

// wsClient is a minimal hand-written stream client: a reader goroutine feeds
// frames into a channel, because a gorilla read that times out breaks the
// connection for good.
type wsClient struct {
	ws     *websocket.Conn
	frames chan []byte
	done   chan struct{}
	err    error // set before done is closed
}

// dialStream opens a stream connection the way the SDK does.
func dialStream(t *testing.T, s *Server, subs []Subscription) *wsClient {
	t.Helper()
	endpoint, ticket := openTicket(t, s, subs)
	ws, resp, err := websocket.DefaultDialer.Dial(endpoint+"?ticket="+ticket, nil)
	if err != nil {
		t.Fatalf("dial: %v (resp %v)", err, resp)
	}
	c := &wsClient{ws: ws, frames: make(chan []byte, 100), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			mt, b, err := ws.ReadMessage()
			if err != nil {
				c.err = err
				return
			}
			if mt != websocket.TextMessage {
				c.err = errors.New("non-text frame")
				return
			}
			c.frames <- b
		}
	}()
	t.Cleanup(func() {
		_ = ws.Close()
		<-c.done
	})
	return c
}

// wireFrame decodes strictly the way the SDK does: headers must be
// string→string and data a string.
type wireFrame struct {
	SpecVersion string            `json:"specVersion"`
	Type        string            `json:"type"`
	Headers     map[string]string `json:"headers"`
	Data        string            `json:"data"`
}

func (c *wsClient) readRaw(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-c.frames:
		return b
	case <-c.done:
		t.Fatalf("connection ended: %v", c.err)
	case <-time.After(wait):
		t.Fatal("no frame")
	}
	return nil
}

func (c *wsClient) read(t *testing.T) wireFrame {
	t.Helper()
	b := c.readRaw(t)
	var f wireFrame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame does not decode like the SDK's DataFrame: %v\n%s", err, b)
	}
	return f
}

// closed waits for the connection to end and returns its read error.
func (c *wsClient) closed(t *testing.T) error {
	t.Helper()
	for {
		select {
		case <-c.frames:
		case <-c.done:
			return c.err
		case <-time.After(wait):
			t.Fatal("connection still open")
		}
	}
}

// silent asserts that nothing arrives for d.
func (c *wsClient) silent(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case b := <-c.frames:
		t.Fatalf("unexpected frame: %s", b)
	case <-time.After(d):
	}
}

func (c *wsClient) ack(t *testing.T, messageID string, code int, data string) {
	t.Helper()
	err := c.ws.WriteJSON(map[string]any{
		"code":    code,
		"headers": map[string]string{"messageId": messageID, "contentType": "application/json"},
		"message": "",
		"data":    data,
	})
	if err != nil {
		t.Fatalf("write ack: %v", err)
	}
}

func TestOpenRecordsRequestAndRejectsBadCredentials(t *testing.T) {
	s := newServer(t)
	openTicket(t, s, botSubs)

	status, out := postJSON(t, s.URL+"/v1.0/gateway/connections/open", nil, map[string]any{
		"clientId": s.ClientID, "clientSecret": "wrong", "subscriptions": botSubs,
	})
	if status != http.StatusUnauthorized || out["code"] != "authFailed" || out["requestid"] == "" {
		t.Fatalf("bad secret: status %d %v", status, out)
	}

	opens := s.Opens()
	if len(opens) != 2 {
		t.Fatalf("opens = %d, want 2", len(opens))
	}
	o := opens[0]
	if !o.OK || o.ClientID != s.ClientID || o.UA != "handwritten-test/1.0" || o.LocalIP != "10.0.0.7" || len(o.Subscriptions) != 3 {
		t.Fatalf("open record = %+v", o)
	}
	if opens[1].OK {
		t.Fatal("rejected open recorded as OK")
	}
}

func TestTicketIsSingleUseAndExpires(t *testing.T) {
	s := newServer(t)
	endpoint, ticket := openTicket(t, s, botSubs)
	ws, _, err := websocket.DefaultDialer.Dial(endpoint+"?ticket="+ticket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()

	_, resp, err := websocket.DefaultDialer.Dial(endpoint+"?ticket="+ticket, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("reused ticket: err %v resp %v, want 403", err, resp)
	}
	_, resp, err = websocket.DefaultDialer.Dial(endpoint+"?ticket=nope", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown ticket: err %v resp %v, want 401", err, resp)
	}

	s.mu.Lock()
	s.ticketTTL = time.Millisecond
	s.mu.Unlock()
	endpoint, ticket = openTicket(t, s, botSubs)
	time.Sleep(5 * time.Millisecond)
	_, resp, err = websocket.DefaultDialer.Dial(endpoint+"?ticket="+ticket, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("expired ticket: err %v resp %v, want 401", err, resp)
	}
}

func TestPushCallbackAndAck(t *testing.T) {
	s := newServer(t)
	c := dialStream(t, s, botSubs)
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}

	msgID, err := s.Push(Msg{ConversationType: Group, ConversationID: "cid-g1", SenderStaffID: "u1", Text: "你好"})
	if err != nil {
		t.Fatal(err)
	}
	f := c.read(t)
	if f.Type != TypeCallback || f.SpecVersion != "1.0" || f.Headers["topic"] != TopicBotMessage ||
		f.Headers["contentType"] != "application/json" || f.Headers["appId"] != s.AppID || f.Headers["messageId"] == "" {
		t.Fatalf("frame = %+v", f)
	}
	if ms, err := strconv.ParseInt(f.Headers["time"], 10, 64); err != nil || time.Since(time.UnixMilli(ms)) > time.Minute {
		t.Fatalf("time header = %q", f.Headers["time"])
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(f.Data), &p); err != nil {
		t.Fatalf("data is not a JSON string: %v", err)
	}
	if p["msgId"] != msgID || p["text"].(map[string]any)["content"] != " 你好" || p["isInAtList"] != true {
		t.Fatalf("payload = %v", p)
	}
	if s.FrameID(msgID) != f.Headers["messageId"] {
		t.Fatal("FrameID does not map msgId to the frame")
	}

	c.ack(t, f.Headers["messageId"], 200, `{"response":null}`)
	a, err := s.WaitAck(msgID, wait) // by msgId
	if err != nil {
		t.Fatal(err)
	}
	if a.Code != 200 || a.MessageID != f.Headers["messageId"] || a.Topic != TopicBotMessage || a.MsgID != msgID ||
		a.Conn != 1 || a.Err != "" || a.ContentType != "application/json" {
		t.Fatalf("ack = %+v", a)
	}
}

func TestPushNeedsSubscribedConnection(t *testing.T) {
	s := newServer(t)
	if _, err := s.Push(Msg{Text: "x"}); err == nil {
		t.Fatal("Push without connections succeeded")
	}
	dialStream(t, s, botSubs[:2]) // SYSTEM only
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Push(Msg{Text: "x"}); err == nil || !strings.Contains(err.Error(), "subscribed") {
		t.Fatalf("Push to unsubscribed connection: %v", err)
	}
}

func TestRedeliveryUntilAck(t *testing.T) {
	s := newServer(t)
	c := dialStream(t, s, botSubs)
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	s.SetRedeliver(50 * time.Millisecond)

	msgID, err := s.Push(Msg{Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	first := c.read(t)
	c.ack(t, first.Headers["messageId"], 500, "") // a 500 ACK does not stop it
	again := c.read(t)
	if again.Headers["messageId"] != first.Headers["messageId"] || again.Data != first.Data {
		t.Fatalf("redelivered frame differs:\n%+v\n%+v", first, again)
	}
	c.ack(t, again.Headers["messageId"], 200, "")
	c.silent(t, 200*time.Millisecond)
	if n := s.Delivered(msgID); n != 2 {
		t.Fatalf("Delivered = %d, want 2", n)
	}

	// Never ACKed: capped at MaxRedeliveries.
	msgID, err = s.Push(Msg{Text: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	for range 1 + MaxRedeliveries {
		c.read(t)
	}
	c.silent(t, 250*time.Millisecond)
	if n := s.Delivered(msgID); n != 1+MaxRedeliveries {
		t.Fatalf("Delivered = %d, want %d", n, 1+MaxRedeliveries)
	}
}

func TestRandomConnectionPerMessage(t *testing.T) {
	s := newServer(t)
	a := dialStream(t, s, botSubs)
	b := dialStream(t, s, botSubs)
	if err := s.WaitConnections(2, wait); err != nil {
		t.Fatal(err)
	}
	const n = 40
	for range n {
		if _, err := s.Push(Msg{Text: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	na, nb := 0, 0
	for na+nb < n {
		select {
		case <-a.frames:
			na++
		case <-b.frames:
			nb++
		case <-time.After(wait):
			t.Fatalf("got %d of %d frames", na+nb, n)
		}
	}
	if na == 0 || nb == 0 {
		t.Fatalf("deliveries a=%d b=%d, want both used", na, nb)
	}
}

func TestPingEcho(t *testing.T) {
	s := newServer(t)
	c := dialStream(t, s, botSubs)
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(); err != nil {
		t.Fatal(err)
	}
	f := c.read(t)
	var d map[string]string
	if f.Type != TypeSystem || f.Headers["topic"] != TopicPing || json.Unmarshal([]byte(f.Data), &d) != nil || d["opaque"] == "" {
		t.Fatalf("ping frame = %+v", f)
	}
	c.ack(t, f.Headers["messageId"], 200, f.Data)
	if err := s.WaitPongs(wait); err != nil {
		t.Fatal(err)
	}
	acks := s.Acks()
	if len(acks) != 1 || acks[0].Topic != TopicPing || acks[0].Data != f.Data {
		t.Fatalf("acks = %+v", acks)
	}

	// A wrong echo is reported.
	if err := s.Ping(); err != nil {
		t.Fatal(err)
	}
	f = c.read(t)
	c.ack(t, f.Headers["messageId"], 200, `{"opaque":"other"}`)
	if err := s.WaitPongs(wait); err == nil {
		t.Fatal("WaitPongs accepted a wrong echo")
	}
}

func TestWebSocketPingGetsPong(t *testing.T) {
	s := newServer(t)
	endpoint, ticket := openTicket(t, s, botSubs)
	ws, _, err := websocket.DefaultDialer.Dial(endpoint+"?ticket="+ticket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	pong := make(chan struct{}, 1)
	ws.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
	readDone := make(chan struct{})
	go func() { // the client must read for its pong handler to run
		defer close(readDone)
		_, _, _ = ws.ReadMessage()
	}()
	if err := ws.WriteControl(websocket.PingMessage, []byte("hb"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pong:
	case <-time.After(wait):
		t.Fatal("no pong")
	}
	_ = ws.Close()
	<-readDone
}

func TestDisconnect(t *testing.T) {
	s := newServer(t)
	s.SetDisconnectDelay(50 * time.Millisecond)
	c := dialStream(t, s, botSubs)
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	if err := s.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if n := s.Connections(); n != 0 {
		t.Fatalf("Connections after Disconnect = %d, want 0", n)
	}
	if _, err := s.Push(Msg{Text: "x"}); err == nil {
		t.Fatal("Push reached a disconnecting connection")
	}
	f := c.read(t)
	if f.Type != TypeSystem || f.Headers["topic"] != TopicDisconnect || f.Data != `{"reason":"connection is expired"}` {
		t.Fatalf("disconnect frame = %+v", f)
	}
	c.ack(t, f.Headers["messageId"], 200, "")
	if err := c.closed(t); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("after disconnect: %v, want close 1000", err)
	}
	if a, err := s.WaitAck(f.Headers["messageId"], wait); err != nil || a.Topic != TopicDisconnect {
		t.Fatalf("disconnect ack %+v, %v", a, err)
	}

	// The client reconnects with a fresh ticket.
	dialStream(t, s, botSubs)
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
}

func TestDropAll(t *testing.T) {
	s := newServer(t)
	c := dialStream(t, s, botSubs)
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	s.DropAll()
	var ce *websocket.CloseError
	if err := c.closed(t); !errors.As(err, &ce) || ce.Code != websocket.CloseAbnormalClosure {
		t.Fatalf("after DropAll: %v, want an abnormal closure (no close frame)", err)
	}
	if s.Connections() != 0 {
		t.Fatal("connection still counted")
	}
	if err := s.PushFrame([]byte(`{}`)); err == nil {
		t.Fatal("PushFrame without connections succeeded")
	}
}

func TestPushFrameRaw(t *testing.T) {
	s := newServer(t)
	c := dialStream(t, s, botSubs)
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	raw := `{"type":"CALLBACK","headers":{"time":1}}`
	if err := s.PushFrame([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	if b := c.readRaw(t); string(b) != raw {
		t.Fatalf("got %s", b)
	}
	// A malformed ACK is recorded with Err.
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(`{"code":200,"headers":{"messageId":1}}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.waitFor(wait, func() bool { return len(s.acks) == 1 }); err != nil {
		t.Fatal(err)
	}
	if a := s.Acks()[0]; a.Err == "" {
		t.Fatalf("malformed ack recorded without Err: %+v", a)
	}
}

func TestCloseEndsConnections(t *testing.T) {
	s := NewServer()
	c := dialStream(t, s, botSubs)
	if err := s.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	s.SetRedeliver(time.Millisecond)
	if _, err := s.Push(Msg{Text: "never acked"}); err != nil {
		t.Fatal(err)
	}
	s.SetDisconnectDelay(time.Hour)
	if err := s.Disconnect(); err != nil { // leaves a delayed close pending
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Close hangs")
	}
	c.closed(t)
	if err := s.WaitConnections(1, time.Millisecond); !errors.Is(err, ErrClosed) {
		t.Fatalf("wait after Close: %v", err)
	}
	if _, err := s.Push(Msg{}); err == nil {
		t.Fatal("Push after Close succeeded")
	}
	s.Close() // twice is fine
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	http.DefaultClient.CloseIdleConnections()
	before := runtime.NumGoroutine()
	func() {
		s := NewServer()
		defer s.Close()
		endpoint, ticket := openTicket(t, s, botSubs)
		ws, _, err := websocket.DefaultDialer.Dial(endpoint+"?ticket="+ticket, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if err := s.WaitConnections(1, wait); err != nil {
			t.Fatal(err)
		}
		s.SetRedeliver(10 * time.Millisecond)
		if _, err := s.Push(Msg{}); err != nil {
			t.Fatal(err)
		}
		s.SetDisconnectDelay(time.Hour)
		if err := s.Disconnect(); err != nil {
			t.Fatal(err)
		}
		resp, err := s.PostWebhookRaw(s.URL+"/nowhere", []byte("{}"), time.Now(), "x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}()
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
