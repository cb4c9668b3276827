package web_test

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/web"
)

// stream opens hub's SSE endpoint for topics and returns its lines.
func stream(t *testing.T, hub *web.Hub, topics []string, lastID string) <-chan string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hub.ServeStream(w, r, topics) }))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "event: ") || strings.HasPrefix(l, "data: ") {
				lines <- l
			}
		}
		close(lines)
	}()
	return lines
}

func expectLine(t *testing.T, lines <-chan string, want string, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream closed before %q", want)
			}
			if l == want {
				return
			}
			if l == "data: not-mine" {
				t.Fatal("a stream got an event of another agent's topic")
			}
		case <-timeout:
			t.Fatalf("no %q within %v", want, d)
		}
	}
}

func newHub(t *testing.T, db *gormstore.DB) *web.Hub {
	h := web.NewHub(gormstore.NewWebStore(db), slog.New(slog.DiscardHandler), time.Now, func() time.Duration { return time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	go h.Run(ctx)
	t.Cleanup(func() { h.Close(); cancel() })
	return h
}

// A browser on replica A hears what replica B published, only for its
// topics, and a reconnect replays from Last-Event-ID.
func TestHubAcrossReplicasAndReplay(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		cfg := gormstoretest.NewStorage(t, driver)
		// Replica B's engine stores events in its own database handle;
		// only replica A runs a hub here.
		a, b := newHub(t, gormstoretest.OpenStorage(t, cfg)), gormstore.NewWebStore(gormstoretest.OpenStorage(t, cfg))
		ctx := context.Background()
		lines := stream(t, a, []string{web.AgentTopic("agent1")}, "")
		expectLine(t, lines, "event: hello", 5*time.Second)
		start := time.Now()
		if err := b.AppendEvents(ctx, []web.Event{{Topic: web.AgentTopic("agent2"), Type: "message", Data: "not-mine"},
			{Topic: web.AgentTopic("agent1"), Type: "message", Data: "42"}}); err != nil {
			t.Fatal(err)
		}
		expectLine(t, lines, "data: 42", 2*time.Second)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("replica A heard B's event after %v", d)
		}
		// Replay: everything after id 0 for agent1 only.
		replay := stream(t, a, []string{web.AgentTopic("agent1")}, "0")
		expectLine(t, replay, "data: 42", 2*time.Second)
		// A stale id (beyond the table) gets a resync.
		stale := stream(t, a, []string{web.AgentTopic("agent1")}, "999999")
		expectLine(t, stale, "event: resync", 2*time.Second)
	})
}
