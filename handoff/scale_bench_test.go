package handoff_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/handoff/clocktest"
)

// BenchmarkOpenSessions shows that a message's cost does not grow with the
// number of open sessions, and that the timer scan costs O(due): with 1 k,
// 10 k and 100 k users in active sessions (each with a pending idle
// timeout), it measures a bot answer to another user, an agent relay of an
// open-session user's message, a hand-off and its end (a user asks for a
// person, is queued behind the open sessions' agent, and leaves), and a
// timer scan with nothing due; with the SQL statements each sends.
//
//	go test -run '^$' -bench OpenSessions -benchtime 300x ./handoff/
func BenchmarkOpenSessions(b *testing.B) {
	for _, driver := range gormstoretest.Drivers(b) {
		for _, open := range []int{1_000, 10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/open=%d", driver, open), func(b *testing.B) {
				db := gormstoretest.Open(b, driver)
				ctx := context.Background()
				e := benchEngine(b, db, clocktest.New(wed10))
				if err := gormstore.NewHandoffStore(db, nil).SetPresence(ctx, "a1", handoff.Online, wed10); err != nil {
					b.Fatal(err)
				}
				seedOpenSessions(b, db, open)
				msg := benchMsg
				for i := 0; i < 50; i++ { // the bot's users exist
					if err := e.Handle(ctx, msg(fmt.Sprintf("bot%02d", i), fmt.Sprintf("warm%d", i), "怎么退货")); err != nil {
						b.Fatal(err)
					}
				}
				// stmts reports the statements per message (per scan for
				// the timers), perOp messages an iteration.
				stmts := func(b *testing.B, perOp int, unit string) func() {
					before := db.Statements()
					return func() { b.ReportMetric(float64(db.Statements()-before)/float64(b.N*perOp), unit) }
				}
				b.Run("bot-answer", func(b *testing.B) {
					defer stmts(b, 1, "stmts/msg")()
					for i := 0; i < b.N; i++ {
						if err := e.Handle(ctx, msg(fmt.Sprintf("bot%02d", i%50), fmt.Sprintf("ba%d", i), "怎么退货")); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run("agent-relay", func(b *testing.B) {
					defer stmts(b, 1, "stmts/msg")()
					for i := 0; i < b.N; i++ {
						u := fmt.Sprintf("open%06d", (i*7919)%open)
						if err := e.Handle(ctx, msg(u, fmt.Sprintf("rl%d", i), "发票怎么开")); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run("handoff-and-end", func(b *testing.B) {
					defer stmts(b, 2, "stmts/msg")()
					for i := 0; i < b.N; i++ {
						u := fmt.Sprintf("bot%02d", i%50)
						if err := e.Handle(ctx, msg(u, fmt.Sprintf("ho%d", i), "转人工")); err != nil {
							b.Fatal(err)
						}
						if err := e.Handle(ctx, msg(u, fmt.Sprintf("he%d", i), "结束会话")); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run("timer-scan", func(b *testing.B) {
					defer stmts(b, 1, "stmts/scan")()
					for i := 0; i < b.N; i++ {
						if n, err := e.FireDue(ctx); err != nil || n != 0 {
							b.Fatalf("fired %d: %v", n, err)
						}
					}
				})
			})
		}
	}
}

// seedOpenSessions writes n users in active sessions with agent a1, each
// with an idle timeout an hour away, with multi-row inserts.
func seedOpenSessions(b *testing.B, db *gormstore.DB, n int) {
	b.Helper()
	ctx := context.Background()
	due := wed10.Add(time.Hour)
	const chunk = 500
	for from := 0; from < n; from += chunk {
		to := min(n, from+chunk)
		var sess, conv strings.Builder
		var sargs, cargs []any
		for i := from; i < to; i++ {
			u := fmt.Sprintf("open%06d", i)
			key := "cid-" + u + "|" + u
			if i > from {
				sess.WriteString(", ")
				conv.WriteString(", ")
			}
			sess.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			sargs = append(sargs, int64(i+1), key, "cid-"+u, string(adapter.Private), u, "after_sales",
				string(handoff.StatusActive), "transfer", "a1", i+1, due, wed10)
			conv.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
			cargs = append(cargs, key, "cid-"+u, string(adapter.Private), u, int64(i+1), "after_sales", wed10, wed10)
		}
		if err := db.Exec(ctx, "INSERT INTO handoff_sessions (id, user_key, conversation_id, conversation_type, user_id, group_name, "+
			"state, reason, agent_id, agent_no, due_at, created_at) VALUES "+sess.String(), sargs...); err != nil {
			b.Fatal(err)
		}
		if err := db.Exec(ctx, "INSERT INTO handoff_conversations (user_key, conversation_id, conversation_type, user_id, "+
			"session_id, group_name, created_at, changed_at) VALUES "+conv.String(), cargs...); err != nil {
			b.Fatal(err)
		}
	}
}
