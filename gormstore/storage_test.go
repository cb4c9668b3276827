package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"gorm.io/gorm"
)

func msg(id, user string) adapter.Message {
	return adapter.Message{ID: id, ConversationID: "cid1", ConversationType: adapter.Private,
		SenderID: user, Kind: adapter.KindText, Text: "你好 " + id, CreatedAt: time.Now().UTC()}
}

func TestMigrateConcurrently(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		cfg := gormstoretest.NewStorage(t, driver)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db, err := gormstore.Open(context.Background(), cfg, nil)
				if err != nil {
					errs <- err
					return
				}
				db.Close()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent migrate: %v", err)
		}
	})
}

func TestInboxDeduplicates(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		// Two "replicas" on one database receive the same deliveries.
		dbs := gormstoretest.OpenReplicas(t, driver, 2)
		a, b := gormstore.NewInbox(dbs[0], nil), gormstore.NewInbox(dbs[1], nil)
		defer a.Close()
		defer b.Close()
		ctx := context.Background()
		const n = 50
		var mu sync.Mutex
		accepted := map[string]int{}
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			for _, in := range []*gormstore.Inbox{a, b, a} {
				wg.Add(1)
				go func(in *gormstore.Inbox, id string) {
					defer wg.Done()
					isNew, err := in.Accept(ctx, msg(id, "u"+id))
					if err != nil {
						t.Error(err)
						return
					}
					if isNew {
						mu.Lock()
						accepted[id]++
						mu.Unlock()
					}
				}(in, fmt.Sprintf("msg-%03d", i))
			}
		}
		wg.Wait()
		if len(accepted) != n {
			t.Fatalf("accepted %d distinct ids, want %d", len(accepted), n)
		}
		for id, c := range accepted {
			if c != 1 {
				t.Errorf("%s accepted %d times", id, c)
			}
		}
		pending, _, err := a.Pending(ctx, time.Now().Add(time.Minute), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != n {
			t.Fatalf("pending %d, want %d", len(pending), n)
		}
		if pending[0].Text == "" || pending[0].ConversationID != "cid1" {
			t.Fatalf("pending message lost its fields: %+v", pending[0])
		}
	})
}

func TestInboxHandledAndPrune(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		in := gormstore.NewInbox(db, nil)
		defer in.Close()
		ctx := context.Background()
		for _, id := range []string{"m1", "m2"} {
			if _, err := in.Accept(ctx, msg(id, "u")); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Tx(ctx, func(tx *gorm.DB) error { return db.MarkHandled(tx, "m1", time.Now()) }); err != nil {
			t.Fatal(err)
		}
		err := db.Tx(ctx, func(tx *gorm.DB) error { return db.MarkHandled(tx, "m1", time.Now()) })
		if !errors.Is(err, gormstore.ErrAlreadyHandled) {
			t.Fatalf("second MarkHandled = %v, want ErrAlreadyHandled", err)
		}
		if err := db.Tx(ctx, func(tx *gorm.DB) error { return db.MarkHandled(tx, "not-in-inbox", time.Now()) }); err != nil {
			t.Fatalf("MarkHandled of an unknown id = %v, want nil", err)
		}
		pending, _, _ := in.Pending(ctx, time.Now().Add(time.Minute), 10)
		if len(pending) != 1 || pending[0].ID != "m2" {
			t.Fatalf("pending = %+v, want only m2", pending)
		}
		n, err := in.Prune(ctx, time.Now().Add(time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("prune = %d, %v; want 1 handled row", n, err)
		}
		// m1 is forgotten: a very late redelivery is accepted again.
		isNew, _ := in.Accept(ctx, msg("m1", "u"))
		if !isNew {
			t.Fatal("pruned msgId still deduplicated")
		}
		isNew, _ = in.Accept(ctx, msg("m2", "u"))
		if isNew {
			t.Fatal("unhandled msgId accepted twice")
		}
	})
}

func TestOutboxClaimOnce(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dbs := gormstoretest.OpenReplicas(t, driver, 3)
		db1, db2, db3 := dbs[0], dbs[1], dbs[2]
		ctx := context.Background()
		now := time.Now()
		beat := func(at time.Time, dbs ...*gormstore.DB) {
			for _, db := range dbs {
				if err := db.Heartbeat(ctx, at); err != nil {
					t.Fatal(err)
				}
			}
		}
		beat(now, db1, db2, db3)
		var items []gormstore.OutboxItem
		err := db1.Tx(ctx, func(tx *gorm.DB) (err error) {
			items, err = db1.EnqueueReplies(tx, now,
				adapter.Reply{ConversationID: "c", UserID: "u", Text: "一"},
				adapter.Reply{ConversationID: "c", UserID: "u", Text: "二"})
			return err
		})
		if err != nil || len(items) != 2 || items[0].ID >= items[1].ID || items[0].Reply.Text != "一" || items[1].Reply.Text != "二" {
			t.Fatalf("enqueue: %+v %v", items, err)
		}
		ids := []int64{items[0].ID, items[1].ID}
		s1, s2, s3 := gormstore.NewOutboxStore(db1), gormstore.NewOutboxStore(db2), gormstore.NewOutboxStore(db3)
		// New rows belong to their writer while its heartbeat is fresh.
		if it, err := s2.Claim(ctx, ids[0], now); err != nil || it != nil {
			t.Fatalf("another replica claimed a row of a live replica: %+v %v", it, err)
		}
		if due, err := s2.Due(ctx, now, 10); err != nil || len(due) != 0 {
			t.Fatalf("due = %v (%v) while their writer is alive", due, err)
		}
		// The writer dies: its heartbeat stops; the others beat on.
		now = now.Add(db1.ReplicaTimeout() + time.Second)
		beat(now, db2, db3)
		var wg sync.WaitGroup
		claims := make(chan *gormstore.OutboxItem, 8)
		for _, s := range []*gormstore.OutboxStore{s2, s3, s2, s3} {
			wg.Add(1)
			go func(s *gormstore.OutboxStore) {
				defer wg.Done()
				it, err := s.Claim(ctx, ids[0], now)
				if err != nil {
					t.Error(err)
				}
				if it != nil {
					claims <- it
				}
			}(s)
		}
		wg.Wait()
		close(claims)
		var got []*gormstore.OutboxItem
		for it := range claims {
			got = append(got, it)
		}
		if len(got) != 1 || got[0].Reply.Text != "一" {
			t.Fatalf("claims = %d, want exactly one", len(got))
		}
		// The dead writer's other row is due; the claimed one is held by a
		// live replica.
		if due, _ := s2.Due(ctx, now, 10); len(due) != 1 || due[0] != ids[1] {
			t.Fatalf("due while the claim holds = %v, want only the dead writer's other row", due)
		}
		// A clean shutdown hands the work over at once.
		if err := db2.Retire(ctx, now); err != nil {
			t.Fatal(err)
		}
		if err := db3.Retire(ctx, now); err != nil {
			t.Fatal(err)
		}
		if due, _ := s1.Due(ctx, now, 10); len(due) != 1 || due[0] != ids[0] {
			t.Fatalf("due after its holder retired = %v, want the claimed row (the other is s1's own)", due)
		}
		if err := s1.MarkRetry(ctx, ids[0], 1, now.Add(time.Hour), "503"); err != nil {
			t.Fatal(err)
		}
		if it, err := s2.Claim(ctx, ids[0], now); err != nil || it != nil {
			t.Fatalf("claimed a row before its next attempt: %+v %v", it, err)
		}
		if err := s1.MarkFailed(ctx, ids[0], 2, "quota exhausted"); err != nil {
			t.Fatal(err)
		}
		if err := s1.MarkSent(ctx, now, ids[1]); err != nil {
			t.Fatal(err)
		}
		counts, _ := s1.Counts(ctx)
		if counts[gormstore.OutboxFailed] != 1 || counts[gormstore.OutboxSent] != 1 {
			t.Fatalf("counts = %v", counts)
		}
		failed, _ := s1.Failed(ctx, 5)
		if len(failed) != 1 || failed[0].LastError != "quota exhausted" {
			t.Fatalf("failed = %+v", failed)
		}
	})
}

func TestHitStoreAddsUp(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		s := gormstore.NewHitStore(gormstoretest.Open(t, driver))
		ctx := context.Background()
		if err := s.Flush(ctx, map[string]int64{"vpn": 2, "wifi": 1}); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(ctx, map[string]int64{"vpn": 3}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx)
		if err != nil || got["vpn"] != 5 || got["wifi"] != 1 {
			t.Fatalf("hits = %v, %v; want vpn 5, wifi 1", got, err)
		}
	})
}

// TestDurableRetrySyncsOnlyItsTransaction checks that on SQLite the inbox's
// transactions are synced before DurableRetry returns (in WAL mode: the
// commit at NORMAL, then the WAL file synced outside the connection;
// otherwise the commit at FULL) while every other transaction keeps the
// DSN's level and is not synced.
func TestDurableRetrySyncsOnlyItsTransaction(t *testing.T) {
	db := gormstoretest.Open(t, "sqlite")
	ctx := context.Background()
	level := func(tx *gorm.DB) int {
		var n int
		if err := tx.Raw("PRAGMA synchronous").Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	const normal, full = 1, 2
	if !db.SyncsWAL() {
		t.Fatal("a file database in WAL mode does not sync its WAL itself")
	}
	var inside int
	before := db.WALSyncs()
	if err := db.DurableRetry(ctx, func(tx *gorm.DB) error { inside = level(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	if inside != normal || db.WALSyncs() != before+1 {
		t.Errorf("DurableRetry: synchronous %d inside, %d WAL syncs; want NORMAL and one sync after the commit", inside, db.WALSyncs()-before)
	}
	var after int
	if err := db.Tx(ctx, func(tx *gorm.DB) error { after = level(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	if after != normal || db.WALSyncs() != before+1 {
		t.Errorf("another transaction: synchronous %d, %d WAL syncs; want NORMAL and none", after, db.WALSyncs()-before-1)
	}
	// A failing transaction syncs nothing, and its error comes back.
	boom := errors.New("boom")
	if err := db.DurableRetry(ctx, func(tx *gorm.DB) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("DurableRetry error = %v, want boom", err)
	}
	if db.WALSyncs() != before+1 {
		t.Errorf("a failed DurableRetry synced the WAL")
	}
	// A rollback journal instead of WAL: the transaction commits at FULL,
	// and the setting is restored after it.
	cfg := gormstoretest.NewStorage(t, "sqlite")
	cfg.DSN = config.Secret(cfg.DSN.Reveal() + "?_pragma=journal_mode(DELETE)&_pragma=synchronous(NORMAL)")
	db = gormstoretest.OpenStorage(t, cfg)
	if db.SyncsWAL() {
		t.Fatal("a rollback-journal database has no WAL to sync")
	}
	if err := db.DurableRetry(ctx, func(tx *gorm.DB) error { inside = level(tx); return nil }); err != nil || inside != full {
		t.Errorf("journal_mode=DELETE: synchronous inside DurableRetry %d (err %v), want FULL", inside, err)
	}
	if err := db.Tx(ctx, func(tx *gorm.DB) error { after = level(tx); return nil }); err != nil || after != normal {
		t.Errorf("journal_mode=DELETE: after DurableRetry %d (err %v), want NORMAL", after, err)
	}
	// synchronous=OFF syncs nothing at checkpoints either, so syncing the
	// WAL afterwards would not do: the commit runs at FULL.
	cfg = gormstoretest.NewStorage(t, "sqlite")
	cfg.DSN = config.Secret(cfg.DSN.Reveal() + "?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	db = gormstoretest.OpenStorage(t, cfg)
	syncs := db.WALSyncs()
	if err := db.DurableRetry(ctx, func(tx *gorm.DB) error { inside = level(tx); return nil }); err != nil || inside != full || db.WALSyncs() != syncs {
		t.Errorf("synchronous=OFF: inside DurableRetry %d (err %v, %d WAL syncs), want FULL and none", inside, err, db.WALSyncs()-syncs)
	}
	if err := db.Tx(ctx, func(tx *gorm.DB) error { after = level(tx); return nil }); err != nil || after != 0 {
		t.Errorf("synchronous=OFF: after DurableRetry %d (err %v), want OFF", after, err)
	}
	// A level the admin chose in the DSN is kept, not reset to NORMAL.
	const extra = 3
	cfg = gormstoretest.NewStorage(t, "sqlite")
	cfg.DSN = config.Secret(cfg.DSN.Reveal() + "?_pragma=journal_mode(WAL)&_pragma=synchronous(EXTRA)")
	db = gormstoretest.OpenStorage(t, cfg)
	if err := db.DurableRetry(ctx, func(tx *gorm.DB) error { inside = level(tx); return nil }); err != nil || inside != extra {
		t.Errorf("DSN synchronous=EXTRA: inside DurableRetry %d (err %v), want EXTRA", inside, err)
	}
	if err := db.Tx(ctx, func(tx *gorm.DB) error { after = level(tx); return nil }); err != nil || after != extra {
		t.Errorf("DSN synchronous=EXTRA: after DurableRetry %d (err %v), want EXTRA", after, err)
	}
}

// Text that needs escaping comes back byte for byte on every driver (on
// MySQL the driver escapes arguments client-side: interpolateParams).
func TestTextRoundTripsExactly(t *testing.T) {
	texts := []string{
		`它's "quoted" \ back\slash \' \" \\'; DROP TABLE inbox; --`,
		"多行\n换行\r\n制表\t和 emoji 😀🙏 和全角：，。",
		"０x5c 镕 ¥ 乾隆 \x7f end",
		"%_ like wildcards %% __",
	}
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		in := gormstore.NewInbox(gormstoretest.Open(t, driver), nil)
		defer in.Close()
		ctx := context.Background()
		for i, text := range texts {
			m := msg(fmt.Sprintf("rt-%d", i), "u")
			m.Text = text
			if _, err := in.Accept(ctx, m); err != nil {
				t.Fatalf("%q: %v", text, err)
			}
		}
		pending, _, err := in.Pending(ctx, time.Now().Add(time.Minute), 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, p := range pending {
			got[p.ID] = p.Text
		}
		for i, text := range texts {
			if g := got[fmt.Sprintf("rt-%d", i)]; g != text {
				t.Errorf("stored %q, read back %q", text, g)
			}
		}
	})
}

// A transaction whose COMMIT fails (forced with a deferred foreign key)
// leaves nothing open on SQLite's only connection: the next one works.
func TestFailedCommitLeavesNoTransactionOpen(t *testing.T) {
	db := gormstoretest.Open(t, "sqlite")
	for _, q := range []string{
		"CREATE TABLE fk_parent (id INTEGER PRIMARY KEY)",
		"CREATE TABLE fk_child (pid INTEGER REFERENCES fk_parent(id) DEFERRABLE INITIALLY DEFERRED)",
	} {
		if err := db.Gorm().Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for name, run := range map[string]func(context.Context, func(*gorm.DB) error) error{"Tx": db.Tx, "DurableRetry": db.DurableRetry} {
		if err := run(ctx, func(tx *gorm.DB) error { return tx.Exec("INSERT INTO fk_child VALUES (42)").Error }); err == nil {
			t.Fatalf("%s: a COMMIT breaking a foreign key succeeded", name)
		}
		if err := run(ctx, func(tx *gorm.DB) error { return tx.Exec("INSERT INTO fk_parent VALUES (NULL)").Error }); err != nil {
			t.Fatalf("%s: the next transaction after a failed COMMIT: %v", name, err)
		}
	}
	var parents, children int64
	db.Gorm().Raw("SELECT count(*) FROM fk_parent").Scan(&parents)
	db.Gorm().Raw("SELECT count(*) FROM fk_child").Scan(&children)
	if parents != 2 || children != 0 {
		t.Errorf("parents %d, children %d; want 2 and 0", parents, children)
	}
}
