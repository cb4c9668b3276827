package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/pipeline"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func msg(id, user string) adapter.Message {
	return adapter.Message{ID: id, ConversationID: "cid", ConversationType: adapter.Private, SenderID: user, Kind: adapter.KindText, Text: id}
}

// handled records handling order per user and marks messages handled the
// way the engine does.
type handled struct {
	db     *gormstore.DB
	mu     sync.Mutex
	byUser map[string][]string
	fail   int // fail this many calls first
}

func (h *handled) handle(ctx context.Context, m adapter.Message) error {
	h.mu.Lock()
	if h.fail > 0 {
		h.fail--
		h.mu.Unlock()
		return errors.New("database went away")
	}
	h.mu.Unlock()
	err := gormstore.NewHandoffStore(h.db, nil).Transact(ctx, func(tx handoff.Tx) error { return tx.MarkHandled(m.ID, time.Now()) })
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.byUser[m.SenderID] = append(h.byUser[m.SenderID], m.ID)
	h.mu.Unlock()
	return nil
}

func TestIntakeOrderPerUserAndDedup(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		inbox := gormstore.NewInbox(db, nil)
		defer inbox.Close()
		h := &handled{db: db, byUser: map[string][]string{}, fail: 3}
		in := pipeline.NewIntake(inbox, h.handle, pipeline.IntakeOptions{Shards: 8, Log: quiet})
		ctx := context.Background()
		const users, per = 10, 20
		var wg sync.WaitGroup
		for u := 0; u < users; u++ {
			wg.Add(1)
			go func(u int) { // each user writes in order, each message delivered twice
				defer wg.Done()
				for i := 0; i < per; i++ {
					m := msg(fmt.Sprintf("u%d-%02d", u, i), fmt.Sprintf("u%d", u))
					for k := 0; k < 2; k++ {
						if err := in.Accept(ctx, m); err != nil {
							t.Error(err)
						}
					}
				}
			}(u)
		}
		wg.Wait()
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := in.Drain(dctx); err != nil {
			t.Fatal(err)
		}
		for u := 0; u < users; u++ {
			got := h.byUser[fmt.Sprintf("u%d", u)]
			if len(got) != per {
				t.Fatalf("user %d: handled %d messages, want %d (each once)", u, len(got), per)
			}
			for i, id := range got {
				if want := fmt.Sprintf("u%d-%02d", u, i); id != want {
					t.Fatalf("user %d: message %d is %s, want %s (out of order)", u, i, id, want)
				}
			}
		}
	})
}

func TestIntakeRecoversPendingAfterRestart(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		cfg := gormstoretest.NewStorage(t, driver)
		db := gormstoretest.OpenStorage(t, cfg)
		inbox := gormstore.NewInbox(db, nil)
		// A first process accepts and dies before handling (its heartbeat
		// stops: here it never beat).
		if _, err := inbox.Accept(context.Background(), msg("m1", "u")); err != nil {
			t.Fatal(err)
		}
		inbox.Close()
		db.Close()

		db2 := gormstoretest.OpenStorage(t, cfg)
		inbox2 := gormstore.NewInbox(db2, nil)
		defer inbox2.Close()
		h := &handled{db: db2, byUser: map[string][]string{}}
		in := pipeline.NewIntake(inbox2, h.handle, pipeline.IntakeOptions{Shards: 2, Log: quiet})
		// The redelivery is a duplicate; recovery handles the stored one.
		if err := in.Accept(context.Background(), msg("m1", "u")); err != nil {
			t.Fatal(err)
		}
		n, err := in.Recover(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("recover = %d, %v", n, err)
		}
		in.Drain(context.Background())
		if got := h.byUser["u"]; len(got) != 1 {
			t.Fatalf("handled %v, want m1 once", got)
		}
	})
}

type recordingSender struct {
	mu   sync.Mutex
	sent []string
	errs []error // returned in turn before succeeding
}

func (s *recordingSender) Send(_ context.Context, r adapter.Reply) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return err
	}
	s.sent = append(s.sent, r.Text)
	return nil
}

func enqueue(t *testing.T, db *gormstore.DB, at time.Time, texts ...string) []gormstore.OutboxItem {
	t.Helper()
	var replies []adapter.Reply
	for _, s := range texts {
		replies = append(replies, adapter.Reply{ConversationID: "c", UserID: "u", Text: s})
	}
	var items []gormstore.OutboxItem
	store := gormstore.NewHandoffStore(db, func(_ context.Context, sent []gormstore.OutboxItem) { items = sent })
	if err := store.Transact(context.Background(), func(tx handoff.Tx) error {
		return tx.Record(at, replies, nil)
	}); err != nil {
		t.Fatal(err)
	}
	return items
}

func TestOutboxRetriesAndRecordsFailure(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		store := gormstore.NewOutboxStore(db)
		clock := time.Now()
		var mu sync.Mutex
		now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
		advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
		sender := &recordingSender{errs: []error{errors.New("503 from DingTalk")}}
		cfg := config.Default().Outbox
		cfg.MaxAttempts = 3
		ob := pipeline.NewOutbox(store, sender, func() config.Outbox { return cfg }, now, quiet, &pipeline.Metrics{})
		ctx := context.Background()
		counts := func() map[string]int64 {
			ob.Close() // writes the batched delivery records
			ob = pipeline.NewOutbox(store, sender, func() config.Outbox { return cfg }, now, quiet, &pipeline.Metrics{})
			c, _ := store.Counts(ctx)
			return c
		}

		ids := enqueue(t, db, now(), "第一条", "第二条")
		ob.Kick(ids) // first fails and is scheduled; second goes out
		if len(sender.sent) != 1 || sender.sent[0] != "第二条" {
			t.Fatalf("sent %v", sender.sent)
		}
		due, _ := store.Due(context.Background(), now(), 10)
		if len(due) != 0 {
			t.Fatalf("retry due at once: %v", due)
		}
		ob.RetryDue(ctx) // not due yet
		if len(sender.sent) != 1 {
			t.Fatalf("retried before its time: %v", sender.sent)
		}
		advance(5 * time.Second)
		ob.RetryDue(ctx)
		if len(sender.sent) != 2 || sender.sent[1] != "第一条" {
			t.Fatalf("retry not delivered: %v", sender.sent)
		}

		// Permanent errors are recorded at once, with the reason.
		sender.errs = []error{adapter.Permanent(errors.New("ApiCountLimitForOrg"))}
		ids = enqueue(t, db, now(), "第三条")
		ob.Kick(ids)
		failed, _ := store.Failed(context.Background(), 5)
		if len(failed) != 1 || failed[0].LastError == "" {
			t.Fatalf("failed rows = %+v", failed)
		}
		// Temporary errors give up after max_attempts.
		sender.errs = []error{errors.New("timeout"), errors.New("timeout"), errors.New("timeout")}
		ids = enqueue(t, db, now(), "第四条")
		ob.Kick(ids)
		for i := 0; i < 3; i++ {
			advance(10 * time.Minute)
			ob.RetryDue(ctx)
		}
		if c := counts(); c[gormstore.OutboxFailed] != 2 || c[gormstore.OutboxSent] != 2 {
			t.Fatalf("counts = %v", c)
		}
		if n := len(sender.sent); n != 2 {
			t.Fatalf("sent %d, want 2", n)
		}
	})
}

// The handler's context tells when the intake accepted the message, on
// every attempt (the reply latency is timed from it); a message recovered
// from the inbox carries none (its inbox row tells).
func TestHandlerSeesAcceptanceTime(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		inbox := gormstore.NewInbox(db, nil)
		defer inbox.Close()
		var mu sync.Mutex
		seen := map[string][]time.Time{}
		attempts := 0
		handle := func(ctx context.Context, m adapter.Message) error {
			at, _ := pipeline.AcceptedAt(ctx)
			mu.Lock()
			seen[m.ID] = append(seen[m.ID], at)
			if m.ID == "new" {
				attempts++
			}
			first := m.ID == "new" && attempts == 1
			mu.Unlock()
			if first {
				return errors.New("database went away")
			}
			return gormstore.NewHandoffStore(db, nil).Transact(ctx, func(tx handoff.Tx) error { return tx.MarkHandled(m.ID, time.Now()) })
		}
		// A message stored by a previous life of this replica, not handled.
		if _, err := inbox.Accept(context.Background(), msg("old", "u2")); err != nil {
			t.Fatal(err)
		}
		// The intake's clock runs a minute ahead, so the first sweep finds
		// "old" pending without a worker.
		later := func() time.Time { return time.Now().Add(time.Minute) }
		in := pipeline.NewIntake(inbox, handle, pipeline.IntakeOptions{Shards: 2, Log: quiet, Now: later})
		before := time.Now()
		if err := in.Accept(context.Background(), msg("new", "u1")); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		if _, err := in.Recover(context.Background()); err != nil { // the first sweep looks at own pending rows
			t.Fatal(err)
		}
		dctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := in.Drain(dctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if got := seen["new"]; len(got) != 2 || got[0].Before(before) || got[0].After(after) || !got[len(got)-1].Equal(got[0]) {
			t.Fatalf("acceptance times seen for an accepted message: %v, want two attempts, each within [%v, %v]", got, before, after)
		}
		if len(seen["old"]) != 1 {
			t.Fatalf("recovered message handled %d times, want once", len(seen["old"]))
		}
		for _, at := range seen["old"] {
			if !at.IsZero() {
				t.Fatalf("a recovered message carries an acceptance time: %v", at)
			}
		}
	})
}
