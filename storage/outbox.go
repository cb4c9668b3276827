package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/dingdesk/dingdesk/adapter"
)

// Outbox states.
const (
	OutboxPending = "pending" // waiting for its next attempt
	OutboxSending = "sending" // claimed by a sender until lease_until
	OutboxSent    = "sent"
	OutboxFailed  = "failed" // given up; last_error says why
)

// outboxRow is one outbound message. Replies are written in the same
// transaction as the state change that caused them and sent afterwards, so
// a crash can neither lose a reply nor send one for a change that did not
// commit.
type outboxRow struct {
	ID         int64     `gorm:"primaryKey;autoIncrement"`
	UserKey    string    `gorm:"size:255;not null;index:ix_outbox_user"`
	Reply      string    `gorm:"type:text;not null"` // adapter.Reply as JSON
	Status     string    `gorm:"size:16;not null;index:ix_outbox_due,priority:1"`
	NextAt     time.Time `gorm:"not null;index:ix_outbox_due,priority:2"`
	Attempts   int       `gorm:"not null;default:0"`
	LastError  string    `gorm:"size:1000"`
	CreatedAt  time.Time `gorm:"not null"`
	SentAt     *time.Time
	LeaseUntil *time.Time
}

func (outboxRow) TableName() string { return "outbox" }

// OutboxItem is a claimed row ready to send.
type OutboxItem struct {
	ID        int64
	Reply     adapter.Reply
	Attempts  int
	CreatedAt time.Time
}

// BirthLease is how long a new row belongs to the process that wrote it:
// that process sends it right after the commit (Kick) without claiming it
// again. If the process dies first, the lease runs out and any replica's
// retry loop takes the row over.
const BirthLease = 2 * time.Minute

// enqueueReplies adds replies to the outbox inside tx and returns them as
// items (ids assigned), for the caller to hand to the sender after the
// commit without reading them back
// in order. Callers pass the ids to Outbox.Kick after the commit.
func enqueueReplies(tx *gorm.DB, now time.Time, replies ...adapter.Reply) ([]OutboxItem, error) {
	if len(replies) == 0 {
		return nil, nil
	}
	rows := make([]outboxRow, len(replies))
	for i, r := range replies {
		body, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		lease := now.Add(BirthLease).UTC()
		rows[i] = outboxRow{
			UserKey: r.ConversationID + "|" + r.UserID, Reply: string(body),
			Status: OutboxSending, NextAt: now.UTC(), CreatedAt: now.UTC(), LeaseUntil: &lease,
		}
	}
	if err := tx.Create(&rows).Error; err != nil {
		return nil, fmt.Errorf("enqueue replies: %w", err)
	}
	items := make([]OutboxItem, len(rows))
	for i := range rows {
		items[i] = OutboxItem{ID: rows[i].ID, Reply: replies[i], CreatedAt: rows[i].CreatedAt}
	}
	return items, nil
}

// OutboxStore is the outbox's queries.
type OutboxStore struct{ db *DB }

// NewOutboxStore wraps db.
func NewOutboxStore(db *DB) *OutboxStore { return &OutboxStore{db: db} }

// Claim takes row id for sending if it is still pending (or its lease ran
// out), so exactly one sender in any replica gets it.
func (s *OutboxStore) Claim(ctx context.Context, id int64, now time.Time, lease time.Duration) (*OutboxItem, error) {
	until := now.Add(lease).UTC()
	res := s.db.gorm.WithContext(ctx).Model(&outboxRow{}).
		Where("id = ? AND ((status = ? AND next_at <= ?) OR (status = ? AND lease_until < ?))",
			id, OutboxPending, now.UTC(), OutboxSending, now.UTC()).
		Updates(map[string]any{"status": OutboxSending, "lease_until": until})
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, nil
	}
	var row outboxRow
	if err := s.db.gorm.WithContext(ctx).First(&row, id).Error; err != nil {
		return nil, err
	}
	var r adapter.Reply
	if err := json.Unmarshal([]byte(row.Reply), &r); err != nil {
		return nil, fmt.Errorf("outbox row %d: %w", id, err)
	}
	return &OutboxItem{ID: row.ID, Reply: r, Attempts: row.Attempts, CreatedAt: row.CreatedAt}, nil
}

// Due lists ids whose attempt is due or whose sender's lease ran out (a
// crashed replica), oldest first. Cost is O(due) through ix_outbox_due.
func (s *OutboxStore) Due(ctx context.Context, now time.Time, limit int) ([]int64, error) {
	var ids []int64
	err := s.db.gorm.WithContext(ctx).Model(&outboxRow{}).
		Where("(status = ? AND next_at <= ?) OR (status = ? AND lease_until < ?)",
			OutboxPending, now.UTC(), OutboxSending, now.UTC()).
		Order("id").Limit(limit).Pluck("id", &ids).Error
	return ids, err
}

// MarkSent records deliveries, several in one statement.
func (s *OutboxStore) MarkSent(ctx context.Context, now time.Time, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	return s.db.gorm.WithContext(ctx).Model(&outboxRow{}).Where("id IN ?", ids).
		Updates(map[string]any{"status": OutboxSent, "sent_at": now.UTC(), "lease_until": nil}).Error
}

// MarkRetry schedules another attempt.
func (s *OutboxStore) MarkRetry(ctx context.Context, id int64, attempts int, next time.Time, reason string) error {
	return s.db.gorm.WithContext(ctx).Model(&outboxRow{}).Where("id = ?", id).
		Updates(map[string]any{"status": OutboxPending, "attempts": attempts, "next_at": next.UTC(),
			"last_error": truncate(reason, 1000), "lease_until": nil}).Error
}

// MarkFailed gives up on a send and keeps the reason.
func (s *OutboxStore) MarkFailed(ctx context.Context, id int64, attempts int, reason string) error {
	return s.db.gorm.WithContext(ctx).Model(&outboxRow{}).Where("id = ?", id).
		Updates(map[string]any{"status": OutboxFailed, "attempts": attempts,
			"last_error": truncate(reason, 1000), "lease_until": nil}).Error
}

// Counts reports rows per status (for /metrics and tests).
func (s *OutboxStore) Counts(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		Status string
		N      int64
	}
	err := s.db.gorm.WithContext(ctx).Model(&outboxRow{}).Select("status, count(*) as n").Group("status").Scan(&rows).Error
	out := map[string]int64{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, err
}

// Failed lists failed sends, newest first.
func (s *OutboxStore) Failed(ctx context.Context, limit int) ([]FailedSend, error) {
	var rows []outboxRow
	err := s.db.gorm.WithContext(ctx).Where("status = ?", OutboxFailed).Order("id desc").Limit(limit).Find(&rows).Error
	return failedSends(rows), err
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// kbHitRow counts how often a knowledge entry answered, for 高频问题 across
// restarts.
type kbHitRow struct {
	EntryID string `gorm:"primaryKey;size:191"`
	Hits    int64  `gorm:"not null;default:0"`
}

func (kbHitRow) TableName() string { return "kb_hits" }
