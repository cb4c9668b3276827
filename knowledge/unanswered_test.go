package knowledge_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite"
	_ "github.com/go-sql-driver/mysql"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/knowledge"
)

// engineWrites stores what the hand-off engine stores, through its own
// transaction API.
func engineWrites(t *testing.T, db *gormstore.DB, fn func(tx handoff.Tx) error) {
	t.Helper()
	if err := gormstore.NewHandoffStore(db, nil).Transact(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func TestReviewer(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		db := gormstoretest.Open(t, driver)
		m := newManager(t, db)
		now := time.Now().UTC().Truncate(time.Second)
		clock := func() time.Time { return now }
		live := bot.New(nil)
		rebuild := &knowledge.Sync{Manager: m, Build: func(es []bot.Entry) error {
			kb, err := bot.NewKnowledgeBase(es, bot.Options{})
			if err == nil {
				live.Replace(kb)
			}
			return err
		}}
		if err := rebuild.Rebuild(ctx); err != nil {
			t.Fatal(err)
		}
		rv := &knowledge.Reviewer{Manager: m, Store: gormstore.NewKnowledgeStore(db), Now: clock,
			Match:        func(q string) bot.Result { return live.KB().Match(q) },
			NotAQuestion: func(s string) bool { return strings.Contains(s, "转人工") }}

		ask := func(user, q string, at time.Time) {
			engineWrites(t, db, func(tx handoff.Tx) error {
				return tx.AddUnanswered([]handoff.Unanswered{{UserKey: user, ConversationID: "c-" + user, Question: q, CreatedAt: at}})
			})
		}
		ask("u1", "VPN 老是断线", now.Add(-3*time.Hour))
		ask("u2", "vpn老是断线！", now.Add(-2*time.Hour))
		ask("u3", "食堂几点开饭", now.Add(-90*time.Minute))
		ask("u4", "年假有几天", now.Add(-time.Hour))
		ask("u5", "  ", now.Add(-time.Hour)) // nothing to group
		ask("u6", "很久以前的问题", now.Add(-40*24*time.Hour))

		// u4 was handed off and an agent answered in the session.
		engineWrites(t, db, func(tx handoff.Tx) error {
			s := &handoff.Session{UserKey: "u4", ConversationID: "c-u4", ConversationType: "1", UserID: "u4",
				Group: "hr", Status: handoff.StatusEnded, Reason: "no_answer", Agent: "a1", AgentName: "小王", CreatedAt: now.Add(-time.Hour)}
			if err := tx.CreateSession(s); err != nil {
				return err
			}
			return tx.Record(time.Now(), nil, []handoff.Line{
				{UserKey: "u4", Direction: handoff.DirIn, Sender: handoff.SenderUser, Kind: "text", Text: "年假有几天", CreatedAt: now.Add(-time.Hour)},
				{UserKey: "u4", Direction: handoff.DirIn, Sender: handoff.SenderUser, Kind: "text", Text: "转人工", CreatedAt: now.Add(-59 * time.Minute)},
				{UserKey: "u4", SessionID: s.ID, Direction: handoff.DirOut, Sender: handoff.SenderAgent, SenderID: "a1", SenderName: "小王", Kind: "text", Text: "您好，请稍等", CreatedAt: now.Add(-58 * time.Minute)},
				{UserKey: "u4", SessionID: s.ID, Direction: handoff.DirOut, Sender: handoff.SenderAgent, SenderID: "a1", SenderName: "小王", Kind: "text", Text: "入职满一年有 5 天年假。", CreatedAt: now.Add(-58 * time.Minute)},
				{UserKey: "u4", SessionID: s.ID, Direction: handoff.DirOut, Sender: handoff.SenderAgent, SenderID: "a1", Kind: "text", Text: "还有别的问题吗", CreatedAt: now.Add(-57 * time.Minute)},
			})
		})

		list, err := rv.Unanswered(ctx, knowledge.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, q := range list {
			keys = append(keys, q.Question)
		}
		if strings.Join(keys, "|") != "年假有几天|食堂几点开饭|vpn老是断线！" {
			t.Fatalf("groups = %q", keys)
		}
		vpn := list[2]
		if vpn.Count != 2 || vpn.NoAnswer != 2 || !vpn.FirstAt.Equal(now.Add(-3*time.Hour)) || !vpn.LastAt.Equal(now.Add(-2*time.Hour)) {
			t.Fatalf("vpn group = %+v", vpn)
		}
		if len(vpn.Candidates) == 0 || vpn.Candidates[0].ID != "vpn" {
			t.Fatalf("vpn candidates = %+v", vpn.Candidates)
		}
		if d := list[0].Draft; d == nil || d.Answer != "入职满一年有 5 天年假。" || len(d.Replies) != 3 || d.Replies[0] != "您好，请稍等" || d.AgentName != "小王" || d.Group != "hr" {
			t.Fatalf("draft = %+v", d)
		}
		if aa, err := rv.AgentAnswered(ctx, knowledge.ListOptions{}); err != nil || len(aa) != 1 || aa[0].Question != "年假有几天" {
			t.Fatalf("agent answered = %+v, %v", aa, err)
		}

		// One click: add as similar question. The bot answers it after the rebuild.
		if _, err := rv.AddAsSimilar(ctx, "admin", vpn.Question, vpn.Candidates[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := rebuild.Rebuild(ctx); err != nil {
			t.Fatal(err)
		}
		if r := live.KB().Match("VPN老是断线"); r.Outcome != bot.OutcomeAnswer || r.Best.ID != "vpn" {
			t.Fatalf("after adding: %+v", r)
		}
		// Create an entry from the agent's draft; ignore the canteen.
		d := list[0].Draft
		if _, err := rv.CreateEntry(ctx, "admin", list[0].Question, knowledge.Draft{Answer: d.Answer, Category: "HR"}); err != nil {
			t.Fatal(err)
		}
		if err := rv.Ignore(ctx, "admin", "食堂几点开饭"); err != nil {
			t.Fatal(err)
		}
		if err := rv.Ignore(ctx, "admin", " ! "); !errors.Is(err, knowledge.ErrEmptyQuestion) {
			t.Fatalf("ignore empty: %v", err)
		}
		if list, _ = rv.Unanswered(ctx, knowledge.ListOptions{}); len(list) != 0 {
			t.Fatalf("left after the decisions: %+v", list)
		}
		if aa, _ := rv.AgentAnswered(ctx, knowledge.ListOptions{}); len(aa) != 0 {
			t.Fatalf("agent answer still offered: %+v", aa)
		}
		// Asked again after it was ignored: back, counted from then.
		now = now.Add(time.Minute)
		ask("u7", "食堂几点开饭?", now)
		if list, _ = rv.Unanswered(ctx, knowledge.ListOptions{}); len(list) != 1 || list[0].Count != 1 {
			t.Fatalf("asked again = %+v", list)
		}
		// Who and when are in the entry's history.
		h, _ := m.History(ctx, "vpn", 1)
		if len(h) != 1 || h[0].Action != knowledge.ActionAddSimilar || h[0].Actor != "admin" {
			t.Fatalf("history = %+v", h)
		}
	})
}

func TestImportPlan(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		db := gormstoretest.Open(t, driver)
		m := newManager(t, db)
		yes := true
		rows := []knowledge.ImportRow{
			{Row: 2, Question: "怎么请假", Similar: []string{"请假流程", "请假怎么走流程"}, Answer: "在钉钉审批里提交请假。", Category: "HR"}, // update by question
			{Row: 3, Question: "报销需要什么材料", Answer: "发票和审批单。", Category: "财务", Handoff: &yes},                        // create
			{Row: 4, Question: "", Answer: "没有问题的答案"},                                                               // bad
			{Row: 5, Question: "报销需要什么材料？", Answer: "重复"},                                                           // duplicate of row 3
			{Row: 6, ID: "wifi", Question: "公司 WiFi 密码是多少", Answer: "访客网络密码贴在前台。", Category: "IT"},                  // unchanged
			{Row: 7, Question: "VPN 无法连接", Answer: "别的条目的问题"},                                                       // taken by vpn
		}
		p, err := m.PlanImport(ctx, rows)
		if err != nil {
			t.Fatal(err)
		}
		if p.Creates != 1 || p.Updates != 1 || p.Same != 1 || len(p.Errors) != 3 {
			t.Fatalf("plan: %s\n%s", p.Summary(), p.ErrorsText())
		}
		for i, want := range []int{4, 5, 7} {
			if p.Errors[i].Row != want {
				t.Fatalf("error %d is row %d, want %d:\n%s", i, p.Errors[i].Row, want, p.ErrorsText())
			}
		}
		if !strings.Contains(p.ErrorsText(), "第 5 行 问题：与第 3 行的问题重复") {
			t.Fatalf("errors:\n%s", p.ErrorsText())
		}
		// The preview wrote nothing.
		if rev, _ := gormstore.NewKnowledgeStore(db).Revision(ctx); rev != 0 {
			t.Fatalf("revision after a preview = %d", rev)
		}
		n, err := m.ApplyImport(ctx, "admin", p)
		if err != nil || n != 2 {
			t.Fatalf("apply = %d, %v", n, err)
		}
		leave, _ := m.Get(ctx, "leave")
		if leave.Origin != knowledge.OriginEdited || len(leave.Similar) != 2 {
			t.Fatalf("leave = %+v", leave)
		}
		all, _ := m.List(ctx, knowledge.Filter{})
		last := all[len(all)-1]
		if last.Question != "报销需要什么材料" || !last.Handoff || last.CreatedBy != "admin" {
			t.Fatalf("created = %+v", last)
		}
		// A plan made before another change is refused.
		p2, _ := m.PlanImport(ctx, rows[:2])
		if _, err := m.SetDisabled(ctx, "other", "wifi", true); err != nil {
			t.Fatal(err)
		}
		if _, err := m.ApplyImport(ctx, "admin", p2); !errors.Is(err, knowledge.ErrConflict) {
			t.Fatalf("stale plan: %v", err)
		}
	})
}

// TestClarifyAbandonedKind: clarify lists the user left (the engine's
// kind "clarify" on handoff_unanswered) are counted apart.
func TestClarifyAbandonedKind(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		db := gormstoretest.Open(t, driver)
		now := time.Now().UTC()
		engineWrites(t, db, func(tx handoff.Tx) error {
			return tx.AddUnanswered([]handoff.Unanswered{
				{UserKey: "u1", ConversationID: "c", Question: "报销单怎么填", CreatedAt: now.Add(-2 * time.Minute)},
				{UserKey: "u2", ConversationID: "c", Question: "报销单怎么填", CreatedAt: now.Add(-time.Minute), Kind: handoff.UnansweredClarify},
			})
		})
		rv := &knowledge.Reviewer{Manager: newManager(t, db), Store: gormstore.NewKnowledgeStore(db)}
		list, err := rv.Unanswered(ctx, knowledge.ListOptions{})
		if err != nil || len(list) != 1 || list[0].Count != 2 || list[0].Clarify != 1 || list[0].NoAnswer != 1 {
			t.Fatalf("list = %+v, %v", list, err)
		}
	})
}
