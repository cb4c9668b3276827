package pipeline_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/pipeline"
)

// BenchmarkIntakeOverhead is the intake's own cost per message (admission,
// the worker queues and their wake-ups, the in-flight set), with the store
// replaced by groupInbox, which answers the Accepts waiting at each 1 ms
// tick the way the SQLite inbox's group commit does, and a handler that does
// nothing. cpu-µs/msg is the process's CPU per message, the figure to
// compare; ns/op is bound by the tick.
func BenchmarkIntakeOverhead(b *testing.B) {
	inbox := newGroupInbox(time.Millisecond)
	defer inbox.close()
	var handled atomic.Int64
	in := pipeline.NewIntake(inbox, func(context.Context, adapter.Message) error { handled.Add(1); return nil },
		pipeline.IntakeOptions{Shards: 64, Log: quiet})
	var seq atomic.Int64
	b.SetParallelism(16) // 32 senders on 2 cores, like the load tool's
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			n := seq.Add(1)
			m := adapter.Message{ID: "m" + strconv.FormatInt(n, 10), ConversationID: "cid", ConversationType: adapter.Private,
				SenderID: "u" + strconv.FormatInt(n%1000, 10), Kind: adapter.KindText, Text: "VPN 连不上怎么办"}
			if err := in.Accept(ctx, m); err != nil {
				b.Error(err)
				return
			}
		}
	})
	for handled.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
	if err := in.Drain(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// groupInbox accepts every message, answering in groups at each tick.
type groupInbox struct {
	mu      sync.Mutex
	waiting []chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newGroupInbox(tick time.Duration) *groupInbox {
	g := &groupInbox{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-g.stop:
				return
			case <-t.C:
			}
			g.mu.Lock()
			w := g.waiting
			g.waiting = nil
			g.mu.Unlock()
			for _, c := range w {
				close(c)
			}
		}
	}()
	return g
}

func (g *groupInbox) close() { close(g.stop); <-g.done }

func (g *groupInbox) Accept(ctx context.Context, _ adapter.Message) (bool, error) {
	c := make(chan struct{})
	g.mu.Lock()
	g.waiting = append(g.waiting, c)
	g.mu.Unlock()
	select {
	case <-c:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func (g *groupInbox) Probe(context.Context) error { return nil }

func (g *groupInbox) MarkFailed(context.Context, string, int, string, time.Time, ...adapter.Reply) ([]pipeline.OutboxItem, error) {
	return nil, nil
}

func (g *groupInbox) TakeOver(context.Context, time.Time, time.Time, int) ([]adapter.Message, []pipeline.Unreadable, int64, error) {
	return nil, nil, 0, nil
}

func (g *groupInbox) MarkUnreadable(context.Context, pipeline.Unreadable, time.Time) error {
	return nil
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
