package gormstore_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
)

// BenchmarkInboxWriteBatch writes batches of a fixed size of new messages
// (what the writer's group commit writes when that many are queued):
// statements and time per message.
func BenchmarkInboxWriteBatch(b *testing.B) {
	for _, driver := range gormstoretest.Drivers(b) {
		for _, size := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/batch=%d", driver, size), func(b *testing.B) {
				db := gormstoretest.Open(b, driver)
				in := gormstore.NewInbox(db, nil)
				defer in.Close()
				batch := make([]adapter.Message, size)
				stmts0 := db.Statements()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for j := range batch {
						batch[j] = msg(fmt.Sprintf("b%d-%d", i, j), fmt.Sprintf("u%d", j))
					}
					_, errs := in.WriteBatch(batch...)
					for _, err := range errs {
						if err != nil {
							b.Fatal(err)
						}
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(db.Statements()-stmts0)/float64(b.N*size), "stmts/msg")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/msg")
			})
		}
	}
}

// BenchmarkInboxAccept accepts new messages from 64 goroutines at once,
// as the webhook's handlers do under load: the writer's batches form by
// themselves. ns/op is per accepted message.
func BenchmarkInboxAccept(b *testing.B) {
	for _, driver := range gormstoretest.Drivers(b) {
		b.Run(driver, func(b *testing.B) {
			db := gormstoretest.Open(b, driver)
			in := gormstore.NewInbox(db, nil)
			defer in.Close()
			ctx := context.Background()
			var next atomic.Int64
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			stmts0 := db.Statements()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					isNew, err := in.Accept(ctx, msg(fmt.Sprintf("a%d", i), fmt.Sprintf("u%d", i%200)))
					if err != nil || !isNew {
						b.Errorf("accept %d: %v, %v", i, isNew, err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(db.Statements()-stmts0)/float64(b.N), "stmts/msg")
		})
	}
}
