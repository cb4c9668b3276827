package gormstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/pipeline"
)

// Outbox states.
const (
	OutboxPending = "pending" // waiting for its next attempt
	OutboxSending = "sending" // held by replica_id while that replica is alive
	OutboxSent    = "sent"
	OutboxFailed  = "failed" // given up; last_error says why
)

// outboxRow is one outbound message. Replies are written in the same
// transaction as the state change that caused them and sent afterwards, so
// a crash can neither lose a reply nor send one for a change that did not
// commit.
type outboxRow struct {
	ID      int64  `gorm:"primaryKey;autoIncrement"`
	UserKey string `gorm:"size:255;not null;index:ix_outbox_user"`
	// Reply is the adapter.Reply as JSON; mediumtext because a relayed
	// user message is as large as the webhook allows.
	Reply     string    `gorm:"type:mediumtext;not null"`
	Status    string    `gorm:"size:16;not null;index:ix_outbox_due,priority:1"`
	NextAt    time.Time `gorm:"not null;index:ix_outbox_due,priority:2"`
	Attempts  int       `gorm:"not null;default:0"`
	LastError string    `gorm:"size:1000"`
	CreatedAt time.Time `gorm:"not null"`
	SentAt    *time.Time
	// ReplicaID holds a sending row: the replica that wrote it (and sends
	// it right after the commit) or claimed it for a retry. When that
	// replica's heartbeat stops, any other takes the row over: only a send
	// in flight at the crash can go out twice. (Before heartbeats a
	// lease_until column did this; old databases keep it, unused.)
	ReplicaID string `gorm:"size:64;not null;default:''"`
}

func (outboxRow) TableName() string { return "outbox" }

// OutboxItem is a claimed row ready to send (the pipeline's type: the
// sender gets it without a conversion).
type OutboxItem = pipeline.OutboxItem

var _ pipeline.OutboxStore = (*OutboxStore)(nil)

// enqueueReplies adds replies to the outbox inside tx, held by this
// replica for its first send, and returns them as items (ids assigned), in
// order, for the caller to hand to Outbox.Kick after the commit without
// reading them back.
func (db *DB) enqueueReplies(tx *gorm.DB, now time.Time, replies ...adapter.Reply) ([]OutboxItem, error) {
	if len(replies) == 0 {
		return nil, nil
	}
	at := now.UTC()
	rows, err := db.outboxRows(now, replies)
	if err != nil {
		return nil, err
	}
	ids, err := db.sqlOn(tx).insertRows("outbox", outboxColumns, rows)
	if err != nil {
		return nil, fmt.Errorf("enqueue replies: %w", err)
	}
	items := make([]OutboxItem, len(rows))
	for i := range rows {
		items[i] = OutboxItem{ID: ids[i], Reply: replies[i], CreatedAt: at}
	}
	return items, nil
}

// outboxRows are the outbox rows of replies (outboxColumns' values), held
// by this replica's sender.
func (db *DB) outboxRows(now time.Time, replies []adapter.Reply) ([][]any, error) {
	at := now.UTC()
	rows := make([][]any, len(replies))
	for i, r := range replies {
		body, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		rows[i] = []any{r.ConversationID + "|" + r.UserID, string(body), OutboxSending, at, 0, "", at, nil, db.replica}
	}
	return rows, nil
}

// outboxColumns are the columns of outbox that enqueueReplies writes: all
// but id (the values gorm's Create wrote, by hand: every reply is one).
var outboxColumns = []string{"user_key", "reply", "status", "next_at", "attempts", "last_error", "created_at", "sent_at", "replica_id"}

// OutboxStore is the outbox's queries.
type OutboxStore struct{ db *DB }

// NewOutboxStore wraps db.
func NewOutboxStore(db *DB) *OutboxStore { return &OutboxStore{db: db} }

// due restricts q to rows a sender may take now: a retry whose time has
// come, or a send held by a replica that died.
func (s *OutboxStore) due(q *gorm.DB, now time.Time) *gorm.DB {
	dead := s.db.deadOwner(s.db.gorm.Model(&outboxRow{}).Select("id").Where("status = ?", OutboxSending), now)
	return q.Where("(status = ? AND next_at <= ?) OR id IN (?)", OutboxPending, now.UTC(), dead)
}

// Claim takes row id for sending if it is due (see Due), so exactly one
// sender in any replica gets it.
func (s *OutboxStore) Claim(ctx context.Context, id int64, now time.Time) (*OutboxItem, error) {
	g := s.db.gorm.WithContext(ctx)
	// Read the row as due first, then swap its holder only if nobody
	// changed it meanwhile (MySQL also refuses an UPDATE whose condition
	// reads the table being updated, which the dead-holder test does).
	var seen []outboxRow
	if err := s.due(g.Model(&outboxRow{}).Select("id, status, replica_id").Where("id = ?", id), now).Find(&seen).Error; err != nil || len(seen) == 0 {
		return nil, err
	}
	res := g.Model(&outboxRow{}).
		Where("id = ? AND status = ? AND replica_id = ? AND (status = ? OR next_at <= ?)",
			id, seen[0].Status, seen[0].ReplicaID, OutboxSending, now.UTC()).
		Updates(map[string]any{"status": OutboxSending, "replica_id": s.db.replica})
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, nil
	}
	var row outboxRow
	if err := g.First(&row, id).Error; err != nil {
		return nil, err
	}
	var r adapter.Reply
	if err := json.Unmarshal([]byte(row.Reply), &r); err != nil {
		return nil, fmt.Errorf("outbox row %d: %w", id, err)
	}
	return &OutboxItem{ID: row.ID, Reply: r, Attempts: row.Attempts, CreatedAt: row.CreatedAt}, nil
}

// Due lists ids whose attempt is due or whose sender died, oldest first.
// Cost is O(due) through ix_outbox_due.
func (s *OutboxStore) Due(ctx context.Context, now time.Time, limit int) ([]int64, error) {
	var ids []int64
	err := s.due(s.db.gorm.WithContext(ctx).Model(&outboxRow{}), now).Order("id").Limit(limit).Pluck("id", &ids).Error
	return ids, err
}

// StillHeld keeps of ids those this replica still holds for sending: when
// its heartbeats were late, another replica may have taken some over.
func (s *OutboxStore) StillHeld(ctx context.Context, ids []int64) (map[int64]bool, error) {
	var held []int64
	err := s.db.gorm.WithContext(ctx).Model(&outboxRow{}).
		Where("id IN ? AND status = ? AND replica_id = ?", ids, OutboxSending, s.db.replica).Pluck("id", &held).Error
	out := make(map[int64]bool, len(held))
	for _, id := range held {
		out[id] = true
	}
	return out, err
}

// BeatFresh: see DB.BeatFresh.
func (s *OutboxStore) BeatFresh(now time.Time) bool { return s.db.BeatFresh(now) }

// MarkSent records deliveries, several in one statement.
func (s *OutboxStore) MarkSent(ctx context.Context, now time.Time, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	return s.db.gorm.WithContext(ctx).Model(&outboxRow{}).Where("id IN ?", ids).
		Updates(map[string]any{"status": OutboxSent, "sent_at": now.UTC()}).Error
}

// MarkRetry schedules another attempt.
func (s *OutboxStore) MarkRetry(ctx context.Context, id int64, attempts int, next time.Time, reason string) error {
	return s.db.gorm.WithContext(ctx).Model(&outboxRow{}).Where("id = ?", id).
		Updates(map[string]any{"status": OutboxPending, "attempts": attempts, "next_at": next.UTC(),
			"last_error": truncate(reason, 1000)}).Error
}

// MarkFailed gives up on a send and keeps the reason.
func (s *OutboxStore) MarkFailed(ctx context.Context, id int64, attempts int, reason string) error {
	return s.db.gorm.WithContext(ctx).Model(&outboxRow{}).Where("id = ?", id).
		Updates(map[string]any{"status": OutboxFailed, "attempts": attempts,
			"last_error": truncate(reason, 1000)}).Error
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
func (s *OutboxStore) Failed(ctx context.Context, limit int) ([]outboxRow, error) {
	var rows []outboxRow
	err := s.db.gorm.WithContext(ctx).Where("status = ?", OutboxFailed).Order("id desc").Limit(limit).Find(&rows).Error
	return rows, err
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
