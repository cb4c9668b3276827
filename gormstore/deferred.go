package gormstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/handoff"
)

// Deferred writes: what a bot-answered message writes (its outbox row,
// transcript lines, bot turn, conversation, the inbox's "handled") is the
// same handful of rows for every message. When several hand-off
// transactions share one database transaction (group.go), each member's
// rows are not sent a statement at a time: they are kept here and written
// by flush, one multi-row statement per table for the whole group, just
// before the COMMIT. A group of n bot answers then costs n conversation
// reads and about six statements, instead of about six per message.
//
// Semantics stay those of running the members one after another:
//   - A conversation a member saved is what a later member of the group
//     reads (the overlay in handoffTx.conversation); on MySQL the group's
//     transaction already holds its row lock.
//   - Any other statement (a session, an agent, a queue, a transcript
//     read, a test's raw SQL) goes through handoffTx.q, which first writes
//     everything deferred so far — the earlier members' rows, then, inside
//     the member's own savepoint, its own — and from then on the member
//     writes directly. So every read sees every earlier write, and rows
//     are written in the order they were made.
//   - A member that fails before writing anything directly has nothing to
//     roll back: its deferred rows are dropped.
//   - A flush that fails fails the group: every member is run again, alone
//     (see DB.handoff), where nothing is deferred and each gets its own
//     exact result (ErrAlreadyHandled, a duplicate first message, ...).

// deferred is a set of writes not yet sent: a member's own, or its group's
// (the members that have finished).
type deferred struct {
	outbox   []*OutboxItem // ids set by flush
	outRows  [][]any
	lines    []deferredLine
	botTurns [][]any
	events   []webEventRow
	unans    []handoffUnansweredRow
	convs    map[string]*deferredConv
	convKeys []string // convs' keys in the order first saved
	handled  []handledMark
}

// deferredLine is a transcript row; reply, when set, is the outbox item
// whose id goes into its outbox_id column.
type deferredLine struct {
	row   []any
	reply *OutboxItem
}

// deferredConv is the latest version of a conversation; isNew when it has
// no row yet (an INSERT, which fails on a concurrent first message).
type deferredConv struct {
	row   handoffConversationRow
	isNew bool
}

type handledMark struct {
	msgID string
	at    time.Time
}

func (d *deferred) empty() bool {
	return len(d.outRows) == 0 && len(d.lines) == 0 && len(d.botTurns) == 0 && len(d.events) == 0 &&
		len(d.unans) == 0 && len(d.convKeys) == 0 && len(d.handled) == 0
}

// conv is the deferred version of a conversation, if any.
func (d *deferred) conv(userKey string) (*deferredConv, bool) {
	c, ok := d.convs[userKey]
	return c, ok
}

func (d *deferred) saveConv(row handoffConversationRow, isNew bool) {
	if d.convs == nil {
		d.convs = map[string]*deferredConv{}
	}
	if c, ok := d.convs[row.UserKey]; ok {
		c.row = row // still new if it was: its INSERT has not been sent
		return
	}
	d.convs[row.UserKey] = &deferredConv{row: row, isNew: isNew}
	d.convKeys = append(d.convKeys, row.UserKey)
}

func (d *deferred) markedHandled(msgID string) bool {
	for _, h := range d.handled {
		if h.msgID == msgID {
			return true
		}
	}
	return false
}

// merge appends a finished member's writes to its group's.
func (d *deferred) merge(m *deferred) {
	d.outbox = append(d.outbox, m.outbox...)
	d.outRows = append(d.outRows, m.outRows...)
	d.lines = append(d.lines, m.lines...)
	d.botTurns = append(d.botTurns, m.botTurns...)
	d.events = append(d.events, m.events...)
	d.unans = append(d.unans, m.unans...)
	for _, k := range m.convKeys {
		c := m.convs[k]
		if old, ok := d.conv(k); ok {
			old.row = c.row
			continue
		}
		d.saveConv(c.row, c.isNew)
	}
	d.handled = append(d.handled, m.handled...)
	*m = deferred{}
}

// errHandledConflict fails a group whose deferred "handled" marks found a
// message handled already (by another replica, or an earlier run): the
// members run again alone, where the one concerned gets ErrAlreadyHandled.
var errHandledConflict = errors.New("a deferred message was handled already")

// flush writes d on s's transaction and empties it. Outbox rows go first
// (the transcript rows carry their ids).
func (d *deferred) flush(db *DB, g *gorm.DB) error {
	if d.empty() {
		return nil
	}
	s := db.sqlOn(g)
	if len(d.outRows) > 0 {
		ids, err := s.insertRows("outbox", outboxColumns, d.outRows)
		if err != nil {
			return fmt.Errorf("enqueue replies: %w", err)
		}
		for i, it := range d.outbox {
			it.ID = ids[i]
		}
	}
	if len(d.lines) > 0 {
		rows := make([][]any, len(d.lines))
		for i, l := range d.lines {
			rows[i] = l.row
			if l.reply != nil {
				l.row[lineOutboxColumn] = l.reply.ID
			}
		}
		if _, err := s.insertRows("handoff_messages", lineColumns, rows); err != nil {
			return err
		}
	}
	if len(d.botTurns) > 0 {
		if _, err := s.insertRows("bot_turns", botTurnColumns, d.botTurns); err != nil {
			return err
		}
	}
	if err := d.flushConvs(s); err != nil {
		return err
	}
	if len(d.unans) > 0 {
		if err := g.Create(&d.unans).Error; err != nil {
			return err
		}
	}
	if len(d.events) > 0 {
		if err := g.Create(&d.events).Error; err != nil {
			return err
		}
	}
	if err := d.flushHandled(s); err != nil {
		return err
	}
	*d = deferred{}
	return nil
}

// flushConvs inserts the new conversations and writes the others whole
// with one upsert (their rows are locked by this transaction on MySQL, and
// SQLite has one writer, so the version kept here is the latest).
func (d *deferred) flushConvs(s sqlOn) error {
	var fresh, changed [][]any
	for _, k := range d.convKeys {
		c := d.convs[k]
		if c.isNew {
			fresh = append(fresh, c.row.values())
		} else {
			changed = append(changed, c.row.values())
		}
	}
	if len(fresh) > 0 {
		if _, err := s.insertRows("handoff_conversations", convColumns, fresh); err != nil {
			return err
		}
	}
	for len(changed) > 0 {
		chunk := changed[:min(len(changed), maxInsertRows)]
		changed = changed[len(chunk):]
		args := make([]any, 0, len(chunk)*len(convColumns))
		for _, r := range chunk {
			args = append(args, r...)
		}
		if _, err := s.exec(convUpsertSQL(s.db.Driver, len(chunk)), args...); err != nil {
			return err
		}
	}
	return nil
}

// convUpsertSQL writes n whole conversation rows over the existing ones
// (all columns but the key and created_at).
func convUpsertSQL(driver string, n int) string {
	var b strings.Builder
	b.WriteString(insertSQL("handoff_conversations", convColumns, n))
	if driver == "mysql" {
		b.WriteString(" ON DUPLICATE KEY UPDATE ")
	} else {
		b.WriteString(" ON CONFLICT (user_key) DO UPDATE SET ")
	}
	first := true
	for _, c := range convColumns {
		if c == "user_key" || c == "created_at" {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		if driver == "mysql" {
			fmt.Fprintf(&b, "%s = VALUES(%s)", c, c)
		} else {
			fmt.Fprintf(&b, "%s = excluded.%s", c, c)
		}
	}
	return b.String()
}

// flushHandled marks the group's inbound messages handled with one
// UPDATE. Fewer rows changed than messages marked means a message is not
// in the inbox (made up by a test or a tool: fine, as for MarkHandled) or
// was handled already: a count tells which; the latter fails the group.
func (d *deferred) flushHandled(s sqlOn) error {
	if len(d.handled) == 0 {
		return nil
	}
	var b strings.Builder
	args := make([]any, 0, 3*len(d.handled)+1)
	b.WriteString("UPDATE inbox SET handled = ?, handled_at = CASE msg_id")
	args = append(args, true)
	for _, h := range d.handled {
		b.WriteString(" WHEN ? THEN ?")
		args = append(args, h.msgID, h.at.UTC())
	}
	b.WriteString(" END WHERE handled = ? AND msg_id IN ")
	b.WriteString(inList(len(d.handled)))
	args = append(args, false)
	ids := make([]any, len(d.handled))
	for i, h := range d.handled {
		ids[i] = h.msgID
	}
	args = append(args, ids...)
	res, err := s.exec(b.String(), args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil || n == int64(len(d.handled)) {
		return err
	}
	var stored int64
	q := "SELECT COUNT(*) FROM inbox WHERE msg_id IN " + inList(len(ids))
	if err := s.queryRow(q, ids...).Scan(&stored); err != nil {
		return err
	}
	if stored != n {
		return errHandledConflict
	}
	return nil
}

// The deferred forms of the message path's writes (handoffTx's methods
// call them while the member defers).

func (d *deferred) record(db *DB, now time.Time, replies []adapter.Reply, lines []handoff.Line) error {
	items := make([]*OutboxItem, len(replies))
	rows, err := db.outboxRows(now, replies)
	if err != nil {
		return err
	}
	for i, r := range replies {
		items[i] = &OutboxItem{Reply: r, CreatedAt: now.UTC()}
	}
	d.outbox = append(d.outbox, items...)
	d.outRows = append(d.outRows, rows...)
	for i := range lines {
		l := deferredLine{row: lineValues(&lines[i])}
		if n := lines[i].Reply; n > 0 {
			if n > len(items) {
				return fmt.Errorf("transcript line names reply %d of %d", n, len(items))
			}
			l.reply = items[n-1]
		}
		d.lines = append(d.lines, l)
	}
	return nil
}

// jsonOf is v as JSON (the unanswered question's candidates).
func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
