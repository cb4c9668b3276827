package report_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/report"
)

var shanghai = func() *time.Location {
	l, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return l
}()

func at(day, hms string) time.Time {
	t, err := time.ParseInLocation(time.DateTime, "2026-12-0"+day+" "+hms, shanghai)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// reportTx is what the engine calls for the reports on its transaction
// (storage's hand-off transaction has it; handoff.Tx is to list it).
type reportTx interface {
	AddBotTurn(userKey, outcome, entryID string, score float64, at time.Time) error
	PromptRating(sessionID int64, userKey, group, agent string, at time.Time) error
	RateSession(sessionID int64, score int, at time.Time) (bool, error)
}

// seed writes, through the engine's own transaction API, two days of
// service: bot turns, sessions (served, queued and abandoned, a transfer),
// agent replies and ratings.
func seed(t *testing.T, db *gormstore.DB) {
	t.Helper()
	err := gormstore.NewHandoffStore(db, nil).Transact(context.Background(), func(tx handoff.Tx) error {
		rt := tx.(reportTx)
		turns := []struct {
			UserKey, Outcome, EntryID string
			CreatedAt                 time.Time
		}{
			{UserKey: "u1", Outcome: "answer", EntryID: "vpn", CreatedAt: at("1", "09:00:00")},
			{UserKey: "u1", Outcome: "clarify", CreatedAt: at("1", "09:01:00")},
			{UserKey: "u2", Outcome: "none", CreatedAt: at("1", "09:59:00")},
			{UserKey: "u3", Outcome: "answer", EntryID: "leave", CreatedAt: at("1", "23:59:00")},
			{UserKey: "u4", Outcome: "none", CreatedAt: at("2", "00:00:01")},
			{UserKey: "u9", Outcome: "answer", CreatedAt: at("3", "08:00:00")}, // outside the range
		}
		for _, bt := range turns {
			if err := rt.AddBotTurn(bt.UserKey, bt.Outcome, bt.EntryID, 0.5, bt.CreatedAt); err != nil {
				return err
			}
		}
		type sess struct {
			row     handoff.Session
			reply   time.Time
			prompt  bool
			score   int
			userMsg int
		}
		list := []sess{
			{row: handoff.Session{UserKey: "u2", Group: "it", Reason: "no_answer", Agent: "a1", AgentName: "小王",
				CreatedAt: at("1", "10:00:00"), AssignedAt: at("1", "10:00:30"), EndedAt: at("1", "10:11:30"), EndReason: "transferred"},
				reply: at("1", "10:01:30"), prompt: true, score: 5, userMsg: 2},
			{row: handoff.Session{UserKey: "u5", Group: "it", Reason: "keyword", Agent: "a2", AgentName: "小张",
				CreatedAt: at("1", "11:00:00"), QueuedAt: at("1", "11:00:00"), AssignedAt: at("1", "11:02:00"), EndedAt: at("1", "11:12:00"), EndReason: "user_end"},
				reply: at("1", "11:02:10"), prompt: true},
			{row: handoff.Session{UserKey: "u6", Group: "hr", Reason: "human_only",
				CreatedAt: at("1", "12:00:00"), QueuedAt: at("1", "12:00:00"), EndedAt: at("1", "12:05:00"), EndReason: "queue_left"}},
			{row: handoff.Session{UserKey: "u2", Group: "hr", Reason: "transfer", Agent: "a3", AgentName: "小李",
				CreatedAt: at("1", "10:11:30"), AssignedAt: at("1", "10:11:30"), EndedAt: at("1", "10:20:00"), EndReason: "agent_end"},
				prompt: true, score: 3},
			{row: handoff.Session{UserKey: "u4", Group: "it", Reason: "no_answer", Agent: "a1", AgentName: "小王",
				CreatedAt: at("2", "00:00:02"), AssignedAt: at("2", "00:00:02")}},
		}
		for _, s := range list {
			r := s.row
			r.ConversationID, r.ConversationType, r.UserID, r.Status = "c-"+r.UserKey, "1", r.UserKey, handoff.StatusEnded
			if r.EndedAt.IsZero() {
				r.Status = handoff.StatusActive
			}
			if err := tx.CreateSession(&r); err != nil {
				return err
			}
			var lines []handoff.Line
			for i := 0; i < s.userMsg; i++ {
				lines = append(lines, handoff.Line{UserKey: r.UserKey, SessionID: r.ID, Direction: handoff.DirIn, Sender: handoff.SenderUser, Text: "q", CreatedAt: r.CreatedAt})
			}
			if !s.reply.IsZero() {
				lines = append(lines,
					handoff.Line{UserKey: r.UserKey, SessionID: r.ID, Direction: handoff.DirOut, Sender: handoff.SenderAgent, SenderID: r.Agent, Text: "first", CreatedAt: s.reply},
					handoff.Line{UserKey: r.UserKey, SessionID: r.ID, Direction: handoff.DirOut, Sender: handoff.SenderAgent, SenderID: r.Agent, Text: "second", CreatedAt: s.reply.Add(time.Minute)})
			}
			if err := tx.Record(time.Now(), nil, lines); err != nil {
				return err
			}
			if s.prompt {
				if err := rt.PromptRating(r.ID, r.UserKey, r.Group, r.Agent, r.EndedAt); err != nil {
					return err
				}
			}
			if s.score > 0 {
				if ok, err := rt.RateSession(r.ID, s.score, r.EndedAt.Add(time.Minute)); err != nil || !ok {
					t.Errorf("rate session %d: %v %v", r.ID, ok, err)
				}
				if ok, _ := rt.RateSession(r.ID, 1, r.EndedAt.Add(2*time.Minute)); ok {
					t.Errorf("rated session %d twice", r.ID)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func build(t *testing.T, st report.Store, o report.Options) *report.Report {
	t.Helper()
	o.From, o.To, o.Location = at("1", "00:00:00").In(shanghai), at("2", "00:00:00").In(shanghai), shanghai
	rep, err := report.Build(context.Background(), st, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestReportByDay(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		seed(t, db)
		rep := build(t, gormstore.NewReportStore(db), report.Options{Period: report.Day})
		if len(rep.Rows) != 2 || rep.Rows[0].Period != "2026-12-01" || rep.Rows[1].Period != "2026-12-02" {
			t.Fatalf("rows = %+v", rep.Rows)
		}
		d1 := rep.Rows[0].Metrics
		check := func(what string, got, want any) {
			t.Helper()
			if got != want {
				t.Errorf("day 1 %s = %v, want %v", what, got, want)
			}
		}
		check("questions", d1.Questions, 4)
		check("answered", d1.Answered, 2)
		check("clarified", d1.Clarified, 1)
		check("no answer", d1.NoAnswer, 1)
		check("conversations", d1.Conversations, 5) // u1 u2 u3 u5 u6
		check("bot only", d1.BotOnly, 2)            // u1 u3
		check("handoffs", d1.Handoffs, 3)
		check("transfers", d1.Transfers, 1)
		check("by reason", d1.ByReason["keyword"], 1)
		check("sessions", d1.Sessions, 4)
		check("served", d1.Served, 3)
		check("abandoned", d1.Abandoned, 1)
		check("agents", d1.Agents, 3)
		check("wait mean", d1.QueueWait.Mean, 50*time.Second)
		check("wait p90", d1.QueueWait.P90, 120*time.Second)
		check("first response mean", d1.FirstResponse.Mean, 35*time.Second)
		check("first response p90", d1.FirstResponse.P90, 60*time.Second)
		check("handling mean", d1.Handling.Mean, 590*time.Second)
		check("prompted", d1.Satisfaction.Prompted, 3)
		check("rated", d1.Satisfaction.Rated, 2)
		check("rating mean", d1.Satisfaction.Mean(), 4.0)
		check("rating 5", d1.Satisfaction.Dist[4], 1)
		check("rating 3", d1.Satisfaction.Dist[2], 1)
		d2 := rep.Rows[1].Metrics
		if d2.Questions != 1 || d2.NoAnswer != 1 || d2.Conversations != 1 || d2.BotOnly != 0 || d2.Served != 1 || d2.Handling.N != 0 {
			t.Errorf("day 2 = %+v", d2)
		}
		labels, noAnswer := rep.Column(report.Metrics.NoAnswerRate)
		if len(labels) != 2 || labels[1] != "2026-12-02" || noAnswer[0] != 0.25 || noAnswer[1] != 1 {
			t.Errorf("column = %v %v", labels, noAnswer)
		}
		// A range with quiet days shows them at 0; weeks are ISO weeks.
		wide, _ := report.Build(context.Background(), gormstore.NewReportStore(db), report.Options{Period: report.Day, Location: shanghai,
			From: at("1", "00:00:00").In(shanghai).AddDate(0, 0, -2), To: at("1", "00:00:00").In(shanghai).AddDate(0, 0, 3)})
		labels, qs := wide.Column(func(m report.Metrics) float64 { return float64(m.Questions) })
		if strings.Join(labels, ",") != "2026-11-29,2026-11-30,2026-12-01,2026-12-02,2026-12-03,2026-12-04" || qs[2] != 4 || qs[0] != 0 || qs[4] != 1 {
			t.Errorf("wide column = %v %v", labels, qs)
		}
		weeks, _ := report.Build(context.Background(), gormstore.NewReportStore(db), report.Options{Period: report.Week, Location: shanghai,
			From: at("1", "00:00:00").In(shanghai).AddDate(0, 0, -2), To: at("1", "00:00:00").In(shanghai).AddDate(0, 0, 3)})
		if labels, qs := weeks.Column(func(m report.Metrics) float64 { return float64(m.Questions) }); strings.Join(labels, ",") != "2026-W48,2026-W49" || qs[1] != 6 {
			t.Errorf("weeks = %v %v", labels, qs)
		}
		if rep.Total.Questions != 5 || rep.Total.Sessions != 5 || rep.Total.Conversations != 6 {
			t.Errorf("total = %+v", rep.Total.Metrics)
		}
	})
}

func TestReportByGroupAndAgentCSV(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		seed(t, db)
		st := gormstore.NewReportStore(db)
		rep := build(t, st, report.Options{Period: report.Day, ByGroup: true, ByAgent: true})
		var keys []string
		for _, r := range rep.Rows {
			keys = append(keys, r.Period+"/"+r.Group+"/"+r.Agent)
		}
		want := "2026-12-01//|2026-12-01/hr/-|2026-12-01/hr/a3|2026-12-01/it/a1|2026-12-01/it/a2|2026-12-02//|2026-12-02/it/a1"
		if strings.Join(keys, "|") != want {
			t.Fatalf("keys = %s", strings.Join(keys, "|"))
		}
		var buf bytes.Buffer
		if err := report.WriteCSV(&buf, rep, report.Names{"it": "IT 服务台"}); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(buf.String(), "\ufeff"))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1+7+1 {
			t.Fatalf("%d CSV records", len(recs))
		}
		head := map[string]int{}
		for i, h := range recs[0] {
			head[h] = i
		}
		it1 := recs[4] // 2026-12-01 / it / a1
		if it1[head["技能组"]] != "IT 服务台" || it1[head["客服"]] != "小王" || it1[head["首次响应均值秒"]] != "60" || it1[head["5分"]] != "1" || it1[head["满意度参评率"]] != "100.0%" {
			t.Fatalf("it/a1 row = %v", it1)
		}
		if recs[1][head["会话量"]] != "5" || it1[head["会话量"]] != "" || it1[head["机器人问题数"]] != "" {
			t.Fatalf("bot columns: total %v, split %v", recs[1], it1)
		}
		if recs[2][head["客服"]] != "未接入" || recs[2][head["排队放弃"]] != "1" {
			t.Fatalf("unassigned row = %v", recs[2])
		}
		if last := recs[len(recs)-1]; last[0] != "合计" || last[head["人工会话"]] != "5" {
			t.Fatalf("total row = %v", last)
		}

		sessions, err := report.Sessions(context.Background(), st, at("1", "00:00:00").In(shanghai), at("2", "00:00:00").In(shanghai), shanghai)
		if err != nil || len(sessions) != 5 {
			t.Fatalf("sessions = %d, %v", len(sessions), err)
		}
		buf.Reset()
		if err := report.WriteSessionsCSV(&buf, sessions, shanghai, nil); err != nil {
			t.Fatal(err)
		}
		recs, _ = csv.NewReader(strings.NewReader(strings.TrimPrefix(buf.String(), "\ufeff"))).ReadAll()
		if len(recs) != 6 || recs[1][1] != "2026-12-01 10:00:00" || recs[1][12] != "60" || recs[1][14] != "2" || recs[1][15] != "2" || recs[1][17] != "5" {
			t.Fatalf("session rows = %v", recs[:2])
		}
		if recs[3][11] != "300" || recs[3][8] != "" { // abandoned after 5 min in the queue
			t.Fatalf("abandoned row = %v", recs[3])
		}
		buf.Reset()
		if err := report.WriteTable(&buf, rep, nil); err != nil || !strings.Contains(buf.String(), "total") {
			t.Fatalf("table: %v\n%s", err, buf.String())
		}
	})
}

func TestP90(t *testing.T) {
	// Nearest rank over 1..10 s is 9 s; a single value is its own p90.
	var sessions []report.Session
	base := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	for i := 1; i <= 10; i++ {
		sessions = append(sessions, report.Session{ID: int64(i), Reason: "keyword", Agent: "a", CreatedAt: base, AssignedAt: base.Add(time.Duration(i) * time.Second)})
	}
	rep, err := report.Build(context.Background(), fixed(sessions), report.Options{From: base, To: base, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	if w := rep.Total.QueueWait; w.P90 != 9*time.Second || w.Mean != 5500*time.Millisecond || w.N != 10 {
		t.Fatalf("wait = %+v", w)
	}
}

type fixed []report.Session

func (f fixed) Sessions(_ context.Context, from, to time.Time, fn func(report.Session) error) error {
	for _, s := range f {
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}
func (fixed) Turns(context.Context, time.Time, time.Time, func(report.Turn) error) error { return nil }
