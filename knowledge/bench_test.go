package knowledge_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/knowledge"
)

// BenchmarkMergeActive: what every rebuild and admin page pays before
// indexing: 5000 file entries, 500 of them edited, 500 created.
func BenchmarkMergeActive(b *testing.B) {
	files := make([]bot.Entry, 5000)
	for i := range files {
		files[i] = bot.Entry{ID: fmt.Sprintf("e%d", i), Question: fmt.Sprintf("问题 %d 怎么办", i), Similar: []string{"相似 1", "相似 2"}, Answer: "答案"}
	}
	var recs []knowledge.Record
	for i := 0; i < 500; i++ {
		recs = append(recs, knowledge.Record{Entry: bot.Entry{ID: fmt.Sprintf("e%d", i*10), Question: "改过的", Answer: "新答案"}, BaseHash: "x"},
			knowledge.Record{Entry: bot.Entry{ID: fmt.Sprintf("n%d", i), Question: "新建", Answer: "a"}, CreatedAt: time.Unix(int64(i), 0)})
	}
	b.ReportAllocs()
	for b.Loop() {
		if n := len(knowledge.Active(knowledge.Merge(files, recs))); n != 5500 {
			b.Fatal(n)
		}
	}
}

// BenchmarkUnansweredList: the 未解决问题 page on SQLite: 5 000 stored
// questions in 1 000 groups, 300 sessions with agent replies, the live
// matcher ranking each listed group.
func BenchmarkUnansweredList(b *testing.B) {
	ctx := context.Background()
	db := gormstoretest.Open(b, "sqlite")
	now := time.Now().UTC()
	err := gormstore.NewHandoffStore(db, nil).Transact(ctx, func(tx handoff.Tx) error {
		var rows []handoff.Unanswered
		for i := 0; i < 5000; i++ {
			rows = append(rows, handoff.Unanswered{UserKey: fmt.Sprintf("u%d", i%700), ConversationID: "c",
				Question: fmt.Sprintf("第 %d 个没有答案的问题", i%1000), CreatedAt: now.Add(-time.Duration(i) * time.Minute)})
		}
		if err := tx.AddUnanswered(rows); err != nil {
			return err
		}
		for i := 0; i < 300; i++ {
			s := &handoff.Session{UserKey: fmt.Sprintf("u%d", i), ConversationID: "c", ConversationType: "1", UserID: "u",
				Group: "it", Status: handoff.StatusEnded, Reason: "no_answer", Agent: "a", CreatedAt: now.Add(-time.Duration(i) * time.Minute)}
			if err := tx.CreateSession(s); err != nil {
				return err
			}
			if err := tx.Record(time.Now(), nil, []handoff.Line{
				{UserKey: s.UserKey, Direction: handoff.DirIn, Sender: handoff.SenderUser, Kind: "text", Text: fmt.Sprintf("第 %d 个没有答案的问题", i), CreatedAt: s.CreatedAt},
				{UserKey: s.UserKey, SessionID: s.ID, Direction: handoff.DirOut, Sender: handoff.SenderAgent, Kind: "text", Text: "客服的答案", CreatedAt: s.CreatedAt.Add(time.Second)},
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	m := knowledge.NewManager(gormstore.NewKnowledgeStore(db), files, nil)
	kb, _ := bot.NewKnowledgeBase(slices.Clone(fileEntries), bot.Options{})
	rv := &knowledge.Reviewer{Manager: m, Store: gormstore.NewKnowledgeStore(db), Match: kb.Match}
	b.ResetTimer()
	for b.Loop() {
		list, err := rv.Unanswered(ctx, knowledge.ListOptions{})
		if err != nil || len(list) != 100 {
			b.Fatal(len(list), err)
		}
	}
}
