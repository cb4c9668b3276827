package gormstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
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
				done := perMessage(b, db)
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
				done(b.N * size)
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
			done := perMessage(b, db)
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
			done(b.N)
		})
	}
}

// perMessage starts counting db's statements and this process's CPU
// time; the function it returns reports both per message for n messages.
// CPU time, unlike ns/op, hardly moves with the load of a shared machine
// (the database server's own CPU is not in it).
func perMessage(b *testing.B, db *gormstore.DB) func(n int) {
	stmts0, cpu0 := db.Statements(), processCPU()
	return func(n int) {
		b.ReportMetric(float64(db.Statements()-stmts0)/float64(n), "stmts/msg")
		b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(n), "cpu-µs/msg")
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// inboxRows counts the rows of the inbox.
func inboxRows(t *testing.T, db *gormstore.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Gorm().Model(&gormstore.InboxRow{}).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// stored returns how many inbox rows have msgID and the text of one.
func stored(t *testing.T, db *gormstore.DB, msgID string) (int, string) {
	t.Helper()
	var rows []gormstore.InboxRow
	if err := db.Gorm().Where("msg_id = ?", msgID).Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		return 0, ""
	}
	var m adapter.Message
	if err := json.Unmarshal([]byte(rows[0].Message), &m); err != nil {
		t.Fatal(err)
	}
	return len(rows), m.Text
}

// A batch reports new exactly the messages it stored: a msgId stored
// before is not new, and of one msgId queued twice in a batch the first
// is stored and new, the later ones not. Its statements do not grow with
// the batch.
func TestInboxBatchDuplicates(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		in := gormstore.NewInbox(db, nil)
		defer in.Close()
		if isNew, err := in.Accept(context.Background(), msg("d", "u")); err != nil || !isNew {
			t.Fatalf("accept d = %v, %v", isNew, err)
		}
		text := func(id, text string) adapter.Message { m := msg(id, "u"); m.Text = text; return m }
		batch := []adapter.Message{text("z", "z first"), msg("b", "u"), text("a", "a first"), msg("d", "u"),
			text("a", "a second"), msg("c", "u"), text("z", "z second"), msg("b", "u"), text("a", "a third")}
		want := []bool{true, true, true, false, false, true, false, false, false}
		before := db.Statements()
		isNew, errs := in.WriteBatch(batch...)
		stmts := db.Statements() - before
		for i := range batch {
			if errs[i] != nil || isNew[i] != want[i] {
				t.Errorf("%d (%s %q): new %v, err %v; want new %v", i, batch[i].ID, batch[i].Text, isNew[i], errs[i], want[i])
			}
		}
		for id, text := range map[string]string{"a": "a first", "b": "你好 b", "c": "你好 c", "d": "你好 d", "z": "z first"} {
			if n, got := stored(t, db, id); n != 1 || got != text {
				t.Errorf("%s: %d rows, text %q; want 1 row, %q", id, n, got, text)
			}
		}
		// SQLite: one INSERT (the WAL is synced outside SQLite); MySQL: the
		// read of the stored msgIds and one INSERT.
		if want := map[string]int64{"sqlite": 1, "mysql": 2}[driver]; stmts != want {
			t.Errorf("a batch of %d took %d statements, want %d", len(batch), stmts, want)
		}

		// All of a batch stored already: nothing is new, nothing inserted.
		isNew, errs = in.WriteBatch(msg("a", "u"), msg("b", "u"), msg("c", "u"), msg("a", "u"))
		for i := range isNew {
			if isNew[i] || errs[i] != nil {
				t.Errorf("redelivered %d: new %v, err %v; want not new", i, isNew[i], errs[i])
			}
		}
		n := inboxRows(t, db)
		if n != 5 {
			t.Errorf("%d inbox rows, want 5", n)
		}
	})
}

// A batch larger than one statement takes (more rows than an INSERT
// holds, more text than one statement should carry) is stored whole, in
// several INSERTs of the same commit.
func TestInboxBatchChunks(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		in := gormstore.NewInbox(db, nil)
		defer in.Close()
		var batch []adapter.Message
		for i := 0; i < 1100; i++ {
			batch = append(batch, msg(fmt.Sprintf("many-%04d", i), "u"))
		}
		big := strings.Repeat("长", 300<<10/3) // 300 KiB: four of them pass the statement bound
		for i := 0; i < 5; i++ {
			m := msg(fmt.Sprintf("big-%d", i), "u")
			m.Text = big
			batch = append(batch, m)
		}
		before := db.Statements()
		isNew, errs := in.WriteBatch(batch...)
		for i := range batch {
			if errs[i] != nil || !isNew[i] {
				t.Fatalf("%s: new %v, err %v", batch[i].ID, isNew[i], errs[i])
			}
		}
		// At least three INSERTs: 1000 rows, the rest up to the text bound,
		// the rest (MySQL: and two reads).
		if stmts := db.Statements() - before; stmts < 3 {
			t.Errorf("%d statements: the batch was not split", stmts)
		}
		n := inboxRows(t, db)
		if n != int64(len(batch)) {
			t.Fatalf("%d rows stored, want %d", n, len(batch))
		}
		for i := 0; i < 5; i++ {
			if _, text := stored(t, db, fmt.Sprintf("big-%d", i)); text != big {
				t.Fatalf("big-%d read back %d bytes, want %d", i, len(text), len(big))
			}
		}
	})
}

// Another replica storing one of a batch's msgIds between the batch's
// read and its insert (MySQL, where replicas insert in parallel): the
// batch is written again row by row, and the outcome stays exact.
func TestInboxBatchRaceFallsBack(t *testing.T) {
	if !slices.Contains(gormstoretest.Drivers(t), "mysql") {
		t.Skip("MySQL not enabled")
	}
	dbs := gormstoretest.OpenReplicas(t, "mysql", 2)
	a, b := gormstore.NewInbox(dbs[0], nil), gormstore.NewInbox(dbs[1], nil)
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	var raced bool
	var otherNew bool
	a.SetBeforeInsert(func() {
		if raced {
			return
		}
		raced = true
		var err error
		if otherNew, err = b.Accept(ctx, msg("r2", "u")); err != nil {
			t.Error(err)
		}
	})
	before := dbs[0].Statements()
	isNew, errs := a.WriteBatch(msg("r1", "u"), msg("r2", "u"), msg("r3", "u"), msg("r1", "u"))
	stmts := dbs[0].Statements() - before
	if !raced || !otherNew {
		t.Fatalf("the other replica did not store r2 in between (ran %v, new %v)", raced, otherNew)
	}
	for i, want := range []bool{true, false, true, false} {
		if errs[i] != nil || isNew[i] != want {
			t.Errorf("%d: new %v, err %v; want new %v", i, isNew[i], errs[i], want)
		}
	}
	for _, id := range []string{"r1", "r2", "r3"} {
		if n, _ := stored(t, dbs[0], id); n != 1 {
			t.Errorf("%s stored %d times", id, n)
		}
	}
	// The read, the failed INSERT, then one INSERT per message.
	if stmts != 2+4 {
		t.Errorf("%d statements, want 6 (read, failed insert, 4 rows)", stmts)
	}
}

// Two replicas writing overlapping batches at once: every msgId is stored
// once and exactly one of its deliveries is reported new (on MySQL the
// batches race between read and insert, and fall back).
func TestInboxBatchConcurrentReplicas(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dbs := gormstoretest.OpenReplicas(t, driver, 2)
		inboxes := []*gormstore.Inbox{gormstore.NewInbox(dbs[0], nil), gormstore.NewInbox(dbs[1], nil)}
		defer inboxes[0].Close()
		defer inboxes[1].Close()
		const rounds, size = 30, 16
		var mu sync.Mutex
		newCount := map[string]int{}
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				for round := 0; round < rounds; round++ {
					// Each worker writes every id of the round, in its own
					// order, half of them twice.
					var batch []adapter.Message
					for _, i := range rng.Perm(size) {
						batch = append(batch, msg(fmt.Sprintf("c%02d-%02d", round, i), "u"))
						if i%2 == 0 {
							batch = append(batch, msg(fmt.Sprintf("c%02d-%02d", round, i), "u"))
						}
					}
					isNew, errs := inboxes[w%2].WriteBatch(batch...)
					mu.Lock()
					for i, m := range batch {
						if errs[i] != nil {
							t.Error(errs[i])
						}
						if isNew[i] {
							newCount[m.ID]++
						}
					}
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		if len(newCount) != rounds*size {
			t.Errorf("%d msgIds reported new, want %d", len(newCount), rounds*size)
		}
		for id, n := range newCount {
			if n != 1 {
				t.Errorf("%s reported new %d times", id, n)
			}
		}
		n := inboxRows(t, dbs[0])
		if n != rounds*size {
			t.Errorf("%d rows stored, want %d", n, rounds*size)
		}
	})
}

// On MySQL a value too long for its column fails the whole batch it is
// in (strict mode), every member told so, nothing of it stored; on every
// driver the batch after it is written as usual.
func TestInboxBatchTooLongFailsItsBatch(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		in := gormstore.NewInbox(db, nil)
		defer in.Close()
		long := msg("t2", strings.Repeat("u", 300)) // user_key is 255 wide
		batch := []adapter.Message{msg("t1", "u"), long, msg("t3", "u"), msg("t4", "u")}
		isNew, errs := in.WriteBatch(batch...)
		n := inboxRows(t, db)
		if driver == "mysql" {
			for i := range batch {
				if errs[i] == nil || isNew[i] {
					t.Errorf("%s: new %v, err %v; want the batch's error", batch[i].ID, isNew[i], errs[i])
				}
			}
			if n != 0 {
				t.Errorf("%d rows stored from a failed batch", n)
			}
		} else if n != 4 {
			t.Errorf("SQLite: %d rows stored, want 4", n)
		}
		isNew, errs = in.WriteBatch(msg("t5", "u"), msg("t6", "u"), msg("t7", "u"))
		for i := range isNew {
			if errs[i] != nil || !isNew[i] {
				t.Errorf("next batch %d: new %v, err %v", i, isNew[i], errs[i])
			}
		}
	})
}

// BenchmarkInboxSyncLevel weighs the ways to sync the inbox's commits on
// SQLite: a commit at NORMAL followed by a sync of the WAL file outside
// the connection (commit-durable, what durableTx does), against a commit
// at synchronous=FULL (commit-full: what the connection would pay for
// every commit, the engine's included, run at FULL) and an unsynced one
// (commit-normal).
func BenchmarkInboxSyncLevel(b *testing.B) {
	ctx := context.Background()
	db := gormstoretest.Open(b, "sqlite")
	b.Run("plain-empty", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := db.Tx(ctx, func(*gorm.DB) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("durable-empty", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := db.DurableRetry(ctx, func(*gorm.DB) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	commit := func(b *testing.B, db *gormstore.DB) {
		for i := 0; i < b.N; i++ {
			err := db.Tx(ctx, func(tx *gorm.DB) error {
				return tx.Exec("INSERT INTO inbox (msg_id, user_key, message, received_at) VALUES (?, 'u', '{}', ?)",
					fmt.Sprintf("s%d", i), time.Now()).Error
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("commit-normal", func(b *testing.B) { commit(b, gormstoretest.Open(b, "sqlite")) })
	b.Run("commit-durable", func(b *testing.B) {
		db := gormstoretest.Open(b, "sqlite")
		for i := 0; i < b.N; i++ {
			err := db.DurableRetry(ctx, func(tx *gorm.DB) error {
				return tx.Exec("INSERT INTO inbox (msg_id, user_key, message, received_at) VALUES (?, 'u', '{}', ?)",
					fmt.Sprintf("s%d", i), time.Now()).Error
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("commit-full", func(b *testing.B) {
		cfg := gormstoretest.NewStorage(b, "sqlite")
		cfg.DSN = config.Secret(cfg.DSN.Reveal() + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)")
		commit(b, gormstoretest.OpenStorage(b, cfg))
	})
}
