// Package pipeline carries messages between the platform adapter and the
// engine: inbound messages are stored (deduplicated by msgId) before they
// are acknowledged, then handled in arrival order per user and in parallel
// across users; outbound replies leave through the stored outbox.
package pipeline

import (
	"context"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/storage"
)

// HandleFunc handles one stored inbound message. It is never called twice
// at once for one user in this process.
type HandleFunc func(ctx context.Context, msg adapter.Message) error

// Intake is the adapter.Handler of the service.
type Intake struct {
	inbox   *storage.Inbox
	handle  HandleFunc
	log     *slog.Logger
	metrics *Metrics
	seed    maphash.Seed
	shards  []chan adapter.Message

	mu       sync.RWMutex // guards closed against sends on closed shards
	closed   bool
	inflight sync.Map // msgID → struct{}: queued or running here
	wg       sync.WaitGroup
	stop     chan struct{} // closed to give up retries at shutdown
}

// NewIntake starts shards workers. Messages of one user always go to the
// same worker, which keeps them in order without any lock shared by all.
func NewIntake(inbox *storage.Inbox, handle HandleFunc, shards int, log *slog.Logger, m *Metrics) *Intake {
	if shards < 1 {
		shards = 1
	}
	in := &Intake{inbox: inbox, handle: handle, log: log, metrics: m, seed: maphash.MakeSeed(),
		shards: make([]chan adapter.Message, shards), stop: make(chan struct{})}
	for i := range in.shards {
		in.shards[i] = make(chan adapter.Message, 256)
		in.wg.Add(1)
		go in.worker(in.shards[i])
	}
	return in
}

// Accept stores msg and queues it for handling. It returns once the
// message is durable (or known as a redelivery); an error means it was not
// stored and the platform should deliver it again.
func (in *Intake) Accept(ctx context.Context, msg adapter.Message) error {
	isNew, err := in.inbox.Accept(ctx, msg)
	if err != nil {
		in.metrics.AcceptErrors.Add(1)
		in.log.Error("inbound message not stored", "msg_id", msg.ID, "err", err)
		return err
	}
	if !isNew {
		in.metrics.Duplicates.Add(1)
		in.log.Debug("duplicate delivery ignored", "msg_id", msg.ID)
		return nil
	}
	in.metrics.Accepted.Add(1)
	in.submit(msg)
	return nil
}

// submit queues a stored message. A full shard drops it from memory only:
// it stays pending in the inbox and the recovery sweep brings it back.
func (in *Intake) submit(msg adapter.Message) {
	if _, busy := in.inflight.LoadOrStore(msg.ID, struct{}{}); busy {
		return
	}
	in.mu.RLock()
	defer in.mu.RUnlock()
	if in.closed {
		in.inflight.Delete(msg.ID)
		return
	}
	shard := in.shards[maphash.String(in.seed, msg.UserKey())%uint64(len(in.shards))]
	select {
	case shard <- msg:
	default:
		in.inflight.Delete(msg.ID)
		in.log.Warn("intake queue full, message left for the recovery sweep", "msg_id", msg.ID)
	}
}

func (in *Intake) worker(ch chan adapter.Message) {
	defer in.wg.Done()
	for msg := range ch {
		in.process(msg)
		in.inflight.Delete(msg.ID)
	}
}

// process handles msg, retrying while the database is away: an accepted
// message is never dropped. At shutdown it stays pending for the next start.
func (in *Intake) process(msg adapter.Message) {
	backoff := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := in.handle(ctx, msg)
		cancel()
		if err == nil {
			in.metrics.Handled.Add(1)
			return
		}
		in.metrics.HandleErrors.Add(1)
		in.log.Error("handling failed, will retry", "msg_id", msg.ID, "err", err, "retry_in", backoff)
		select {
		case <-in.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// Recover queues every message accepted before `before` and not handled
// yet: after a crash, or a message another replica accepted and lost.
func (in *Intake) Recover(ctx context.Context, before time.Time) (int, error) {
	msgs, err := in.inbox.Pending(ctx, before, 1000)
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		in.submit(m)
	}
	return len(msgs), nil
}

// RunRecovery sweeps for pending messages now and then every interval,
// taking those older than grace (younger ones are still being handled by
// whichever replica accepted them). It returns when ctx ends.
func (in *Intake) RunRecovery(ctx context.Context, interval, grace time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := in.Recover(ctx, time.Now().Add(-grace)); err != nil {
			in.log.Warn("recovery sweep failed", "err", err)
		} else if n > 0 {
			in.log.Info("recovered pending messages", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Drain stops taking messages and waits for queued ones to be handled, at
// most until ctx ends; what is left stays pending in the inbox.
func (in *Intake) Drain(ctx context.Context) error {
	in.mu.Lock()
	if !in.closed {
		in.closed = true
		for _, ch := range in.shards {
			close(ch)
		}
	}
	in.mu.Unlock()
	done := make(chan struct{})
	go func() { in.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		close(in.stop)
		<-done
		return ctx.Err()
	}
}
