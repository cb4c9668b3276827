package pipeline

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
)

// Outbox sends stored replies. A reply is first tried right after the
// transaction that wrote it commits (Kick); failures are retried by the
// background loop with exponential backoff until they succeed or run out
// of attempts or age, and are then recorded as failed with the reason.
type Outbox struct {
	store   OutboxStore
	sender  adapter.Sender
	cfg     func() config.Outbox
	now     func() time.Time
	log     *slog.Logger
	metrics *Metrics

	// inflight holds the ids this process is sending, or has sent and not
	// yet recorded as sent: the retry scan skips them, so a delivery
	// record that is slow to be written never sends a reply again here.
	inflight sync.Map // id → struct{}
	due      chan int64
	wg       sync.WaitGroup

	// Deliveries are recorded in batches (group commit): a reply costs no
	// write of its own. A crash before a batch is written leaves its rows
	// held by a dead replica, so they go out again once another replica
	// (or the next start) sees its heartbeat stop: only sends in flight at
	// the instant of a crash may repeat.
	sent     chan int64
	markDone chan struct{}
}

// NewOutbox builds the sender; Run starts its retry loop.
func NewOutbox(store OutboxStore, sender adapter.Sender, cfg func() config.Outbox, now func() time.Time, log *slog.Logger, m *Metrics) *Outbox {
	if now == nil {
		now = time.Now
	}
	o := &Outbox{store: store, sender: sender, cfg: cfg, now: now, log: log, metrics: m,
		due: make(chan int64, 1024), sent: make(chan int64, 4096), markDone: make(chan struct{})}
	go o.recordSent()
	return o
}

// Close writes the last delivery records. Call it after everything that
// may Kick has stopped.
func (o *Outbox) Close() {
	close(o.sent)
	<-o.markDone
}

// recordSent writes delivered ids in batches: whatever arrived while the
// previous batch was being written goes in the next one.
func (o *Outbox) recordSent() {
	defer close(o.markDone)
	for id := range o.sent {
		batch := []int64{id}
	fill:
		for len(batch) < 500 {
			select {
			case id, ok := <-o.sent:
				if !ok {
					break fill
				}
				batch = append(batch, id)
			default:
				break fill
			}
		}
		// A delivery not recorded would stay "sending" under this replica
		// for good (or be sent again after it dies): keep trying, a few
		// times, while the database is away.
		for attempt, pause := 1, 200*time.Millisecond; ; attempt, pause = attempt+1, min(pause*2, 5*time.Second) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := o.store.MarkSent(ctx, o.now(), batch...)
			cancel()
			if err == nil {
				break
			}
			if attempt == 5 {
				o.log.Error("delivery records not written; these replies may be sent again by the replica that takes them over", "count", len(batch), "err", err)
				break
			}
			o.log.Warn("delivery records not written, retrying", "count", len(batch), "err", err, "retry_in", pause)
			time.Sleep(pause)
		}
		for _, id := range batch {
			o.inflight.Delete(id)
		}
	}
}

// Kick sends freshly committed replies now, in order, in the caller's
// goroutine: the pipeline calls it from the user's own worker, so one
// user's replies leave in the order they were written. The rows are the
// caller's under their birth lease, so they are neither claimed nor read
// back: items are what the committed transaction wrote.
func (o *Outbox) Kick(items []OutboxItem) {
	if len(items) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if !o.store.BeatFresh(o.now()) {
		// This replica's heartbeats were late (a stall, a slow database):
		// another replica may have taken these rows over and be sending
		// them. Send only those still held here.
		ids := make([]int64, len(items))
		for i := range items {
			ids[i] = items[i].ID
		}
		held, err := o.store.StillHeld(ctx, ids)
		if err != nil {
			o.log.Warn("outbox hold check failed; the retry loop sends what is due", "err", err)
			return
		}
		kept := items[:0:0]
		for _, it := range items {
			if held[it.ID] {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	for i := range items {
		if _, busy := o.inflight.LoadOrStore(items[i].ID, struct{}{}); busy {
			continue
		}
		if !o.send(ctx, &items[i]) {
			o.inflight.Delete(items[i].ID)
		}
	}
}

// Run retries due sends until ctx ends, with cfg().Workers senders.
func (o *Outbox) Run(ctx context.Context) {
	workers := max(o.cfg().Workers, 1)
	for i := 0; i < workers; i++ {
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case id := <-o.due:
					c, cancel := context.WithTimeout(ctx, 60*time.Second)
					o.deliver(c, id)
					cancel()
				}
			}
		}()
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			o.wg.Wait()
			return
		case <-t.C:
			for _, id := range o.dueIDs(ctx) {
				select {
				case o.due <- id:
				case <-ctx.Done():
				}
			}
		}
	}
}

// dueIDs lists due sends not already being sent here.
func (o *Outbox) dueIDs(ctx context.Context) []int64 {
	ids, err := o.store.Due(ctx, o.now(), 200)
	if err != nil {
		o.log.Warn("outbox scan failed", "err", err)
		return nil
	}
	out := ids[:0]
	for _, id := range ids {
		if _, busy := o.inflight.Load(id); !busy {
			out = append(out, id)
		}
	}
	return out
}

// RetryDue runs one retry pass in the caller's goroutine (what Run does
// every second with its workers).
func (o *Outbox) RetryDue(ctx context.Context) {
	for _, id := range o.dueIDs(ctx) {
		o.deliver(ctx, id)
	}
}

func (o *Outbox) deliver(ctx context.Context, id int64) {
	if _, busy := o.inflight.LoadOrStore(id, struct{}{}); busy {
		return
	}
	item, err := o.store.Claim(ctx, id, o.now())
	if err != nil {
		o.log.Warn("outbox claim failed", "id", id, "err", err)
	}
	// item is nil when the row was sent, is not due yet, or another
	// replica has it.
	if item == nil || !o.send(ctx, item) {
		o.inflight.Delete(id)
	}
}

// send delivers a held item and records the outcome. It reports a
// delivery, whose id stays in flight until recordSent has written it.
func (o *Outbox) send(ctx context.Context, item *OutboxItem) bool {
	id := item.ID
	sendErr := o.sender.Send(ctx, item.Reply)
	if sendErr == nil {
		o.metrics.sent(id)
		o.sent <- id
		return true
	}
	// Record the failure even if ctx ended meanwhile. (Only here: a
	// context with a timer for every reply sent would be spent for
	// nothing.)
	rec, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	attempts := item.Attempts + 1
	cfg := o.cfg()
	if adapter.IsPermanent(sendErr) || attempts >= cfg.MaxAttempts || o.now().Sub(item.CreatedAt) >= cfg.MaxAge {
		o.metrics.Failed.Add(1)
		o.log.Error("outbound message failed for good", "id", id, "attempts", attempts,
			"conversation", item.Reply.ConversationID, "user", item.Reply.UserID, "err", sendErr)
		if err := o.store.MarkFailed(rec, id, attempts, sendErr.Error()); err != nil {
			o.log.Warn("outbox mark failed failed", "id", id, "err", err)
		}
		return false
	}
	o.metrics.Retried.Add(1)
	next := o.now().Add(retryDelay(attempts))
	o.log.Warn("outbound message will be retried", "id", id, "attempts", attempts, "next", next, "err", sendErr)
	if err := o.store.MarkRetry(rec, id, attempts, next, sendErr.Error()); err != nil {
		o.log.Warn("outbox mark retry failed", "id", id, "err", err)
	}
	return false
}

// retryDelay is 2s, 4s, 8s … capped at 5 minutes, with ±20% jitter so
// replicas and users do not retry in lockstep.
func retryDelay(attempts int) time.Duration {
	d := 2 * time.Second << min(attempts-1, 8)
	d = min(d, 5*time.Minute)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
