package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/web"
)

// twoWebStores are the web stores of two replicas on one database.
func twoWebStores(t *testing.T, driver string) (*gormstore.WebStore, *gormstore.WebStore) {
	dbs := gormstoretest.OpenReplicas(t, driver, 2)
	return gormstore.NewWebStore(dbs[0]), gormstore.NewWebStore(dbs[1])
}

func TestWebLoginLinkWorksOnce(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		// Two replicas race for the same link: exactly one wins.
		a, b := twoWebStores(t, driver)
		ctx := context.Background()
		now := time.Now()
		if err := a.CreateLoginLink(ctx, "h1", "agent1", now, now.Add(5*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if staff, err := b.CheckLoginLink(ctx, "h1", now); err != nil || staff != "agent1" {
			t.Fatalf("check: %q %v", staff, err)
		}
		var wg sync.WaitGroup
		wins := make(chan string, 8)
		for i := 0; i < 8; i++ {
			st := a
			if i%2 == 1 {
				st = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if staff, err := st.RedeemLoginLink(ctx, "h1", now); err == nil {
					wins <- staff
				} else if !errors.Is(err, web.ErrLinkUsed) {
					t.Errorf("redeem: %v", err)
				}
			}()
		}
		wg.Wait()
		close(wins)
		if n := len(wins); n != 1 {
			t.Fatalf("%d redeems won, want 1", n)
		}
		if _, err := a.CheckLoginLink(ctx, "h1", now); !errors.Is(err, web.ErrLinkUsed) {
			t.Fatalf("after use: %v", err)
		}
		if err := a.CreateLoginLink(ctx, "h2", "agent1", now, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.RedeemLoginLink(ctx, "h2", now.Add(2*time.Minute)); !errors.Is(err, web.ErrLinkExpired) {
			t.Fatalf("expired: %v", err)
		}
		if _, err := a.RedeemLoginLink(ctx, "nope", now); !errors.Is(err, web.ErrLinkUnknown) {
			t.Fatalf("unknown: %v", err)
		}
	})
}

func TestWebSessionsExpireAndPrune(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		st := gormstore.NewWebStore(gormstoretest.Open(t, driver))
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Second)
		for _, ws := range []web.WebSession{
			{TokenHash: "live", StaffID: "agent1", CSRF: "c1", CreatedAt: now, SeenAt: now, ExpiresAt: now.Add(time.Hour)},
			{TokenHash: "old", StaffID: "agent1", CSRF: "c2", CreatedAt: now, SeenAt: now, ExpiresAt: now.Add(-time.Second)},
		} {
			if err := st.CreateWebSession(ctx, ws); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.TouchWebSession(ctx, "live", now.Add(time.Minute), now.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := st.WebSession(ctx, "live")
		if err != nil || got == nil || got.CSRF != "c1" || !got.ExpiresAt.Equal(now.Add(2*time.Hour)) {
			t.Fatalf("live session: %+v %v", got, err)
		}
		if n, err := st.PruneWebSessions(ctx, now); err != nil || n != 1 {
			t.Fatalf("prune: %d %v", n, err)
		}
		if got, err := st.WebSession(ctx, "old"); err != nil || got != nil {
			t.Fatalf("expired session kept: %+v %v", got, err)
		}
		if err := st.DeleteWebSession(ctx, "live"); err != nil {
			t.Fatal(err)
		}
		if got, err := st.WebSession(ctx, "live"); err != nil || got != nil {
			t.Fatalf("deleted session still there: %+v %v", got, err)
		}
	})
}

// Events stored by two replicas are read back in id order, by id, and
// within bounds; pruning keeps the newest.
func TestWebEvents(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		a, b := twoWebStores(t, driver)
		ctx := context.Background()
		now := time.Now()
		ev := []web.Event{{Topic: "agent:a1", Type: "message", Data: "7", At: now},
			{Topic: "group:it", Type: "queue", Data: "it", At: now}}
		if err := a.AppendEvents(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if err := b.AppendEvents(ctx, []web.Event{{Topic: "agent:a1", Type: "presence", Data: "online", At: now}}); err != nil {
			t.Fatal(err)
		}
		got, err := a.EventsAfter(ctx, 0, 100)
		if err != nil || len(got) != 3 {
			t.Fatalf("events: %+v %v", got, err)
		}
		if got[0].Topic != "agent:a1" || got[1].Type != "queue" || got[2].Type != "presence" {
			t.Fatalf("events: %+v", got)
		}
		byID, err := a.EventsByID(ctx, []int64{got[1].ID, 999999})
		if err != nil || len(byID) != 1 || byID[0].Data != "it" {
			t.Fatalf("by id: %+v %v", byID, err)
		}
		lo, hi, err := a.EventBounds(ctx)
		if err != nil || lo != got[0].ID || hi != got[2].ID {
			t.Fatalf("bounds %d %d %v", lo, hi, err)
		}
		// Pruning keeps the newest row: ids never restart below what browsers
		// hold as Last-Event-ID.
		if n, err := a.PruneEvents(ctx, now.Add(time.Hour)); err != nil || n != 2 {
			t.Fatalf("prune: %d %v", n, err)
		}
		if lo, hi, _ := a.EventBounds(ctx); lo != hi || hi != got[2].ID {
			t.Fatalf("after prune: %d %d", lo, hi)
		}
	})
}

func TestWebCannedPerAgent(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		st := gormstore.NewWebStore(gormstoretest.Open(t, driver))
		ctx := context.Background()
		now := time.Now()
		var ids []int64
		for _, text := range []string{"一", "二", "三"} {
			c, err := st.AddCanned(ctx, "agent1", "问候", text, now)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, c.ID)
		}
		if _, err := st.AddCanned(ctx, "agent2", "", "别人的", now); err != nil {
			t.Fatal(err)
		}
		if err := st.MoveCanned(ctx, "agent1", ids[2], -1); err != nil {
			t.Fatal(err)
		}
		if err := st.UpdateCanned(ctx, "agent1", ids[0], "开场", "一改"); err != nil {
			t.Fatal(err)
		}
		if err := st.UpdateCanned(ctx, "agent1", ids[0], "开场", "一改"); err != nil {
			t.Fatalf("unchanged update: %v", err)
		}
		list, err := st.CannedReplies(ctx, "agent1")
		if err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, c := range list {
			texts = append(texts, c.Text)
		}
		if len(texts) != 3 || texts[0] != "一改" || texts[1] != "三" || texts[2] != "二" {
			t.Fatalf("order after move: %v", texts)
		}
		// Another agent's reply is not found for agent1.
		other, _ := st.CannedReplies(ctx, "agent2")
		if err := st.DeleteCanned(ctx, "agent1", other[0].ID); !errors.Is(err, web.ErrNotFound) {
			t.Fatalf("delete another agent's: %v", err)
		}
		if err := st.UpdateCanned(ctx, "agent1", other[0].ID, "", "x"); !errors.Is(err, web.ErrNotFound) {
			t.Fatalf("update another agent's: %v", err)
		}
		if err := st.DeleteCanned(ctx, "agent1", ids[1]); err != nil {
			t.Fatal(err)
		}
		if list, _ := st.CannedReplies(ctx, "agent1"); len(list) != 2 {
			t.Fatalf("after delete: %d", len(list))
		}
	})
}

// seedAgentSessions gives agent1 n active sessions with lines messages each
// (every other one from the user).
func seedAgentSessions(tb testing.TB, db *gormstore.DB, n, lines int) {
	tb.Helper()
	now := time.Now().UTC()
	g := db.Gorm()
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("cid%d|u%d", i, i)
		s := gormstore.HandoffSessionRow{UserKey: key, ConversationID: fmt.Sprintf("cid%d", i), ConversationType: "1",
			UserID: fmt.Sprintf("u%d", i), Nick: fmt.Sprintf("用户%d", i), GroupName: "it", State: string(handoff.StatusActive),
			Reason: "keyword", AgentID: "agent1", AgentNo: i + 1, AgentName: "小王", QueuedAt: &now, AssignedAt: &now, CreatedAt: now}
		if err := g.Create(&s).Error; err != nil {
			tb.Fatal(err)
		}
		rows := make([]gormstore.HandoffMessageRow, lines)
		for j := range rows {
			kind := string(handoff.SenderUser)
			if j%2 == 1 {
				kind = string(handoff.SenderAgent)
			}
			rows[j] = gormstore.HandoffMessageRow{UserKey: key, SessionID: s.ID, Direction: "in", SenderKind: kind,
				Text: fmt.Sprintf("第 %d 条", j), CreatedAt: now.Add(time.Duration(i*lines+j) * time.Millisecond)}
		}
		if err := g.CreateInBatches(rows, 500).Error; err != nil {
			tb.Fatal(err)
		}
	}
}

func TestWebActiveSessionsUnreadAndOrder(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		seedAgentSessions(t, db, 3, 4)
		st := gormstore.NewWebStore(db)
		ctx := context.Background()
		ss, err := st.ActiveSessions(ctx, "agent1")
		if err != nil || len(ss) != 3 {
			t.Fatalf("%d sessions, %v", len(ss), err)
		}
		// Newest activity first; 2 user lines unread each.
		if ss[0].Nick != "用户2" || ss[0].Unread != 2 || ss[0].LastText != "第 3 条" {
			t.Fatalf("first: %+v", ss[0])
		}
		lines, err := st.Transcript(ctx, ss[0].UserKey, 0, 50)
		if err != nil || len(lines) != 4 {
			t.Fatalf("transcript %d %v", len(lines), err)
		}
		if err := st.MarkRead(ctx, "agent1", ss[0].ID, lines[1].ID); err != nil {
			t.Fatal(err)
		}
		if err := st.MarkRead(ctx, "agent1", ss[0].ID, lines[0].ID); err != nil { // never moves back
			t.Fatal(err)
		}
		ss, _ = st.ActiveSessions(ctx, "agent1")
		if ss[0].Unread != 1 {
			t.Fatalf("after reading two lines: %d unread, want 1", ss[0].Unread)
		}
		page, err := st.Transcript(ctx, ss[0].UserKey, lines[2].ID, 50)
		if err != nil || len(page) != 2 || page[1].ID != lines[1].ID {
			t.Fatalf("earlier page: %+v %v", page, err)
		}
	})
}

// BenchmarkWebActiveSessions100 is the 会话列表 of an agent holding 100
// sessions with 200 lines each: what every list refresh costs.
func BenchmarkWebActiveSessions100(b *testing.B) {
	for _, driver := range gormstoretest.Drivers(b) {
		b.Run(driver, func(b *testing.B) {
			db := gormstoretest.Open(b, driver)
			seedAgentSessions(b, db, 100, 200)
			st := gormstore.NewWebStore(db)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if ss, err := st.ActiveSessions(ctx, "agent1"); err != nil || len(ss) != 100 {
					b.Fatal(len(ss), err)
				}
			}
		})
	}
}
