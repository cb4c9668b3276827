package pipeline_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/pipeline"
)

// The burst is 50 000 messages from 5 000 users:
//
//	go test ./pipeline -run TestIntakeBurstKeepsOrder -v -burst.users=5000 -burst.max_queued=10000
var (
	burstUsers     = flag.Int("burst.users", 300, "users in TestIntakeBurstKeepsOrder, 10 messages each")
	burstMaxQueued = flag.Int("burst.max_queued", 200, "inbox.max_queued in TestIntakeBurstKeepsOrder")
	burstRedeliver = flag.Duration("burst.redeliver", 50*time.Millisecond, "mean pause before the fake platform delivers a refused message again")
)

// platform plays DingTalk for the intake: it delivers each user's messages
// in the order the user wrote them, without waiting for a refused one, and
// delivers every refused message again after a short random pause, so
// redeliveries arrive in any order.
type platform struct {
	in        *pipeline.Intake
	refusals  atomic.Int64
	wg        sync.WaitGroup
	delivered sync.WaitGroup
}

func (p *platform) deliver(t *testing.T, m adapter.Message) {
	p.delivered.Add(1)
	go func() {
		defer p.delivered.Done()
		for {
			err := p.in.Accept(context.Background(), m)
			if err == nil {
				return
			}
			if !errors.Is(err, pipeline.ErrOverloaded) {
				t.Errorf("accept %s: %v", m.ID, err)
				return
			}
			p.refusals.Add(1)
			mean := int64(*burstRedeliver)
			time.Sleep(time.Duration(mean/2 + rand.Int64N(mean)))
		}
	}()
}

// The burst, at a scale that keeps CI short (-burst.users=5000 for
// the full 50 000 messages): every user's messages are handled in the
// order written, none is parked for a sweep, and what waits in memory
// stays under inbox.max_queued: the service pushes back instead.
func TestIntakeBurstKeepsOrder(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		inbox := gormstore.NewInbox(db, nil)
		defer inbox.Close()
		const perUser = 10
		users, maxQueued := *burstUsers, int64(*burstMaxQueued)
		h := &handled{db: db, byUser: map[string][]string{}}
		var peak atomic.Int64
		var in *pipeline.Intake
		handle := func(ctx context.Context, m adapter.Message) error {
			if q := int64(in.Queued()); q > peak.Load() {
				peak.Store(q)
			}
			return h.handle(ctx, m)
		}
		cfg := config.Default().Inbox
		cfg.MaxQueued = int(maxQueued)
		counters := &pipeline.Metrics{}
		in = pipeline.NewIntake(inbox, handle, pipeline.IntakeOptions{Shards: 16, Log: quiet,
			Config: func() config.Inbox { return cfg }, Metrics: counters})
		p := &platform{in: in}
		start := time.Now()
		// Users write at once; each user's messages leave in order, one
		// after the other's first delivery attempt.
		var writers sync.WaitGroup
		for u := 0; u < users; u++ {
			writers.Add(1)
			go func(u int) {
				defer writers.Done()
				for i := 0; i < perUser; i++ {
					m := msg(fmt.Sprintf("b%d-%02d", u, i), fmt.Sprintf("b%d", u))
					p.deliverSync(t, m)
				}
			}(u)
		}
		writers.Wait()
		p.delivered.Wait()
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := in.Drain(dctx); err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		outOfOrder := 0
		for u := 0; u < users; u++ {
			got := h.byUser[fmt.Sprintf("b%d", u)]
			if len(got) != perUser {
				t.Fatalf("user %d: handled %d messages, want %d", u, len(got), perUser)
			}
			for i, id := range got {
				if id != fmt.Sprintf("b%d-%02d", u, i) {
					outOfOrder++
					t.Errorf("user %d: message %d is %s (out of order): %v", u, i, id, got)
					break
				}
			}
		}
		stranded, takenOver := counters.Stranded.Load(), counters.TakenOver.Load()
		t.Logf("%d messages from %d users in %v: %d refusals (redelivered), peak queued %d (max %d), out of order %d, stranded %d",
			users*perUser, users, elapsed.Round(time.Millisecond), p.refusals.Load(), peak.Load(), maxQueued, outOfOrder, stranded)
		if stranded != 0 || takenOver != 0 {
			t.Errorf("messages parked for a sweep: %d stranded, %d taken over", stranded, takenOver)
		}
		if got := counters.Refused.Load(); got != p.refusals.Load() {
			t.Errorf("refused counter %d, the platform saw %d refusals", got, p.refusals.Load())
		}
		if p.refusals.Load() == 0 && maxQueued*10 < int64(users*perUser) {
			t.Error("the burst never made the intake push back; the test did not test overload")
		}
		if peak.Load() > maxQueued {
			t.Errorf("peak queued %d > inbox.max_queued %d: memory not bounded", peak.Load(), maxQueued)
		}
	})
}

// deliverSync makes one first delivery attempt in the caller's goroutine
// (so one user's first attempts are in order) and leaves a refused
// message to be delivered again in the background.
func (p *platform) deliverSync(t *testing.T, m adapter.Message) {
	err := p.in.Accept(context.Background(), m)
	switch {
	case err == nil:
	case errors.Is(err, pipeline.ErrOverloaded):
		p.refusals.Add(1)
		p.deliver(t, m)
	default:
		t.Errorf("accept %s: %v", m.ID, err)
	}
}

// A message that always fails (here: panics) is tried inbox.max_attempts
// times, recorded as failed with the reason, the user gets the apology,
// and the user's next message is handled.
func TestIntakeGivesUpPoisonMessage(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		inbox := gormstore.NewInbox(db, nil)
		defer inbox.Close()
		h := &handled{db: db, byUser: map[string][]string{}}
		var tries atomic.Int64
		handle := func(ctx context.Context, m adapter.Message) error {
			if m.ID == "poison" {
				tries.Add(1)
				panic("matcher blew up")
			}
			return h.handle(ctx, m)
		}
		var mu sync.Mutex
		var kicked []gormstore.OutboxItem
		cfg := config.Default().Inbox
		cfg.MaxAttempts = 3
		cfg.FailedReply = "抱歉，处理失败"
		counters := &pipeline.Metrics{}
		in := pipeline.NewIntake(inbox, handle, pipeline.IntakeOptions{Shards: 2, Log: quiet, Metrics: counters,
			Config: func() config.Inbox { return cfg },
			Kick: func(items []gormstore.OutboxItem) {
				mu.Lock()
				kicked = append(kicked, items...)
				mu.Unlock()
			}})
		ctx := context.Background()
		for _, id := range []string{"before", "poison", "after"} {
			if err := in.Accept(ctx, msg(id, "u")); err != nil {
				t.Fatal(err)
			}
		}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := in.Drain(dctx); err != nil {
			t.Fatal(err)
		}
		if got := h.byUser["u"]; len(got) != 2 || got[0] != "before" || got[1] != "after" {
			t.Fatalf("handled %v, want before and after", got)
		}
		if tries.Load() != 3 {
			t.Errorf("poison tried %d times, want inbox.max_attempts = 3", tries.Load())
		}
		if n := counters.GivenUp.Load(); n != 1 {
			t.Errorf("given-up counter = %d, want 1", n)
		}
		if len(kicked) != 1 || kicked[0].Reply.Text != "抱歉，处理失败" || kicked[0].Reply.UserID != "u" {
			t.Fatalf("apology = %+v", kicked)
		}
		failed, _ := inbox.Failed(ctx, 10)
		if len(failed) != 1 || failed[0].MsgID != "poison" || failed[0].Attempts != 3 || failed[0].LastError != "panic: matcher blew up" {
			t.Fatalf("failed rows = %+v", failed)
		}
	})
}

// Failures while storage refuses writes are not attempts: a message is
// never given up because the database was away.
func TestIntakeDoesNotCountStorageOutages(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		cfgS := gormstoretest.NewStorage(t, driver)
		// A replica that died at once (it never beat) accepted the message.
		dead := gormstore.NewInbox(gormstoretest.OpenStorage(t, cfgS), nil)
		if _, err := dead.Accept(context.Background(), msg("flaky", "u")); err != nil {
			t.Fatal(err)
		}
		dead.Close()
		db := gormstoretest.OpenStorage(t, cfgS)
		inbox := gormstore.NewInbox(db, nil)
		defer inbox.Close()
		ctx := context.Background()
		refuse := "CREATE TRIGGER refuse_inbox BEFORE INSERT ON inbox BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
		if driver == "mysql" {
			refuse = "CREATE TRIGGER refuse_inbox BEFORE INSERT ON inbox FOR EACH ROW SIGNAL SQLSTATE 'HY000' SET MESSAGE_TEXT = 'The table is full'"
		}
		if err := db.Exec(context.Background(), refuse); err != nil {
			t.Fatal(err)
		}
		h := &handled{db: db, byUser: map[string][]string{}}
		var calls atomic.Int64
		handle := func(ctx context.Context, m adapter.Message) error {
			if calls.Add(1) < 6 {
				return errors.New("database or disk is full")
			}
			// The disk has room again.
			if err := db.Exec(context.Background(), "DROP TRIGGER refuse_inbox"); err != nil && calls.Load() == 6 {
				return err
			}
			return h.handle(ctx, m)
		}
		cfg := config.Default().Inbox
		cfg.MaxAttempts = 2
		counters := &pipeline.Metrics{}
		in := pipeline.NewIntake(inbox, handle, pipeline.IntakeOptions{Shards: 1, Log: quiet, Metrics: counters,
			Config: func() config.Inbox { return cfg }})
		n, err := in.Recover(ctx)
		if err != nil || n != 1 {
			t.Fatalf("recover = %d, %v", n, err)
		}
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := in.Drain(dctx); err != nil {
			t.Fatal(err)
		}
		if got := h.byUser["u"]; len(got) != 1 {
			t.Fatalf("handled %v after %d calls, want flaky handled once the storage came back", got, calls.Load())
		}
		if n := counters.GivenUp.Load(); n != 0 {
			t.Fatalf("given up %d messages during a storage outage", n)
		}
	})
}

// A replica whose heartbeats were late does not send rows another replica
// took over meanwhile: the other one sends them, once.
func TestOutboxLateHeartbeatSendsOnlyWhatItStillHolds(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		cfgS := gormstoretest.NewStorage(t, driver)
		slow, other := gormstoretest.OpenStorage(t, cfgS), gormstoretest.OpenStorage(t, cfgS)
		ctx := context.Background()
		t0 := time.Now()
		if err := slow.Heartbeat(ctx, t0); err != nil {
			t.Fatal(err)
		}
		items := enqueue(t, slow, t0, "一", "二")
		// The slow replica stalls past the timeout; the other takes row 1.
		t1 := t0.Add(slow.ReplicaTimeout() + time.Second)
		if err := other.Heartbeat(ctx, t1); err != nil {
			t.Fatal(err)
		}
		if it, err := gormstore.NewOutboxStore(other).Claim(ctx, items[0].ID, t1); err != nil || it == nil {
			t.Fatalf("takeover claim: %v %v", it, err)
		}
		sender := &recordingSender{}
		cfg := config.Default().Outbox
		ob := pipeline.NewOutbox(gormstore.NewOutboxStore(slow), sender, func() config.Outbox { return cfg },
			func() time.Time { return t1 }, quiet, &pipeline.Metrics{})
		defer ob.Close()
		ob.Kick(items)
		if len(sender.sent) != 1 || sender.sent[0] != "二" {
			t.Fatalf("the late replica sent %v, want only the row it still holds", sender.sent)
		}
	})
}
