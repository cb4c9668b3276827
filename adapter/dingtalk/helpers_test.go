package dingtalk

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/config"
)

// testConfig points a DingTalk config at the fake.
func testConfig(fake *dingtalktest.Server, mode string) config.DingTalk {
	cfg := config.Default().DingTalk
	cfg.Mode = mode
	cfg.ClientID = fake.ClientID
	cfg.ClientSecret = config.Secret(fake.ClientSecret)
	cfg.APIBase = fake.URL
	return cfg
}

// newFake starts a fake DingTalk closed at the end of the test.
func newFake(t *testing.T) *dingtalktest.Server {
	t.Helper()
	fake := dingtalktest.NewServer()
	t.Cleanup(fake.Close)
	return fake
}

// mustNew builds an adapter with fast retries, closed at the end of the
// test, logging into the returned buffer.
func mustNew(t *testing.T, cfg config.DingTalk, opts Options) (*Adapter, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	a.api.backoff = func(int, bool) time.Duration { return 5 * time.Millisecond }
	t.Cleanup(func() { _ = a.Close() })
	return a, buf
}

// syncBuffer is a bytes.Buffer safe for concurrent log writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recorder is a Handler that records messages and can be told to fail.
type recorder struct {
	mu   sync.Mutex
	msgs []adapter.Message
	fail error
	ch   chan adapter.Message
}

func newRecorder() *recorder { return &recorder{ch: make(chan adapter.Message, 100)} }

func (r *recorder) handle(_ context.Context, m adapter.Message) error {
	r.mu.Lock()
	fail := r.fail
	if fail == nil {
		r.msgs = append(r.msgs, m)
	}
	r.mu.Unlock()
	if fail != nil {
		return fail
	}
	r.ch <- m
	return nil
}

func (r *recorder) setFail(err error) {
	r.mu.Lock()
	r.fail = err
	r.mu.Unlock()
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *recorder) wait(t *testing.T, timeout time.Duration) adapter.Message {
	t.Helper()
	select {
	case m := <-r.ch:
		return m
	case <-time.After(timeout):
		t.Fatal("handler not called")
		return adapter.Message{}
	}
}

// waitID waits for the message with that id, skipping others (such as
// redeliveries of earlier frames).
func (r *recorder) waitID(t *testing.T, id string, timeout time.Duration) adapter.Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-r.ch:
			if m.ID == id {
				return m
			}
		case <-deadline:
			t.Fatalf("handler not called for %s", id)
			return adapter.Message{}
		}
	}
}

var errStore = errors.New("db: disk full at /var/lib/secret-path")

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// replyTo builds the reply the engine would send to m.
func replyTo(m adapter.Message, format adapter.Format, text string) adapter.Reply {
	return adapter.Reply{
		ConversationID:       m.ConversationID,
		ConversationType:     m.ConversationType,
		UserID:               m.SenderID,
		Format:               format,
		Text:                 text,
		SessionWebhook:       m.SessionWebhook,
		SessionWebhookExpiry: m.SessionWebhookExpiry,
	}
}

// inbound turns a fake message into what the adapter would have received.
func inbound(t *testing.T, fake *dingtalktest.Server, m dingtalktest.Msg) adapter.Message {
	t.Helper()
	_, body := fake.Payload(m)
	raw, err := decodePayload(body)
	if err != nil {
		t.Fatal(err)
	}
	return toMessage(raw)
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

// computeSign is DingTalk's callback signature as the reference for
// signer.verify.
func computeSign(secret, timestamp string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
