package transcript_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/transcript"
)

func TestSearchAndOpen(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		db := gormstoretest.Open(t, driver)
		st := gormstore.NewTranscriptStore(db)
		base := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
		var ids []int64
		err := gormstore.NewHandoffStore(db, nil).Transact(ctx, func(tx handoff.Tx) error {
			mk := func(user, nick, group, agent string, at time.Time, ended bool, lines ...string) error {
				s := &handoff.Session{UserKey: "k-" + user, ConversationID: "c-" + user, ConversationType: "1", UserID: user, UserNick: nick,
					Group: group, Status: handoff.StatusActive, Reason: "keyword", Agent: agent, AgentName: "名" + agent, CreatedAt: at, AssignedAt: at}
				if ended {
					s.Status, s.EndedAt = handoff.StatusEnded, at.Add(10*time.Minute)
				}
				if err := tx.CreateSession(s); err != nil {
					return err
				}
				ids = append(ids, s.ID)
				rows := []handoff.Line{
					{UserKey: s.UserKey, Direction: handoff.DirIn, Sender: handoff.SenderUser, Text: "bot part of " + user, CreatedAt: at.Add(-time.Minute)},
					{UserKey: s.UserKey, Direction: handoff.DirIn, Sender: handoff.SenderUser, Text: "old bot talk", CreatedAt: at.Add(-2 * time.Hour)},
				}
				for i, l := range lines {
					rows = append(rows, handoff.Line{UserKey: s.UserKey, SessionID: s.ID, Direction: handoff.DirOut, Sender: handoff.SenderAgent,
						SenderID: agent, Text: l, CreatedAt: at.Add(time.Duration(i+1) * time.Second)})
				}
				return tx.Record(time.Now(), nil, rows)
			}
			if err := mk("u1", "张三", "it", "a1", base, true, "VPN 请重启客户端", "100% 可以"); err != nil {
				return err
			}
			if err := mk("u2", "李四", "hr", "a2", base.Add(time.Hour), true, "年假 5 天"); err != nil {
				return err
			}
			return mk("u1", "张三", "it", "a2", base.Add(24*time.Hour), false, "又见面了 a_b")
		})
		if err != nil {
			t.Fatal(err)
		}
		find := func(q transcript.Query) []int64 {
			t.Helper()
			res, err := transcript.Search(ctx, st, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, s := range res {
				out = append(out, s.ID)
			}
			return out
		}
		eq := func(what string, got []int64, want ...int64) {
			t.Helper()
			if len(got) != len(want) {
				t.Fatalf("%s = %v, want %v", what, got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s = %v, want %v", what, got, want)
				}
			}
		}
		eq("by user id", find(transcript.Query{User: "u1"}), ids[2], ids[0])
		eq("by nick part", find(transcript.Query{User: "李"}), ids[1])
		eq("by agent", find(transcript.Query{Agent: "a2"}), ids[2], ids[1])
		eq("by agent name", find(transcript.Query{Agent: "名a1"}), ids[0])
		eq("by group", find(transcript.Query{Group: "it"}), ids[2], ids[0])
		eq("by date", find(transcript.Query{From: base.Add(30 * time.Minute), To: base.Add(2 * time.Hour)}), ids[1])
		eq("by text", find(transcript.Query{Text: "重启"}), ids[0])
		eq("by a literal %", find(transcript.Query{Text: "100%"}), ids[0])
		eq("_ is no wildcard", find(transcript.Query{Text: "a_b"}), ids[2])
		eq("% alone matches only %", find(transcript.Query{Text: "%"}), ids[0])
		eq("bot part is not session text", find(transcript.Query{Text: "bot part"}))
		eq("paging", find(transcript.Query{Limit: 1, BeforeID: ids[2]}), ids[1])
		if res, _ := transcript.Search(ctx, st, transcript.Query{Text: "年假"}); res[0].Snippet != "年假 5 天" || res[0].AgentName != "名a2" {
			t.Fatalf("snippet = %+v", res[0])
		}
		if _, err := transcript.Search(ctx, st, transcript.Query{From: base, To: base}); err == nil {
			t.Fatal("an empty date range was accepted")
		}

		tr, err := transcript.Open(ctx, st, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.Lines) != 3 || tr.Lines[0].Text != "bot part of u1" || tr.Lines[0].SessionID != 0 || tr.Lines[2].Text != "100% 可以" {
			t.Fatalf("transcript = %+v", tr.Lines)
		}
		var buf bytes.Buffer
		if err := tr.WriteCSV(&buf, time.UTC); err != nil {
			t.Fatal(err)
		}
		if got := buf.String(); !strings.HasPrefix(got, "\ufeff时间,会话") || !strings.Contains(got, "2026-12-01 02:00:02,人工,out,客服,,text,100% 可以") || !strings.Contains(got, ",机器人,in,用户,") {
			t.Fatalf("csv:\n%s", got)
		}
		// The second session of u1 reaches back only to the first one's end.
		tr, _ = transcript.Open(ctx, st, ids[2])
		if len(tr.Lines) != 2 || tr.Lines[0].Text != "bot part of u1" || tr.Session.EndedAt.IsZero() != true {
			t.Fatalf("second transcript = %+v", tr.Lines)
		}
		if _, err := transcript.Open(ctx, st, 999999); !errors.Is(err, transcript.ErrNotFound) {
			t.Fatalf("missing session: %v", err)
		}
	})
}
