package gormstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/handoff"
)

// The hand-off engine's tables: package handoff decides and defines the
// records and the transaction it needs (handoff.Store, handoff.Tx); this
// file stores them, converting rows to records at its edge. Lock order,
// kept by every transaction that takes more than one lock (see handoff.Tx):
// conversation rows → skill-group rows (by name) → session rows → agent rows.

// handoffConversationRow is one user's conversation (handoff.Conversation),
// key conversationID|senderID. Its row lock serialises everything that
// changes the user's state, across replicas.
type handoffConversationRow struct {
	UserKey           string `gorm:"primaryKey;size:191"`
	ConversationID    string `gorm:"size:191;not null"`
	ConversationType  string `gorm:"size:4;not null"`
	ConversationTitle string `gorm:"size:255;not null;default:''"`
	UserID            string `gorm:"size:128;not null"`
	StaffID           string `gorm:"size:128;not null;default:''"`
	Nick              string `gorm:"size:128;not null;default:''"`
	SessionID         int64  `gorm:"not null;default:0"`
	GroupName         string `gorm:"size:128;not null;default:''"`
	Misses            int    `gorm:"not null;default:0"`
	Picks             string `gorm:"size:2048;not null;default:''"` // JSON entry ids of the last numbered list
	LastQuestion      string `gorm:"type:mediumtext"`               // a whole message: up to the webhook's limit
	LastQuestionMsg   string `gorm:"size:191;not null;default:''"`
	LastAgent         string `gorm:"size:128;not null;default:''"`
	Webhook           string `gorm:"size:1024;not null;default:''"`
	WebhookExpiry     *time.Time
	CreatedAt         time.Time `gorm:"not null"`
	ChangedAt         time.Time `gorm:"not null"` // set by the engine's clock
}

func (handoffConversationRow) TableName() string { return "handoff_conversations" }

// handoffSessionRow is one hand-off (handoff.Session). DueAt is the row's
// pending timeout; ix_hs_due makes the timer scan O(due).
type handoffSessionRow struct {
	ID                int64  `gorm:"primaryKey;autoIncrement"`
	UserKey           string `gorm:"size:191;not null;index:ix_hs_user"`
	ConversationID    string `gorm:"size:191;not null"`
	ConversationType  string `gorm:"size:4;not null"`
	ConversationTitle string `gorm:"size:255;not null;default:''"`
	UserID            string `gorm:"size:128;not null"`
	Nick              string `gorm:"size:128;not null;default:''"`
	GroupName         string `gorm:"size:128;not null;index:ix_hs_queue,priority:1"`
	State             string `gorm:"size:16;not null;index:ix_hs_queue,priority:2;index:ix_hs_agent_state,priority:2"`
	QueueSeq          int64  `gorm:"not null;default:0;index:ix_hs_queue,priority:3"`
	Reason            string `gorm:"size:16;not null"`
	AgentID           string `gorm:"size:128;not null;default:'';index:ix_hs_agent_no,priority:1;index:ix_hs_agent_state,priority:1"`
	AgentNo           int    `gorm:"not null;default:0;index:ix_hs_agent_no,priority:2"`
	AgentName         string `gorm:"size:128;not null;default:''"`
	Greeted           bool   `gorm:"not null;default:false"`
	FromSessionID     int64  `gorm:"not null;default:0"`
	FromAgent         string `gorm:"size:128;not null;default:''"`
	TransferNote      string `gorm:"size:1024;not null;default:''"`
	QueuedAt          *time.Time
	// AssignedAt is indexed for the monitor's "sessions today" per agent
	// (SessionsTaken), read every 2 s while a monitor page is open: without
	// the index that read scans the whole history.
	AssignedAt *time.Time `gorm:"index:ix_hs_assigned"`
	EndedAt    *time.Time
	EndReason  string     `gorm:"size:32;not null;default:''"`
	DueAt      *time.Time `gorm:"index:ix_hs_due"`
	ToldAt     *time.Time
	SuggestFor string    `gorm:"size:191;not null;default:''"`  // msgId the shown suggestions answer
	SuggestIDs string    `gorm:"size:2048;not null;default:''"` // JSON entry ids shown to the agent
	CreatedAt  time.Time `gorm:"not null;index:ix_hs_created"`  // the reports read sessions by day
}

func (handoffSessionRow) TableName() string { return "handoff_sessions" }

// handoffAgentRow is an agent's presence and load (handoff.Agent).
// OpenChats only changes together with a session row; the conditional
// update in Assign keeps it at or under max_chats.
type handoffAgentRow struct {
	StaffID        string `gorm:"primaryKey;size:128"`
	Presence       string `gorm:"size:16;not null"`
	OpenChats      int    `gorm:"not null;default:0"`
	NextNo         int    `gorm:"not null;default:0"`
	CurrentNo      int    `gorm:"not null;default:0"`
	LastAssignedAt *time.Time
	PresenceAt     time.Time `gorm:"not null"`
	ChatID         string    `gorm:"size:191;not null;default:''"`
	Webhook        string    `gorm:"size:1024;not null;default:''"`
	WebhookExpiry  *time.Time
}

func (handoffAgentRow) TableName() string { return "handoff_agents" }

// handoffGroupRow exists to be locked: every change to a skill group's
// queue holds it. HeadSeq/TailSeq hand out queue_seq values for the front
// and the back.
type handoffGroupRow struct {
	Name    string `gorm:"primaryKey;size:128"`
	HeadSeq int64  `gorm:"not null;default:0"`
	TailSeq int64  `gorm:"not null;default:0"`
}

func (handoffGroupRow) TableName() string { return "handoff_groups" }

// handoffMessageRow is one transcript line (handoff.Line).
type handoffMessageRow struct {
	ID         int64     `gorm:"primaryKey;autoIncrement"`
	UserKey    string    `gorm:"size:191;not null;index:ix_hm_user"`
	SessionID  int64     `gorm:"not null;default:0;index:ix_hm_session"`
	Direction  string    `gorm:"size:3;not null"`
	SenderKind string    `gorm:"size:8;not null"`
	SenderID   string    `gorm:"size:128;not null;default:''"`
	SenderName string    `gorm:"size:128;not null;default:''"`
	Kind       string    `gorm:"size:16;not null;default:'text'"`
	Text       string    `gorm:"type:mediumtext"`
	MsgID      string    `gorm:"size:191;not null;default:''"` // inbound msgId
	OutboxID   int64     `gorm:"not null;default:0"`
	CreatedAt  time.Time `gorm:"not null"`
}

func (handoffMessageRow) TableName() string { return "handoff_messages" }

// handoffUnansweredRow is a question the bot could not answer
// (handoff.Unanswered), candidates as JSON.
type handoffUnansweredRow struct {
	ID             int64     `gorm:"primaryKey;autoIncrement"`
	UserKey        string    `gorm:"size:191;not null"`
	ConversationID string    `gorm:"size:191;not null"`
	Question       string    `gorm:"type:mediumtext"`
	Candidates     string    `gorm:"type:text"`
	CreatedAt      time.Time `gorm:"not null;index:ix_hu_created"`
	Kind           string    `gorm:"size:16;not null;default:'none'"` // handoff.Unanswered.Kind
}

func (handoffUnansweredRow) TableName() string { return "handoff_unanswered" }

// Conversions between rows and records. Nullable times are nil rows and
// zero records.

func ptr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func val(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func encodeIDs(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	b, _ := json.Marshal(ids)
	return string(b)
}

func decodeIDs(s string) []string {
	if s == "" {
		return nil
	}
	var ids []string
	if json.Unmarshal([]byte(s), &ids) != nil {
		return nil
	}
	return ids
}

func convRow(c *handoff.Conversation) *handoffConversationRow {
	return &handoffConversationRow{
		UserKey: c.UserKey, ConversationID: c.ConversationID, ConversationType: string(c.ConversationType),
		ConversationTitle: c.ConversationTitle, UserID: c.UserID, StaffID: c.StaffID, Nick: c.Nick,
		SessionID: c.SessionID, GroupName: c.Group, Misses: c.Misses, Picks: encodeIDs(c.Picks),
		LastQuestion: c.LastQuestion, LastQuestionMsg: c.LastQuestionMsg, LastAgent: c.LastAgent,
		Webhook: c.Webhook, WebhookExpiry: ptr(c.WebhookExpiry), CreatedAt: c.CreatedAt.UTC(), ChangedAt: c.ChangedAt.UTC(),
	}
}

func (r *handoffConversationRow) record() *handoff.Conversation {
	return &handoff.Conversation{
		UserKey: r.UserKey, ConversationID: r.ConversationID, ConversationType: adapter.ConversationType(r.ConversationType),
		ConversationTitle: r.ConversationTitle, UserID: r.UserID, StaffID: r.StaffID, Nick: r.Nick,
		SessionID: r.SessionID, Group: r.GroupName, Misses: r.Misses, Picks: decodeIDs(r.Picks),
		LastQuestion: r.LastQuestion, LastQuestionMsg: r.LastQuestionMsg, LastAgent: r.LastAgent,
		Webhook: r.Webhook, WebhookExpiry: val(r.WebhookExpiry), CreatedAt: r.CreatedAt, ChangedAt: r.ChangedAt,
	}
}

func sessionRow(s *handoff.Session) *handoffSessionRow {
	return &handoffSessionRow{
		ID: s.ID, UserKey: s.UserKey, ConversationID: s.ConversationID, ConversationType: string(s.ConversationType),
		ConversationTitle: s.ConversationTitle, UserID: s.UserID, Nick: s.UserNick, GroupName: s.Group,
		State: string(s.Status), QueueSeq: s.QueueSeq, Reason: string(s.Reason), AgentID: s.Agent, AgentNo: s.No,
		AgentName: s.AgentName, Greeted: s.Greeted, FromSessionID: s.FromSessionID, FromAgent: s.FromAgent,
		TransferNote: s.Note, QueuedAt: ptr(s.QueuedAt), AssignedAt: ptr(s.AssignedAt), EndedAt: ptr(s.EndedAt), EndReason: string(s.EndReason),
		DueAt: ptr(s.Due), ToldAt: ptr(s.ToldAt), SuggestFor: s.Suggested.ForMsg, SuggestIDs: encodeIDs(s.Suggested.Entries),
		CreatedAt: s.CreatedAt.UTC(),
	}
}

func (r *handoffSessionRow) record() handoff.Session {
	return handoff.Session{
		ID: r.ID, No: r.AgentNo, Status: handoff.Status(r.State), UserKey: r.UserKey, ConversationID: r.ConversationID,
		ConversationType: adapter.ConversationType(r.ConversationType), ConversationTitle: r.ConversationTitle,
		UserID: r.UserID, UserNick: r.Nick, Group: r.GroupName, Reason: handoff.Reason(r.Reason),
		Agent: r.AgentID, AgentName: r.AgentName, FromSessionID: r.FromSessionID, FromAgent: r.FromAgent,
		Note: r.TransferNote, QueueSeq: r.QueueSeq, QueuedAt: val(r.QueuedAt), AssignedAt: val(r.AssignedAt), EndedAt: val(r.EndedAt),
		EndReason: handoff.EndReason(r.EndReason), Due: val(r.DueAt), ToldAt: val(r.ToldAt), Greeted: r.Greeted,
		Suggested: handoff.SuggestionList{ForMsg: r.SuggestFor, Entries: decodeIDs(r.SuggestIDs)},
		CreatedAt: r.CreatedAt,
	}
}

// takeSession reads q's first session; nil when there is none.
func takeSession(q *gorm.DB) (*handoff.Session, error) {
	var row handoffSessionRow
	ok, err := found(q.Take(&row).Error)
	if !ok {
		return nil, err
	}
	s := row.record()
	return &s, nil
}

func sessionRecords(rows []handoffSessionRow) []handoff.Session {
	out := make([]handoff.Session, len(rows))
	for i := range rows {
		out[i] = rows[i].record()
	}
	return out
}

func (r *handoffAgentRow) record() handoff.Agent {
	return handoff.Agent{
		StaffID: r.StaffID, Presence: handoff.Presence(r.Presence), OpenChats: r.OpenChats, NextNo: r.NextNo,
		CurrentNo: r.CurrentNo, LastAssignedAt: val(r.LastAssignedAt), PresenceAt: r.PresenceAt,
		Chat: handoff.AgentChat{ConversationID: r.ChatID, Webhook: r.Webhook, WebhookExpiry: val(r.WebhookExpiry)},
	}
}

func (r *handoffMessageRow) record() handoff.Line {
	return handoff.Line{
		ID: r.ID, UserKey: r.UserKey, SessionID: r.SessionID, Direction: handoff.Direction(r.Direction),
		Sender: handoff.SenderKind(r.SenderKind), SenderID: r.SenderID, SenderName: r.SenderName,
		Kind: adapter.Kind(r.Kind), Text: r.Text, MsgID: r.MsgID, OutboxID: r.OutboxID, CreatedAt: r.CreatedAt,
	}
}

// handoffTx is one hand-off engine transaction (handoff.Tx).
type handoffTx struct {
	db *DB
	// g is the database transaction. Statements other than the deferred
	// writes and the conversation read go through q.
	g      *gorm.DB
	groups map[string]*handoffGroupRow // locked in this transaction
	items  []*OutboxItem               // enqueued, for the sender after commit (ids set once written)
	// convs are the conversation rows as read or written in this
	// transaction, so that SaveConversation writes only what changed.
	convs map[string]handoffConversationRow
	// run is the group whose statements this member's writes share while
	// it defers them (deferred.go); nil once it writes directly (or alone).
	run *groupRun
	own deferred // this member's deferred writes
}

// q is the transaction for a statement that is not deferred: a member
// that defers first writes what is deferred (groupRun.direct), then writes
// directly. When that fails, the handle carries the error, so the
// statement is not sent and the caller sees why.
func (t *handoffTx) q() *gorm.DB {
	if t.run != nil {
		if err := t.run.direct(t); err != nil {
			g := t.g.Session(&gorm.Session{})
			_ = g.AddError(err)
			return g
		}
	}
	return t.g
}

var _ handoff.Tx = (*handoffTx)(nil)

// handoff runs fn in a transaction and repeats it when the database rolled
// it back for contention (see IsRetryable) or a concurrent first insert of
// the same key lost the race; fn must have no effects outside the
// transaction. On MySQL the transaction runs at READ COMMITTED: every read
// sees the latest commits (so what is read after taking a group lock is
// exact), and a locking read of a missing row takes no gap lock (so first
// messages of many new users do not deadlock on their inserts). It shares
// its commit with the other hand-off transactions waiting at the same
// moment (txGroup); it still returns only once its work is committed.
func (db *DB) handoff(ctx context.Context, fn func(tx *handoffTx) error) error {
	return db.handoffFor(ctx, "", fn)
}

// handoffFor is handoff for a transaction that locks userKey's
// conversation first: its group reads it ahead ("" for none).
func (db *DB) handoffFor(ctx context.Context, userKey string, fn func(tx *handoffTx) error) error {
	var opts []*sql.TxOptions
	if db.Driver == "mysql" {
		opts = append(opts, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	}
	var err error
	alone := db.group == nil
	for attempt := 0; attempt < 8; attempt++ {
		if alone {
			err = db.gorm.WithContext(ctx).Connection(func(conn *gorm.DB) error {
				return pinnedTx(conn, func(g *gorm.DB) error {
					return fn(&handoffTx{db: db, g: g})
				}, opts...)
			})
		} else {
			err = db.group.do(ctx, userKey, fn)
		}
		if err == nil || !(IsRetryable(err) || IsDuplicate(err) || errors.Is(err, errGroupAborted)) {
			return err
		}
		// A group that failed is not tried again as a group: alone, each
		// member gets its own exact outcome (see deferred.go).
		if errors.Is(err, errGroupAborted) {
			alone = true
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * time.Duration(2+rand.IntN(10)) * time.Millisecond):
		}
	}
	return err
}

// IsDuplicate reports a unique-key violation.
func IsDuplicate(err error) bool {
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1062
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func (t *handoffTx) forUpdate() *gorm.DB { return t.db.forUpdate(t.q()) }

func found(err error) (bool, error) {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return false, nil
	}
	return err == nil, err
}

// convColumns are handoff_conversations' columns in the order of
// handoffConversationRow's fields (and of its values).
var convColumns = []string{"user_key", "conversation_id", "conversation_type", "conversation_title", "user_id",
	"staff_id", "nick", "session_id", "group_name", "misses", "picks", "last_question", "last_question_msg",
	"last_agent", "webhook", "webhook_expiry", "created_at", "changed_at"}

var selectConversation = "SELECT " + strings.Join(convColumns, ", ") + " FROM handoff_conversations"

func (r *handoffConversationRow) values() []any {
	return []any{r.UserKey, r.ConversationID, r.ConversationType, r.ConversationTitle, r.UserID,
		r.StaffID, r.Nick, r.SessionID, r.GroupName, r.Misses, r.Picks, r.LastQuestion, r.LastQuestionMsg,
		r.LastAgent, r.Webhook, nullTime(r.WebhookExpiry), r.CreatedAt, r.ChangedAt}
}

// conversation reads a conversation (locking its row on MySQL when lock)
// with a hand-written SELECT: every message starts with it.
func (t *handoffTx) conversation(userKey string, lock bool) (*handoff.Conversation, error) {
	if t.run != nil {
		// A version this group has not written yet is the latest (on
		// MySQL the group holds its lock since a member read it). Without
		// one, reading needs no flush: nothing deferred is in that row.
		c, ok := t.own.conv(userKey)
		if !ok {
			c, ok = t.run.pending.conv(userKey)
		}
		if ok {
			t.keepConv(c.row)
			return c.row.record(), nil
		}
		// Read ahead for the whole group (groupRun.readAhead).
		if r, ok := t.run.ahead[userKey]; ok {
			if r == nil {
				return nil, nil
			}
			t.keepConv(*r)
			return r.record(), nil
		}
	}
	q := selectConversation + " WHERE user_key = ?"
	if lock && t.db.Driver == "mysql" {
		q += " FOR UPDATE"
	}
	r, err := scanConversation(t.db.sqlOn(t.g).queryRow(q, userKey))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t.keepConv(r)
	return r.record(), nil
}

// scanConversation reads a row of selectConversation.
func scanConversation(row interface{ Scan(...any) error }) (handoffConversationRow, error) {
	var r handoffConversationRow
	var lastQuestion sql.NullString
	err := row.Scan(&r.UserKey, &r.ConversationID, &r.ConversationType,
		&r.ConversationTitle, &r.UserID, &r.StaffID, &r.Nick, &r.SessionID, &r.GroupName, &r.Misses, &r.Picks,
		&lastQuestion, &r.LastQuestionMsg, &r.LastAgent, &r.Webhook, &r.WebhookExpiry, &r.CreatedAt, &r.ChangedAt)
	r.LastQuestion = lastQuestion.String
	return r, err
}

func (t *handoffTx) keepConv(r handoffConversationRow) {
	if t.convs == nil {
		t.convs = map[string]handoffConversationRow{}
	}
	t.convs[r.UserKey] = r
}

func (t *handoffTx) LockConversation(userKey string) (*handoff.Conversation, error) {
	return t.conversation(userKey, true)
}

func (t *handoffTx) Conversation(userKey string) (*handoff.Conversation, error) {
	return t.conversation(userKey, false)
}

func (t *handoffTx) Conversations(keys []string) (map[string]*handoff.Conversation, error) {
	out := make(map[string]*handoff.Conversation, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	var rows []handoffConversationRow
	if err := t.q().Where("user_key IN ?", keys).Find(&rows).Error; err != nil {
		return nil, err
	}
	for i := range rows {
		out[rows[i].UserKey] = rows[i].record()
		t.keepConv(rows[i])
	}
	return out, nil
}

func (t *handoffTx) CreateConversation(c *handoff.Conversation) error {
	row := convRow(c)
	if t.run != nil {
		t.own.saveConv(*row, true)
		t.keepConv(*row)
		return nil
	}
	if err := t.g.Create(row).Error; err != nil {
		return err
	}
	t.keepConv(*row)
	return nil
}

// SaveConversation writes the columns of an existing conversation that
// differ from the row this transaction read (all of them when it read
// none); when nothing differs it sends nothing.
func (t *handoffTx) SaveConversation(c *handoff.Conversation) error {
	row := convRow(c)
	vals := row.values()
	var old []any
	if seen, ok := t.convs[c.UserKey]; ok {
		old = seen.values()
	}
	var set strings.Builder
	args := make([]any, 0, len(vals))
	for i, col := range convColumns {
		if col == "user_key" || col == "created_at" || old != nil && sameValue(old[i], vals[i]) {
			continue
		}
		if len(args) > 0 {
			set.WriteString(", ")
		}
		set.WriteString(col)
		set.WriteString(" = ?")
		args = append(args, vals[i])
	}
	if len(args) == 0 {
		return nil
	}
	if seen, ok := t.convs[c.UserKey]; ok {
		row.CreatedAt = seen.CreatedAt // not written
	}
	if t.run != nil {
		t.own.saveConv(*row, false) // written whole by the group's upsert
		t.keepConv(*row)
		return nil
	}
	args = append(args, c.UserKey)
	if _, err := t.db.sqlOn(t.g).exec("UPDATE handoff_conversations SET "+set.String()+" WHERE user_key = ?", args...); err != nil {
		return err
	}
	t.keepConv(*row)
	return nil
}

// sameValue compares two column values as the database would store them.
func sameValue(a, b any) bool {
	ta, aTime := a.(time.Time)
	tb, bTime := b.(time.Time)
	if aTime || bTime {
		return aTime && bTime && ta.Equal(tb)
	}
	return a == b
}

func (t *handoffTx) LockSession(id int64) (*handoff.Session, error) {
	return takeSession(t.forUpdate().Where("id = ?", id))
}

func (t *handoffTx) CreateSession(s *handoff.Session) error {
	row := sessionRow(s)
	if err := t.q().Create(row).Error; err != nil {
		return err
	}
	s.ID = row.ID
	return nil
}

// SaveSession writes every column of an existing session.
func (t *handoffTx) SaveSession(s *handoff.Session) error {
	row := sessionRow(s)
	return t.q().Model(row).Select("*").Omit("id", "created_at").Updates(row).Error
}

func (t *handoffTx) SetSessionDue(id int64, due time.Time) error {
	return t.q().Model(&handoffSessionRow{}).Where("id = ?", id).Update("due_at", ptr(due)).Error
}

// LockGroups locks the skill-group rows, in the order given (sorted and
// distinct by the caller's contract).
func (t *handoffTx) LockGroups(names ...string) error {
	if t.groups == nil {
		t.groups = make(map[string]*handoffGroupRow, len(names))
	}
	for _, n := range names {
		if _, ok := t.groups[n]; ok {
			continue
		}
		var row handoffGroupRow
		if err := t.forUpdate().Where("name = ?", n).Take(&row).Error; err != nil {
			return fmt.Errorf("lock skill group %q: %w", n, err)
		}
		t.groups[n] = &row
	}
	return nil
}

func (t *handoffTx) locked(group string) (*handoffGroupRow, error) {
	g, ok := t.groups[group]
	if !ok {
		return nil, fmt.Errorf("skill group %q is not locked in this transaction", group)
	}
	return g, nil
}

func (t *handoffTx) QueueBack(group string) (int64, error) {
	g, err := t.locked(group)
	if err != nil {
		return 0, err
	}
	g.TailSeq++
	return g.TailSeq, t.q().Model(g).Update("tail_seq", g.TailSeq).Error
}

func (t *handoffTx) QueueFront(group string, n int) (int64, error) {
	g, err := t.locked(group)
	if err != nil {
		return 0, err
	}
	g.HeadSeq -= int64(n)
	return g.HeadSeq, t.q().Model(g).Update("head_seq", g.HeadSeq).Error
}

func (t *handoffTx) Queue(group string) ([]handoff.Session, error) {
	var rows []handoffSessionRow
	err := t.q().Where("group_name = ? AND state = ?", group, string(handoff.StatusQueued)).Order("queue_seq").Find(&rows).Error
	return sessionRecords(rows), err
}

func (t *handoffTx) QueueHead(group string) (*handoff.Session, error) {
	return takeSession(t.forUpdate().Where("group_name = ? AND state = ?", group, string(handoff.StatusQueued)).
		Order("queue_seq").Limit(1))
}

func (t *handoffTx) QueuePosition(group string, seq int64) (int, error) {
	return queuePosition(t.q(), group, seq)
}

func queuePosition(q *gorm.DB, group string, seq int64) (int, error) {
	var n int64
	err := q.Model(&handoffSessionRow{}).Where("group_name = ? AND state = ? AND queue_seq < ?",
		group, string(handoff.StatusQueued), seq).Count(&n).Error
	return int(n) + 1, err
}

func (t *handoffTx) Agents(staffIDs []string) ([]handoff.Agent, error) {
	if len(staffIDs) == 0 {
		return nil, nil
	}
	var rows []handoffAgentRow
	if err := t.q().Where("staff_id IN ?", staffIDs).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]handoff.Agent, len(rows))
	for i := range rows {
		out[i] = rows[i].record()
	}
	return out, nil
}

func (t *handoffTx) Agent(staffID string) (*handoff.Agent, error) { return agent(t.q(), staffID) }

func agent(q *gorm.DB, staffID string) (*handoff.Agent, error) {
	var row handoffAgentRow
	ok, err := found(q.Where("staff_id = ?", staffID).Take(&row).Error)
	if !ok {
		return nil, err
	}
	a := row.record()
	return &a, nil
}

// Assign is one conditional update (see handoff.Tx.Assign).
func (t *handoffTx) Assign(staffID string, maxChats int, now time.Time) (*handoff.Agent, bool, error) {
	// current_no comes first: MySQL evaluates SET left to right with the
	// values already assigned, SQLite with the old ones; in this order both
	// compute the old next_no + 1.
	res := t.q().Exec("UPDATE handoff_agents SET current_no = next_no + 1, next_no = next_no + 1, "+
		"open_chats = open_chats + 1, last_assigned_at = ? WHERE staff_id = ? AND presence = ? AND open_chats < ?",
		now.UTC(), staffID, string(handoff.Online), maxChats)
	if res.Error != nil || res.RowsAffected == 0 {
		return nil, false, res.Error
	}
	a, err := agent(t.q(), staffID)
	if err != nil || a == nil {
		return nil, false, err
	}
	return a, true, nil
}

func (t *handoffTx) Release(staffID string, no int) error {
	return t.q().Exec("UPDATE handoff_agents SET open_chats = CASE WHEN open_chats > 0 THEN open_chats - 1 ELSE 0 END, "+
		"current_no = CASE WHEN current_no = ? THEN 0 ELSE current_no END WHERE staff_id = ?", no, staffID).Error
}

func (t *handoffTx) SetCurrent(staffID string, no int) error {
	return t.q().Model(&handoffAgentRow{}).Where("staff_id = ?", staffID).Update("current_no", no).Error
}

// lineColumns are the columns of handoff_messages an insert writes.
var lineColumns = []string{"user_key", "session_id", "direction", "sender_kind", "sender_id", "sender_name",
	"kind", "text", "msg_id", "outbox_id", "created_at"}

// lineOutboxColumn is outbox_id's place in lineColumns.
var lineOutboxColumn = slices.Index(lineColumns, "outbox_id")

// lineValues is a transcript line's row (lineColumns' values).
func lineValues(l *handoff.Line) []any {
	kind := string(l.Kind)
	if kind == "" { // the column's default, as gorm's insert left it
		kind = "text"
	}
	return []any{l.UserKey, l.SessionID, string(l.Direction), string(l.Sender), l.SenderID, l.SenderName,
		kind, l.Text, l.MsgID, l.OutboxID, l.CreatedAt.UTC()}
}

// Record writes replies to the outbox and lines to the transcript, each
// with one multi-row INSERT (or defers them, deferred.go);
// HandoffStore.Transact hands the replies to the sender after the commit.
func (t *handoffTx) Record(now time.Time, replies []adapter.Reply, lines []handoff.Line) error {
	if t.run != nil {
		n := len(t.own.outbox)
		if err := t.own.record(t.db, now, replies, lines); err != nil {
			return err
		}
		t.items = append(t.items, t.own.outbox[n:]...)
		return nil
	}
	// Alone, the same rows written at once.
	var d deferred
	if err := d.record(t.db, now, replies, lines); err != nil {
		return err
	}
	items := d.outbox
	if err := d.flush(t.db, t.g); err != nil {
		return err
	}
	t.items = append(t.items, items...)
	return nil
}

func (t *handoffTx) LastLines(userKey string, n int) ([]handoff.Line, error) {
	if n <= 0 {
		return nil, nil
	}
	var rows []handoffMessageRow
	err := t.q().Where("user_key = ?", userKey).Order("id desc").Limit(n).Find(&rows).Error
	out := make([]handoff.Line, len(rows))
	for i := range rows {
		out[len(rows)-1-i] = rows[i].record()
	}
	return out, err
}

func (t *handoffTx) AddUnanswered(qs []handoff.Unanswered) error {
	if len(qs) == 0 {
		return nil
	}
	rows := make([]handoffUnansweredRow, len(qs))
	for i, q := range qs {
		rows[i] = handoffUnansweredRow{UserKey: q.UserKey, ConversationID: q.ConversationID, Question: q.Question,
			Candidates: jsonOf(q.Candidates), CreatedAt: q.CreatedAt.UTC(), Kind: q.Kind}
		if rows[i].Kind == "" {
			rows[i].Kind = handoff.UnansweredNone
		}
	}
	if t.run != nil {
		t.own.unans = append(t.own.unans, rows...)
		return nil
	}
	return t.g.Create(&rows).Error
}

func (t *handoffTx) MarkHandled(msgID string, now time.Time) error {
	if t.run != nil {
		// Handled by an earlier member of this group (the same message
		// twice at once): as if that member had committed. Against the
		// inbox it is checked when the group writes (flushHandled).
		if t.own.markedHandled(msgID) || t.run.pending.markedHandled(msgID) {
			return handoff.ErrAlreadyHandled
		}
		t.own.handled = append(t.own.handled, handledMark{msgID: msgID, at: now})
		return nil
	}
	err := t.db.markHandled(t.g, msgID, now)
	if errors.Is(err, ErrAlreadyHandled) {
		return handoff.ErrAlreadyHandled
	}
	return err
}

// HandoffStore is the hand-off engine's storage (handoff.Store) on gorm.
type HandoffStore struct {
	db   *DB
	kick func(context.Context, []OutboxItem)
}

var _ handoff.Store = (*HandoffStore)(nil)

// NewHandoffStore stores the engine's records in db. kick (optional)
// receives the outbox items of every committed transaction that enqueued
// some, with the context of the Transact call, so they go out at once
// without being read back.
func NewHandoffStore(db *DB, kick func(context.Context, []OutboxItem)) *HandoffStore {
	return &HandoffStore{db: db, kick: kick}
}

// Transact runs fn in one hand-off transaction (see DB.handoff), then
// kicks the replies it enqueued.
func (s *HandoffStore) Transact(ctx context.Context, fn func(tx handoff.Tx) error) error {
	return s.TransactConversation(ctx, "", fn)
}

// TransactConversation is Transact for a transaction that locks userKey's
// conversation first (handoff.Store.TransactConversation).
func (s *HandoffStore) TransactConversation(ctx context.Context, userKey string, fn func(tx handoff.Tx) error) error {
	var last *handoffTx
	err := s.db.handoffFor(ctx, userKey, func(t *handoffTx) error {
		if err := fn(t); err != nil {
			return err
		}
		last = t // the attempt that committed (fn may run again)
		return nil
	})
	if err != nil || last == nil || len(last.items) == 0 || s.kick == nil {
		return err
	}
	// Deferred items got their ids when their group was written.
	items := make([]OutboxItem, len(last.items))
	for i, it := range last.items {
		items[i] = *it
	}
	s.kick(ctx, items)
	return nil
}

func (s *HandoffStore) q(ctx context.Context) *gorm.DB { return s.db.gorm.WithContext(ctx) }

// EnsureGroups creates the lock rows of skill groups that have none. It
// runs outside the engine's transactions, so taking a group's lock never
// needs an insert (an insert-or-ignore followed by a lock would deadlock two
// transactions upgrading their shared locks).
func (s *HandoffStore) EnsureGroups(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	rows := make([]handoffGroupRow, len(names))
	for i, n := range names {
		rows[i] = handoffGroupRow{Name: n}
	}
	return s.q(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error
}

func (s *HandoffStore) SetPresence(ctx context.Context, staffID string, p handoff.Presence, now time.Time) error {
	return setPresence(s.q(ctx), staffID, p, now) // handoff_events.go
}

func (s *HandoffStore) NoteAgentChat(ctx context.Context, staffID string, chat handoff.AgentChat, now time.Time) error {
	exp := ptr(chat.WebhookExpiry)
	row := handoffAgentRow{StaffID: staffID, Presence: string(handoff.Offline), PresenceAt: now.UTC(),
		ChatID: chat.ConversationID, Webhook: chat.Webhook, WebhookExpiry: exp}
	return s.q(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "staff_id"}},
		DoUpdates: clause.Assignments(map[string]any{"chat_id": chat.ConversationID, "webhook": chat.Webhook, "webhook_expiry": exp}),
	}).Create(&row).Error
}

func (s *HandoffStore) Agent(ctx context.Context, staffID string) (*handoff.Agent, error) {
	return agent(s.q(ctx), staffID)
}

func (s *HandoffStore) Conversation(ctx context.Context, userKey string) (*handoff.Conversation, error) {
	return (&handoffTx{db: s.db, g: s.q(ctx)}).conversation(userKey, false)
}

func (s *HandoffStore) Session(ctx context.Context, id int64) (*handoff.Session, error) {
	return takeSession(s.q(ctx).Where("id = ?", id))
}

func (s *HandoffStore) AgentSession(ctx context.Context, staffID string, no int) (*handoff.Session, error) {
	return takeSession(s.q(ctx).Where("agent_id = ? AND agent_no = ?", staffID, no).
		Order("id desc").Limit(1))
}

func (s *HandoffStore) ActiveSessions(ctx context.Context, staffID string) ([]handoff.Session, error) {
	var rows []handoffSessionRow
	err := s.q(ctx).Where("agent_id = ? AND state = ?", staffID, string(handoff.StatusActive)).
		Order("agent_no").Find(&rows).Error
	return sessionRecords(rows), err
}

func (s *HandoffStore) QueueLengths(ctx context.Context, groups []string) (map[string]int, error) {
	out := map[string]int{}
	if len(groups) == 0 {
		return out, nil
	}
	var rows []struct {
		GroupName string
		N         int
	}
	err := s.q(ctx).Model(&handoffSessionRow{}).Select("group_name, count(*) as n").
		Where("group_name IN ? AND state = ?", groups, string(handoff.StatusQueued)).Group("group_name").Scan(&rows).Error
	for _, r := range rows {
		out[r.GroupName] = r.N
	}
	return out, err
}

func (s *HandoffStore) QueuePosition(ctx context.Context, group string, seq int64) (int, error) {
	return queuePosition(s.q(ctx), group, seq)
}

func (s *HandoffStore) DueSessions(ctx context.Context, now time.Time, limit int) ([]handoff.Session, error) {
	var rows []handoffSessionRow
	err := s.q(ctx).Select("id, user_key, group_name, agent_id, due_at").
		Where("due_at IS NOT NULL AND due_at <= ?", now.UTC()).Order("due_at").Limit(limit).Find(&rows).Error
	return sessionRecords(rows), err
}

// Reads for admins and tests, beyond what the engine needs.

// Messages lists a user's transcript, oldest first.
func (s *HandoffStore) Messages(ctx context.Context, userKey string) ([]handoff.Line, error) {
	var rows []handoffMessageRow
	err := s.q(ctx).Where("user_key = ?", userKey).Order("id").Find(&rows).Error
	out := make([]handoff.Line, len(rows))
	for i := range rows {
		out[i] = rows[i].record()
	}
	return out, err
}

// Unanswered lists unanswered questions, newest first.
func (s *HandoffStore) Unanswered(ctx context.Context, limit int) ([]handoff.Unanswered, error) {
	var rows []handoffUnansweredRow
	if err := s.q(ctx).Order("id desc").Limit(limit).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]handoff.Unanswered, len(rows))
	for i, r := range rows {
		out[i] = handoff.Unanswered{UserKey: r.UserKey, ConversationID: r.ConversationID, Question: r.Question, CreatedAt: r.CreatedAt}
		_ = json.Unmarshal([]byte(r.Candidates), &out[i].Candidates)
	}
	return out, nil
}

// Queue lists a group's queued sessions in queue order.
func (s *HandoffStore) Queue(ctx context.Context, group string) ([]handoff.Session, error) {
	var rows []handoffSessionRow
	q := s.q(ctx).Where("state = ?", string(handoff.StatusQueued))
	if group != "" {
		q = q.Where("group_name = ?", group)
	}
	err := q.Order("queue_seq").Find(&rows).Error
	return sessionRecords(rows), err
}

// SessionCounts counts sessions per user key.
func (s *HandoffStore) SessionCounts(ctx context.Context) (map[string]int, error) {
	var rows []struct {
		UserKey string
		N       int
	}
	err := s.q(ctx).Model(&handoffSessionRow{}).Select("user_key, count(*) as n").Group("user_key").Scan(&rows).Error
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.UserKey] = r.N
	}
	return out, err
}
