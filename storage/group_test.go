package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/storage"
	"github.com/dingdesk/dingdesk/storage/storagetest"
)

// Concurrent hand-off transactions behave as if run one by one, whether
// SQLite groups them into one commit or MySQL runs them side by side: one
// that fails, panics or was cancelled leaves nothing behind and does not
// take the others down.
func TestHandoffTransactionsAreIsolatedWhenGrouped(t *testing.T) {
	storagetest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := storagetest.Open(t, driver)
		ctx := context.Background()
		if err := db.Gorm.Exec("CREATE TABLE group_probe (k VARCHAR(32) PRIMARY KEY)").Error; err != nil {
			t.Fatal(err)
		}
		insert := func(tx *storage.HandoffTx, k string) error {
			return tx.G.Exec("INSERT INTO group_probe (k) VALUES (?)", k).Error
		}

		// Hold the writer so the others queue up behind it and (on
		// SQLite) share the next commit.
		started, release := make(chan struct{}), make(chan struct{})
		blockerDone := make(chan error, 1)
		go func() {
			blockerDone <- db.Handoff(ctx, func(tx *storage.HandoffTx) error {
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
				results[i] = db.Handoff(c, func(tx *storage.HandoffTx) error {
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
		if err := db.Gorm.Raw("SELECT k FROM group_probe ORDER BY k").Scan(&got).Error; err != nil {
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
			if commits != 0 || txs != 0 {
				t.Errorf("group stats on %s: %d/%d, want none", driver, commits, txs)
			}
		}
	})
}

// A closed database refuses new hand-off transactions with an error.
func TestHandoffAfterClose(t *testing.T) {
	db := storagetest.Open(t, "sqlite")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	err := db.Handoff(context.Background(), func(tx *storage.HandoffTx) error { return nil })
	if err == nil {
		t.Fatal("Handoff on a closed database succeeded")
	}
}

// A member that ends the shared transaction itself (as SQLite does on some
// errors) must not leave the others told "committed" when they were not:
// each caller's result matches what the database holds.
func TestGroupedMemberEndingTheTransaction(t *testing.T) {
	db := storagetest.Open(t, "sqlite")
	ctx := context.Background()
	if err := db.Gorm.Exec("CREATE TABLE group_probe (k VARCHAR(32) PRIMARY KEY)").Error; err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	go db.Handoff(ctx, func(tx *storage.HandoffTx) error {
		close(started)
		<-release
		return nil
	})
	<-started
	const n = 12
	results := make([]error, n)
	var ready, done sync.WaitGroup
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			results[i] = db.Handoff(ctx, func(tx *storage.HandoffTx) error {
				if i == 5 {
					return tx.G.Exec("ROLLBACK").Error
				}
				return tx.G.Exec("INSERT INTO group_probe (k) VALUES (?)", fmt.Sprintf("k%02d", i)).Error
			})
		}()
	}
	ready.Wait()
	time.Sleep(100 * time.Millisecond)
	close(release)
	done.Wait()
	var rows []string
	if err := db.Gorm.Raw("SELECT k FROM group_probe").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, k := range rows {
		stored[k] = true
	}
	for i := range n {
		k := fmt.Sprintf("k%02d", i)
		switch {
		case i == 5:
			if results[i] == nil {
				t.Errorf("the member that ended the transaction was told it committed")
			}
		case (results[i] == nil) != stored[k]:
			t.Errorf("%s: result %v but stored=%v", k, results[i], stored[k])
		}
	}
	t.Logf("results: %v", results)
}
