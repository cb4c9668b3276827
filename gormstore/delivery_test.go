package gormstore_test

import (
	"slices"

	"context"
	"github.com/dingdesk/dingdesk/adapter"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
)

// A message as large as the webhook accepts is stored whole, never cut to a
// column's size (MySQL's text holds 64 KiB; INSERT IGNORE used to turn
// "data too long" into a warning and keep a cut copy).
func TestInboxStoresLargeMessageWhole(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		in := gormstore.NewInbox(gormstoretest.Open(t, driver), nil)
		defer in.Close()
		ctx := context.Background()
		for _, size := range []int{70 << 10, 1 << 20} {
			m := msg("big-"+strings.Repeat("x", size%7), "u")
			m.ID = "big-" + time.Now().Format("150405.000000")
			m.Text = strings.Repeat("长", size/3) // 3 bytes each in UTF-8
			isNew, err := in.Accept(ctx, m)
			if err != nil || !isNew {
				t.Fatalf("%d bytes: accept = %v, %v", size, isNew, err)
			}
			pending, bad, err := in.Pending(ctx, time.Now().Add(time.Minute), 10)
			if err != nil || len(bad) != 0 {
				t.Fatalf("%d bytes: pending: %v (unreadable %v)", size, err, bad)
			}
			var found bool
			for _, p := range pending {
				if p.ID == m.ID {
					found = true
					if p.Text != m.Text {
						t.Fatalf("%d bytes: read back %d bytes", size, len(p.Text))
					}
				}
			}
			if !found {
				t.Fatalf("%d bytes: message not pending", size)
			}
		}
	})
}

// The MySQL connection runs in strict mode: a value too long for its
// column fails the write instead of being cut.
func TestMySQLConnectionIsStrict(t *testing.T) {
	if !slices.Contains(gormstoretest.Drivers(t), "mysql") {
		t.Skip("MySQL not enabled")
	}
	db := gormstoretest.Open(t, "mysql")
	var mode string
	if err := db.Gorm().Raw("SELECT @@SESSION.sql_mode").Scan(&mode).Error; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(mode, "STRICT_ALL_TABLES") {
		t.Fatalf("sql_mode = %q, want STRICT_ALL_TABLES", mode)
	}
	in := gormstore.NewInbox(db, nil)
	defer in.Close()
	m := msg("long-key", strings.Repeat("u", 300)) // user_key is 255 wide
	if _, err := in.Accept(context.Background(), m); err == nil {
		t.Fatal("a user key longer than its column was accepted (cut?)")
	}
	var n int64
	db.Gorm().Model(&gormstore.InboxRow{}).Where("msg_id = ?", "long-key").Count(&n)
	if n != 0 {
		t.Fatal("a cut row was stored")
	}

	// A DSN that sets its own, lenient sql_mode is refused at start.
	cfg := gormstoretest.NewStorage(t, "mysql")
	cfg.DSN = config.Secret(cfg.DSN.Reveal() + "?sql_mode=%27NO_ENGINE_SUBSTITUTION%27")
	if lax, err := gormstore.Open(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "is not strict") {
		if lax != nil {
			lax.Close()
		}
		t.Fatalf("open with a lenient sql_mode: %v, want refused as not strict", err)
	}
}

// An existing database whose message columns were text is widened on
// start (MySQL: 64 KiB columns would go on cutting messages).
func TestMigrateWidensTextColumns(t *testing.T) {
	if !slices.Contains(gormstoretest.Drivers(t), "mysql") {
		t.Skip("MySQL not enabled")
	}
	cfg := gormstoretest.NewStorage(t, "mysql")
	db := gormstoretest.OpenStorage(t, cfg)
	for _, q := range []string{
		"ALTER TABLE inbox MODIFY message text NOT NULL",
		"ALTER TABLE outbox MODIFY reply text NOT NULL",
		"ALTER TABLE handoff_conversations MODIFY last_question text",
	} {
		if err := db.Gorm().Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db = gormstoretest.OpenStorage(t, cfg)
	for table, col := range map[string]string{"inbox": "message", "outbox": "reply", "handoff_conversations": "last_question", "handoff_messages": "text"} {
		var typ string
		db.Gorm().Raw("SELECT data_type FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?", table, col).Scan(&typ)
		if typ != "mediumtext" {
			t.Errorf("%s.%s is %q after migrating, want mediumtext", table, col, typ)
		}
	}
}

// A row that cannot be decoded is set aside, not an error for the rest;
// once recorded as failed no sweep sees it again.
func TestTakeOverSkipsUnreadableRows(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dbs := gormstoretest.OpenReplicas(t, driver, 2)
		dead, live := dbs[0], dbs[1]
		ctx := context.Background()
		now := time.Now()
		if err := dead.Heartbeat(ctx, now); err != nil {
			t.Fatal(err)
		}
		in := gormstore.NewInbox(dead, nil)
		for _, id := range []string{"a1", "a2", "a3"} {
			if _, err := in.Accept(ctx, msg(id, "u")); err != nil {
				t.Fatal(err)
			}
		}
		in.Close()
		if err := dead.Gorm().Exec("UPDATE inbox SET message = '{\"ID\":\"a2\",' WHERE msg_id = 'a2'").Error; err != nil {
			t.Fatal(err)
		}
		taker := gormstore.NewInbox(live, nil)
		defer taker.Close()
		// While the writer beats, its rows are its own.
		if err := live.Heartbeat(ctx, now); err != nil {
			t.Fatal(err)
		}
		if msgs, bad, n, err := taker.TakeOver(ctx, now, now.Add(-time.Minute), 100); err != nil || len(msgs)+len(bad) != 0 || n != 0 {
			t.Fatalf("took over a live replica's messages: %v %v %d %v", msgs, bad, n, err)
		}
		later := now.Add(dead.ReplicaTimeout() + time.Second)
		if err := live.Heartbeat(ctx, later); err != nil {
			t.Fatal(err)
		}
		msgs, bad, n, err := taker.TakeOver(ctx, later, later.Add(-time.Minute), 100)
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 || len(msgs) != 2 || msgs[0].ID != "a1" || msgs[1].ID != "a3" || len(bad) != 1 || bad[0].MsgID != "a2" {
			t.Fatalf("takeover: taken %d, msgs %v, unreadable %v", n, msgs, bad)
		}
		if err := taker.MarkUnreadable(ctx, bad[0], later); err != nil {
			t.Fatal(err)
		}
		_, bad, _, err = taker.TakeOver(ctx, later, later.Add(time.Minute), 100)
		if err != nil || len(bad) != 0 {
			t.Fatalf("an unreadable row recorded as failed came back: %v %v", bad, err)
		}
		failed, _ := taker.Failed(ctx, 10)
		if len(failed) != 1 || failed[0].MsgID != "a2" || !strings.Contains(failed[0].LastError, "unreadable") {
			t.Fatalf("failed rows = %+v", failed)
		}
	})
}

// A poison message is recorded as failed with its reason, and the apology
// is written in the same transaction; a handled message gets none.
func TestInboxMarkFailed(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		in := gormstore.NewInbox(db, nil)
		defer in.Close()
		ctx := context.Background()
		for _, id := range []string{"p1", "p2"} {
			if _, err := in.Accept(ctx, msg(id, "u")); err != nil {
				t.Fatal(err)
			}
		}
		sorry := adapter.Reply{ConversationID: "cid1", UserID: "u", Text: "抱歉"}
		items, err := in.MarkFailed(ctx, "p1", 5, "panic: boom", time.Now(), sorry)
		if err != nil || len(items) != 1 || items[0].Reply.Text != "抱歉" {
			t.Fatalf("mark failed: %+v %v", items, err)
		}
		if items, err := in.MarkFailed(ctx, "p1", 6, "again", time.Now(), sorry); err != nil || len(items) != 0 {
			t.Fatalf("second mark failed: %+v %v, want no second apology", items, err)
		}
		pending, _, _ := in.Pending(ctx, time.Now().Add(time.Minute), 10)
		if len(pending) != 1 || pending[0].ID != "p2" {
			t.Fatalf("pending = %v, want p2 only", pending)
		}
		failed, _ := in.Failed(ctx, 10)
		if len(failed) != 1 || failed[0].Attempts != 5 || failed[0].LastError != "panic: boom" {
			t.Fatalf("failed = %+v", failed)
		}
	})
}

// The readiness probe writes like Accept does: it fails when the inbox
// refuses inserts although the database answers pings.
func TestInboxProbeFailsWhenWritesAreRefused(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		in := gormstore.NewInbox(db, nil)
		defer in.Close()
		ctx := context.Background()
		for i := 0; i < 2; i++ {
			if err := in.Probe(ctx); err != nil {
				t.Fatalf("probe %d on a healthy database: %v", i, err)
			}
		}
		RefuseInboxWrites(t, db)
		if err := db.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		if err := in.Probe(ctx); err == nil {
			t.Fatal("probe passed while the inbox refuses writes")
		}
		if _, err := in.Accept(ctx, msg("x1", "u")); err == nil {
			t.Fatal("accept passed while the inbox refuses writes")
		}
	})
}

// RefuseInboxWrites makes every insert into the inbox fail, as a full disk
// or a read-only database would, while reads and pings still work.
func RefuseInboxWrites(t *testing.T, db *gormstore.DB) {
	t.Helper()
	q := "CREATE TRIGGER refuse_inbox BEFORE INSERT ON inbox BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
	if db.Driver == "mysql" {
		q = "CREATE TRIGGER refuse_inbox BEFORE INSERT ON inbox FOR EACH ROW SIGNAL SQLSTATE 'HY000' SET MESSAGE_TEXT = 'The table is full'"
	}
	if err := db.Gorm().Exec(q).Error; err != nil {
		t.Fatal(err)
	}
}
