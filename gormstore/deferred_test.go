package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
)

// botAnswer does what the engine's transaction does for a bot-answered
// message: lock the conversation, record the question and the answer
// (the answer's line names its reply), the bot turn, save the
// conversation, mark the message handled.
func botAnswer(tx handoff.Tx, user, msgID string, now time.Time) error {
	key := "c-" + user + "|" + user
	c, err := tx.LockConversation(key)
	if err != nil {
		return err
	}
	isNew := c == nil
	if isNew {
		c = &handoff.Conversation{UserKey: key, ConversationID: "c-" + user, ConversationType: adapter.Private,
			UserID: user, CreatedAt: now}
	}
	c.Misses++
	c.LastQuestion, c.LastQuestionMsg, c.ChangedAt = "问题 "+msgID, msgID, now
	replies := []adapter.Reply{{ConversationID: c.ConversationID, UserID: user, Format: adapter.Text, Text: "答案 " + msgID}}
	lines := []handoff.Line{
		{UserKey: key, Direction: handoff.DirIn, Sender: handoff.SenderUser, Kind: adapter.KindText, Text: "问题 " + msgID, MsgID: msgID, CreatedAt: now},
		{UserKey: key, Direction: handoff.DirOut, Sender: handoff.SenderBot, Kind: adapter.KindText, Text: "答案 " + msgID, Reply: 1, CreatedAt: now},
	}
	if err := tx.Record(now, replies, lines); err != nil {
		return err
	}
	if err := tx.AddBotTurn(key, handoff.OutcomeAnswer, "e1", 0.9, now); err != nil {
		return err
	}
	if isNew {
		err = tx.CreateConversation(c)
	} else {
		err = tx.SaveConversation(c)
	}
	if err != nil {
		return err
	}
	return tx.MarkHandled(msgID, now)
}

func accept(t *testing.T, db *gormstore.DB, ids ...string) {
	t.Helper()
	in := gormstore.NewInbox(db, time.Now)
	defer in.Close()
	for _, id := range ids {
		if _, err := in.Accept(context.Background(), adapter.Message{ID: id, ConversationID: "c", SenderID: "u", Text: "q"}); err != nil {
			t.Fatal(err)
		}
	}
}

// A group of bot answers defers its rows and writes them with one
// statement per table: every row is there, each answer's transcript line
// points at its own outbox row, a later member sees what an earlier one
// saved, and a member that fails leaves nothing behind.
func TestDeferredWritesOfAGroup(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		ctx := context.Background()
		now := time.Date(2026, 6, 3, 2, 0, 0, 0, time.UTC)
		const n = 8
		var ids []string
		for i := range n {
			ids = append(ids, fmt.Sprintf("m%d", i))
		}
		accept(t, db, ids...)

		txs := make([]*gormstore.HandoffTx, n+2)
		var fns []func(tx *gormstore.HandoffTx) error
		var keys []string
		for i := range n {
			user := fmt.Sprintf("u%d", i%6) // users 0 and 1 answer twice: the overlay
			keys = append(keys, "c-"+user+"|"+user)
			fns = append(fns, func(tx *gormstore.HandoffTx) error {
				txs[i] = tx
				return botAnswer(tx, user, ids[i], now)
			})
		}
		// A member that records an answer and fails: nothing of it stays.
		fns = append(fns, func(tx *gormstore.HandoffTx) error {
			if err := botAnswer(tx, "u9", "m-failed", now); err != nil {
				return err
			}
			return errors.New("refused")
		})
		keys = append(keys, "c-u9|u9")
		before := db.Statements()
		results := db.HandoffGroupFor(ctx, keys, fns...)
		statements := db.Statements() - before
		for i, err := range results[:n] {
			if err != nil {
				t.Fatalf("member %d: %v", i, err)
			}
		}
		if results[n] == nil || results[n].Error() != "refused" {
			t.Fatalf("failing member: %v, want its own error", results[n])
		}
		// One read of the 7 conversations ahead, one insert per table
		// (outbox, transcript, bot turns, new conversations; users 0 and 1
		// answer twice and read the group's own version the second time),
		// one update of the inbox.
		if max := int64(1 + 5); statements > max {
			t.Errorf("group of %d answers sent %d statements, want at most %d", n, statements, max)
		}
		t.Logf("%d bot answers + 1 failed member: %d statements", n, statements)

		st := gormstore.NewHandoffStore(db, nil)
		for i := range n {
			items := txs[i].Items()
			if len(items) != 1 || items[0].ID == 0 {
				t.Fatalf("member %d items %+v", i, items)
			}
			var body string
			if err := db.QueryRow(ctx, "SELECT reply FROM outbox WHERE id = ?", items[0].ID).Scan(&body); err != nil {
				t.Fatal(err)
			}
			if want := "答案 " + ids[i]; !strings.Contains(body, want) {
				t.Errorf("outbox %d = %s, want %s", items[0].ID, body, want)
			}
		}
		for u := range 6 {
			key := fmt.Sprintf("c-u%d|u%d", u, u)
			c, err := st.Conversation(ctx, key)
			if err != nil || c == nil {
				t.Fatalf("conversation %s: %v, %v", key, c, err)
			}
			wantMisses, last := 1, fmt.Sprintf("m%d", u)
			if u < 2 {
				wantMisses, last = 2, fmt.Sprintf("m%d", u+6)
			}
			if c.Misses != wantMisses || c.LastQuestionMsg != last || !c.CreatedAt.Equal(now) {
				t.Errorf("%s: misses %d last %s created %v; want %d, %s", key, c.Misses, c.LastQuestionMsg, c.CreatedAt, wantMisses, last)
			}
			lines, err := st.Messages(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != 2*wantMisses {
				t.Fatalf("%s: %d lines, want %d", key, len(lines), 2*wantMisses)
			}
			for _, l := range lines {
				if l.Direction != handoff.DirOut {
					continue
				}
				var body string
				if err := db.QueryRow(ctx, "SELECT reply FROM outbox WHERE id = ?", l.OutboxID).Scan(&body); err != nil || !strings.Contains(body, l.Text) {
					t.Errorf("line %q points at outbox %d = %s (%v)", l.Text, l.OutboxID, body, err)
				}
			}
		}
		if c, _ := st.Conversation(ctx, "c-u9|u9"); c != nil {
			t.Errorf("the failed member's conversation was written: %+v", c)
		}

		// A second round: every conversation exists, so the group writes
		// them back with one upsert.
		var again, keys2 []string
		var fns2 []func(tx *gormstore.HandoffTx) error
		for u := range 6 {
			again = append(again, fmt.Sprintf("r%d", u))
			keys2 = append(keys2, fmt.Sprintf("c-u%d|u%d", u, u))
			fns2 = append(fns2, func(tx *gormstore.HandoffTx) error { return botAnswer(tx, fmt.Sprintf("u%d", u), again[u], now) })
		}
		accept(t, db, again...)
		before = db.Statements()
		for i, err := range db.HandoffGroupFor(ctx, keys2, fns2...) {
			if err != nil {
				t.Fatalf("second round, member %d: %v", i, err)
			}
		}
		if got, max := db.Statements()-before, int64(1+5); got > max {
			t.Errorf("second round sent %d statements, want at most %d", got, max)
		}
		for u := range 6 {
			c, err := st.Conversation(ctx, fmt.Sprintf("c-u%d|u%d", u, u))
			want := 2
			if u < 2 {
				want = 3
			}
			if err != nil || c.Misses != want || c.LastQuestionMsg != again[u] || !c.CreatedAt.Equal(now) || c.LastQuestion != "问题 "+again[u] {
				t.Errorf("u%d after the upsert: %+v (%v); want misses %d, last %s", u, c, err, want, again[u])
			}
		}

		var count int64
		for q, want := range map[string]int64{
			"SELECT COUNT(*) FROM inbox WHERE handled = 1": n + 6,
			"SELECT COUNT(*) FROM bot_turns":               n + 6,
			"SELECT COUNT(*) FROM outbox":                  n + 6,
			"SELECT COUNT(*) FROM handoff_messages":        2 * (n + 6),
		} {
			if err := db.QueryRow(ctx, q).Scan(&count); err != nil || count != want {
				t.Errorf("%s = %d (%v), want %d", q, count, err, want)
			}
		}
	})
}

// A member's first statement that is not deferred writes everything
// deferred before it runs, so it reads every earlier write; when it then
// fails, its savepoint takes back its own rows only.
func TestDeferredWritesBeforeADirectStatement(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		ctx := context.Background()
		now := time.Date(2026, 6, 3, 2, 0, 0, 0, time.UTC)
		accept(t, db, "m1", "m2", "m3")
		var seen int64
		results := db.HandoffGroup(ctx,
			func(tx *gormstore.HandoffTx) error { return botAnswer(tx, "u1", "m1", now) },
			func(tx *gormstore.HandoffTx) error {
				if err := botAnswer(tx, "u2", "m2", now); err != nil {
					return err
				}
				// A direct read: m1's and this member's own rows are there.
				if err := tx.G().Raw("SELECT COUNT(*) FROM outbox").Scan(&seen).Error; err != nil {
					return err
				}
				return errors.New("refused")
			},
			func(tx *gormstore.HandoffTx) error { return botAnswer(tx, "u3", "m3", now) },
		)
		if results[0] != nil || results[2] != nil || results[1] == nil || results[1].Error() != "refused" {
			t.Fatalf("results %v", results)
		}
		if seen != 2 {
			t.Errorf("direct read saw %d outbox rows, want 2 (the earlier member's and its own)", seen)
		}
		var handled []string
		if err := db.Gorm().Raw("SELECT msg_id FROM inbox WHERE handled = 1 ORDER BY msg_id").Scan(&handled).Error; err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(handled) != "[m1 m3]" {
			t.Errorf("handled %v, want [m1 m3]", handled)
		}
		var outbox int64
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM outbox").Scan(&outbox); err != nil || outbox != 2 {
			t.Errorf("outbox rows %d (%v), want 2", outbox, err)
		}
	})
}

// A deferred "handled" that finds the message handled already fails the
// group (every member is run again alone, where only that one is a
// no-op); messages that are not in the inbox (made up) are fine.
func TestDeferredHandledConflict(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		ctx := context.Background()
		now := time.Date(2026, 6, 3, 2, 0, 0, 0, time.UTC)
		accept(t, db, "m1", "m2", "done")
		st := gormstore.NewHandoffStore(db, nil)
		if err := st.Transact(ctx, func(tx handoff.Tx) error { return tx.MarkHandled("done", now) }); err != nil {
			t.Fatal(err)
		}
		ok := db.HandoffGroup(ctx,
			func(tx *gormstore.HandoffTx) error { return botAnswer(tx, "u1", "m1", now) },
			func(tx *gormstore.HandoffTx) error { return botAnswer(tx, "u2", "made-up", now) },
		)
		if ok[0] != nil || ok[1] != nil {
			t.Fatalf("a made-up message failed its group: %v", ok)
		}
		failed := db.HandoffGroup(ctx,
			func(tx *gormstore.HandoffTx) error { return botAnswer(tx, "u3", "m2", now) },
			func(tx *gormstore.HandoffTx) error { return botAnswer(tx, "u4", "done", now) },
		)
		for i, err := range failed {
			if !errors.Is(err, gormstore.ErrGroupAborted) {
				t.Errorf("member %d: %v, want the group aborted", i, err)
			}
		}
		if c, _ := st.Conversation(ctx, "c-u3|u3"); c != nil {
			t.Errorf("the aborted group's conversation was written")
		}
		// Alone, as DB.handoff runs them again: m2 is answered, "done" is
		// a no-op.
		if err := st.Transact(ctx, func(tx handoff.Tx) error { return botAnswer(tx, "u3", "m2", now) }); err != nil {
			t.Fatal(err)
		}
		err := st.Transact(ctx, func(tx handoff.Tx) error { return botAnswer(tx, "u4", "done", now) })
		if !errors.Is(err, handoff.ErrAlreadyHandled) {
			t.Errorf("the handled message alone: %v, want ErrAlreadyHandled", err)
		}
		// Twice in one group: the second is handled by the first.
		accept(t, db, "twice")
		twice := db.HandoffGroup(ctx,
			func(tx *gormstore.HandoffTx) error { return botAnswer(tx, "u5", "twice", now) },
			func(tx *gormstore.HandoffTx) error { return botAnswer(tx, "u5", "twice", now) },
		)
		if twice[0] != nil || !errors.Is(twice[1], handoff.ErrAlreadyHandled) {
			t.Errorf("the same message twice in a group: %v", twice)
		}
	})
}

// Conversations read ahead for a group are not trusted after a member
// wrote directly: a later member reads what that write left.
func TestReadAheadAfterADirectWrite(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		ctx := context.Background()
		now := time.Date(2026, 6, 3, 2, 0, 0, 0, time.UTC)
		accept(t, db, "m1", "m2", "m3")
		st := gormstore.NewHandoffStore(db, nil)
		if err := st.Transact(ctx, func(tx handoff.Tx) error { return botAnswer(tx, "u1", "m1", now) }); err != nil {
			t.Fatal(err)
		}
		key := "c-u1|u1"
		results := db.HandoffGroupFor(ctx, []string{"c-u2|u2", "", key},
			func(tx *gormstore.HandoffTx) error { return botAnswer(tx, "u2", "m2", now) },
			func(tx *gormstore.HandoffTx) error {
				return tx.G().Exec("UPDATE handoff_conversations SET misses = 40 WHERE user_key = ?", key).Error
			},
			func(tx *gormstore.HandoffTx) error { return botAnswer(tx, "u1", "m3", now) },
		)
		for i, err := range results {
			if err != nil {
				t.Fatalf("member %d: %v", i, err)
			}
		}
		if c, err := st.Conversation(ctx, key); err != nil || c.Misses != 41 {
			t.Fatalf("conversation after a direct write and an answer: %+v (%v), want misses 41", c, err)
		}
		if c, err := st.Conversation(ctx, "c-u2|u2"); err != nil || c == nil || c.Misses != 1 {
			t.Fatalf("the first member's conversation: %+v (%v)", c, err)
		}
	})
}

// On MySQL a hand-off transaction runs at READ COMMITTED, grouped or alone
// (what DB.handoff's comment relies on: exact reads after a lock, no gap
// locks for the first messages of new users).
func TestHandoffIsolationLevel(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		if driver != "mysql" {
			t.Skip("SQLite serialises writers")
		}
		db := gormstoretest.Open(t, driver)
		ctx := context.Background()
		// The transaction's own level (a session variable would show the
		// session's default): InnoDB's record of it, once it has started.
		level := func(tx *gormstore.HandoffTx) (string, error) {
			var n int64
			if err := tx.G().Raw("SELECT COUNT(*) FROM inbox FOR UPDATE").Scan(&n).Error; err != nil {
				return "", err
			}
			var l string
			err := tx.G().Raw("SELECT trx_isolation_level FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = CONNECTION_ID()").Scan(&l).Error
			return l, err
		}
		var alone, grouped [2]string
		if err := db.Handoff(ctx, func(tx *gormstore.HandoffTx) (err error) { alone[0], err = level(tx); return }); err != nil {
			t.Fatal(err)
		}
		results := db.HandoffGroup(ctx,
			func(tx *gormstore.HandoffTx) (err error) { grouped[0], err = level(tx); return },
			func(tx *gormstore.HandoffTx) (err error) { grouped[1], err = level(tx); return })
		for _, err := range results {
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, l := range []string{alone[0], grouped[0], grouped[1]} {
			if l != "READ COMMITTED" {
				t.Errorf("isolation %q, want READ COMMITTED (alone %q, grouped %q)", l, alone[0], grouped)
			}
		}
	})
}

// A member chosen as a deadlock victim before it took a savepoint (its
// first statement, a locking read that was not read ahead): InnoDB rolled
// back the group's whole transaction, so no member may be told it
// committed; each runs again alone.
func TestGroupDeadlockVictimFailsTheGroup(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		if driver != "mysql" {
			t.Skip("SQLite has one writer: no deadlocks")
		}
		db := gormstoretest.Open(t, driver)
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Second)
		for _, q := range []string{"CREATE TABLE lockrow (id INT PRIMARY KEY, v INT)", "INSERT INTO lockrow VALUES (1, 0)",
			"CREATE TABLE probe (k VARCHAR(16) PRIMARY KEY)", "CREATE TABLE heavy (id INT PRIMARY KEY)"} {
			if err := db.Gorm().Exec(q).Error; err != nil {
				t.Fatal(err)
			}
		}
		accept(t, db, "mz")
		st := gormstore.NewHandoffStore(db, nil)
		if err := st.Transact(ctx, func(tx handoff.Tx) error {
			return tx.CreateConversation(&handoff.Conversation{UserKey: "Y", ConversationID: "cy", ConversationType: adapter.Private,
				UserID: "y", CreatedAt: now, ChangedAt: now})
		}); err != nil {
			t.Fatal(err)
		}
		// Another transaction, made heavier so that InnoDB picks the group
		// as the victim, holds Y.
		other := db.Gorm().Begin()
		defer other.Rollback()
		for i := range 200 {
			if err := other.Exec("INSERT INTO heavy VALUES (?)", i).Error; err != nil {
				t.Fatal(err)
			}
		}
		if err := other.Exec("SELECT user_key FROM handoff_conversations WHERE user_key = 'Y' FOR UPDATE").Error; err != nil {
			t.Fatal(err)
		}
		res := make(chan []error, 1)
		go func() {
			res <- db.HandoffGroup(ctx,
				func(tx *gormstore.HandoffTx) error {
					if err := tx.G().Exec("UPDATE lockrow SET v = v + 1 WHERE id = 1").Error; err != nil {
						return err
					}
					return tx.G().Exec("INSERT INTO probe (k) VALUES ('a')").Error
				},
				func(tx *gormstore.HandoffTx) error {
					_, err := tx.LockConversation("Y") // still deferring: no savepoint
					return err
				},
				func(tx *gormstore.HandoffTx) error { return botAnswer(tx, "z", "mz", now) },
			)
		}()
		time.Sleep(300 * time.Millisecond)                                 // the group waits for Y
		_ = other.Exec("UPDATE lockrow SET v = v + 10 WHERE id = 1").Error // closes the cycle
		other.Rollback()
		errs := <-res
		for i, err := range errs {
			if !errors.Is(err, gormstore.ErrGroupAborted) {
				t.Errorf("member %d: %v, want the group aborted (the deadlock rolled everything back)", i, err)
			}
		}
		var probe, outbox int64
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM probe").Scan(&probe); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM outbox").Scan(&outbox); err != nil {
			t.Fatal(err)
		}
		if probe != 0 || outbox != 0 {
			t.Errorf("after the aborted group: %d probe rows, %d outbox rows; want none (nothing runs outside the transaction)", probe, outbox)
		}
	})
}
