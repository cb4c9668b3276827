package gormstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/pipeline"
)

// inboxRow is one accepted inbound message. Its unique msg_id makes a
// redelivery a no-op across restarts and replicas; status tells whether the
// engine has handled it, so a crash between accepting and handling loses
// nothing.
type inboxRow struct {
	ID      int64  `gorm:"primaryKey;autoIncrement"`
	MsgID   string `gorm:"size:191;not null;uniqueIndex:ux_inbox_msg"`
	UserKey string `gorm:"size:255;not null"`
	// Message is the adapter.Message as JSON. mediumtext (16 MiB on MySQL)
	// holds any body the webhook accepts (dingtalk.webhook_max_body, 1 MiB
	// by default); text would hold 64 KiB.
	Message    string    `gorm:"type:mediumtext;not null"`
	Handled    bool      `gorm:"not null;default:false;index:ix_inbox_pending,priority:1;index:ix_inbox_replica,priority:1"`
	ReceivedAt time.Time `gorm:"not null;index:ix_inbox_pending,priority:2;index:ix_inbox_received"`
	HandledAt  *time.Time
	// ReplicaID is the replica handling the row: the one that accepted it,
	// or the one that took it over after that one died.
	ReplicaID string `gorm:"size:64;not null;default:'';index:ix_inbox_replica,priority:2"`
	// FailedAt is set, with Attempts and LastError, when the message was
	// given up (handled = true): a poison message, or a row that cannot be
	// read back.
	FailedAt  *time.Time
	Attempts  int    `gorm:"not null;default:0"`
	LastError string `gorm:"size:1000;not null;default:''"`
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
	// beforeInsert, when set (by tests), runs in a MySQL batch between
	// the read of the stored msgIds and the insert of the others.
	beforeInsert func()
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
	r, err := in.newReq(msg)
	if err != nil {
		return false, err
	}
	select {
	case in.reqs <- r:
	case <-in.quit:
		return false, ErrInboxClosed
	case <-ctx.Done():
		return false, ctx.Err()
	}
	// Once queued, the outcome is awaited whatever ctx does (the write is
	// bounded by its own timeout): a caller told "not stored" while the row
	// committed would see the redelivery as a duplicate and never queue it.
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
	}
}

// newReq is msg as a request to the writer.
func (in *Inbox) newReq(msg adapter.Message) (*acceptReq, error) {
	if msg.ID == "" {
		return nil, errors.New("inbox: message has no id")
	}
	// Not HTML-escaped: "<" would take six bytes instead of one.
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(msg); err != nil {
		return nil, err
	}
	body := strings.TrimSuffix(buf.String(), "\n")
	return &acceptReq{
		row:   inboxRow{MsgID: msg.ID, UserKey: msg.UserKey(), Message: body, ReceivedAt: in.now().UTC(), ReplicaID: in.db.replica},
		ready: make(chan struct{}),
	}, nil
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
func (in *Inbox) fill(batch []*acceptReq) []*acceptReq { return drain(in.reqs, batch, in.batch) }

// write stores a batch in one durable commit and sets each request's
// outcome. Its statements do not grow with the batch: SQLite inserts the
// batch with one multi-row INSERT that reports the rows it inserted
// (RETURNING), MySQL reads which msgIds exist and inserts the others with
// one multi-row INSERT (MySQL 8 has no INSERT ... RETURNING). A batch no
// larger than that is inserted row by row, which costs no more statements.
func (in *Inbox) write(batch []*acceptReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Insert in key order: two replicas writing overlapping batches then
	// take the unique-index locks in the same order. Stable: of one msgId
	// queued twice, the first queued is the one stored and reported new.
	sorted := slices.Clone(batch)
	slices.SortStableFunc(sorted, func(a, b *acceptReq) int { return strings.Compare(a.row.MsgID, b.row.MsgID) })
	// The batch's statements: one on SQLite, two on MySQL.
	perBatch := 1
	if in.db.Driver == "mysql" {
		perBatch = 2
	}
	var err error
	if len(sorted) > perBatch {
		err = in.db.durableTx(ctx, func(tx *gorm.DB) error { return in.insertBatch(tx, sorted) })
		if errors.Is(err, errInboxRace) {
			// Written by another replica since the read, or a msgId the
			// column's collation equates with another: row by row, in a
			// fresh transaction, the outcome is exact.
			err = in.db.durableTx(ctx, func(tx *gorm.DB) error { return in.insertEach(tx, sorted) })
		}
	} else {
		err = in.db.durableTx(ctx, func(tx *gorm.DB) error { return in.insertEach(tx, sorted) })
	}
	for _, r := range batch {
		if err != nil {
			r.isNew, r.err = false, fmt.Errorf("store inbound message: %w", err)
		}
		close(r.ready)
	}
}

// insertEach inserts sorted one statement per row, skipping msgIds
// already stored.
func (in *Inbox) insertEach(tx *gorm.DB, sorted []*acceptReq) error {
	insert := "INSERT INTO inbox (msg_id, user_key, message, handled, received_at, replica_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (msg_id) DO NOTHING"
	if in.db.Driver == "mysql" {
		// Not INSERT IGNORE: IGNORE turns every error into a warning, "data
		// too long" included, even in strict mode. An update that changes
		// nothing reports 0 affected rows, so a duplicate key still reads
		// as "not new".
		insert = inboxInsertMySQL
	}
	q := in.db.sqlOn(tx)
	for _, r := range sorted {
		res, err := q.exec(insert, inboxArgs(r)...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		r.isNew = n == 1
	}
	return nil
}

// errInboxRace is insertBatch giving up on a batch whose multi-row INSERT
// met a msgId the read before it did not find.
var errInboxRace = errors.New("inbox batch met a msgId stored meanwhile")

// insertBatch inserts the new messages of sorted with multi-row INSERTs
// and sets every request's isNew: a msgId stored before, or queued
// earlier in the batch, is not new.
func (in *Inbox) insertBatch(tx *gorm.DB, sorted []*acceptReq) error {
	q := in.db.sqlOn(tx)
	// The first of each msgId: sorted is, stably, so repeats follow it.
	var firsts []*acceptReq
	for i, r := range sorted {
		r.isNew = false
		if i == 0 || r.row.MsgID != sorted[i-1].row.MsgID {
			firsts = append(firsts, r)
		}
	}
	if in.db.Driver == "sqlite" {
		// One writer (an immediate transaction holds the write lock), so
		// the rows it reports inserted are exactly the new ones.
		for _, chunk := range inboxChunks(firsts) {
			inserted, err := q.column(insertSQL("inbox", inboxColumns, len(chunk))+" ON CONFLICT (msg_id) DO NOTHING RETURNING msg_id", inboxArgs(chunk...)...)
			if err != nil {
				return err
			}
			for _, r := range chunk {
				_, r.isNew = inserted[r.row.MsgID]
			}
		}
		return nil
	}
	stored := map[string]struct{}{}
	for ids := range slices.Chunk(firsts, maxInsertRows) {
		args := make([]any, len(ids))
		for i, r := range ids {
			args[i] = r.row.MsgID
		}
		found, err := q.column("SELECT msg_id FROM inbox WHERE msg_id IN "+inList(len(ids)), args...)
		if err != nil {
			return err
		}
		maps.Copy(stored, found)
	}
	fresh := firsts[:0:0]
	for _, r := range firsts {
		if _, ok := stored[r.row.MsgID]; !ok {
			fresh = append(fresh, r)
		}
	}
	if in.beforeInsert != nil {
		in.beforeInsert()
	}
	// A plain INSERT: a row another replica stored since the read (read
	// committed, or inserted after this transaction's snapshot) fails it
	// with a duplicate key instead of hiding which rows were new.
	for _, chunk := range inboxChunks(fresh) {
		if _, err := q.exec(insertSQL("inbox", inboxColumns, len(chunk)), inboxArgs(chunk...)...); err != nil {
			if IsDuplicate(err) {
				return errInboxRace
			}
			return err
		}
	}
	for _, r := range fresh {
		r.isNew = true
	}
	return nil
}

// inboxColumns are the columns Accept writes, in inboxArgs' order.
var inboxColumns = []string{"msg_id", "user_key", "message", "handled", "received_at", "replica_id"}

func inboxArgs(reqs ...*acceptReq) []any {
	args := make([]any, 0, len(reqs)*len(inboxColumns))
	for _, r := range reqs {
		args = append(args, r.row.MsgID, r.row.UserKey, r.row.Message, false, r.row.ReceivedAt, r.row.ReplicaID)
	}
	return args
}

// maxInsertBytes bounds the text of one multi-row INSERT's rows: a batch
// of large messages (up to the webhook's 1 MiB each) would otherwise be
// one statement past MySQL's max_allowed_packet (16 MiB by default on
// MariaDB, 4 MiB on MySQL 5.7). A row larger than that goes alone, as it
// did before batching.
const maxInsertBytes = 1 << 20

// inboxChunks splits reqs into runs of at most maxInsertRows rows and,
// unless a single row is larger, maxInsertBytes of text.
func inboxChunks(reqs []*acceptReq) [][]*acceptReq {
	var chunks [][]*acceptReq
	start, size := 0, 0
	for i, r := range reqs {
		n := len(r.row.MsgID) + len(r.row.UserKey) + len(r.row.Message)
		if i > start && (i-start == maxInsertRows || size+n > maxInsertBytes) {
			chunks = append(chunks, reqs[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(reqs) {
		chunks = append(chunks, reqs[start:])
	}
	return chunks
}

// column runs a query returning one text column and returns its values,
// counted in DB.Statements like exec.
func (s sqlOn) column(query string, args ...any) (map[string]struct{}, error) {
	rows, err := s.query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]struct{}{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out[v] = struct{}{}
	}
	return out, rows.Err()
}

const (
	inboxInsertMySQL = "INSERT INTO inbox (msg_id, user_key, message, handled, received_at, replica_id) VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE msg_id = msg_id"
	markHandledSQL   = "UPDATE inbox SET handled = ?, handled_at = ? WHERE msg_id = ? AND handled = ?"
)

// ErrAlreadyHandled is returned by MarkHandled for a message some earlier
// transaction handled: the caller rolls back, so a message handled twice
// (a re-run after a crash, two replicas) replies only once.
var ErrAlreadyHandled = errors.New("inbound message already handled")

// MarkHandled records, inside the engine's transaction, that msgID has
// been handled. On MySQL the update locks the inbox row, so two handlers of
// one message serialise here. A msgID that is not in the inbox (a message
// made up by a test or a timer) is fine.
func (db *DB) markHandled(tx *gorm.DB, msgID string, at time.Time) error {
	res, err := db.sqlOn(tx).exec(markHandledSQL, true, at.UTC(), msgID, false)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
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

// Unreadable is a stored row that cannot be decoded back into a message
// (the pipeline's type: recovery records it as failed and goes on).
type Unreadable = pipeline.Unreadable

var _ pipeline.Inbox = (*Inbox)(nil)

// Pending lists accepted messages not yet handled, oldest first, that were
// received before `before`, whoever owns them (for tests and operators).
// Rows that cannot be decoded are returned apart, not as an error.
func (in *Inbox) Pending(ctx context.Context, before time.Time, limit int) ([]adapter.Message, []Unreadable, error) {
	var rows []inboxRow
	err := in.db.gorm.WithContext(ctx).Where("handled = ? AND received_at < ?", false, before.UTC()).
		Order("received_at, id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, nil, err
	}
	msgs, bad := decodeRows(rows)
	return msgs, bad, nil
}

// decodeRows decodes rows, setting aside those that do not decode.
func decodeRows(rows []inboxRow) ([]adapter.Message, []Unreadable) {
	out := make([]adapter.Message, 0, len(rows))
	var bad []Unreadable
	for _, r := range rows {
		var m adapter.Message
		if err := json.Unmarshal([]byte(r.Message), &m); err != nil {
			bad = append(bad, Unreadable{RowID: r.ID, MsgID: r.MsgID, Err: err})
			continue
		}
		out = append(out, m)
	}
	return out, bad
}

// TakeOver makes this replica the owner of the unhandled messages of
// replicas whose heartbeat is older than the replica timeout (crashed,
// killed, cut off), and returns every unhandled message this replica owns
// that was received before ownBefore (zero: none of its own) or taken over
// now, oldest first.
// Concurrent takers race on a conditional update: each row gets exactly
// one new owner.
func (in *Inbox) TakeOver(ctx context.Context, now, ownBefore time.Time, limit int) ([]adapter.Message, []Unreadable, int64, error) {
	g := in.db.gorm.WithContext(ctx)
	var dead []string
	q := in.db.deadOwner(g.Model(&inboxRow{}).Where("handled = ?", false), now)
	if err := q.Distinct("replica_id").Pluck("replica_id", &dead).Error; err != nil {
		return nil, nil, 0, fmt.Errorf("find dead replicas' messages: %w", err)
	}
	var taken int64
	for _, d := range dead {
		res := in.db.deadOwner(g.Model(&inboxRow{}).Where("handled = ? AND replica_id = ?", false, d), now).
			Update("replica_id", in.db.replica)
		if res.Error != nil {
			return nil, nil, taken, fmt.Errorf("take over messages of %s: %w", d, res.Error)
		}
		taken += res.RowsAffected
	}
	if taken == 0 && ownBefore.IsZero() {
		return nil, nil, 0, nil
	}
	var rows []inboxRow
	q = g.Where("handled = ? AND replica_id = ?", false, in.db.replica)
	if taken == 0 {
		q = q.Where("received_at < ?", ownBefore.UTC())
	}
	if err := q.Order("received_at, id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, nil, taken, err
	}
	msgs, bad := decodeRows(rows)
	return msgs, bad, taken, nil
}

// MarkFailed gives up on a message: it is recorded as handled and failed
// with the reason and the number of attempts, and the replies (an apology)
// are written to the outbox in the same transaction. It returns the
// replies' items for Kick; none when the message was handled meanwhile.
func (in *Inbox) MarkFailed(ctx context.Context, msgID string, attempts int, reason string, now time.Time, replies ...adapter.Reply) ([]OutboxItem, error) {
	var items []OutboxItem
	err := in.db.retryTx(ctx, func(tx *gorm.DB) error {
		items = nil
		res := tx.Model(&inboxRow{}).Where("msg_id = ? AND handled = ?", msgID, false).Updates(map[string]any{
			"handled": true, "handled_at": now.UTC(), "failed_at": now.UTC(),
			"attempts": attempts, "last_error": truncate(reason, 1000),
		})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		var err error
		items, err = in.db.enqueueReplies(tx, now, replies...)
		return err
	})
	return items, err
}

// MarkUnreadable records a row that cannot be decoded as failed, so that
// no sweep trips over it again; the row stays for an operator to look at.
func (in *Inbox) MarkUnreadable(ctx context.Context, u Unreadable, now time.Time) error {
	return in.db.gorm.WithContext(ctx).Model(&inboxRow{}).Where("id = ? AND handled = ?", u.RowID, false).
		Updates(map[string]any{"handled": true, "handled_at": now.UTC(), "failed_at": now.UTC(),
			"last_error": truncate("unreadable stored message: "+u.Err.Error(), 1000)}).Error
}

// Failed lists messages given up, newest first.
func (in *Inbox) Failed(ctx context.Context, limit int) ([]inboxRow, error) {
	var rows []inboxRow
	err := in.db.gorm.WithContext(ctx).Where("failed_at IS NOT NULL").Order("id desc").Limit(limit).Find(&rows).Error
	return rows, err
}

// probePrefix marks the readiness probe's rows; DingTalk's msgIds never
// start with it.
const probePrefix = "readyz:"

// Probe writes the way Accept does (a synced insert into the inbox) and
// reports whether storage can take a message now: a database that answers
// pings can still refuse writes (disk full, read-only, a revoked grant).
// Each replica keeps one probe row, replaced on every probe.
func (in *Inbox) Probe(ctx context.Context) error {
	id := probePrefix + in.db.replica
	now := in.now().UTC()
	err := in.db.durableTx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("msg_id = ?", id).Delete(&inboxRow{}).Error; err != nil {
			return err
		}
		return tx.Create(&inboxRow{MsgID: id, UserKey: id, Message: "{}", Handled: true,
			ReceivedAt: now, HandledAt: &now, ReplicaID: in.db.replica}).Error
	})
	if err != nil {
		return fmt.Errorf("storage refuses writes: %w", err)
	}
	return nil
}

// Prune forgets handled messages received before cutoff; their msgIds stop
// deduplicating. Returns how many rows went.
func (in *Inbox) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	res := in.db.gorm.WithContext(ctx).Where("handled = ? AND received_at < ?", true, cutoff.UTC()).Delete(&inboxRow{})
	return res.RowsAffected, res.Error
}
