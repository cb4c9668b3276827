package metrics

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/pipeline"
)

// BenchmarkPerMessage is what the instrumentation adds to one message with
// one reply, from all CPUs at once (the timeline's lock is shared): the
// ack and handle wrappers, a match, a transaction, a delivery.
func BenchmarkPerMessage(b *testing.B) {
	m, _ := newTestMetrics(&testing.T{}, Options{})
	nop := func(context.Context, adapter.Message) error { return nil }
	var handleCtx atomic.Pointer[context.Context]
	accept := m.TimeAccept(nop)
	handle := m.TimeHandle(func(ctx context.Context, _ adapter.Message) error { handleCtx.Store(&ctx); return nil })
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			n := seq.Add(1)
			msg := adapter.Message{ID: "m" + strconv.FormatInt(n, 10)}
			accept(ctx, msg)
			handle(pipeline.ContextWithAccepted(ctx, time.Now()), msg)
			m.Matched(bot.OutcomeAnswer, 50*time.Microsecond)
			m.Enqueued(*handleCtx.Load(), []int64{n})
			m.Transacted(*handleCtx.Load(), time.Millisecond, nil)
			m.Delivered(n)
		}
	})
}
