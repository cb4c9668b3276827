package handoff

import (
	"context"
	"errors"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
)

// The engine's contract with its gormstore. The engine decides; a Store
// keeps the records below and runs the engine's transactions. The gorm
// implementation (gormstore.HandoffStore) converts its rows to these records
// at its edge, so nothing here knows about SQL.

// Conversation is one user's conversation with the service (a private
// chat, or one user in a group), keyed by adapter.Message.UserKey. Its
// lock serialises everything that changes the user's state. The user is
// with the bot while SessionID is 0; otherwise the session says whether
// they queue or talk to a person.
type Conversation struct {
	UserKey           string
	ConversationID    string
	ConversationType  adapter.ConversationType
	ConversationTitle string
	UserID            string // SenderID: staffId, or DingTalk's id for outsiders
	StaffID           string
	Nick              string
	SessionID         int64
	Group             string // the group of SessionID
	Misses            int    // unanswered questions in a row
	// Picks are the knowledge entries of the numbered list the user was
	// last offered (clarify or hot questions), valid for the next message.
	Picks []string
	// LastQuestion is what the user last asked (for 推荐知识), and
	// LastQuestionMsg the msgId of the message that asked it.
	LastQuestion    string
	LastQuestionMsg string
	LastAgent       string // who served the user last (preferred next time)
	Webhook         string
	WebhookExpiry   time.Time // zero: unknown
	CreatedAt       time.Time
	ChangedAt       time.Time
}

// Session is one hand-off of one user to a skill group: queued, then
// served by one agent, then ended. A transfer, or an agent going offline,
// ends it and continues the conversation in a new session, so every
// session has one agent and the history keeps who, why and when.
type Session struct {
	ID int64
	// No is the agent's number for the session (#12): short, unique per
	// agent, allocated from the agent's counter at assignment; 0 while
	// queued.
	No                int
	Status            Status
	UserKey           string
	ConversationID    string
	ConversationType  adapter.ConversationType
	ConversationTitle string // groups only
	UserID            string
	UserNick          string
	Group             string // skill group name
	Reason            Reason
	Agent             string // staffId; "" while queued
	AgentName         string
	FromSessionID     int64  // the session this one continues
	FromAgent         string // the agent who transferred it (or went offline)
	// Note is the transfer note (转接附言) FromAgent left for whoever takes
	// the session; shown in the transferred-session notice.
	Note string
	// QueueSeq orders a group's queue (smaller first); see Tx.QueueBack.
	QueueSeq   int64
	QueuedAt   time.Time
	AssignedAt time.Time
	EndedAt    time.Time
	EndReason  EndReason
	// Due is the pending timeout (queue_timeout while queued,
	// customer_idle_timeout while active); zero: none.
	Due time.Time
	// ToldAt is when the user was last told the queue position.
	ToldAt time.Time
	// Greeted: the user was told the agent's name.
	Greeted bool
	// Suggested is the suggestion list (推荐知识) the agent was last shown
	// for this session: what `推荐 N` picks from.
	Suggested SuggestionList
	CreatedAt time.Time

	// Filled in by the engine for its callers, not stored:
	GroupDisplay string // the group's display_name
	// Position is the queue position while queued (1 = next), when the
	// call that returned the session computed it.
	Position int
}

// SuggestionList is a list of knowledge entries shown to an agent for one
// user message.
type SuggestionList struct {
	// ForMsg is the msgId of the user message the list answers.
	ForMsg  string
	Entries []string // entry ids; `推荐 N` sends Entries[N-1]
}

// Agent is an agent's presence and load. OpenChats counts the agent's
// active sessions; Tx.Assign keeps it at or under max_chats.
type Agent struct {
	StaffID        string
	Presence       Presence
	OpenChats      int
	NextNo         int // the last session number handed out
	CurrentNo      int // the session plain text goes to (0: none)
	LastAssignedAt time.Time
	PresenceAt     time.Time
	Chat           AgentChat
}

// AgentChat is where notices to an agent go: their 1:1 conversation with
// the bot and its latest sessionWebhook.
type AgentChat struct {
	ConversationID string
	Webhook        string
	WebhookExpiry  time.Time // zero: unknown
}

// Direction is which way a transcript line went.
type Direction string

const (
	DirIn  Direction = "in"  // from the user
	DirOut Direction = "out" // to the user
)

// SenderKind is who wrote a transcript line.
type SenderKind string

const (
	SenderUser   SenderKind = "user"
	SenderBot    SenderKind = "bot"
	SenderAgent  SenderKind = "agent"
	SenderSystem SenderKind = "system"
)

// Line is one transcript line: a message from or to the user.
type Line struct {
	ID         int64
	UserKey    string
	SessionID  int64 // 0 while with the bot
	Direction  Direction
	Sender     SenderKind
	SenderID   string
	SenderName string
	Kind       adapter.Kind
	Text       string
	MsgID      string // inbound msgId
	OutboxID   int64  // the outbound message that carried it
	CreatedAt  time.Time
	// Reply, when writing (Tx.Record), is 1 + the index of the reply this
	// line records; 0 for none. Not stored.
	Reply int
}

// Unanswered is a question the bot could not answer, with its best
// candidates, for admins to grow the knowledge base.
type Unanswered struct {
	UserKey        string
	ConversationID string
	Question       string
	Candidates     []UnansweredCandidate
	CreatedAt      time.Time
	// Kind is UnansweredNone (无答案) or UnansweredClarify (the user left
	// a 您是不是想问 list without picking); "" stores as UnansweredNone.
	Kind string
}

// Unanswered kinds, and the outcomes of Tx.AddBotTurn.
const (
	UnansweredNone    = "none"
	UnansweredClarify = "clarify"
	OutcomeAnswer     = "answer"
)

// UnansweredCandidate is one of the matcher's best guesses.
type UnansweredCandidate struct {
	ID       string  `json:"id"`
	Question string  `json:"question"`
	Score    float64 `json:"score"`
}

// ErrAlreadyHandled is returned by Tx.MarkHandled for an inbound message
// an earlier transaction handled: the transaction is rolled back, so a
// message handled twice (a re-run after a crash, two replicas) replies
// only once. The engine turns it into success.
var ErrAlreadyHandled = errors.New("inbound message already handled")

// Store keeps the engine's records. Reads outside a transaction see the
// latest commit and take no locks.
type Store interface {
	// Transact runs fn in one transaction and commits it when fn returns
	// nil. It may run fn again, whole, when the database rolled the
	// transaction back for contention, so fn must have no effects outside
	// tx. After the commit the replies fn enqueued go to the sender.
	Transact(ctx context.Context, fn func(tx Tx) error) error
	// TransactConversation is Transact for a transaction whose first step
	// is LockConversation(userKey): the store may read and lock that
	// conversation ahead, together with those of other transactions it
	// commits with.
	TransactConversation(ctx context.Context, userKey string, fn func(tx Tx) error) error

	// EnsureGroups creates the lock records of skill groups that have
	// none. It runs outside transactions, so taking a group's lock never
	// needs an insert.
	EnsureGroups(ctx context.Context, names ...string) error
	// NoteAgentChat remembers where notices to the agent go.
	NoteAgentChat(ctx context.Context, staffID string, chat AgentChat, now time.Time) error

	Agent(ctx context.Context, staffID string) (*Agent, error)               // nil: never seen
	Conversation(ctx context.Context, userKey string) (*Conversation, error) // nil: none
	Session(ctx context.Context, id int64) (*Session, error)                 // nil: none
	// AgentSession is the agent's latest session numbered no; nil: none.
	AgentSession(ctx context.Context, staffID string, no int) (*Session, error)
	// ActiveSessions are the agent's active sessions by number.
	ActiveSessions(ctx context.Context, staffID string) ([]Session, error)
	// QueueLengths counts queued sessions per group.
	QueueLengths(ctx context.Context, groups []string) (map[string]int, error)
	// QueuePosition is 1 + the number of sessions queued before seq.
	QueuePosition(ctx context.Context, group string, seq int64) (int, error)
	// Messages is a user's transcript, oldest first.
	Messages(ctx context.Context, userKey string) ([]Line, error)
	// DueSessions are sessions whose Due has passed, earliest first, with
	// at least ID, UserKey, Group and Due set; O(due), not O(sessions).
	DueSessions(ctx context.Context, now time.Time, limit int) ([]Session, error)
}

// Tx is one engine transaction. Every transaction that takes more than one
// lock takes them in this order, which is what keeps replicas sharing one
// database free of deadlocks (those that still happen are retried whole):
//
//	conversations (by key) → skill groups (by name) → sessions → agents
//
// On MySQL the transaction runs at READ COMMITTED, so what is read after a
// lock is the latest commit and missing rows take no gap locks; SQLite
// serialises writers, which gives the same guarantees.
type Tx interface {
	// LockConversation reads and locks a conversation; nil when it has none.
	LockConversation(userKey string) (*Conversation, error)
	// Conversation reads a conversation without locking it.
	Conversation(userKey string) (*Conversation, error)
	// Conversations reads conversations by key without locking them.
	Conversations(keys []string) (map[string]*Conversation, error)
	CreateConversation(c *Conversation) error
	SaveConversation(c *Conversation) error

	// LockGroups locks skill groups, in name order (sorted and distinct);
	// EnsureGroups must have created them. Every change to a group's queue
	// holds its lock, which makes positions and FIFO order exact.
	LockGroups(names ...string) error
	// QueueBack hands out the queue key at the back of a locked group.
	QueueBack(group string) (int64, error)
	// QueueFront reserves n keys before everyone queued in a locked group
	// and returns the first; they run upwards from it.
	QueueFront(group string, n int) (int64, error)
	// Queue lists a group's queued sessions in order (exact under its lock).
	Queue(group string) ([]Session, error)
	// QueueHead locks the first queued session of a group; nil when empty.
	QueueHead(group string) (*Session, error)
	// QueuePosition is 1 + the number of sessions queued before seq.
	QueuePosition(group string, seq int64) (int, error)

	// LockSession reads and locks a session; nil when missing.
	LockSession(id int64) (*Session, error)
	// CreateSession stores a new session and sets its ID.
	CreateSession(s *Session) error
	// SaveSession writes a session back.
	SaveSession(s *Session) error
	// SetSessionDue moves a session's timer (zero: none).
	SetSessionDue(id int64, due time.Time) error

	// Agents reads the agents of staffIDs that have a record.
	Agents(staffIDs []string) ([]Agent, error)
	// Agent reads one agent; nil when the agent never set a presence.
	Agent(staffID string) (*Agent, error)
	// Assign takes one chat of the agent's capacity and the agent's next
	// session number (which becomes current), in one conditional update
	// the database evaluates on the latest version of the agent under its
	// lock: it succeeds only while the agent is online with fewer than
	// maxChats open chats, whatever runs concurrently (other groups, other
	// replicas). ok is false when the agent is full, not online or unknown.
	Assign(staffID string, maxChats int, now time.Time) (a *Agent, ok bool, err error)
	// Release gives back one chat when session no ends, and clears the
	// agent's current session when it was that one.
	Release(staffID string, no int) error
	// SetCurrent makes no the agent's current session.
	SetCurrent(staffID string, no int) error

	// LastLines is the user's last n transcript lines, oldest first.
	LastLines(userKey string, n int) ([]Line, error)
	// AddUnanswered records unanswered questions.
	AddUnanswered(qs []Unanswered) error

	// Record stores replies in the outbox, to be sent once the
	// transaction has committed, and appends lines to the transcript; a
	// line whose Reply is n > 0 is the transcript of replies[n-1] and is
	// stored with its outbox id. The store may write them at the end of
	// the transaction (with other transactions' rows).
	Record(now time.Time, replies []adapter.Reply, lines []Line) error
	// MarkHandled records that the inbound message msgID is handled. It
	// returns ErrAlreadyHandled when an earlier transaction did; a msgID
	// that is not in the inbox (a made-up message) is fine.
	MarkHandled(msgID string, now time.Time) error

	// SetPresence creates or updates an agent's presence (agents come last
	// in the lock order).
	SetPresence(staffID string, p Presence, now time.Time) error
	// Publish stores events for agent front ends (events.go), to be read
	// once the transaction has committed; a rolled back transaction
	// publishes nothing.
	Publish(events ...Event) error
	// The records of the reports and of the satisfaction survey (满意度).

	// AddBotTurn records a question the bot handled and its outcome
	// (OutcomeAnswer with the entry, UnansweredClarify, UnansweredNone)
	// with the best score.
	AddBotTurn(userKey, outcome, entryID string, score float64, at time.Time) error
	// PromptRating records that the user of a session that just ended was
	// asked for a rating (a second prompt for a session is a no-op).
	PromptRating(sessionID int64, userKey, group, agent string, at time.Time) error
	// PendingRating is the session of the user's open rating prompt sent
	// at or after since; ok is false when there is none.
	PendingRating(userKey string, since time.Time) (sessionID int64, ok bool, err error)
	// RateSession stores score (1–5) on the session's open prompt; false
	// when it has none (rated or closed already).
	RateSession(sessionID int64, score int, at time.Time) (bool, error)
	// ClosePrompt ends a session's open prompt without a rating.
	ClosePrompt(sessionID int64, at time.Time) error
}
