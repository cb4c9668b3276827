package monitor_test

import (
	"context"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/monitor"
	"github.com/dingdesk/dingdesk/storage"
	"github.com/dingdesk/dingdesk/storage/storagetest"
)

func TestReadOnBothDrivers(t *testing.T) {
	storagetest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		db := storagetest.Open(t, driver)
		now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC) // Monday 11:00 in Shanghai
		yesterday := now.Add(-24 * time.Hour)
		err := db.Handoff(ctx, func(tx *storage.HandoffTx) error {
			if err := tx.AddBotTurns([]storage.BotTurnRow{
				{UserKey: "u1", Outcome: "answer", CreatedAt: now.Add(-time.Hour)},
				{UserKey: "u2", Outcome: "none", CreatedAt: now.Add(-time.Hour)},
				{UserKey: "u3", Outcome: "clarify", CreatedAt: now.Add(-time.Hour)},
				{UserKey: "u4", Outcome: "answer", CreatedAt: now.Add(-2 * time.Hour)},
				{UserKey: "u5", Outcome: "none", CreatedAt: yesterday},
			}); err != nil {
				return err
			}
			for _, s := range []storage.HandoffSessionRow{
				{UserKey: "u2", GroupName: "it", State: storage.SessionActive, Reason: "no_answer", AgentID: "a1", CreatedAt: now.Add(-time.Hour), AssignedAt: &now},
				{UserKey: "u6", GroupName: "it", State: storage.SessionQueued, Reason: "keyword", CreatedAt: now.Add(-5 * time.Minute), QueuedAt: ptr(now.Add(-5 * time.Minute))},
				{UserKey: "u7", GroupName: "it", State: storage.SessionQueued, Reason: "transfer", CreatedAt: now.Add(-time.Minute), QueuedAt: ptr(now.Add(-time.Minute))},
				{UserKey: "u8", GroupName: "it", State: storage.SessionEnded, Reason: "keyword", AgentID: "a1", CreatedAt: yesterday, AssignedAt: &yesterday},
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
		if err := storage.NewHandoffStore(db).SetPresence(ctx, "a1", storage.PresenceBusy, now); err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.ServiceRules = []config.ServiceRule{config.DefaultServiceRule()}
		cfg.ServiceRules[0].Name = "office"
		cfg.SkillGroups = []config.SkillGroup{{Name: "it", Rule: "office", Members: []config.Member{{StaffID: "a1", Name: "小王", MaxChats: 3}, {StaffID: "a2", MaxChats: 2}}}}
		st, err := monitor.Read(ctx, storage.NewMonitorStore(db), cfg, now, nil)
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
		if st, _ := monitor.Read(ctx, storage.NewMonitorStore(db), cfg, now.Add(-24*time.Hour), nil); st.Groups[0].OpenNow {
			t.Fatal("open on a Sunday")
		}
	})
}

func ptr(t time.Time) *time.Time { return &t }
