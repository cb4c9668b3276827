package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/dingdesk/dingdesk/adapter"
)

// inboxRow is one accepted inbound message. Its unique msg_id makes a
// redelivery a no-op across restarts and replicas; status tells whether the
// engine has handled it, so a crash between accepting and handling loses
// nothing.
type inboxRow struct {
	ID         int64     `gorm:"primaryKey;autoIncrement"`
	MsgID      string    `gorm:"size:191;not null;uniqueIndex:ux_inbox_msg"`
	UserKey    string    `gorm:"size:255;not null"`
	Message    string    `gorm:"type:text;not null"` // adapter.Message as JSON
	Handled    bool      `gorm:"not null;default:false;index:ix_inbox_pending,priority:1"`
	ReceivedAt time.Time `gorm:"not null;index:ix_inbox_pending,priority:2;index:ix_inbox_received"`
	HandledAt  *time.Time
}

func (inboxRow) TableName() string { return "inbox" }

// Inbox stores inbound messages with group commit: concurrent Accept calls
// are written in one transaction, so many messages share one commit (and
// one fsync where the database does one) instead of queueing one by one.
type Inbox struct {
	db    *DB
	reqs  chan *acceptReq
	quit  chan struct{} // closed by Close
	done  chan struct{} // closed when the writer has exited
	now   func() time.Time
	batch int
}

type acceptReq struct {
	row   inboxRow
	isNew bool
	err   error
	ready chan struct{}
}

// NewInbox starts the inbox's writer; Close stops it.
func NewInbox(db *DB, now func() time.Time) *Inbox {
	if now == nil {
		now = time.Now
	}
	in := &Inbox{db: db, reqs: make(chan *acceptReq, 1024), quit: make(chan struct{}), done: make(chan struct{}), now: now, batch: 256}
	go in.writer()
	return in
}

// Close stops the writer after the requests already queued.
func (in *Inbox) Close() {
	close(in.quit)
	<-in.done
}

// ErrInboxClosed is returned by Accept after Close.
var ErrInboxClosed = errors.New("inbox closed")

// Accept stores msg durably. isNew is false when its msgId was accepted
// before (a redelivery): the caller acknowledges and ignores it.
func (in *Inbox) Accept(ctx context.Context, msg adapter.Message) (isNew bool, err error) {
	if msg.ID == "" {
		return false, errors.New("inbox: message has no id")
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return false, err
	}
	r := &acceptReq{
		row:   inboxRow{MsgID: msg.ID, UserKey: msg.UserKey(), Message: string(body), ReceivedAt: in.now().UTC()},
		ready: make(chan struct{}),
	}
	select {
	case in.reqs <- r:
	case <-in.quit:
		return false, ErrInboxClosed
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case <-r.ready:
		return r.isNew, r.err
	case <-in.done:
		select {
		case <-r.ready:
			return r.isNew, r.err
		default:
			return false, ErrInboxClosed
		}
	case <-ctx.Done():
		// The write may still commit; a redelivery will then be seen as a
		// duplicate and the pending row is picked up by recovery.
		return false, ctx.Err()
	}
}

func (in *Inbox) writer() {
	defer close(in.done)
	for {
		var first *acceptReq
		select {
		case first = <-in.reqs:
		case <-in.quit:
			// Write what is already queued, then stop.
			for {
				batch := in.fill(nil)
				if len(batch) == 0 {
					return
				}
				in.write(batch)
			}
		}
		in.write(in.fill([]*acceptReq{first}))
	}
}

// fill adds whatever is queued right now, up to the batch size: under load
// batches grow by themselves, at rest a message is written alone at once.
func (in *Inbox) fill(batch []*acceptReq) []*acceptReq {
	for len(batch) < in.batch {
		select {
		case r := <-in.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

func (in *Inbox) write(batch []*acceptReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Insert in key order: two replicas writing overlapping batches then
	// take the unique-index locks in the same order.
	sorted := slices.Clone(batch)
	slices.SortFunc(sorted, func(a, b *acceptReq) int { return strings.Compare(a.row.MsgID, b.row.MsgID) })
	insert := "INSERT INTO inbox (msg_id, user_key, message, handled, received_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (msg_id) DO NOTHING"
	if in.db.Driver == "mysql" {
		// INSERT IGNORE reports 0 affected rows for a duplicate key.
		insert = "INSERT IGNORE INTO inbox (msg_id, user_key, message, handled, received_at) VALUES (?, ?, ?, ?, ?)"
	}
	err := in.db.durableTx(ctx, func(tx *gorm.DB) error {
		for _, r := range sorted {
			res := tx.Exec(insert, r.row.MsgID, r.row.UserKey, r.row.Message, false, r.row.ReceivedAt)
			if res.Error != nil {
				return res.Error
			}
			r.isNew = res.RowsAffected == 1
		}
		return nil
	})
	for _, r := range batch {
		if err != nil {
			r.isNew, r.err = false, fmt.Errorf("store inbound message: %w", err)
		}
		close(r.ready)
	}
}

// ErrAlreadyHandled is returned by markHandled for a message some earlier
// transaction handled: the caller rolls back, so a message handled twice
// (a re-run after a crash, two replicas) replies only once.
var ErrAlreadyHandled = errors.New("inbound message already handled")

// markHandled records, inside the engine's transaction, that msgID has
// been handled. On MySQL the update locks the inbox row, so two handlers of
// one message serialise here. A msgID that is not in the inbox (a message
// made up by a test or a timer) is fine.
func markHandled(tx *gorm.DB, msgID string, at time.Time) error {
	res := tx.Model(&inboxRow{}).Where("msg_id = ? AND handled = ?", msgID, false).
		Updates(map[string]any{"handled": true, "handled_at": at.UTC()})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 1 {
		return nil
	}
	var n int64
	if err := tx.Model(&inboxRow{}).Where("msg_id = ?", msgID).Count(&n).Error; err != nil {
		return err
	}
	if n > 0 {
		return ErrAlreadyHandled
	}
	return nil
}

// Pending lists accepted messages not yet handled, oldest first, that were
// received before `before` (so messages in flight in this process are not
// picked twice).
func (in *Inbox) Pending(ctx context.Context, before time.Time, limit int) ([]adapter.Message, error) {
	var rows []inboxRow
	err := in.db.gorm.WithContext(ctx).Where("handled = ? AND received_at < ?", false, before.UTC()).
		Order("received_at, id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]adapter.Message, 0, len(rows))
	for _, r := range rows {
		var m adapter.Message
		if err := json.Unmarshal([]byte(r.Message), &m); err != nil {
			return nil, fmt.Errorf("inbox row %d: %w", r.ID, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Prune forgets handled messages received before cutoff; their msgIds stop
// deduplicating. Returns how many rows went.
func (in *Inbox) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	res := in.db.gorm.WithContext(ctx).Where("handled = ? AND received_at < ?", true, cutoff.UTC()).Delete(&inboxRow{})
	return res.RowsAffected, res.Error
}
