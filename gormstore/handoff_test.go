package gormstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
)

// TestHandoffAssignCapacity: the conditional update never lets an agent's
// open chats pass max_chats, whatever runs concurrently on two pools.
func TestHandoffAssignCapacity(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dbs := gormstoretest.OpenReplicas(t, driver, 2)
		db1, db2 := dbs[0], dbs[1]
		ctx := context.Background()
		now := time.Date(2026, 6, 3, 2, 0, 0, 0, time.UTC)
		st := gormstore.NewHandoffStore(db1, nil)

		st2 := gormstore.NewHandoffStore(db2, nil)
		assign := func(st *gormstore.HandoffStore, max int) (no int, ok bool) {
			t.Helper()
			err := st.Transact(ctx, func(tx handoff.Tx) error {
				row, got, err := tx.Assign("a1", max, now)
				if got {
					no, ok = row.NextNo, true
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return no, ok
		}
		if _, ok := assign(st, 3); ok {
			t.Fatal("assigned to an agent without a row")
		}
		if err := st.SetPresence(ctx, "a1", handoff.Busy, now); err != nil {
			t.Fatal(err)
		}
		if _, ok := assign(st, 3); ok {
			t.Fatal("assigned to a busy agent")
		}
		if err := st.SetPresence(ctx, "a1", handoff.Online, now); err != nil {
			t.Fatal(err)
		}
		if no, ok := assign(st, 3); !ok || no != 1 {
			t.Fatalf("first assign = %d, %v", no, ok)
		}
		a, _ := st.Agent(ctx, "a1")
		if a.OpenChats != 1 || a.CurrentNo != 1 || a.NextNo != 1 || !a.LastAssignedAt.Equal(now) {
			t.Fatalf("agent after assign = %+v", a)
		}

		// 40 concurrent attempts on two pools for the 9 chats left.
		var won atomic.Int32
		seen := sync.Map{}
		var wg sync.WaitGroup
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := []*gormstore.HandoffStore{st, st2}[i%2]
				err := st.Transact(ctx, func(tx handoff.Tx) error {
					row, ok, err := tx.Assign("a1", 10, now)
					if ok {
						if _, dup := seen.LoadOrStore(row.NextNo, true); dup {
							t.Errorf("number %d handed out twice", row.NextNo)
						}
						won.Add(1)
					}
					return err
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		a, _ = st.Agent(ctx, "a1")
		if won.Load() != 9 || a.OpenChats != 10 || a.NextNo != 10 {
			t.Fatalf("won %d, agent %+v; want 9 more, 10 open", won.Load(), a)
		}

		err := st.Transact(ctx, func(tx handoff.Tx) error { return tx.Release("a1", a.CurrentNo) })
		if err != nil {
			t.Fatal(err)
		}
		a, _ = st.Agent(ctx, "a1")
		if a.OpenChats != 9 || a.CurrentNo != 0 {
			t.Fatalf("after release = %+v", a)
		}
	})
}

func TestHandoffQueueSeqAndTimers(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		ctx := context.Background()
		st := gormstore.NewHandoffStore(db, nil)
		if err := st.EnsureGroups(ctx, "g", "h"); err != nil {
			t.Fatal(err)
		}
		if err := st.EnsureGroups(ctx, "g"); err != nil { // again: a no-op
			t.Fatal(err)
		}
		now := time.Date(2026, 6, 3, 2, 0, 0, 0, time.UTC)
		var seqs []int64
		err := st.Transact(ctx, func(tx handoff.Tx) error {
			if err := tx.LockGroups("g"); err != nil {
				return err
			}
			for range 2 {
				s, err := tx.QueueBack("g")
				if err != nil {
					return err
				}
				seqs = append(seqs, s)
			}
			front, err := tx.QueueFront("g", 1)
			if err != nil {
				return err
			}
			seqs = append(seqs, front)
			base, err := tx.QueueFront("g", 2)
			seqs = append(seqs, base, base+1)
			for i, s := range seqs {
				due := now.Add(time.Duration(i) * time.Minute)
				row := &handoff.Session{UserKey: "u", ConversationID: "c", ConversationType: "1", UserID: "u",
					Group: "g", Status: handoff.StatusQueued, QueueSeq: s, Reason: handoff.ReasonKeyword, Due: due, CreatedAt: now}
				if err := tx.CreateSession(row); err != nil {
					return err
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// back 1, back 2, front -1, reserved -3, -2
		want := []int64{1, 2, -1, -3, -2}
		for i := range want {
			if seqs[i] != want[i] {
				t.Fatalf("seqs = %v, want %v", seqs, want)
			}
		}
		var order []int64
		err = st.Transact(ctx, func(tx handoff.Tx) error {
			q, err := tx.Queue("g")
			for _, s := range q {
				order = append(order, s.QueueSeq)
			}
			return err
		})
		if err != nil || len(order) != 5 || order[0] != -3 || order[4] != 2 {
			t.Fatalf("queue order = %v, %v", order, err)
		}
		due, err := st.DueSessions(ctx, now.Add(2*time.Minute), 10)
		if err != nil || len(due) != 3 || !due[0].Due.Equal(now) {
			t.Fatalf("due = %+v, %v", due, err)
		}
		due, _ = st.DueSessions(ctx, now.Add(time.Hour), 2)
		if len(due) != 2 {
			t.Fatalf("limit: %d rows", len(due))
		}
	})
}
