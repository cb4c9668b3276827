package gormstore_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/report"
)

// TestHotPathWrites: the hand-written statements of the message path store
// what gorm stored: multi-row outbox and transcript inserts give each row
// its own id in order (the transcript line points at its reply), and a
// conversation save writes the changed columns, nothing when none changed.
func TestHotPathWrites(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		ctx := context.Background()
		var kicked []gormstore.OutboxItem
		st := gormstore.NewHandoffStore(db, func(_ context.Context, items []gormstore.OutboxItem) { kicked = items })
		now := time.Date(2026, 6, 3, 2, 0, 0, 0, time.UTC)
		exp := now.Add(time.Hour)
		conv := &handoff.Conversation{UserKey: "c1|u1", ConversationID: "c1", ConversationType: adapter.Private,
			UserID: "u1", Nick: "小王", Picks: []string{"e1", "e2"}, LastQuestion: "VPN 连不上", LastQuestionMsg: "m0",
			Webhook: "http://hook", WebhookExpiry: exp, CreatedAt: now, ChangedAt: now}
		if err := st.Transact(ctx, func(tx handoff.Tx) error { return tx.CreateConversation(conv) }); err != nil {
			t.Fatal(err)
		}

		// Three replies and four lines in one transaction, twice, so that
		// ids are not trivially 1, 2, 3.
		var ids [][]int64
		for round := 0; round < 2; round++ {
			err := st.Transact(ctx, func(tx handoff.Tx) error {
				var replies []adapter.Reply
				for i := 0; i < 3; i++ {
					replies = append(replies, adapter.Reply{ConversationID: "c1", UserID: "u1", Format: adapter.Text,
						Text: fmt.Sprintf("reply %d.%d", round, i)})
				}
				lines := []handoff.Line{{UserKey: "c1|u1", Direction: handoff.DirIn, Sender: handoff.SenderUser,
					Kind: adapter.KindText, Text: fmt.Sprintf("question %d", round), MsgID: fmt.Sprintf("m%d", round), CreatedAt: now}}
				for i := range replies {
					lines = append(lines, handoff.Line{UserKey: "c1|u1", Direction: handoff.DirOut, Sender: handoff.SenderBot,
						Kind: adapter.KindText, Text: fmt.Sprintf("reply %d.%d", round, i), Reply: i + 1, CreatedAt: now})
				}
				return tx.Record(now, replies, lines)
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, it := range kicked {
				got = append(got, it.ID)
			}
			ids, kicked = append(ids, got), nil
		}
		for round, got := range ids {
			for i, id := range got {
				var body string
				if err := db.QueryRow(ctx, "SELECT reply FROM outbox WHERE id = ?", id).Scan(&body); err != nil {
					t.Fatalf("outbox row %d: %v", id, err)
				}
				if want := fmt.Sprintf(`"Text":"reply %d.%d"`, round, i); !strings.Contains(body, want) {
					t.Fatalf("outbox row %d = %s, want %s", id, body, want)
				}
			}
		}
		lines, err := st.Messages(ctx, "c1|u1")
		if err != nil || len(lines) != 8 {
			t.Fatalf("transcript = %d lines, %v", len(lines), err)
		}
		for _, l := range lines {
			if l.Direction != handoff.DirOut {
				continue
			}
			var body string
			if err := db.QueryRow(ctx, "SELECT reply FROM outbox WHERE id = ?", l.OutboxID).Scan(&body); err != nil || !strings.Contains(body, `"Text":"`+l.Text+`"`) {
				t.Fatalf("line %q points at outbox row %d = %s (%v)", l.Text, l.OutboxID, body, err)
			}
		}

		// Saves: only changed columns; nothing when nothing changed.
		save := func(change func(c *handoff.Conversation)) int64 {
			t.Helper()
			before := db.Statements()
			err := st.Transact(ctx, func(tx handoff.Tx) error {
				c, err := tx.LockConversation("c1|u1")
				if err != nil {
					return err
				}
				change(c)
				return tx.SaveConversation(c)
			})
			if err != nil {
				t.Fatal(err)
			}
			return db.Statements() - before
		}
		if n := save(func(*handoff.Conversation) {}); n != 1 {
			t.Fatalf("an unchanged save sent %d statements, want 1 (the read)", n)
		}
		later := now.Add(time.Minute)
		if n := save(func(c *handoff.Conversation) {
			c.LastQuestion, c.LastQuestionMsg, c.ChangedAt, c.Picks, c.WebhookExpiry = "新问题", "m9", later, nil, time.Time{}
		}); n != 2 {
			t.Fatalf("a changed save sent %d statements, want 2", n)
		}
		got, err := st.Conversation(ctx, "c1|u1")
		if err != nil {
			t.Fatal(err)
		}
		want := *conv
		want.LastQuestion, want.LastQuestionMsg, want.ChangedAt, want.Picks, want.WebhookExpiry = "新问题", "m9", later, nil, time.Time{}
		got.CreatedAt, got.ChangedAt = got.CreatedAt.UTC(), got.ChangedAt.UTC()
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("conversation after save =\n%+v\nwant\n%+v", *got, want)
		}
	})
}

// TestHotPathBotTurn: the hand-written bot-turn insert stores every column
// and the reports and the monitor read it back.
func TestHotPathBotTurn(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		ctx := context.Background()
		st := gormstore.NewHandoffStore(db, nil)
		at := time.Date(2026, 6, 3, 2, 0, 0, 0, time.UTC)
		err := st.Transact(ctx, func(tx handoff.Tx) error {
			if err := tx.AddBotTurn("c1|u1", handoff.OutcomeAnswer, "e7", 0.82, at); err != nil {
				return err
			}
			return tx.AddBotTurn("c1|u2", handoff.UnansweredNone, "", 0.1, at.Add(time.Minute))
		})
		if err != nil {
			t.Fatal(err)
		}
		var entry string
		var score float64
		if err := db.QueryRow(ctx, "SELECT entry_id, score FROM bot_turns WHERE user_key = ?", "c1|u1").Scan(&entry, &score); err != nil || entry != "e7" || score != 0.82 {
			t.Fatalf("bot turn row: entry %q score %v (%v)", entry, score, err)
		}
		var turns []string
		err = gormstore.NewReportStore(db).Turns(ctx, at, at.Add(time.Hour), func(tr report.Turn) error {
			turns = append(turns, fmt.Sprintf("%s %s %s", tr.UserKey, tr.Outcome, tr.At.Format(time.TimeOnly)))
			return nil
		})
		if want := []string{"c1|u1 answer 02:00:00", "c1|u2 none 02:01:00"}; err != nil || !reflect.DeepEqual(turns, want) {
			t.Fatalf("turns = %q (%v), want %q", turns, err, want)
		}
		counts, err := gormstore.NewMonitorStore(db).BotTurns(ctx, at)
		if err != nil || counts.Questions != 2 || counts.Answered != 1 || counts.NoAnswer != 1 {
			t.Fatalf("monitor counts = %+v (%v)", counts, err)
		}
	})
}
