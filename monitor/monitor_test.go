package monitor_test

import (
	"context"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/monitor"
)

func TestReadOnBothDrivers(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		db := gormstoretest.Open(t, driver)
		now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC) // Monday 11:00 in Shanghai
		yesterday := now.Add(-24 * time.Hour)
		err := gormstore.NewHandoffStore(db, nil).Transact(ctx, func(tx handoff.Tx) error {
			bt := tx.(interface {
				AddBotTurn(userKey, outcome, entryID string, score float64, at time.Time) error
			})
			for _, x := range []struct {
				user, outcome string
				at            time.Time
			}{
				{"u1", "answer", now.Add(-time.Hour)},
				{"u2", "none", now.Add(-time.Hour)},
				{"u3", "clarify", now.Add(-time.Hour)},
				{"u4", "answer", now.Add(-2 * time.Hour)},
				{"u5", "none", yesterday},
			} {
				if err := bt.AddBotTurn(x.user, x.outcome, "", 0, x.at); err != nil {
					return err
				}
			}
			for _, s := range []handoff.Session{
				{UserKey: "u2", Group: "it", Status: handoff.StatusActive, Reason: "no_answer", Agent: "a1", CreatedAt: now.Add(-time.Hour), AssignedAt: now},
				{UserKey: "u6", Group: "it", Status: handoff.StatusQueued, Reason: "keyword", CreatedAt: now.Add(-5 * time.Minute), QueuedAt: now.Add(-5 * time.Minute)},
				{UserKey: "u7", Group: "it", Status: handoff.StatusQueued, Reason: "transfer", CreatedAt: now.Add(-time.Minute), QueuedAt: now.Add(-time.Minute)},
				{UserKey: "u8", Group: "it", Status: handoff.StatusEnded, Reason: "keyword", Agent: "a1", CreatedAt: yesterday, AssignedAt: yesterday},
			} {
				s.ConversationID, s.ConversationType, s.UserID = "c", "1", s.UserKey
				if err := tx.CreateSession(&s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := gormstore.NewHandoffStore(db, nil).SetPresence(ctx, "a1", handoff.Busy, now); err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.ServiceRules = []config.ServiceRule{config.DefaultServiceRule()}
		cfg.ServiceRules[0].Name = "office"
		cfg.SkillGroups = []config.SkillGroup{{Name: "it", Rule: "office", Members: []config.Member{{StaffID: "a1", Name: "小王", MaxChats: 3}, {StaffID: "a2", MaxChats: 2}}}}
		st, err := monitor.Read(ctx, gormstore.NewMonitorStore(db), cfg, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		g := st.Groups[0]
		if !g.OpenNow || g.Busy != 1 || g.Offline != 1 || g.Active != 1 || g.Queued != 2 || g.LongestWait != 5*time.Minute {
			t.Fatalf("group = %+v", g)
		}
		if a := g.Agents[0]; a.Presence != "busy" || a.SessionsToday != 1 || a.Name != "小王" || g.Agents[1].Name != "a2" {
			t.Fatalf("agents = %+v", g.Agents)
		}
		if b := st.Bot; b.Questions != 4 || b.Answered != 2 || b.NoAnswer != 1 || b.Clarified != 1 || b.Handoffs != 2 || b.HandoffRate() != 0.5 {
			t.Fatalf("bot = %+v", b)
		}
		// Sunday: outside mon-fri hours.
		if st, _ := monitor.Read(ctx, gormstore.NewMonitorStore(db), cfg, now.Add(-24*time.Hour), nil); st.Groups[0].OpenNow {
			t.Fatal("open on a Sunday")
		}
	})
}
