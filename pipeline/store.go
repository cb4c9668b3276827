package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
)

// Inbox is what the intake needs of the stored inbound messages: store
// before ACK (deduplicated by msgId), record a message given up, and take
// over the pending messages of dead replicas. gormstore.Inbox implements it.
type Inbox interface {
	// Accept stores msg; isNew is false for a msgId seen before.
	Accept(ctx context.Context, msg adapter.Message) (isNew bool, err error)
	// Probe reports whether the store answers at all (a handler failure
	// while it does not is not counted as an attempt).
	Probe(ctx context.Context) error
	// MarkFailed records msgID as failed for good and enqueues replies
	// (the apology) in the same transaction, returning them for Kick.
	MarkFailed(ctx context.Context, msgID string, attempts int, reason string, now time.Time, replies ...adapter.Reply) ([]OutboxItem, error)
	// TakeOver returns pending messages of dead replicas (and own ones
	// received before ownBefore, when it is set), oldest first, the rows
	// that cannot be decoded, and how many were taken from dead replicas.
	TakeOver(ctx context.Context, now, ownBefore time.Time, limit int) ([]adapter.Message, []Unreadable, int64, error)
	// MarkUnreadable records an undecodable row as failed.
	MarkUnreadable(ctx context.Context, u Unreadable, now time.Time) error
}

// OutboxStore is what the outbox sender needs of the stored replies.
// gormstore.OutboxStore implements it.
type OutboxStore interface {
	// BeatFresh reports whether this replica's heartbeat is recent enough
	// that rows born under it are still its own.
	BeatFresh(now time.Time) bool
	// StillHeld reports which of ids this replica still holds.
	StillHeld(ctx context.Context, ids []int64) (map[int64]bool, error)
	// Due lists ids whose next attempt is due.
	Due(ctx context.Context, now time.Time, limit int) ([]int64, error)
	// Claim holds a due row for this replica; nil when it was sent, is not
	// due or another replica has it.
	Claim(ctx context.Context, id int64, now time.Time) (*OutboxItem, error)
	MarkSent(ctx context.Context, now time.Time, ids ...int64) error
	MarkRetry(ctx context.Context, id int64, attempts int, next time.Time, reason string) error
	MarkFailed(ctx context.Context, id int64, attempts int, reason string) error
}

// OutboxItem is a stored reply held for sending.
type OutboxItem struct {
	ID        int64
	Reply     adapter.Reply
	Attempts  int
	CreatedAt time.Time
}

// Unreadable is a stored inbound row that cannot be decoded back into a
// message. Recovery records it as failed and goes on with the others.
type Unreadable struct {
	RowID int64
	MsgID string
	Err   error
}

func (u Unreadable) Error() string {
	return fmt.Sprintf("inbox row %d (%s): %v", u.RowID, u.MsgID, u.Err)
}
