package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
)

// Concurrent hand-off transactions behave as if run one by one, whether
// SQLite groups them into one commit or MySQL runs them side by side: one
// that fails, panics or was cancelled leaves nothing behind and does not
// take the others down.
func TestHandoffTransactionsAreIsolatedWhenGrouped(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		ctx := context.Background()
		if err := db.Gorm().Exec("CREATE TABLE group_probe (k VARCHAR(32) PRIMARY KEY)").Error; err != nil {
			t.Fatal(err)
		}
		insert := func(tx *gormstore.HandoffTx, k string) error {
			return tx.G().Exec("INSERT INTO group_probe (k) VALUES (?)", k).Error
		}

		// Hold the writer so the others queue up behind it and (on
		// SQLite) share the next commit.
		started, release := make(chan struct{}), make(chan struct{})
		blockerDone := make(chan error, 1)
		go func() {
			blockerDone <- db.Handoff(ctx, func(tx *gormstore.HandoffTx) error {
				if err := insert(tx, "blocker"); err != nil {
					return err
				}
				close(started)
				<-release
				return nil
			})
		}()
		<-started

		const n = 16
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		results := make([]error, n)
		panics := make([]any, n)
		var ready, done sync.WaitGroup
		for i := range n {
			ready.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				defer func() { panics[i] = recover() }()
				k := fmt.Sprintf("k%02d", i)
				c := ctx
				if i%4 == 3 {
					c = cancelled
				}
				ready.Done()
				results[i] = db.Handoff(c, func(tx *gormstore.HandoffTx) error {
					if err := insert(tx, k); err != nil {
						return err
					}
					switch i % 4 {
					case 1:
						return errors.New("refused")
					case 2:
						panic("member " + k)
					}
					return nil
				})
			}()
		}
		ready.Wait()
		time.Sleep(100 * time.Millisecond) // let them reach the queue
		close(release)
		if err := <-blockerDone; err != nil {
			t.Fatalf("blocker: %v", err)
		}
		done.Wait()

		var want []string
		for i := range n {
			k := fmt.Sprintf("k%02d", i)
			switch i % 4 {
			case 0:
				if results[i] != nil || panics[i] != nil {
					t.Errorf("%s: err %v, panic %v; want committed", k, results[i], panics[i])
				}
				want = append(want, k)
			case 1:
				if results[i] == nil || results[i].Error() != "refused" {
					t.Errorf("%s: err %v; want its own error", k, results[i])
				}
			case 2:
				if panics[i] != "member "+k {
					t.Errorf("%s: panic %v; want the member's panic in its caller", k, panics[i])
				}
			case 3:
				if !errors.Is(results[i], context.Canceled) {
					t.Errorf("%s: err %v; want context.Canceled", k, results[i])
				}
			}
		}
		want = append(want, "blocker")
		sort.Strings(want)
		var got []string
		if err := db.Gorm().Raw("SELECT k FROM group_probe ORDER BY k").Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("rows %v, want %v", got, want)
		}

		commits, txs := db.GroupStats()
		switch driver {
		case "sqlite":
			// 1 blocker + 12 members that reached the group (the
			// cancelled ones may give up before).
			if txs < 13 || commits >= txs {
				t.Errorf("group stats: %d commits for %d transactions; want fewer commits than transactions", commits, txs)
			}
			t.Logf("%d transactions in %d commits", txs, commits)
		default:
			// A second runner takes the members while the blocker holds
			// the first: how many share a commit depends on timing.
			if txs < 13 || commits > txs {
				t.Errorf("group stats: %d commits for %d transactions; want every member counted", commits, txs)
			}
			t.Logf("%d transactions in %d commits", txs, commits)
		}
	})
}

// A closed database refuses new hand-off transactions with an error.
func TestHandoffAfterClose(t *testing.T) {
	db := gormstoretest.Open(t, "sqlite")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	err := db.Handoff(context.Background(), func(tx *gormstore.HandoffTx) error { return nil })
	if err == nil {
		t.Fatal("Handoff on a closed database succeeded")
	}
}

// A member that ends the shared transaction itself (as SQLite does on some
// errors) must not leave the others told "committed" when they were not:
// each caller's result matches what the database holds.
func TestGroupedMemberEndingTheTransaction(t *testing.T) {
	db := gormstoretest.Open(t, "sqlite")
	probeTable(t, db)
	const n, breaker = 12, 5
	fns := make([]func(tx *gormstore.HandoffTx) error, n)
	for i := range fns {
		fns[i] = insertProbe(fmt.Sprintf("k%02d", i))
	}
	fns[breaker] = func(tx *gormstore.HandoffTx) error { return tx.G().Exec("ROLLBACK").Error }
	results := runQueued(t, db, fns...)
	stored := probeRows(t, db)
	for i := range n {
		k := fmt.Sprintf("k%02d", i)
		switch {
		case i == breaker:
			if results[i] == nil {
				t.Errorf("the member that ended the transaction was told it committed")
			}
		case (results[i] == nil) != stored[k]:
			t.Errorf("%s: result %v but stored=%v", k, results[i], stored[k])
		}
	}
}

func probeTable(t *testing.T, db *gormstore.DB) {
	t.Helper()
	if err := db.Gorm().Exec("CREATE TABLE group_probe (k VARCHAR(32) PRIMARY KEY)").Error; err != nil {
		t.Fatal(err)
	}
}

func probeRows(t *testing.T, db *gormstore.DB) map[string]bool {
	t.Helper()
	var rows []string
	if err := db.Gorm().Raw("SELECT k FROM group_probe").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, k := range rows {
		m[k] = true
	}
	return m
}

// holdWriter occupies the writer with a hand-off transaction until release,
// so that the Handoff calls started meanwhile queue up as one group.
func holdWriter(t *testing.T, db *gormstore.DB) (release func()) {
	t.Helper()
	started, rel := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.Handoff(context.Background(), func(tx *gormstore.HandoffTx) error {
			close(started)
			<-rel
			return nil
		})
	}()
	<-started
	return func() {
		close(rel)
		if err := <-done; err != nil {
			t.Errorf("writer holder: %v", err)
		}
	}
}

// runQueued starts one Handoff per fn behind a held writer, in order, and
// returns their results once all have returned.
func runQueued(t *testing.T, db *gormstore.DB, fns ...func(tx *gormstore.HandoffTx) error) []error {
	t.Helper()
	release := holdWriter(t, db)
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = db.Handoff(context.Background(), fn) }()
		time.Sleep(20 * time.Millisecond) // queue in this order
	}
	release()
	wg.Wait()
	return errs
}

func insertProbe(k string) func(tx *gormstore.HandoffTx) error {
	return func(tx *gormstore.HandoffTx) error {
		return tx.G().Exec("INSERT INTO group_probe (k) VALUES (?)", k).Error
	}
}

// A group whose COMMIT fails (forced here with a deferred foreign key) tells
// no member it committed, leaves no transaction open on the connection, and
// the innocent members commit when run again.
func TestGroupCommitFailure(t *testing.T) {
	db := gormstoretest.Open(t, "sqlite")
	probeTable(t, db)
	for _, q := range []string{
		"CREATE TABLE fk_parent (id INTEGER PRIMARY KEY)",
		"CREATE TABLE fk_child (pid INTEGER REFERENCES fk_parent(id) DEFERRABLE INITIALLY DEFERRED)",
	} {
		if err := db.Gorm().Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	errs := runQueued(t, db, insertProbe("a"), func(tx *gormstore.HandoffTx) error {
		return tx.G().Exec("INSERT INTO fk_child VALUES (42)").Error // fails at COMMIT
	}, insertProbe("c"))
	rows := probeRows(t, db)
	if errs[1] == nil {
		t.Error("the member that broke the COMMIT was told it committed")
	}
	for i, k := range map[int]string{0: "a", 2: "c"} {
		if (errs[i] == nil) != rows[k] {
			t.Errorf("%s: result %v, stored %v", k, errs[i], rows[k])
		}
	}
	if err := db.Handoff(context.Background(), insertProbe("later")); err != nil || !probeRows(t, db)["later"] {
		t.Fatalf("after a failed COMMIT a new hand-off transaction: %v (a transaction left open on the connection?)", err)
	}
}

// A member's own error that rests on an earlier member's uncommitted write
// does not stand when the group fails: it is run again.
func TestGroupMemberErrorOnLostWritesIsRetried(t *testing.T) {
	db := gormstoretest.Open(t, "sqlite")
	probeTable(t, db)
	var writes atomic.Int32
	errs := runQueued(t, db,
		func(tx *gormstore.HandoffTx) error { // writes x on its first run only
			if writes.Add(1) > 1 {
				return nil
			}
			return insertProbe("x")(tx)
		},
		func(tx *gormstore.HandoffTx) error { // refuses while x exists
			var n int64
			if err := tx.G().Raw("SELECT count(*) FROM group_probe WHERE k = 'x'").Scan(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return errors.New("refused: x exists")
			}
			return nil
		},
		func(tx *gormstore.HandoffTx) error { return tx.G().Exec("ROLLBACK").Error }, // the group fails
	)
	if errs[1] != nil && !probeRows(t, db)["x"] {
		t.Errorf("refused because of x (%v), but x never committed", errs[1])
	}
}

// runtime.Goexit in a member (t.FailNow inside fn in a test) ends the
// caller's goroutine, as it would if fn ran there, and the writer goes on
// serving.
func TestGroupMemberGoexit(t *testing.T) {
	db := gormstoretest.Open(t, "sqlite")
	probeTable(t, db)
	exited := make(chan struct{})
	var returned atomic.Bool
	go func() {
		defer close(exited)
		db.Handoff(context.Background(), func(tx *gormstore.HandoffTx) error {
			insertProbe("gone")(tx)
			runtime.Goexit()
			return nil
		})
		returned.Store(true)
	}()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the caller of a member that called runtime.Goexit is still waiting")
	}
	if returned.Load() {
		t.Error("Handoff returned to a caller whose fn called runtime.Goexit")
	}
	if err := db.Handoff(context.Background(), insertProbe("next")); err != nil {
		t.Fatalf("the next hand-off transaction: %v", err)
	}
	if rows := probeRows(t, db); rows["gone"] || !rows["next"] {
		t.Errorf("rows %v: want the Goexit member rolled back and the next committed", rows)
	}
}

// A caller whose context ends while its transaction waits for the writer
// gets its context's error at once, and its fn never runs.
func TestGroupCallerGivesUpWhileQueued(t *testing.T) {
	db := gormstoretest.Open(t, "sqlite")
	probeTable(t, db)
	release := holdWriter(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var ran atomic.Bool
	err := db.Handoff(ctx, func(tx *gormstore.HandoffTx) error { ran.Store(true); return insertProbe("late")(tx) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Handoff while the writer is held = %v, want the context's deadline", err)
	}
	release() // the writer was still held: the caller did not wait for it
	if err := db.Handoff(context.Background(), insertProbe("after")); err != nil {
		t.Fatal(err)
	}
	if rows := probeRows(t, db); ran.Load() || rows["late"] {
		t.Errorf("the abandoned transaction ran (%v) or its row exists (%v)", ran.Load(), rows)
	}
}

// The same when its transaction is already in a group, behind a slow
// member: the caller does not wait for the group.
func TestGroupCallerGivesUpInGroup(t *testing.T) {
	db := gormstoretest.Open(t, "sqlite")
	probeTable(t, db)
	release := holdWriter(t, db)
	slowDone := make(chan error, 1)
	go func() {
		slowDone <- db.Handoff(context.Background(), func(tx *gormstore.HandoffTx) error {
			time.Sleep(time.Second)
			return insertProbe("slow")(tx)
		})
	}()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var ran atomic.Bool
	errc := make(chan error, 1)
	begun := time.Now()
	go func() {
		errc <- db.Handoff(ctx, func(tx *gormstore.HandoffTx) error { ran.Store(true); return insertProbe("late")(tx) })
	}()
	time.Sleep(20 * time.Millisecond)
	release() // both join one group; the slow member runs first
	err := <-errc
	if waited := time.Since(begun); !errors.Is(err, context.DeadlineExceeded) || waited > 900*time.Millisecond {
		t.Errorf("Handoff = %v after %v, want the context's deadline before the slow member finished", err, waited)
	}
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	if rows := probeRows(t, db); ran.Load() || rows["late"] || !rows["slow"] {
		t.Errorf("abandoned ran: %v; rows %v", ran.Load(), rows)
	}
}
