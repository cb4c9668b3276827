package gormstore

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/monitor"
)

// MonitorStore implements monitor.Store.
type MonitorStore struct{ db *DB }

var _ monitor.Store = (*MonitorStore)(nil)

// NewMonitorStore wraps db.
func NewMonitorStore(db *DB) *MonitorStore { return &MonitorStore{db: db} }

// Agents reads the agents' presence rows that exist.
func (s *MonitorStore) Agents(ctx context.Context, staffIDs []string) ([]monitor.AgentRow, error) {
	rows, err := agentLoads(s.db.gorm.WithContext(ctx), staffIDs)
	out := make([]monitor.AgentRow, len(rows))
	for i, r := range rows {
		out[i] = monitor.AgentRow{StaffID: r.StaffID, Presence: r.Presence, OpenChats: r.OpenChats}
	}
	return out, err
}

// agentLoads reads the presence and open chats of those of staffIDs that
// have an agent row, for the admin monitor and the workbench.
func agentLoads(g *gorm.DB, staffIDs []string) ([]handoffAgentRow, error) {
	if len(staffIDs) == 0 {
		return nil, nil
	}
	var rows []handoffAgentRow
	err := g.Select("staff_id, presence, open_chats").Where("staff_id IN ?", staffIDs).Find(&rows).Error
	return rows, err
}

// GroupLoads counts open sessions per group by state (see groupLoads).
func (s *MonitorStore) GroupLoads(ctx context.Context, groups []string) (map[string]monitor.GroupLoad, error) {
	return groupLoads(s.db.gorm.WithContext(ctx), groups)
}

// groupLoads counts the open sessions of groups by state and finds each
// group's longest wait, in two queries through ix_hs_queue (group_name,
// state): the admin monitor and the metrics' gauges (Stats) read the same
// figures. Groups without open sessions have no entry.
func groupLoads(g *gorm.DB, groups []string) (map[string]monitor.GroupLoad, error) {
	out := map[string]monitor.GroupLoad{}
	if len(groups) == 0 {
		return out, nil
	}
	var rows []struct {
		GroupName string
		State     string
		N         int
	}
	err := g.Model(&handoffSessionRow{}).Select("group_name, state, COUNT(*) AS n").
		Where("group_name IN ? AND state IN ?", groups, []string{string(handoff.StatusQueued), string(handoff.StatusActive)}).Group("group_name, state").Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		l := out[r.GroupName]
		if r.State == string(handoff.StatusQueued) {
			l.Queued = r.N
		} else {
			l.Active = r.N
		}
		out[r.GroupName] = l
	}
	// The longest wait is the earliest join among the queued: read their
	// times (queues are short; the queue index bounds the read). MIN() of
	// a time column would come back as text on SQLite.
	var queued []handoffSessionRow
	if err := g.Select("group_name, queued_at, created_at").
		Where("group_name IN ? AND state = ?", groups, string(handoff.StatusQueued)).Find(&queued).Error; err != nil {
		return nil, err
	}
	for _, q := range queued {
		at := q.CreatedAt
		if q.QueuedAt != nil {
			at = *q.QueuedAt
		}
		l := out[q.GroupName]
		if l.OldestQueued.IsZero() || at.Before(l.OldestQueued) {
			l.OldestQueued = at.UTC()
		}
		out[q.GroupName] = l
	}
	return out, nil
}

// SessionsTaken counts sessions assigned at or after since, by agent
// (ix_hs_assigned bounds it to the day).
func (s *MonitorStore) SessionsTaken(ctx context.Context, since time.Time) (map[string]int, error) {
	var rows []struct {
		AgentID string
		N       int
	}
	err := s.db.gorm.WithContext(ctx).Model(&handoffSessionRow{}).Select("agent_id, COUNT(*) AS n").
		Where("assigned_at >= ? AND agent_id <> ''", since.UTC()).Group("agent_id").Scan(&rows).Error
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.AgentID] = r.N
	}
	return out, err
}

// BotTurns counts bot turns by outcome at or after since (ix_bt_created).
func (s *MonitorStore) BotTurns(ctx context.Context, since time.Time) (monitor.BotCounts, error) {
	var rows []struct {
		Outcome string
		N       int
	}
	err := s.db.gorm.WithContext(ctx).Model(&botTurnRow{}).Select("outcome, COUNT(*) AS n").
		Where("created_at >= ?", since.UTC()).Group("outcome").Scan(&rows).Error
	var c monitor.BotCounts
	for _, r := range rows {
		c.Questions += r.N
		switch r.Outcome {
		case "answer":
			c.Answered = r.N
		case "clarify":
			c.Clarified = r.N
		case "none":
			c.NoAnswer = r.N
		}
	}
	return c, err
}

// Handoffs counts sessions opened from the bot at or after since.
func (s *MonitorStore) Handoffs(ctx context.Context, since time.Time) (int, error) {
	var n int64
	err := s.db.gorm.WithContext(ctx).Model(&handoffSessionRow{}).Where("created_at >= ? AND reason <> ?", since.UTC(), "transfer").Count(&n).Error
	return int(n), err
}
