// Package pipeline carries messages between the platform adapter and the
// engine: inbound messages are stored (deduplicated by msgId) before they
// are acknowledged, then handled in arrival order per user and in parallel
// across users; outbound replies leave through the stored outbox.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
)

// HandleFunc handles one stored inbound message. It is never called twice
// at once for one user in this process. A message some earlier run already
// handled (a re-run after a crash, another replica) is a success: nil, as
// the hand-off engine returns for it; an error is retried.
type HandleFunc func(ctx context.Context, msg adapter.Message) error

type acceptedKey struct{}

// ContextWithAccepted is ctx carrying when the message being handled was
// accepted. The intake sets it for the messages it stored; a handler run
// elsewhere (a test, a replay) may set it too.
func ContextWithAccepted(ctx context.Context, at time.Time) context.Context {
	return context.WithValue(ctx, acceptedKey{}, at)
}

// AcceptedAt is when the message a handler is running for was accepted by
// this process; false for a message recovered from the inbox (a previous
// life, a dead replica), whose inbox row tells.
func AcceptedAt(ctx context.Context) (time.Time, bool) {
	at, ok := ctx.Value(acceptedKey{}).(time.Time)
	return at, ok
}

// ErrOverloaded refuses a delivery the service cannot queue now (too many
// accepted messages wait, or an earlier message of the same user was
// refused and has not come back yet). Nothing was stored: the platform
// delivers the message again.
var ErrOverloaded = errors.New("intake overloaded: not accepted, deliver again later")

// ErrIntakeClosed refuses deliveries during shutdown.
var ErrIntakeClosed = errors.New("intake closed: not accepted, deliver again later")

// Limits of the pushback bookkeeping (see admit).
const (
	// holdFor is how long a refused message keeps its user's later
	// messages out: DingTalk redelivers within seconds; a message not seen
	// again for this long was given up (or went to another replica), and
	// the user's next message may go ahead.
	holdFor = 20 * time.Second
	// maxHeldUsers and maxHeldPerUser bound the memory of refused ids.
	maxHeldUsers   = 100_000
	maxHeldPerUser = 64
	// maxQueuedBytes bounds the text held in memory, whatever
	// inbox.max_queued says (messages may be up to 1 MiB each).
	maxQueuedBytes = 256 << 20
	// strandedAfter: an own pending message older than this with no worker
	// is picked up by the sweep (a safety net; it should never fire).
	strandedAfter = 10 * time.Second
)

// IntakeOptions are what an Intake needs besides the inbox and the handler.
type IntakeOptions struct {
	// Shards is the number of ordered workers (users are hashed to one).
	Shards int
	// Config is read live for limits, attempts and the apology text.
	Config func() config.Inbox
	// Kick sends the apology written for a failed message (Outbox.Kick).
	Kick func([]OutboxItem)
	Now  func() time.Time
	Log  *slog.Logger
	// Metrics gets the intake's counters.
	Metrics *Metrics
}

// Intake is the adapter.Handler of the service.
type Intake struct {
	inbox   Inbox
	handle  HandleFunc
	opts    IntakeOptions
	log     *slog.Logger
	metrics *Metrics
	seed    maphash.Seed
	shards  []*shard

	mu       sync.RWMutex // guards closed
	closed   bool
	inflight sync.Map // msgID → struct{}: queued or running here
	wg       sync.WaitGroup
	stop     chan struct{} // closed to give up handling at shutdown
	stopOnce sync.Once

	adm admission

	sweeps         atomic.Int64
	lastRefusalLog atomic.Int64 // unix nanos
}

// NewIntake starts the ordered workers. Messages of one user always go to
// the same worker, which keeps them in order without any lock shared by
// all.
func NewIntake(inbox Inbox, handle HandleFunc, o IntakeOptions) *Intake {
	if o.Shards < 1 {
		o.Shards = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Config == nil {
		def := config.Default().Inbox
		o.Config = func() config.Inbox { return def }
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = &Metrics{}
	}
	in := &Intake{inbox: inbox, handle: handle, opts: o, log: o.Log, metrics: o.Metrics, seed: maphash.MakeSeed(),
		shards: make([]*shard, o.Shards), stop: make(chan struct{}), adm: admission{held: map[string][]heldMsg{}}}
	for i := range in.shards {
		in.shards[i] = &shard{wake: make(chan struct{}, 1)}
		in.wg.Add(1)
		go in.worker(in.shards[i])
	}
	return in
}

// Queued is how many accepted messages wait for, or are in, their worker.
func (in *Intake) Queued() int {
	in.adm.mu.Lock()
	defer in.adm.mu.Unlock()
	return in.adm.queued
}

// Accept stores msg and queues it for handling. It returns once the
// message is durable and queued (or known as a redelivery); an error means
// it was not stored and the platform should deliver it again. A message
// is admitted before it is stored: one that could not be queued in order
// is refused, never stored and left for later (that reordered users).
func (in *Intake) Accept(ctx context.Context, msg adapter.Message) error {
	in.mu.RLock()
	closed := in.closed
	in.mu.RUnlock()
	if closed {
		return ErrIntakeClosed
	}
	size := messageSize(msg)
	sl := in.admit(msg, size)
	if sl == nil {
		in.metrics.Refused.Add(1)
		in.logRefusal(msg)
		return ErrOverloaded
	}
	isNew, err := in.inbox.Accept(ctx, msg)
	if err != nil {
		sl.resolve(false)
		in.metrics.AcceptErrors.Add(1)
		in.log.Error("inbound message not stored", "msg_id", msg.ID, "err", err)
		return err
	}
	if !isNew {
		sl.resolve(false)
		in.metrics.Duplicates.Add(1)
		in.log.Debug("duplicate delivery ignored", "msg_id", msg.ID)
		return nil
	}
	in.metrics.Accepted.Add(1)
	sl.accepted = time.Now()
	_, busy := in.inflight.LoadOrStore(msg.ID, struct{}{}) // recovery may have queued it already
	sl.resolve(!busy)
	return nil
}

// logRefusal warns at most once a second: under overload every refused
// delivery would be a line.
func (in *Intake) logRefusal(msg adapter.Message) {
	now := time.Now().UnixNano()
	last := in.lastRefusalLog.Load()
	if now-last < int64(time.Second) || !in.lastRefusalLog.CompareAndSwap(last, now) {
		return
	}
	in.log.Warn("intake cannot keep up: refusing deliveries, the platform delivers them again",
		"msg_id", msg.ID, "queued", in.Queued(), "refused_total", in.metrics.Refused.Load())
}

func messageSize(m adapter.Message) int64 { return int64(len(m.Text)) + 512 }

// admission bounds what waits in memory and keeps a user's messages in
// order across refusals: once one of a user's messages is refused, the
// user's later messages are refused too until the refused one is
// delivered again and admitted (or not seen for holdFor). Otherwise a
// later message could be handled while the earlier one waits for its
// redelivery.
type admission struct {
	mu     sync.Mutex
	queued int
	bytes  int64
	held   map[string][]heldMsg // user key → refused message ids, oldest first
}

type heldMsg struct {
	id    string
	until time.Time
}

// admit reserves msg's place in its user's worker queue before it is
// stored, so a user's messages are handled in the order they were
// admitted even when two are being stored at once. nil means refused.
func (in *Intake) admit(msg adapter.Message, size int64) *slot {
	a := &in.adm
	now := in.opts.Now()
	key := msg.UserKey()
	a.mu.Lock()
	defer a.mu.Unlock()
	held := a.held[key]
	for len(held) > 0 && now.After(held[0].until) {
		held = held[1:]
	}
	hold := func() {
		for i := range held {
			if held[i].id == msg.ID {
				held[i].until = now.Add(holdFor)
				a.held[key] = held
				return
			}
		}
		if len(held) < maxHeldPerUser && (len(held) > 0 || len(a.held) < maxHeldUsers) {
			held = append(held, heldMsg{id: msg.ID, until: now.Add(holdFor)})
		}
		if len(held) > 0 {
			a.held[key] = held
		}
	}
	if len(held) > 0 && held[0].id != msg.ID {
		hold() // an earlier message of this user is still out
		return nil
	}
	if a.queued >= in.opts.Config().MaxQueued || (a.queued > 0 && a.bytes+size > maxQueuedBytes) {
		hold()
		return nil
	}
	if len(held) > 0 {
		held = held[1:] // the oldest refused message is back
	}
	if len(held) == 0 {
		delete(a.held, key)
	} else {
		a.held[key] = held
	}
	return in.reserve(msg, key, size)
}

// reserve counts msg and puts its slot at the end of its worker's queue
// (key is msg.UserKey()). in.adm.mu must be held: slots of one user are
// queued in admission order.
func (in *Intake) reserve(msg adapter.Message, key string, size int64) *slot {
	in.adm.queued++
	in.adm.bytes += size
	sh := in.shards[maphash.String(in.seed, key)%uint64(len(in.shards))]
	sl := &slot{msg: msg, size: size, done: make(chan struct{}), shard: sh}
	sh.push(sl)
	return sl
}

func (in *Intake) release(size int64) {
	in.adm.mu.Lock()
	in.adm.queued--
	in.adm.bytes -= size
	in.adm.mu.Unlock()
}

// slot is a message's place in its worker's queue, taken when it was
// admitted; the worker waits at it until the store decided (resolve).
type slot struct {
	msg  adapter.Message
	size int64
	ok   bool // stored as new and not queued elsewhere: handle it
	// accepted is when Accept stored the message (zero for recovered
	// ones); the handler finds it with AcceptedAt.
	accepted time.Time
	done     chan struct{}
	shard    *shard
}

// resolve settles the slot and wakes its worker. The worker is woken here,
// not when the slot is queued: an idle worker woken at push would only pop
// the slot and park again on done while the message is being stored.
func (sl *slot) resolve(ok bool) {
	sl.ok = ok
	close(sl.done)
	sl.shard.signal()
}

// shard is one worker's FIFO. It grows as far as admission lets it (the
// bound is global, not per shard: a busy shard never forces a refusal
// while the others are idle).
type shard struct {
	mu     sync.Mutex
	items  []*slot
	head   int
	closed bool
	wake   chan struct{}
}

// push queues q; its resolve wakes the worker. Every slot is resolved
// after it was pushed, so a worker asleep on an empty queue is always woken
// for a slot pushed meanwhile.
func (s *shard) push(q *slot) {
	s.mu.Lock()
	s.items = append(s.items, q)
	s.mu.Unlock()
}

// signal wakes the worker if it waits for one (never blocks).
func (s *shard) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pop waits for the next item; false once closed and empty.
func (s *shard) pop() (*slot, bool) {
	for {
		s.mu.Lock()
		if s.head < len(s.items) {
			q := s.items[s.head]
			s.items[s.head] = nil
			s.head++
			if s.head == len(s.items) {
				s.items, s.head = s.items[:0], 0
			} else if s.head >= 1024 && s.head*2 >= len(s.items) {
				n := copy(s.items, s.items[s.head:])
				clear(s.items[n:])
				s.items, s.head = s.items[:n], 0
			}
			s.mu.Unlock()
			return q, true
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil, false
		}
		<-s.wake
	}
}

func (s *shard) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal()
}

func (in *Intake) worker(s *shard) {
	defer in.wg.Done()
	for {
		sl, ok := s.pop()
		if !ok {
			return
		}
		<-sl.done // stored (or not) by its Accept, a few milliseconds
		if sl.ok {
			in.process(sl.msg, sl.accepted)
			in.inflight.Delete(sl.msg.ID)
		}
		in.release(sl.size)
	}
}

// process handles msg. While storage is healthy a failure counts as an
// attempt, and after inbox.max_attempts the message is recorded as failed
// and the user gets the apology: a message that cannot be handled (a
// poison message) never blocks its user's worker for good. While storage
// itself fails, attempts are not counted: nothing is given up because the
// database was away. At shutdown it stays pending for the next start.
func (in *Intake) process(msg adapter.Message, accepted time.Time) {
	backoff := 100 * time.Millisecond
	attempts := 0
	for {
		select {
		case <-in.stop:
			return
		default:
		}
		err := in.handleSafely(msg, accepted)
		if err == nil {
			in.metrics.Handled.Add(1)
			return
		}
		in.metrics.HandleErrors.Add(1)
		pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		probeErr := in.inbox.Probe(pctx)
		cancel()
		if probeErr == nil {
			attempts++
		}
		max := in.opts.Config().MaxAttempts
		if attempts >= max {
			in.giveUp(msg, attempts, err)
			return
		}
		in.log.Error("handling failed, will retry", "msg_id", msg.ID, "err", err, "attempt", attempts,
			"max_attempts", max, "storage_ok", probeErr == nil, "retry_in", backoff)
		if !in.sleep(backoff) {
			return
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// handleSafely runs the handler, turning a panic into an error: a message
// that crashes the engine is a poison message, not a crash loop.
func (in *Intake) handleSafely(msg adapter.Message, accepted time.Time) (err error) {
	ctx := context.Background()
	if !accepted.IsZero() {
		ctx = ContextWithAccepted(ctx, accepted)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
			in.log.Error("handler panicked", "msg_id", msg.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	return in.handle(ctx, msg)
}

// giveUp records msg as failed with the reason and sends the apology,
// retrying the record while storage is away (it must not be lost either).
func (in *Intake) giveUp(msg adapter.Message, attempts int, cause error) {
	cfg := in.opts.Config()
	sorry := adapter.Reply{ConversationID: msg.ConversationID, ConversationType: msg.ConversationType,
		UserID: msg.SenderID, Format: adapter.Text, Text: cfg.FailedReply,
		SessionWebhook: msg.SessionWebhook, SessionWebhookExpiry: msg.SessionWebhookExpiry}
	backoff := 200 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		items, err := in.inbox.MarkFailed(ctx, msg.ID, attempts, cause.Error(), in.opts.Now(), sorry)
		cancel()
		if err == nil {
			in.metrics.GivenUp.Add(1)
			in.log.Error("inbound message failed for good; the user was told", "msg_id", msg.ID,
				"user", msg.UserKey(), "attempts", attempts, "err", cause)
			if in.opts.Kick != nil {
				in.opts.Kick(items)
			}
			return
		}
		in.log.Warn("failed message not recorded yet, retrying", "msg_id", msg.ID, "err", err, "retry_in", backoff)
		if !in.sleep(backoff) {
			return
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// sleep waits d; false when the intake stops meanwhile.
func (in *Intake) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-in.stop:
		return false
	case <-t.C:
		return true
	}
}

// Recover takes over the pending messages of dead replicas (a crashed or
// killed process, this one's previous life included) and queues them, in
// the order they were received; own messages found pending without a
// worker are queued too. Unreadable rows are recorded as failed, reported
// and skipped. It returns how many messages it queued.
func (in *Intake) Recover(ctx context.Context) (int, error) {
	now := in.opts.Now()
	// Own messages are looked at every tenth sweep only: they are the
	// safety net, and under load many are queued (and would be read only
	// to be skipped).
	var ownBefore time.Time
	if in.sweeps.Add(1)%10 == 1 {
		ownBefore = now.Add(-strandedAfter)
	}
	msgs, bad, taken, err := in.inbox.TakeOver(ctx, now, ownBefore, 1000)
	if err != nil {
		return 0, err
	}
	if taken > 0 {
		in.metrics.TakenOver.Add(taken)
		in.log.Info("took over the messages of a dead replica", "count", taken)
	}
	for _, u := range bad {
		in.metrics.Unreadable.Add(1)
		in.log.Error("unreadable stored message skipped and recorded as failed", "row", u.RowID, "msg_id", u.MsgID, "err", u.Err)
		if err := in.inbox.MarkUnreadable(ctx, u, now); err != nil {
			in.log.Warn("unreadable message not recorded", "row", u.RowID, "err", err)
		}
	}
	n := 0
	for _, m := range msgs {
		if _, busy := in.inflight.LoadOrStore(m.ID, struct{}{}); busy {
			continue
		}
		// Stored already: queued whatever the limits.
		in.adm.mu.Lock()
		sl := in.reserve(m, m.UserKey(), messageSize(m))
		in.adm.mu.Unlock()
		sl.resolve(true)
		n++
	}
	if s := int64(n) - taken; s > 0 {
		in.metrics.Stranded.Add(s)
		in.log.Warn("pending messages found without a worker, queued", "count", s)
	}
	return n, nil
}

// RunRecovery runs Recover now and then every interval (the heartbeat
// interval: a dead replica's work is picked up within a beat of its
// timeout). It returns when ctx ends.
func (in *Intake) RunRecovery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := in.Recover(ctx); err != nil && ctx.Err() == nil {
			in.log.Warn("recovery sweep failed", "err", err)
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
		for _, s := range in.shards {
			s.close()
		}
	}
	in.mu.Unlock()
	done := make(chan struct{})
	go func() { in.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		in.stopOnce.Do(func() { close(in.stop) })
		<-done
		return ctx.Err()
	}
}
