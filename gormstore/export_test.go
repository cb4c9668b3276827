package gormstore

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/dingdesk/dingdesk/adapter"
)

// Hooks for the external tests of this package (storage_test): the gorm
// handles stay unexported in the package's API.

// HandoffTx is the hand-off transaction.
type HandoffTx = handoffTx

// G is the transaction's gorm handle (for a direct statement: what the
// member deferred is written first).
func (t *handoffTx) G() *gorm.DB { return t.q() }

// Gorm is the database's gorm handle.
func (db *DB) Gorm() *gorm.DB { return db.gorm }

func (db *DB) Handoff(ctx context.Context, fn func(tx *HandoffTx) error) error {
	return db.handoff(ctx, fn)
}

func (db *DB) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return db.transaction(ctx, fn)
}

func (db *DB) DurableRetry(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return db.durableTx(ctx, fn)
}

func (db *DB) MarkHandled(tx *gorm.DB, msgID string, at time.Time) error {
	return db.markHandled(tx, msgID, at)
}

func (db *DB) EnqueueReplies(tx *gorm.DB, now time.Time, replies ...adapter.Reply) ([]OutboxItem, error) {
	return db.enqueueReplies(tx, now, replies...)
}

// Rows the stats test writes directly.
type (
	InboxRow          = inboxRow
	OutboxRow         = outboxRow
	HandoffSessionRow = handoffSessionRow
	HandoffAgentRow   = handoffAgentRow
)

// Rows the web store's benchmark writes directly.
type HandoffMessageRow = handoffMessageRow

// HandoffGroup runs fns as the members of one group, in order, as the
// group runner would (deferring their writes when there are several), and
// returns each member's result once the group has committed or failed.
func (db *DB) HandoffGroup(ctx context.Context, fns ...func(tx *HandoffTx) error) []error {
	return db.HandoffGroupFor(ctx, nil, fns...)
}

// HandoffGroupFor is HandoffGroup for members that lock keys[i]'s
// conversation first (read ahead).
func (db *DB) HandoffGroupFor(ctx context.Context, keys []string, fns ...func(tx *HandoffTx) error) []error {
	batch := make([]*txReq, len(fns))
	for i, fn := range fns {
		batch[i] = &txReq{ctx: ctx, fn: fn, result: make(chan error, 1)}
		if i < len(keys) {
			batch[i].key = keys[i]
		}
	}
	db.group.commit(batch)
	out := make([]error, len(batch))
	for i, r := range batch {
		out[i] = <-r.result
	}
	return out
}

// Items are the outbox items the transaction enqueued (ids set once
// written).
func (t *handoffTx) Items() []OutboxItem {
	out := make([]OutboxItem, len(t.items))
	for i, it := range t.items {
		out[i] = *it
	}
	return out
}

// ErrGroupAborted is the result of a member whose group failed.
var ErrGroupAborted = errGroupAborted

// SyncsWAL reports whether durable commits sync SQLite's WAL file
// themselves; WALSyncs counts those syncs.
func (db *DB) SyncsWAL() bool  { return db.wal != nil }
func (db *DB) WALSyncs() int64 { return db.walSyncs.Load() }
