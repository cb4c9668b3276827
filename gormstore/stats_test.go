package gormstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
)

// Stats counts only what is open (unhandled, unsent, queued, active) and
// finds the oldest of each, on both drivers.
func TestStatsCountsOpenWork(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		ctx := context.Background()
		stats := gormstore.NewStatsStore(db)

		empty, err := stats.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if empty.InboxUnhandled != 0 || !empty.InboxOldest.IsZero() || empty.OutboxUnsent != 0 ||
			!empty.OutboxOldest.IsZero() || len(empty.Groups) != 0 || len(empty.Presence) != 0 {
			t.Fatalf("empty database: %+v", empty)
		}

		base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
		at := func(min int) *time.Time { t := base.Add(time.Duration(min) * time.Minute); return &t }
		g := db.Gorm().WithContext(ctx)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(g.Create(&[]gormstore.InboxRow{
			{MsgID: "m1", UserKey: "c|u1", Message: "{}", ReceivedAt: *at(1)},
			{MsgID: "m2", UserKey: "c|u2", Message: "{}", ReceivedAt: *at(2)},
			{MsgID: "m3", UserKey: "c|u3", Message: "{}", ReceivedAt: *at(0), Handled: true, HandledAt: at(3)},
		}).Error)
		must(g.Create(&[]gormstore.OutboxRow{
			{UserKey: "c|u1", Reply: "{}", Status: gormstore.OutboxSent, NextAt: *at(0), CreatedAt: *at(0)},
			{UserKey: "c|u1", Reply: "{}", Status: gormstore.OutboxFailed, NextAt: *at(1), CreatedAt: *at(1)},
			{UserKey: "c|u2", Reply: "{}", Status: gormstore.OutboxPending, NextAt: *at(9), CreatedAt: *at(5)},
			{UserKey: "c|u3", Reply: "{}", Status: gormstore.OutboxSending, NextAt: *at(4), CreatedAt: *at(4), ReplicaID: "r1"},
		}).Error)
		must(gormstore.NewHandoffStore(db, nil).EnsureGroups(ctx, "it", "hr"))
		session := func(group, state string, queued *time.Time) gormstore.HandoffSessionRow {
			return gormstore.HandoffSessionRow{UserKey: "c|x", ConversationID: "c", ConversationType: "1", UserID: "x",
				GroupName: group, State: state, Reason: "keyword", QueuedAt: queued, CreatedAt: base}
		}
		must(g.Create(&[]gormstore.HandoffSessionRow{
			session("it", string(handoff.StatusQueued), at(20)),
			session("it", string(handoff.StatusQueued), at(10)),
			session("it", string(handoff.StatusActive), at(5)),
			session("it", string(handoff.StatusEnded), at(1)),
			session("hr", string(handoff.StatusEnded), at(1)),
			session("gone", string(handoff.StatusQueued), at(1)), // no lock row: not a group
		}).Error)
		must(g.Create(&[]gormstore.HandoffAgentRow{
			{StaffID: "a1", Presence: string(handoff.Online), PresenceAt: base},
			{StaffID: "a2", Presence: string(handoff.Busy), PresenceAt: base},
		}).Error)

		st, err := stats.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.InboxUnhandled != 2 || !st.InboxOldest.Equal(*at(1)) {
			t.Errorf("inbox: %d unhandled, oldest %v; want 2, %v", st.InboxUnhandled, st.InboxOldest, *at(1))
		}
		if st.OutboxUnsent != 2 || !st.OutboxOldest.Equal(*at(4)) {
			t.Errorf("outbox: %d unsent, oldest %v; want 2, %v", st.OutboxUnsent, st.OutboxOldest, *at(4))
		}
		want := []gormstore.GroupStats{{Name: "hr"}, {Name: "it", Queued: 2, Active: 1, OldestQueued: *at(10)}}
		if len(st.Groups) != len(want) {
			t.Fatalf("groups: %+v, want %+v", st.Groups, want)
		}
		for i, w := range want {
			if got := st.Groups[i]; got.Name != w.Name || got.Queued != w.Queued || got.Active != w.Active || !got.OldestQueued.Equal(w.OldestQueued) {
				t.Errorf("group %d: %+v, want %+v", i, got, w)
			}
		}
		if len(st.Presence) != 2 || st.Presence["a1"] != string(handoff.Online) || st.Presence["a2"] != string(handoff.Busy) {
			t.Errorf("presence: %v", st.Presence)
		}

		got, ok, err := stats.ReceivedAt(ctx, "m2")
		if err != nil || !ok || !got.Equal(*at(2)) {
			t.Errorf("ReceivedAt(m2) = %v %v %v, want %v", got, ok, err, *at(2))
		}
		if _, ok, err := stats.ReceivedAt(ctx, "nope"); ok || err != nil {
			t.Errorf("ReceivedAt of an unknown id: ok=%v err=%v", ok, err)
		}
	})
}
