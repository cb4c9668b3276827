// Package dingtalk connects dingdesk to DingTalk (钉钉): inbound bot
// messages through Stream mode (the official dingtalk-stream-sdk-go client)
// and/or HTTP callbacks (webhook mode), outbound replies through the
// message's sessionWebhook or the OpenAPI. It is the only package that
// imports the DingTalk SDK; SDK names stay inside it.
//
// Protocol notes: docs/DINGTALK.md (the shared protocol write-up).
package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
)

// Adapter is the DingTalk connection. Create it with New, call Start once,
// Close it when done.
type Adapter struct {
	cfg     config.DingTalk
	log     *slog.Logger
	now     func() time.Time
	api     *openAPI
	apiBase *url.URL
	secret  config.Secret
	signer  *signer // webhook callback signatures

	// keepAlive is the SDK's WebSocket ping idle time. Tests shorten it.
	keepAlive time.Duration
	// handlerTimeout bounds one call of the Handler.
	handlerTimeout time.Duration

	mu       sync.Mutex
	handler  adapter.Handler
	started  bool
	closed   bool
	stream   streamClient
	stop     context.CancelFunc // ends the lifecycle context of Start
	inflight sync.WaitGroup     // Handler calls; Close waits for them
	retrying sync.WaitGroup     // connect and its retry loop

	conn connState
}

var _ adapter.Adapter = (*Adapter)(nil)

// Options are the adapter's collaborators. Every field is optional.
type Options struct {
	// Logger receives the adapter's and the SDK's log lines; scope it
	// (With("component", "dingtalk")) before passing it. Default: none.
	Logger *slog.Logger
	// HTTPClient makes OpenAPI and sessionWebhook calls. Redirects are never
	// followed. Default: a client without a global timeout (each attempt has
	// its own 5 s limit).
	HTTPClient *http.Client
	// Now is the wall clock (webhook timestamps, session and token expiry).
	// Default time.Now.
	Now func() time.Time
}

// defaultKeepAlive is the WebSocket idle time before the SDK pings. The
// SDK default (120 s) lets a half-open connection go unnoticed for two
// minutes; 30 s catches it within ~35 s at the cost of one ping frame.
const defaultKeepAlive = 30 * time.Second

const defaultHandlerTimeout = 10 * time.Second

// New checks cfg and builds an adapter; nothing connects before Start.
func New(cfg config.DingTalk, opts Options) (*Adapter, error) {
	switch cfg.Mode {
	case "":
		cfg.Mode = "stream"
	case "stream", "webhook", "both":
	default:
		return nil, fmt.Errorf("dingtalk: unknown mode %q (stream, webhook or both)", cfg.Mode)
	}
	if cfg.ClientSecret == "" {
		// Webhook mode signs with it, stream mode and the OpenAPI log in
		// with it: no mode works without.
		return nil, errors.New("dingtalk: client_secret is required")
	}
	if cfg.ClientID == "" && cfg.Mode != "webhook" {
		return nil, fmt.Errorf("dingtalk: client_id is required in %s mode", cfg.Mode)
	}
	base, err := url.Parse(strings.TrimRight(cfg.APIBase, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("dingtalk: api_base %q is not an http(s) URL", cfg.APIBase)
	}
	if cfg.WebhookMaxBody <= 0 {
		cfg.WebhookMaxBody = 1 << 20
	}
	if cfg.QPS <= 0 {
		cfg.QPS = 18
	}

	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	// Every send goes to one or two hosts (the sessionWebhook's, the
	// OpenAPI's) from many outbox workers: the default transport keeps two
	// idle connections per host and closes the others after each request,
	// so under load every reply paid a TCP connect and close (8 % of the
	// CPU in the message-path benchmark, docs/BENCHMARKS.md).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	hc := &http.Client{Transport: tr}
	if opts.HTTPClient != nil {
		c := *opts.HTTPClient
		hc = &c
	}
	// A redirect would take a sessionWebhook post (or the token) to a host
	// the SSRF guard never saw.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	a := &Adapter{
		cfg:            cfg,
		log:            log,
		now:            now,
		api:            newOpenAPI(cfg, hc, now),
		apiBase:        base,
		secret:         cfg.ClientSecret,
		signer:         newSigner(cfg.ClientSecret.Reveal()),
		keepAlive:      defaultKeepAlive,
		handlerTimeout: defaultHandlerTimeout,
	}
	return a, nil
}

// Start remembers h and, in stream and both modes, connects the stream
// client. If the first connection attempt fails, Start logs it and keeps
// trying in the background (3 s doubling to 60 s, like the SDK's own
// reconnects) until Close; Ready reports the failure meanwhile. Once
// connected, the SDK reconnects by itself. Start fails only when called
// twice, after Close, or with a nil handler.
func (a *Adapter) Start(ctx context.Context, h adapter.Handler) error {
	if h == nil {
		return errors.New("dingtalk: nil handler")
	}
	a.mu.Lock()
	switch {
	case a.closed:
		a.mu.Unlock()
		return errors.New("dingtalk: adapter closed")
	case a.started:
		a.mu.Unlock()
		return errors.New("dingtalk: already started")
	}
	a.started = true
	a.handler = h
	if a.cfg.Mode == "webhook" {
		a.mu.Unlock()
		a.log.Info("webhook mode ready", "path", a.cfg.WebhookPath)
		return nil
	}
	// The stream's lifecycle context: Start's ctx only bounds setup, the
	// connection lives until Close (a documented exception to "no ctx in
	// structs": it is a cancel func, not the context).
	life, stop := context.WithCancel(context.Background())
	a.stop = stop
	a.stream = a.newStream()
	bridge.add(a)
	a.retrying.Add(1) // under mu: Close waits for connect
	a.mu.Unlock()

	a.connect(ctx, life)
	return nil
}

// Ready reports whether inbound messages can arrive: nil in webhook mode
// once started; in stream and both modes nil while the stream is connected
// (see connState for what that can detect).
func (a *Adapter) Ready() error {
	a.mu.Lock()
	started, closed := a.started, a.closed
	a.mu.Unlock()
	switch {
	case closed:
		return errClosed
	case !started:
		return errNotStarted
	case a.cfg.Mode == "webhook":
		return nil
	}
	return a.conn.ready()
}

// Close stops the stream client and its reconnects, and waits for Handler
// calls in flight (each bounded by 10 s). Messages arriving afterwards are
// refused (stream: error ACK; webhook: 503), so DingTalk redelivers them.
// Close is idempotent.
func (a *Adapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	stop, stream := a.stop, a.stream
	a.mu.Unlock()

	if stop != nil {
		stop()
	}
	a.retrying.Wait() // no stream.Start runs after this
	if stream != nil {
		stream.Close()
	}
	bridge.remove(a)
	a.conn.set(false, errors.New("closed"))
	a.inflight.Wait()
	a.log.Info("closed")
	return nil
}

// deliver hands msg to the Handler, unless the adapter is closed.
// Errors of receive that redelivering the same payload cannot fix.
var (
	errUnreadable = errors.New("unreadable payload")
	errNoMsgID    = errors.New("message has no msgId")
)

// receive is the one inbound path of both transports: decode the payload,
// normalise it, hand it to the Handler (which stores it). An error other
// than errUnreadable or errNoMsgID means "not stored, deliver again".
func (a *Adapter) receive(ctx context.Context, data []byte, via string) error {
	raw, err := decodePayload(data)
	if err != nil {
		return fmt.Errorf("%w: %v", errUnreadable, err)
	}
	msg := toMessage(raw)
	if msg.ID == "" {
		return fmt.Errorf("%w (msgtype %q)", errNoMsgID, raw.MsgType)
	}
	if err := a.deliver(ctx, msg); err != nil {
		if !errors.Is(err, errClosed) && !errors.Is(err, errNotStarted) {
			a.log.Error("message not stored, asking for redelivery", "via", via, "msg_id", msg.ID,
				"conversation_id", msg.ConversationID, "error", err.Error())
		}
		return err
	}
	// Checked first: boxing the attributes costs allocations on every
	// message even when debug lines are off (the default).
	if a.log.Enabled(ctx, slog.LevelDebug) {
		a.log.DebugContext(ctx, "message received", "via", via, "msg_id", msg.ID,
			"conversation_id", msg.ConversationID, "kind", string(msg.Kind))
	}
	return nil
}

func (a *Adapter) deliver(ctx context.Context, msg adapter.Message) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return errClosed
	}
	h := a.handler
	if h == nil {
		a.mu.Unlock()
		return errNotStarted
	}
	a.inflight.Add(1)
	a.mu.Unlock()
	defer a.inflight.Done()

	ctx, cancel := context.WithTimeout(ctx, a.handlerTimeout)
	defer cancel()
	return h(ctx, msg)
}

var (
	errClosed     = errors.New("dingtalk: adapter closed")
	errNotStarted = errors.New("dingtalk: adapter not started")
)
