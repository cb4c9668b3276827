package dingtalktest

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Stream topics and frame types (§1.6).
const (
	TopicBotMessage = "/v1.0/im/bot/messages/get"
	TopicPing       = "ping"
	TopicDisconnect = "disconnect"

	TypeSystem   = "SYSTEM"
	TypeCallback = "CALLBACK"
	TypeEvent    = "EVENT"
)

// Subscription is one entry of the open request's subscriptions.
type Subscription struct {
	Type  string `json:"type"`
	Topic string `json:"topic"`
}

// OpenRequest is one recorded POST /v1.0/gateway/connections/open. The
// client secret is never recorded.
type OpenRequest struct {
	ClientID      string
	Subscriptions []Subscription
	UA            string
	LocalIP       string
	Extras        map[string]string
	// OK reports whether the credentials were accepted and a ticket issued.
	OK bool
	At time.Time
}

// Ack is one frame the client sent back on a stream connection.
type Ack struct {
	// MessageID is headers.messageId: the frame messageId being answered.
	MessageID string
	Code      int
	Message   string
	Data      string
	At        time.Time

	// Topic is the topic of the answered frame ("" if unknown).
	Topic string
	// MsgID is the callback payload's msgId when the answered frame was a
	// bot message.
	MsgID string
	// Conn numbers the connection it came on (1, 2, …).
	Conn int
	// ContentType is headers.contentType.
	ContentType string
	// Raw is the frame as received; Err is set when it was not a valid ACK
	// (bad JSON, or headers that are not string→string).
	Raw []byte
	Err string
}

type ticket struct {
	expires time.Time
	used    bool
	subs    []Subscription
}

type wsConn struct {
	id       int
	ws       *websocket.Conn
	subs     map[string]bool // type + " " + topic
	wmu      sync.Mutex
	draining bool // guarded by Server.mu
}

func (c *wsConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

type frameInfo struct {
	topic string
	msgID string
}

type pendingFrame struct {
	frame       []byte
	topic       string
	redelivered int
	lastSent    time.Time
}

// frame is a server-to-client stream frame (§1.4). specVersion is left out
// of SYSTEM frames, as in the doc's examples; the SDK's top-level time field
// is never sent.
type frame struct {
	SpecVersion string            `json:"specVersion,omitempty"`
	Type        string            `json:"type"`
	Headers     map[string]string `json:"headers"`
	Data        string            `json:"data"`
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true },
}

// handleOpen is POST /v1.0/gateway/connections/open (§1.2).
func (s *Server) handleOpen(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	var req struct {
		ClientID      string            `json:"clientId"`
		ClientSecret  string            `json:"clientSecret"`
		Subscriptions []Subscription    `json:"subscriptions"`
		UA            string            `json:"ua"`
		LocalIP       string            `json:"localIp"`
		Extras        map[string]string `json:"extras"`
	}
	if err != nil || len(body) == 0 {
		writeAPIError(w, http.StatusBadRequest, "Missingbody", "body is mandatory for this action.")
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeAPIError(w, http.StatusBadRequest, "InvalidParameter", "body is not valid JSON: "+err.Error())
		return
	}
	ok := s.credentialsOK(req.ClientID, req.ClientSecret)
	rec := OpenRequest{
		ClientID:      req.ClientID,
		Subscriptions: req.Subscriptions,
		UA:            req.UA,
		LocalIP:       req.LocalIP,
		Extras:        req.Extras,
		OK:            ok && len(req.Subscriptions) > 0,
		At:            time.Now(),
	}
	s.mu.Lock()
	s.opens = append(s.opens, rec)
	s.broadcastLocked()
	s.mu.Unlock()
	if !ok {
		writeAPIError(w, http.StatusUnauthorized, "authFailed", "鉴权失败")
		return
	}
	if len(req.Subscriptions) == 0 {
		writeAPIError(w, http.StatusBadRequest, "Missingsubscriptions", "subscriptions is mandatory for this action.")
		return
	}

	t := uuid()
	s.mu.Lock()
	now := time.Now()
	for k, old := range s.tickets { // forget stale tickets
		if now.After(old.expires.Add(time.Minute)) {
			delete(s.tickets, k)
		}
	}
	s.tickets[t] = &ticket{expires: now.Add(s.ticketTTL), subs: req.Subscriptions}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{
		"endpoint": "ws://" + strings.TrimPrefix(s.URL, "http://") + "/connect",
		"ticket":   t,
	})
}

func (s *Server) credentialsOK(id, secret string) bool {
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.ClientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret))
	return idOK&secretOK == 1
}

// handleConnect is GET /connect?ticket= (§1.3). It runs the connection's
// read loop until the connection ends.
func (s *Server) handleConnect(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		writeAPIError(w, http.StatusBadRequest, "InvalidParameter", "websocket upgrade required")
		return
	}
	tk := r.URL.Query().Get("ticket")
	s.mu.Lock()
	t := s.tickets[tk]
	switch {
	case tk == "" || t == nil || time.Now().After(t.expires):
		s.mu.Unlock()
		writeAPIError(w, http.StatusUnauthorized, "InvalidTicket", "ticket 不存在或已过期")
		return
	case t.used:
		s.mu.Unlock()
		writeAPIError(w, http.StatusForbidden, "TicketUsed", "ticket 已被使用")
		return
	}
	t.used = true
	s.mu.Unlock()

	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &wsConn{ws: ws, subs: map[string]bool{}}
	for _, sub := range t.subs {
		c.subs[sub.Type+" "+sub.Topic] = true
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.nextConn++
	c.id = s.nextConn
	s.conns[c.id] = c
	s.broadcastLocked()
	s.mu.Unlock()

	defer func() {
		_ = ws.Close()
		s.mu.Lock()
		delete(s.conns, c.id)
		s.broadcastLocked()
		s.mu.Unlock()
	}()
	for {
		mt, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if mt == websocket.TextMessage {
			s.recordAck(c, data)
		}
	}
}

func (s *Server) recordAck(c *wsConn, data []byte) {
	var in struct {
		Code    int               `json:"code"`
		Headers map[string]string `json:"headers"`
		Message string            `json:"message"`
		Data    string            `json:"data"`
	}
	a := Ack{At: time.Now(), Conn: c.id, Raw: append([]byte(nil), data...)}
	if err := json.Unmarshal(data, &in); err != nil {
		a.Err = err.Error()
	} else {
		a.MessageID = in.Headers["messageId"]
		a.ContentType = in.Headers["contentType"]
		a.Code, a.Message, a.Data = in.Code, in.Message, in.Data
		if a.MessageID == "" {
			a.Err = "ACK without headers.messageId"
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fi, ok := s.frames[a.MessageID]; ok {
		a.Topic, a.MsgID = fi.topic, fi.msgID
	}
	if a.Code == http.StatusOK && a.Err == "" {
		delete(s.pending, a.MessageID)
	}
	s.acks = append(s.acks, a)
	s.broadcastLocked()
}

// Opens returns the recorded gateway open calls.
func (s *Server) Opens() []OpenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]OpenRequest(nil), s.opens...)
}

// Connections counts open stream connections that can receive messages
// (a connection sent a disconnect frame no longer counts).
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.liveLocked(""))
}

// WaitConnections waits until at least n connections count in Connections.
func (s *Server) WaitConnections(n int, timeout time.Duration) error {
	err := s.waitFor(timeout, func() bool { return len(s.liveLocked("")) >= n })
	if err != nil {
		return fmt.Errorf("waiting for %d stream connections (have %d): %w", n, s.Connections(), err)
	}
	return nil
}

// liveLocked lists non-draining connections, subscribed to sub ("TYPE topic")
// unless sub is "". s.mu must be held.
func (s *Server) liveLocked(sub string) []*wsConn {
	var out []*wsConn
	for _, c := range s.conns {
		if c.draining || (sub != "" && !c.subs[sub]) {
			continue
		}
		out = append(out, c)
	}
	return out
}

func (s *Server) pick(sub string) (*wsConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	live := s.liveLocked(sub)
	if len(live) == 0 {
		if sub == "" {
			return nil, errors.New("dingtalktest: no open stream connection")
		}
		return nil, fmt.Errorf("dingtalktest: no open stream connection subscribed to %q", sub)
	}
	return live[rand.IntN(len(live))], nil
}

// newMessageID mimics DingTalk's frame ids ("212ca9d7_974_1898c159aa6_1783b").
func newMessageID() string {
	return fmt.Sprintf("%s_%d_%x_%x", randHex(4), rand.IntN(1000), time.Now().UnixMilli(), rand.IntN(1<<20))
}

func encodeFrame(typ, topic, messageID string, data []byte, extra map[string]string) []byte {
	f := frame{Type: typ, Data: string(data), Headers: map[string]string{
		"topic":       topic,
		"contentType": "application/json",
		"time":        strconv.FormatInt(time.Now().UnixMilli(), 10),
	}}
	if messageID != "" {
		f.Headers["messageId"] = messageID
	}
	if typ != TypeSystem {
		f.SpecVersion = "1.0"
	}
	for k, v := range extra {
		f.Headers[k] = v
	}
	b, _ := json.Marshal(f) // strings only: cannot fail
	return b
}

// Push sends m as a CALLBACK /v1.0/im/bot/messages/get frame to one randomly
// chosen connection subscribed to that topic, and returns the payload's
// msgId. The frame's messageId is different; WaitAck accepts either.
func (s *Server) Push(m Msg) (msgID string, err error) {
	sub := TypeCallback + " " + TopicBotMessage
	c, err := s.pick(sub)
	if err != nil {
		return "", err
	}
	msgID, data := s.Payload(m)
	id := newMessageID()
	fr := encodeFrame(TypeCallback, TopicBotMessage, id, data, map[string]string{"appId": s.AppID})
	s.mu.Lock()
	s.frames[id] = frameInfo{topic: TopicBotMessage, msgID: msgID}
	s.pending[id] = &pendingFrame{frame: fr, topic: sub, lastSent: time.Now()}
	s.deliveries[id]++
	s.mu.Unlock()
	s.kickRedeliver()
	if err := c.write(fr); err != nil {
		s.mu.Lock()
		delete(s.pending, id)
		s.deliveries[id]--
		s.mu.Unlock()
		return "", fmt.Errorf("dingtalktest: push to connection %d: %w", c.id, err)
	}
	return msgID, nil
}

// PushFrame writes frameJSON as-is, as a text frame, to one randomly chosen
// open connection (whatever it subscribed to). It is not redelivered.
func (s *Server) PushFrame(frameJSON []byte) error {
	c, err := s.pick("")
	if err != nil {
		return err
	}
	if err := c.write(frameJSON); err != nil {
		return fmt.Errorf("dingtalktest: push to connection %d: %w", c.id, err)
	}
	return nil
}

// FrameID returns the frame messageId that last carried the payload with
// msgId, or "" if none.
func (s *Server) FrameID(msgID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, fi := range s.frames {
		if fi.msgID == msgID {
			return id
		}
	}
	return ""
}

// Delivered reports how often a frame was written, by frame messageId or
// by callback msgId (1 after Push, more after redeliveries).
func (s *Server) Delivered(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.deliveries[id]; ok {
		return n
	}
	for fid, fi := range s.frames {
		if fi.msgID == id {
			return s.deliveries[fid]
		}
	}
	return 0
}

// Acks returns every frame received from clients, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acks...)
}

// WaitAck waits for the first ACK whose frame messageId, or whose bot
// message msgId, equals id.
func (s *Server) WaitAck(id string, timeout time.Duration) (Ack, error) {
	var got Ack
	err := s.waitFor(timeout, func() bool {
		for _, a := range s.acks {
			if a.MessageID == id || (a.MsgID != "" && a.MsgID == id) {
				got = a
				return true
			}
		}
		return false
	})
	if err != nil {
		return Ack{}, fmt.Errorf("waiting for ACK of %q: %w", id, err)
	}
	return got, nil
}

// SetRedeliver makes bot-message frames that are not ACKed with code 200
// within after be pushed again — same frame, same messageId and msgId — on a
// random subscribed connection, at most MaxRedeliveries times. 0 turns it off.
func (s *Server) SetRedeliver(after time.Duration) {
	s.mu.Lock()
	s.redeliverAfter = max(after, 0)
	s.mu.Unlock()
	s.kickRedeliver()
}

func (s *Server) kickRedeliver() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Server) redeliverLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		after := s.redeliverAfter
		var next time.Time
		if after > 0 {
			for _, p := range s.pending {
				if p.redelivered >= MaxRedeliveries {
					continue
				}
				if due := p.lastSent.Add(after); next.IsZero() || due.Before(next) {
					next = due
				}
			}
		}
		s.mu.Unlock()

		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-s.done:
			return
		case <-s.kick:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		s.redeliverDue()
	}
}

func (s *Server) redeliverDue() {
	type job struct {
		id string
		p  *pendingFrame
	}
	var due []job
	s.mu.Lock()
	now := time.Now()
	if s.redeliverAfter > 0 {
		for id, p := range s.pending {
			if p.redelivered < MaxRedeliveries && !now.Before(p.lastSent.Add(s.redeliverAfter)) {
				p.lastSent = now
				due = append(due, job{id, p})
			}
		}
	}
	s.mu.Unlock()
	for _, j := range due {
		c, err := s.pick(j.p.topic)
		if err != nil {
			continue // no connection now; try again after another period
		}
		if c.write(j.p.frame) != nil {
			continue
		}
		s.mu.Lock()
		j.p.redelivered++
		s.deliveries[j.id]++
		s.broadcastLocked()
		s.mu.Unlock()
	}
}

// Ping sends a SYSTEM ping frame with data {"opaque":"<uuid>"} to every open
// connection. Clients must echo the data in a code-200 ACK; see WaitPongs.
func (s *Server) Ping() error {
	s.mu.Lock()
	live := s.liveLocked("")
	s.mu.Unlock()
	if len(live) == 0 {
		return errors.New("dingtalktest: no open stream connection")
	}
	var errs []error
	for _, c := range live {
		id := newMessageID()
		data, _ := json.Marshal(map[string]string{"opaque": uuid()})
		s.mu.Lock()
		s.frames[id] = frameInfo{topic: TopicPing}
		s.pings[id] = string(data)
		s.mu.Unlock()
		if err := c.write(encodeFrame(TypeSystem, TopicPing, id, data, nil)); err != nil {
			errs = append(errs, fmt.Errorf("ping connection %d: %w", c.id, err))
		}
	}
	return errors.Join(errs...)
}

// WaitPongs waits until every ping sent so far has been answered, and checks
// that each answer has code 200 and echoes the ping's data exactly.
func (s *Server) WaitPongs(timeout time.Duration) error {
	var bad []error
	err := s.waitFor(timeout, func() bool {
		bad = bad[:0]
		answered := map[string]bool{}
		for _, a := range s.acks {
			sent, ok := s.pings[a.MessageID]
			if !ok || answered[a.MessageID] {
				continue
			}
			answered[a.MessageID] = true
			if a.Code != http.StatusOK || a.Data != sent {
				bad = append(bad, fmt.Errorf("ping %s answered code %d data %q, want 200 and %q", a.MessageID, a.Code, a.Data, sent))
			}
		}
		return len(answered) == len(s.pings)
	})
	if err != nil {
		return fmt.Errorf("waiting for pongs: %w", err)
	}
	return errors.Join(bad...)
}

// SetDisconnectDelay sets how long Disconnect waits before closing the
// connections (default 200 ms; DingTalk waits about 10 s).
func (s *Server) SetDisconnectDelay(d time.Duration) {
	s.mu.Lock()
	s.disconnectDelay = max(d, 0)
	s.mu.Unlock()
}

// Disconnect sends a SYSTEM disconnect frame, data {"reason":"connection is
// expired"}, to every open connection. They stop receiving messages at once
// and are closed (close frame, then TCP) after the disconnect delay.
func (s *Server) Disconnect() error {
	s.mu.Lock()
	live := s.liveLocked("")
	for _, c := range live {
		c.draining = true
	}
	delay := s.disconnectDelay
	s.broadcastLocked()
	s.mu.Unlock()
	if len(live) == 0 {
		return errors.New("dingtalktest: no open stream connection")
	}
	var errs []error
	data := []byte(`{"reason":"connection is expired"}`)
	for _, c := range live {
		id := newMessageID()
		s.mu.Lock()
		s.frames[id] = frameInfo{topic: TopicDisconnect}
		s.mu.Unlock()
		if err := c.write(encodeFrame(TypeSystem, TopicDisconnect, id, data, nil)); err != nil {
			errs = append(errs, fmt.Errorf("disconnect connection %d: %w", c.id, err))
		}
		s.goTracked(func() {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-s.done:
			}
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "connection is expired")
			_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			_ = c.ws.Close()
		})
	}
	return errors.Join(errs...)
}

// DropAll closes the TCP connection under every stream connection at once,
// without a close frame, as a network failure would.
func (s *Server) DropAll() {
	s.mu.Lock()
	conns := make([]*wsConn, 0, len(s.conns))
	for _, c := range s.conns {
		c.draining = true
		conns = append(conns, c)
	}
	s.broadcastLocked()
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.ws.Close()
	}
}
