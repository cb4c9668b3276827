package storage

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/dingdesk/dingdesk/adapter"
)

// The hand-off engine's tables (package handoff decides, this file stores).
// Lock order, kept by every transaction that takes more than one lock:
// conversation rows → skill-group rows (by name) → session rows → agent rows.

// Session states as stored.
const (
	SessionQueued = "queued"
	SessionActive = "active"
	SessionEnded  = "ended"
)

// Agent presences as stored.
const (
	PresenceOnline  = "online"
	PresenceBusy    = "busy"
	PresenceOffline = "offline"
)

// HandoffConversationRow is one user's conversation with the service (a
// private chat, or one user in a group): key conversationID|senderID. Its
// row lock serialises everything that changes the user's state, across
// replicas. The user is with the bot while SessionID is 0; otherwise the
// session row says whether they queue or talk to a person.
type HandoffConversationRow struct {
	UserKey           string `gorm:"primaryKey;size:191"`
	ConversationID    string `gorm:"size:191;not null"`
	ConversationType  string `gorm:"size:4;not null"`
	ConversationTitle string `gorm:"size:255;not null;default:''"`
	UserID            string `gorm:"size:128;not null"` // SenderID: staffId, or DingTalk's id for outsiders
	StaffID           string `gorm:"size:128;not null;default:''"`
	Nick              string `gorm:"size:128;not null;default:''"`
	SessionID         int64  `gorm:"not null;default:0"`
	GroupName         string `gorm:"size:128;not null;default:''"`  // group of SessionID
	Misses            int    `gorm:"not null;default:0"`            // unanswered questions in a row
	Picks             string `gorm:"size:2048;not null;default:''"` // JSON entry ids of the last numbered list
	LastQuestion      string `gorm:"type:mediumtext"`               // a whole message: up to the webhook's limit
	LastAgent         string `gorm:"size:128;not null;default:''"`
	Webhook           string `gorm:"size:1024;not null;default:''"`
	WebhookExpiry     *time.Time
	CreatedAt         time.Time `gorm:"not null"`
	ChangedAt         time.Time `gorm:"not null"` // set by the engine's clock
}

func (HandoffConversationRow) TableName() string { return "handoff_conversations" }

// HandoffSessionRow is one hand-off: queued, then active with one agent,
// then ended. A transfer or an agent going offline ends the row and opens a
// new one, so each row has one agent and the history keeps who, why, when.
// DueAt is the row's pending timeout (queue_timeout while queued,
// customer_idle_timeout while active); ix_hs_due makes the timer scan
// O(due).
type HandoffSessionRow struct {
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
	Greeted           bool   `gorm:"not null;default:false"` // the user was told the agent's name
	FromSessionID     int64  `gorm:"not null;default:0"`     // the session this one continues (transfer)
	FromAgent         string `gorm:"size:128;not null;default:''"`
	QueuedAt          *time.Time
	AssignedAt        *time.Time
	EndedAt           *time.Time
	EndReason         string     `gorm:"size:32;not null;default:''"`
	DueAt             *time.Time `gorm:"index:ix_hs_due"`
	ToldAt            *time.Time // last queue position reminder
	CreatedAt         time.Time  `gorm:"not null"`
}

func (HandoffSessionRow) TableName() string { return "handoff_sessions" }

// HandoffAgentRow is an agent's presence and load. OpenChats counts the
// agent's active sessions and only changes together with a session row;
// the conditional update in Assign keeps it at or under max_chats whatever
// runs concurrently. NextNo numbers the agent's sessions (#12).
type HandoffAgentRow struct {
	StaffID        string `gorm:"primaryKey;size:128"`
	Presence       string `gorm:"size:16;not null"`
	OpenChats      int    `gorm:"not null;default:0"`
	NextNo         int    `gorm:"not null;default:0"`
	CurrentNo      int    `gorm:"not null;default:0"`
	LastAssignedAt *time.Time
	PresenceAt     time.Time `gorm:"not null"`
	ChatID         string    `gorm:"size:191;not null;default:''"` // the agent's 1:1 conversationId with the bot
	Webhook        string    `gorm:"size:1024;not null;default:''"`
	WebhookExpiry  *time.Time
}

func (HandoffAgentRow) TableName() string { return "handoff_agents" }

// HandoffGroupRow exists to be locked: every change to a skill group's
// queue holds it, which serialises the group's hand-offs across replicas
// and makes queue positions exact. HeadSeq/TailSeq hand out queue_seq
// values for the front (an agent went offline) and the back.
type HandoffGroupRow struct {
	Name    string `gorm:"primaryKey;size:128"`
	HeadSeq int64  `gorm:"not null;default:0"`
	TailSeq int64  `gorm:"not null;default:0"`
}

func (HandoffGroupRow) TableName() string { return "handoff_groups" }

// Transcript directions and sender kinds.
const (
	DirIn  = "in"
	DirOut = "out"

	SenderUser   = "user"
	SenderBot    = "bot"
	SenderAgent  = "agent"
	SenderSystem = "system"
)

// HandoffMessageRow is one transcript line: a message from or to the user.
type HandoffMessageRow struct {
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

func (HandoffMessageRow) TableName() string { return "handoff_messages" }

// HandoffUnansweredRow is a question the bot could not answer, with its best
// candidates (JSON), for admins to grow the knowledge base.
type HandoffUnansweredRow struct {
	ID             int64     `gorm:"primaryKey;autoIncrement"`
	UserKey        string    `gorm:"size:191;not null"`
	ConversationID string    `gorm:"size:191;not null"`
	Question       string    `gorm:"type:mediumtext"`
	Candidates     string    `gorm:"type:text"`
	CreatedAt      time.Time `gorm:"not null;index:ix_hu_created"`
}

func (HandoffUnansweredRow) TableName() string { return "handoff_unanswered" }

// HandoffTx is one hand-off engine transaction.
type HandoffTx struct {
	DB *DB
	G  *gorm.DB
}

// Handoff runs fn in a transaction and repeats it when the database rolled
// it back for contention (see IsRetryable) or a concurrent first insert of
// the same key lost the race; fn must have no effects outside the
// transaction. On MySQL the transaction runs at READ COMMITTED: every read
// sees the latest commits (so what is read after taking a group lock is
// exact), and a locking read of a missing row takes no gap lock (so first
// messages of many new users do not deadlock on their inserts). On SQLite
// it shares its commit with the other hand-off transactions waiting at the
// same moment (txGroup); it still returns only once its work is committed.
func (db *DB) Handoff(ctx context.Context, fn func(tx *HandoffTx) error) error {
	var opts []*sql.TxOptions
	if db.Driver == "mysql" {
		opts = append(opts, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	}
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		if db.group != nil {
			err = db.group.do(ctx, fn)
		} else {
			err = db.Gorm.WithContext(ctx).Transaction(func(g *gorm.DB) error {
				return fn(&HandoffTx{DB: db, G: g})
			}, opts...)
		}
		if err == nil || !(IsRetryable(err) || IsDuplicate(err) || errors.Is(err, errGroupAborted)) {
			return err
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

func (t *HandoffTx) forUpdate() *gorm.DB { return t.DB.ForUpdate(t.G) }

func found(err error) (bool, error) {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return false, nil
	}
	return err == nil, err
}

// LockConversation reads and locks a conversation; nil when it has none.
func (t *HandoffTx) LockConversation(userKey string) (*HandoffConversationRow, error) {
	var row HandoffConversationRow
	ok, err := found(t.forUpdate().Where("user_key = ?", userKey).Take(&row).Error)
	if !ok {
		return nil, err
	}
	return &row, nil
}

// Conversation reads a conversation without locking it.
func (t *HandoffTx) Conversation(userKey string) (*HandoffConversationRow, error) {
	var row HandoffConversationRow
	ok, err := found(t.G.Where("user_key = ?", userKey).Take(&row).Error)
	if !ok {
		return nil, err
	}
	return &row, nil
}

// Conversations reads conversations by key without locking them.
func (t *HandoffTx) Conversations(keys []string) (map[string]*HandoffConversationRow, error) {
	out := make(map[string]*HandoffConversationRow, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	var rows []HandoffConversationRow
	if err := t.G.Where("user_key IN ?", keys).Find(&rows).Error; err != nil {
		return nil, err
	}
	for i := range rows {
		out[rows[i].UserKey] = &rows[i]
	}
	return out, nil
}

// CreateConversation inserts a new conversation.
func (t *HandoffTx) CreateConversation(row *HandoffConversationRow) error {
	return t.G.Create(row).Error
}

// SaveConversation writes every column of an existing conversation.
func (t *HandoffTx) SaveConversation(row *HandoffConversationRow) error {
	return t.G.Model(row).Select("*").Omit("user_key", "created_at").Updates(row).Error
}

// LockSession reads and locks a session; nil when missing.
func (t *HandoffTx) LockSession(id int64) (*HandoffSessionRow, error) {
	var row HandoffSessionRow
	ok, err := found(t.forUpdate().Where("id = ?", id).Take(&row).Error)
	if !ok {
		return nil, err
	}
	return &row, nil
}

// CreateSession inserts a session and sets its ID.
func (t *HandoffTx) CreateSession(row *HandoffSessionRow) error { return t.G.Create(row).Error }

// SaveSession writes every column of an existing session.
func (t *HandoffTx) SaveSession(row *HandoffSessionRow) error {
	return t.G.Model(row).Select("*").Omit("id", "created_at").Updates(row).Error
}

// SetSessionDue moves a session's timer.
func (t *HandoffTx) SetSessionDue(id int64, due *time.Time) error {
	return t.G.Model(&HandoffSessionRow{}).Where("id = ?", id).Update("due_at", due).Error
}

// LockGroups locks the skill-group rows, in name order (the caller passes
// them sorted and distinct). EnsureGroups must have created them.
func (t *HandoffTx) LockGroups(names ...string) (map[string]*HandoffGroupRow, error) {
	out := make(map[string]*HandoffGroupRow, len(names))
	for _, n := range names {
		var row HandoffGroupRow
		if err := t.forUpdate().Where("name = ?", n).Take(&row).Error; err != nil {
			return nil, err
		}
		out[n] = &row
	}
	return out, nil
}

// NextQueueSeq hands out the queue position key at the back of a group,
// under the group lock (ReserveFront hands out keys at the front).
func (t *HandoffTx) NextQueueSeq(g *HandoffGroupRow) (int64, error) {
	g.TailSeq++
	return g.TailSeq, t.G.Model(g).Update("tail_seq", g.TailSeq).Error
}

// ReserveFront reserves n queue_seq values before everyone queued in the
// group and returns the first; they run upwards from it.
func (t *HandoffTx) ReserveFront(g *HandoffGroupRow, n int) (int64, error) {
	g.HeadSeq -= int64(n)
	return g.HeadSeq, t.G.Model(g).Update("head_seq", g.HeadSeq).Error
}

// Queue lists a group's queued sessions in order. Exact while the group
// row is locked.
func (t *HandoffTx) Queue(group string) ([]HandoffSessionRow, error) {
	var rows []HandoffSessionRow
	err := t.G.Where("group_name = ? AND state = ?", group, SessionQueued).Order("queue_seq").Find(&rows).Error
	return rows, err
}

// QueueHead locks the first queued session of a group; nil when empty.
func (t *HandoffTx) QueueHead(group string) (*HandoffSessionRow, error) {
	var row HandoffSessionRow
	ok, err := found(t.forUpdate().Where("group_name = ? AND state = ?", group, SessionQueued).
		Order("queue_seq").Limit(1).Take(&row).Error)
	if !ok {
		return nil, err
	}
	return &row, nil
}

// QueuePosition is 1 + the number of sessions queued before seq.
func (t *HandoffTx) QueuePosition(group string, seq int64) (int, error) {
	var n int64
	err := t.G.Model(&HandoffSessionRow{}).Where("group_name = ? AND state = ? AND queue_seq < ?", group, SessionQueued, seq).Count(&n).Error
	return int(n) + 1, err
}

// Agents reads the agent rows of staffIDs that exist.
func (t *HandoffTx) Agents(staffIDs []string) ([]HandoffAgentRow, error) {
	var rows []HandoffAgentRow
	if len(staffIDs) == 0 {
		return nil, nil
	}
	err := t.G.Where("staff_id IN ?", staffIDs).Find(&rows).Error
	return rows, err
}

// Agent reads one agent row; nil when the agent never set a presence.
func (t *HandoffTx) Agent(staffID string) (*HandoffAgentRow, error) {
	var row HandoffAgentRow
	ok, err := found(t.G.Where("staff_id = ?", staffID).Take(&row).Error)
	if !ok {
		return nil, err
	}
	return &row, nil
}

// Assign takes one chat of the agent's capacity and the agent's next
// session number, which also becomes the agent's current session, in one
// conditional update: it succeeds only while the agent is online with fewer
// than maxChats open chats, whatever other transactions (other groups,
// other replicas) do at the same time, because the database evaluates the
// condition on the latest row version under its row lock. ok is false when
// the agent is full, not online or unknown.
func (t *HandoffTx) Assign(staffID string, maxChats int, now time.Time) (*HandoffAgentRow, bool, error) {
	// current_no comes first: MySQL evaluates SET left to right with the
	// values already assigned, SQLite with the old ones; in this order both
	// compute the old next_no + 1.
	res := t.G.Exec("UPDATE handoff_agents SET current_no = next_no + 1, next_no = next_no + 1, "+
		"open_chats = open_chats + 1, last_assigned_at = ? WHERE staff_id = ? AND presence = ? AND open_chats < ?",
		now, staffID, PresenceOnline, maxChats)
	if res.Error != nil || res.RowsAffected == 0 {
		return nil, false, res.Error
	}
	var row HandoffAgentRow
	if err := t.G.Where("staff_id = ?", staffID).Take(&row).Error; err != nil {
		return nil, false, err
	}
	return &row, true, nil
}

// Release gives back one chat of the agent's capacity, when session no
// ends; the agent's current session is cleared when it was that one.
func (t *HandoffTx) Release(staffID string, no int) error {
	return t.G.Exec("UPDATE handoff_agents SET open_chats = CASE WHEN open_chats > 0 THEN open_chats - 1 ELSE 0 END, "+
		"current_no = CASE WHEN current_no = ? THEN 0 ELSE current_no END WHERE staff_id = ?", no, staffID).Error
}

// SetCurrent makes no the agent's current session.
func (t *HandoffTx) SetCurrent(staffID string, no int) error {
	return t.G.Model(&HandoffAgentRow{}).Where("staff_id = ?", staffID).Update("current_no", no).Error
}

// AddMessages appends transcript lines.
func (t *HandoffTx) AddMessages(rows []HandoffMessageRow) error {
	if len(rows) == 0 {
		return nil
	}
	return t.G.Create(&rows).Error
}

// LastMessages is the user's last n transcript lines, oldest first.
func (t *HandoffTx) LastMessages(userKey string, n int) ([]HandoffMessageRow, error) {
	if n <= 0 {
		return nil, nil
	}
	var rows []HandoffMessageRow
	err := t.G.Where("user_key = ?", userKey).Order("id desc").Limit(n).Find(&rows).Error
	for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
		rows[i], rows[j] = rows[j], rows[i]
	}
	return rows, err
}

// AddUnanswered records unanswered questions.
func (t *HandoffTx) AddUnanswered(rows []HandoffUnansweredRow) error {
	if len(rows) == 0 {
		return nil
	}
	return t.G.Create(&rows).Error
}

// Enqueue writes replies to the outbox (see EnqueueReplies).
func (t *HandoffTx) Enqueue(now time.Time, replies ...adapter.Reply) ([]OutboxItem, error) {
	return t.DB.EnqueueReplies(t.G, now, replies...)
}

// MarkHandled marks the inbound message handled (see MarkHandled).
func (t *HandoffTx) MarkHandled(msgID string, now time.Time) error {
	return MarkHandled(t.G, msgID, now)
}

// HandoffStore holds the hand-off queries that run outside a transaction.
type HandoffStore struct{ db *DB }

// NewHandoffStore wraps db.
func NewHandoffStore(db *DB) *HandoffStore { return &HandoffStore{db: db} }

// EnsureGroups creates the lock rows of skill groups that have none. It
// runs outside the engine's transactions, so taking a group's lock never
// needs an insert (an insert-or-ignore followed by a lock would deadlock two
// transactions upgrading their shared locks).
func (s *HandoffStore) EnsureGroups(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	rows := make([]HandoffGroupRow, len(names))
	for i, n := range names {
		rows[i] = HandoffGroupRow{Name: n}
	}
	return s.db.Gorm.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error
}

// SetPresence creates or updates an agent's presence.
func (s *HandoffStore) SetPresence(ctx context.Context, staffID, presence string, now time.Time) error {
	row := HandoffAgentRow{StaffID: staffID, Presence: presence, PresenceAt: now}
	return s.db.Gorm.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "staff_id"}},
		DoUpdates: clause.Assignments(map[string]any{"presence": presence, "presence_at": now}),
	}).Create(&row).Error
}

// NoteAgentChat remembers the agent's 1:1 conversation and its webhook.
func (s *HandoffStore) NoteAgentChat(ctx context.Context, staffID, chatID, webhook string, expiry *time.Time, now time.Time) error {
	row := HandoffAgentRow{StaffID: staffID, Presence: PresenceOffline, PresenceAt: now, ChatID: chatID, Webhook: webhook, WebhookExpiry: expiry}
	return s.db.Gorm.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "staff_id"}},
		DoUpdates: clause.Assignments(map[string]any{"chat_id": chatID, "webhook": webhook, "webhook_expiry": expiry}),
	}).Create(&row).Error
}

// Agent reads one agent row; nil when the agent never appeared.
func (s *HandoffStore) Agent(ctx context.Context, staffID string) (*HandoffAgentRow, error) {
	return (&HandoffTx{DB: s.db, G: s.db.Gorm.WithContext(ctx)}).Agent(staffID)
}

// Conversation reads one conversation; nil when missing.
func (s *HandoffStore) Conversation(ctx context.Context, userKey string) (*HandoffConversationRow, error) {
	return (&HandoffTx{DB: s.db, G: s.db.Gorm.WithContext(ctx)}).Conversation(userKey)
}

// Session reads one session; nil when missing.
func (s *HandoffStore) Session(ctx context.Context, id int64) (*HandoffSessionRow, error) {
	var row HandoffSessionRow
	ok, err := found(s.db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&row).Error)
	if !ok {
		return nil, err
	}
	return &row, nil
}

// AgentSession finds the agent's session numbered no; nil when none.
func (s *HandoffStore) AgentSession(ctx context.Context, staffID string, no int) (*HandoffSessionRow, error) {
	var row HandoffSessionRow
	ok, err := found(s.db.Gorm.WithContext(ctx).Where("agent_id = ? AND agent_no = ?", staffID, no).
		Order("id desc").Limit(1).Take(&row).Error)
	if !ok {
		return nil, err
	}
	return &row, nil
}

// ActiveSessions lists the agent's active sessions by number.
func (s *HandoffStore) ActiveSessions(ctx context.Context, staffID string) ([]HandoffSessionRow, error) {
	var rows []HandoffSessionRow
	err := s.db.Gorm.WithContext(ctx).Where("agent_id = ? AND state = ?", staffID, SessionActive).
		Order("agent_no").Find(&rows).Error
	return rows, err
}

// QueueLengths counts queued sessions per group.
func (s *HandoffStore) QueueLengths(ctx context.Context, groups []string) (map[string]int, error) {
	out := map[string]int{}
	if len(groups) == 0 {
		return out, nil
	}
	var rows []struct {
		GroupName string
		N         int
	}
	err := s.db.Gorm.WithContext(ctx).Model(&HandoffSessionRow{}).Select("group_name, count(*) as n").
		Where("group_name IN ? AND state = ?", groups, SessionQueued).Group("group_name").Scan(&rows).Error
	for _, r := range rows {
		out[r.GroupName] = r.N
	}
	return out, err
}

// QueuePosition is 1 + the number of sessions queued before seq in group.
func (s *HandoffStore) QueuePosition(ctx context.Context, group string, seq int64) (int, error) {
	return (&HandoffTx{DB: s.db, G: s.db.Gorm.WithContext(ctx)}).QueuePosition(group, seq)
}

// DueSessions lists sessions whose timer is due, earliest first, through
// ix_hs_due: O(due), not O(sessions).
func (s *HandoffStore) DueSessions(ctx context.Context, now time.Time, limit int) ([]HandoffSessionRow, error) {
	var rows []HandoffSessionRow
	err := s.db.Gorm.WithContext(ctx).Select("id, user_key, group_name, agent_id, due_at").
		Where("due_at IS NOT NULL AND due_at <= ?", now).Order("due_at").Limit(limit).Find(&rows).Error
	return rows, err
}

// Messages lists a user's transcript, oldest first.
func (s *HandoffStore) Messages(ctx context.Context, userKey string) ([]HandoffMessageRow, error) {
	var rows []HandoffMessageRow
	err := s.db.Gorm.WithContext(ctx).Where("user_key = ?", userKey).Order("id").Find(&rows).Error
	return rows, err
}

// Unanswered lists unanswered questions, newest first.
func (s *HandoffStore) Unanswered(ctx context.Context, limit int) ([]HandoffUnansweredRow, error) {
	var rows []HandoffUnansweredRow
	err := s.db.Gorm.WithContext(ctx).Order("id desc").Limit(limit).Find(&rows).Error
	return rows, err
}
