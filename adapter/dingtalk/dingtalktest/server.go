package dingtalktest

import (
	"bufio"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Defaults of a new Server.
const (
	DefaultClientID     = "ding-test-app"
	DefaultClientSecret = "test-secret-0123456789"
	DefaultCorpID       = "ding-test-corp"

	// MaxRedeliveries caps how often SetRedeliver resends one frame.
	MaxRedeliveries = 3

	ticketTTL       = 90 * time.Second
	defaultTokenTTL = 7200 * time.Second
	sessionMaxBody  = 20000
	writeTimeout    = 5 * time.Second
	maxRequestBody  = 4 << 20
)

// ErrClosed is returned by waits and pushes once the Server is closed.
var ErrClosed = errors.New("dingtalktest: server closed")

// Server is a fake DingTalk listening on 127.0.0.1. Create it with NewServer
// and stop it with Close.
type Server struct {
	// URL is "http://127.0.0.1:PORT": use it as dingtalk.api_base (and as the
	// oapi base for sessionWebhook hosts).
	URL string
	// ClientID (also the robotCode) and ClientSecret are the only credentials
	// accepted by the gateway and the OAuth endpoint.
	ClientID, ClientSecret string
	// CorpID is chatbotCorpId and the default senderCorpId.
	CorpID string
	// BotUserID is the bot's encrypted dingtalkId (chatbotUserId, atUsers).
	BotUserID string
	// AppID is the appId header of bot callback frames.
	AppID string

	ts     *httptest.Server
	client *http.Client
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	kick   chan struct{}

	mu      sync.Mutex
	closed  bool
	changed chan struct{} // closed and replaced on every recorded change

	// stream
	tickets         map[string]*ticket
	conns           map[int]*wsConn
	nextConn        int
	opens           []OpenRequest
	acks            []Ack
	frames          map[string]frameInfo // by frame messageId
	pending         map[string]*pendingFrame
	deliveries      map[string]int
	pings           map[string]string // messageId -> data sent
	redeliverAfter  time.Duration
	disconnectDelay time.Duration
	ticketTTL       time.Duration

	// outbound
	sessions     map[string]*session
	sessionByMsg map[string]string
	tokens       map[string]time.Time // token -> expiry
	tokenTTL     time.Duration
	tokenReqs    int
	sent         []Sent
	calls        []Call
	throttle     int
	failStatus   int
	failN        int
	qpsLimit     int
	qpsWindow    map[string][]time.Time
	quotaOut     bool

	login *loginState // login.go
}

// Call is one HTTP request the Server answered (query strings and bodies are
// not kept: they may carry secrets).
type Call struct {
	Method, Path string
	Status       int
	At           time.Time
}

// NewServer starts a fake DingTalk on 127.0.0.1 with ClientID "ding-test-app"
// and ClientSecret "test-secret-0123456789". It panics if it cannot listen,
// like httptest.NewServer.
func NewServer() *Server { return NewServerAt("127.0.0.1:0") }

// NewServerAt is NewServer on a given loopback address, for tools that
// must name the fake's address in a service's config before starting it
// (bench/webhookload). It panics for an address off the loopback.
func NewServerAt(addr string) *Server {
	if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
		panic(fmt.Sprintf("dingtalktest: %q is not a loopback address", addr))
	}
	s := &Server{
		ClientID:        DefaultClientID,
		ClientSecret:    DefaultClientSecret,
		CorpID:          DefaultCorpID,
		BotUserID:       "$:LWCP_v1:$" + randB64(24),
		AppID:           uuid(),
		done:            make(chan struct{}),
		kick:            make(chan struct{}, 1),
		changed:         make(chan struct{}),
		tickets:         map[string]*ticket{},
		conns:           map[int]*wsConn{},
		frames:          map[string]frameInfo{},
		pending:         map[string]*pendingFrame{},
		deliveries:      map[string]int{},
		pings:           map[string]string{},
		disconnectDelay: 200 * time.Millisecond,
		ticketTTL:       ticketTTL,
		sessions:        map[string]*session{},
		sessionByMsg:    map[string]string{},
		tokens:          map[string]time.Time{},
		tokenTTL:        defaultTokenTTL,
		qpsWindow:       map[string][]time.Time{},
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1.0/gateway/connections/open", s.handleOpen)
	mux.HandleFunc("GET /connect", s.handleConnect)
	mux.HandleFunc("POST /robot/sendBySession", s.handleSessionSend)
	mux.HandleFunc("POST /v1.0/oauth2/accessToken", s.handleAccessToken)
	mux.HandleFunc("POST /v1.0/robot/oToMessages/batchSend", s.handleBatchSend)
	mux.HandleFunc("POST /v1.0/robot/groupMessages/send", s.handleGroupSend)
	s.registerLogin(mux)
	mux.HandleFunc("/", s.handleNotFound)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		panic(fmt.Sprintf("dingtalktest: failed to listen on %s: %v", addr, err))
	}
	// Everything handlers read is set before Start, so the race detector
	// sees it happen before them.
	s.URL = "http://" + ln.Addr().String()
	s.client = &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4},
		Timeout:   10 * time.Second,
	}
	s.ts = httptest.NewUnstartedServer(s.track(mux))
	_ = s.ts.Listener.Close()
	s.ts.Listener = ln
	s.ts.Start()

	s.wg.Add(1)
	go s.redeliverLoop()
	return s
}

// Close closes every WebSocket connection, stops the HTTP server and waits
// for all of the Server's goroutines to return. It is safe to call twice.
func (s *Server) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]*wsConn, 0, len(s.conns))
		for _, c := range s.conns {
			conns = append(conns, c)
		}
		s.broadcastLocked()
		s.mu.Unlock()
		close(s.done)
		for _, c := range conns {
			_ = c.ws.Close()
		}
		s.ts.Close()
		s.wg.Wait()
		s.client.CloseIdleConnections()
	})
}

// Calls returns every HTTP request answered so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// track counts every handler in s.wg (refusing new ones after Close) and
// records each call.
func (s *Server) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			http.Error(w, "dingtalktest: closed", http.StatusServiceUnavailable)
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()

		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.mu.Lock()
		s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Status: rec.status, At: time.Now()})
		s.broadcastLocked()
		s.mu.Unlock()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Hijack lets the WebSocket upgrader take the connection over.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("dingtalktest: response writer cannot hijack")
	}
	r.status, r.wrote = http.StatusSwitchingProtocols, true
	return h.Hijack()
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// goTracked runs f in a goroutine that Close waits for; it does nothing once
// the Server is closed.
func (s *Server) goTracked(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// broadcastLocked wakes every waiter. s.mu must be held.
func (s *Server) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor blocks until cond (called with s.mu held) returns true, the timeout
// passes or the Server closes.
func (s *Server) waitFor(timeout time.Duration, cond func() bool) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-timer.C:
			return fmt.Errorf("dingtalktest: timed out after %v", timeout)
		}
	}
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeAPIError(w, http.StatusNotFound, "InvalidAction.NotFound",
		"Specified api is not found, please check your url and method.")
}

// readBody reads at most maxRequestBody bytes of the request body.
func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"code":"InternalError","message":"dingtalktest: marshal failed"}`)
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeAPIError answers in the new-API error shape with its request headers.
func writeAPIError(w http.ResponseWriter, status int, code, message string) {
	id := strings.ToUpper(uuid())
	w.Header().Set("x-acs-request-id", id)
	w.Header().Set("x-acs-trace-id", randHex(16))
	writeJSON(w, status, map[string]string{"code": code, "message": message, "requestid": id})
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = crand.Read(b) // never fails (crypto/rand docs)
	return b
}

func randHex(n int) string { return hex.EncodeToString(randBytes(n)) }

func randB64(n int) string { return base64.StdEncoding.EncodeToString(randBytes(n)) }

func uuid() string {
	b := randBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
