package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Hub is the live transport: events are stored (Store.AppendEvents) and a
// tailer per replica reads new rows back and hands them to this replica's
// open streams. So a browser on replica A sees what replica B stored
// within a poll interval (100 ms: one primary-key range query, cheap
// enough), a reconnecting browser replays from its
// Last-Event-ID out of the table, and nothing is lost across a restart.
//
// Why not github.com/tmaxmax/go-sse: its Joe keeps topics and replay in
// memory per process; with the table as the only source of truth, its
// Replayer would be a thin wrapper over the same two queries, and what is
// left (headers, framing, heartbeats) is the fifty lines of ServeStream.
// Nothing publishes through the hub: the engine writes the events in its
// own transactions (handoff.Tx.Publish) and the workbench Wakes the tail
// after an operation.
type Hub struct {
	store Store
	log   *slog.Logger
	now   func() time.Time

	poll      time.Duration
	heartbeat time.Duration
	retention func() time.Duration

	poke chan struct{}
	done chan struct{}
	once sync.Once

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	tail   *gapTail
	ready  chan struct{} // closed once the tail has its start
}

type subscriber struct {
	topics map[string]bool
	ch     chan Event
	gone   chan struct{} // closed when the hub drops a slow subscriber
}

// subscriberBuffer events may wait for a slow browser; beyond, the hub
// closes its stream and the browser resumes from Last-Event-ID.
const subscriberBuffer = 256

// NewHub builds a hub; Run starts its tailer.
func NewHub(store Store, log *slog.Logger, now func() time.Time, retention func() time.Duration) *Hub {
	return &Hub{store: store, log: log, now: now, poll: 100 * time.Millisecond, heartbeat: 20 * time.Second,
		retention: retention, poke: make(chan struct{}, 1), done: make(chan struct{}),
		subs: map[*subscriber]struct{}{}, ready: make(chan struct{})}
}

// Wake makes this replica's tailer read the table now rather than at its
// next poll: after an engine operation the workbench ran, whose events
// are committed.
func (h *Hub) Wake() {
	select {
	case h.poke <- struct{}{}:
	default:
	}
}

// Run tails the event table until ctx ends, and prunes it hourly.
func (h *Hub) Run(ctx context.Context) {
	for {
		_, newest, err := h.store.EventBounds(ctx)
		if err == nil {
			h.mu.Lock()
			h.tail = newGapTail(newest, 5*time.Second)
			h.mu.Unlock()
			close(h.ready)
			break
		}
		h.log.Warn("event table unreadable; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	t := time.NewTicker(h.poll)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case <-t.C:
		case <-h.poke:
		}
		if err := h.step(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("event tail failed", "err", err)
		}
		if now := h.now(); now.Sub(lastPrune) > time.Hour {
			lastPrune = now
			if n, err := h.store.PruneEvents(ctx, now.Add(-h.retention())); err != nil {
				h.log.Warn("event prune failed", "err", err)
			} else if n > 0 {
				h.log.Info("events pruned", "rows", n)
			}
		}
	}
}

// step reads what was stored since the last step and dispatches it.
func (h *Hub) step(ctx context.Context) error {
	now := h.now()
	h.mu.Lock()
	gaps, after := h.tail.openGaps(now), h.tail.max
	h.mu.Unlock()
	var got []Event
	if len(gaps) > 0 {
		filled, err := h.store.EventsByID(ctx, gaps)
		if err != nil {
			return err
		}
		got = append(got, filled...)
	}
	for {
		batch, err := h.store.EventsAfter(ctx, after, 500)
		if err != nil {
			return err
		}
		got = append(got, batch...)
		if len(batch) < 500 {
			break
		}
		after = batch[len(batch)-1].ID
	}
	if len(got) == 0 {
		return nil
	}
	ids := make([]int64, len(got))
	for i, e := range got {
		ids[i] = e.ID
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	fresh := h.tail.seen(ids, now)
	for i, e := range got {
		if fresh[i] {
			h.dispatchLocked(e)
		}
	}
	return nil
}

func (h *Hub) dispatchLocked(e Event) {
	for s := range h.subs {
		if !s.topics[e.Topic] {
			continue
		}
		select {
		case s.ch <- e:
		default:
			delete(h.subs, s)
			close(s.gone)
		}
	}
}

func (h *Hub) subscribe(topics []string) (*subscriber, error) {
	s := &subscriber{topics: map[string]bool{}, ch: make(chan Event, subscriberBuffer), gone: make(chan struct{})}
	for _, t := range topics {
		s.topics[t] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errHubClosed
	}
	h.subs[s] = struct{}{}
	return s, nil
}

func (h *Hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.gone)
	}
}

var errHubClosed = fmt.Errorf("hub closed")

// Close ends every open stream (before the HTTP server's shutdown, which
// would otherwise wait for them) and stops the tailer.
func (h *Hub) Close() {
	h.once.Do(func() {
		h.mu.Lock()
		h.closed = true
		for s := range h.subs {
			delete(h.subs, s)
			close(s.gone)
		}
		h.mu.Unlock()
		close(h.done)
	})
}

// ServeStream is the SSE endpoint for topics. It replays stored events
// after the Last-Event-ID header (or ?last= for a first connection that
// knows where the page was rendered), then streams live ones. An id older
// than the retention, or ahead of the table, gets one "resync" event: the
// page reloads its fragments. Every (re)connection starts with a "hello"
// event, on which the page refreshes too, so correctness never depends on
// replay alone.
func (h *Hub) ServeStream(w http.ResponseWriter, r *http.Request, topics []string) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	select {
	case <-h.ready:
	case <-r.Context().Done():
		return
	}
	sub, err := h.subscribe(topics)
	if err != nil {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.unsubscribe(sub)

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	hdr.Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	ctx := r.Context()

	lastID := int64(-1)
	raw := r.Header.Get("Last-Event-ID")
	if raw == "" {
		raw = r.URL.Query().Get("last")
	}
	if raw != "" {
		if v, err := strconv.ParseInt(raw, 10, 64); err == nil && v >= 0 {
			lastID = v
		}
	}
	fmt.Fprintf(w, "retry: 1000\n\n")
	replayed := map[int64]bool{}
	writeEvent := func(e Event) {
		fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, oneLine(e.Data))
	}
	oldest, newest, err := h.store.EventBounds(ctx)
	if err != nil {
		h.log.Warn("event bounds unreadable", "err", err)
	}
	hello := Event{ID: newest, Type: "hello", Data: strconv.FormatInt(newest, 10)}
	switch {
	case lastID < 0:
		writeEvent(hello)
	case err != nil || lastID > newest || (oldest > 0 && lastID < oldest-1):
		writeEvent(Event{ID: newest, Type: "resync", Data: strconv.FormatInt(newest, 10)})
	default:
		writeEvent(hello)
		for after := lastID; ; {
			batch, err := h.store.EventsAfter(ctx, after, 500)
			if err != nil {
				h.log.Warn("event replay failed", "err", err)
				return
			}
			for _, e := range batch {
				if sub.topics[e.Topic] {
					writeEvent(e)
					replayed[e.ID] = true
				}
			}
			if len(batch) < 500 {
				break
			}
			after = batch[len(batch)-1].ID
		}
	}
	flusher.Flush()

	beat := time.NewTicker(h.heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.gone:
			return
		case e := <-sub.ch:
			if replayed[e.ID] {
				// Replayed already (the tail caught up after the replay).
				delete(replayed, e.ID)
				continue
			}
			writeEvent(e)
			flusher.Flush()
		case <-beat.C:
			fmt.Fprint(w, ": ping\n\n")
			flusher.Flush()
		}
	}
}

// oneLine keeps data on one SSE line (data is an id or a short token).
func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
