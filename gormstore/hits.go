package gormstore

import (
	"context"
	"sort"

	"gorm.io/gorm"
)

// HitStore keeps knowledge-entry hit counts (高频问题) across restarts.
type HitStore struct{ db *DB }

// NewHitStore wraps db.
func NewHitStore(db *DB) *HitStore { return &HitStore{db: db} }

// Load returns every stored count.
func (s *HitStore) Load(ctx context.Context) (map[string]int64, error) {
	var rows []kbHitRow
	if err := s.db.gorm.WithContext(ctx).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.EntryID] = r.Hits
	}
	return out, nil
}

// Flush adds deltas to the stored counts in one transaction. Replicas add
// their own deltas, so counts from all of them sum up.
func (s *HitStore) Flush(ctx context.Context, deltas map[string]int64) error {
	if len(deltas) == 0 {
		return nil
	}
	ids := make([]string, 0, len(deltas))
	for id, d := range deltas {
		if d != 0 {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids) // same lock order on every replica
	upsert := "INSERT INTO kb_hits (entry_id, hits) VALUES (?, ?) ON CONFLICT (entry_id) DO UPDATE SET hits = kb_hits.hits + excluded.hits"
	if s.db.Driver == "mysql" {
		upsert = "INSERT INTO kb_hits (entry_id, hits) VALUES (?, ?) ON DUPLICATE KEY UPDATE hits = hits + VALUES(hits)"
	}
	return s.db.retryTx(ctx, func(tx *gorm.DB) error {
		for _, id := range ids {
			if err := tx.Exec(upsert, id, deltas[id]).Error; err != nil {
				return err
			}
		}
		return nil
	})
}
