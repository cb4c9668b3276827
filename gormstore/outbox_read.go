package gormstore

import (
	"context"
	"encoding/json"
	"fmt"
)

// After lists outbox messages with ids above afterID, oldest first, at most
// limit: what the service has written to send since then (for tests and
// operators; the sender claims rows through Claim and Due).
func (s *OutboxStore) After(ctx context.Context, afterID int64, limit int) ([]OutboxItem, error) {
	var rows []outboxRow
	if err := s.db.gorm.WithContext(ctx).Where("id > ?", afterID).Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]OutboxItem, len(rows))
	for i, r := range rows {
		out[i] = OutboxItem{ID: r.ID, Attempts: r.Attempts, CreatedAt: r.CreatedAt}
		if err := json.Unmarshal([]byte(r.Reply), &out[i].Reply); err != nil {
			return nil, fmt.Errorf("outbox row %d: %w", r.ID, err)
		}
	}
	return out, nil
}

// LastID is the highest outbox id so far (0: empty).
func (s *OutboxStore) LastID(ctx context.Context) (int64, error) {
	var id int64
	err := s.db.gorm.WithContext(ctx).Model(&outboxRow{}).Select("coalesce(max(id), 0)").Scan(&id).Error
	return id, err
}

// FailedSend is an outbound message given up on, with the last reason.
type FailedSend struct {
	OutboxItem
	LastError string
}

func failedSends(rows []outboxRow) []FailedSend {
	out := make([]FailedSend, len(rows))
	for i, r := range rows {
		out[i] = FailedSend{OutboxItem: OutboxItem{ID: r.ID, Attempts: r.Attempts, CreatedAt: r.CreatedAt}, LastError: r.LastError}
		_ = json.Unmarshal([]byte(r.Reply), &out[i].Reply) // the reason matters more than a damaged body
	}
	return out
}
