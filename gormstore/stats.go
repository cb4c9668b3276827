package gormstore

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/dingdesk/dingdesk/metrics"
)

// Stats and GroupStats are the metrics package's records (metrics.Store),
// which StatsStore fills.
type (
	Stats      = metrics.Stats
	GroupStats = metrics.GroupStats
)

var _ metrics.Store = (*StatsStore)(nil)

// StatsStore runs the read queries behind Stats. Each one is bounded by an
// index to the rows it counts (the backlog, the open sessions), never by
// the history kept in the tables, so a scrape stays cheap however long the
// service has run.
type StatsStore struct{ db *DB }

// NewStatsStore wraps db.
func NewStatsStore(db *DB) *StatsStore { return &StatsStore{db: db} }

// Stats reads a snapshot. The queries run one by one outside any
// transaction (on SQLite a transaction would take the write lock), so the
// figures may be a few milliseconds apart.
func (s *StatsStore) Stats(ctx context.Context) (Stats, error) {
	g := s.db.gorm.WithContext(ctx)
	var st Stats
	var err error
	// ix_inbox_pending (handled, received_at) serves both.
	if err = g.Model(&inboxRow{}).Where("handled = ?", false).Count(&st.InboxUnhandled).Error; err != nil {
		return st, err
	}
	if st.InboxOldest, err = first(g.Model(&inboxRow{}).Where("handled = ?", false).Order("received_at"), "received_at"); err != nil {
		return st, err
	}
	// ix_outbox_due (status, next_at) limits both to the backlog.
	unsent := []string{OutboxPending, OutboxSending}
	if err = g.Model(&outboxRow{}).Where("status IN ?", unsent).Count(&st.OutboxUnsent).Error; err != nil {
		return st, err
	}
	if st.OutboxOldest, err = first(g.Model(&outboxRow{}).Where("status IN ?", unsent).Order("created_at"), "created_at"); err != nil {
		return st, err
	}

	var names []string
	if err = g.Model(&handoffGroupRow{}).Order("name").Pluck("name", &names).Error; err != nil {
		return st, err
	}
	loads, err := groupLoads(g, names) // monitor.go
	if err != nil {
		return st, err
	}
	st.Groups = make([]GroupStats, len(names))
	for i, n := range names {
		l := loads[n]
		st.Groups[i] = GroupStats{Name: n, Queued: int64(l.Queued), Active: int64(l.Active), OldestQueued: l.OldestQueued}
	}

	var agents []struct{ StaffID, Presence string }
	if err = g.Model(&handoffAgentRow{}).Select("staff_id, presence").Scan(&agents).Error; err != nil {
		return st, err
	}
	st.Presence = make(map[string]string, len(agents))
	for _, a := range agents {
		st.Presence[a.StaffID] = a.Presence
	}
	return st, nil
}

// ReceivedAt is when the inbox accepted msgID; ok is false when the inbox
// does not have it (pruned, or never accepted).
func (s *StatsStore) ReceivedAt(ctx context.Context, msgID string) (at time.Time, ok bool, err error) {
	at, err = first(s.db.gorm.WithContext(ctx).Model(&inboxRow{}).Where("msg_id = ?", msgID), "received_at")
	return at, !at.IsZero(), err
}

// first reads column of q's first row; zero without rows (or a NULL).
func first(q *gorm.DB, column string) (time.Time, error) {
	var row struct{ T *time.Time }
	err := q.Select(column + " AS t").Limit(1).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) || err == nil && row.T == nil {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return row.T.UTC(), nil
}
