package web

import (
	"context"
	"errors"
	"time"

	"github.com/dingdesk/dingdesk/transcript"
)

// Role is what a logged-in person may open.
type Role string

const (
	RoleAgent Role = "agent" // a member of a skill group: the workbench (/desk)
	RoleAdmin Role = "admin" // listed in admins: the admin console (/admin)
)

// Identity is who a browser session belongs to, as the current config
// says (a person removed from the config loses their roles at once).
type Identity struct {
	StaffID string
	Name    string
	Roles   []Role
}

// Has reports whether the identity holds role r.
func (id Identity) Has(r Role) bool {
	for _, x := range id.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// Presence is an agent's availability, as the DingTalk desk commands set it.
type Presence string

const (
	Online  Presence = "online"
	Busy    Presence = "busy"
	Offline Presence = "offline"
)

// Session states as the workbench shows them.
const (
	StatusQueued = "queued"
	StatusActive = "active"
	StatusEnded  = "ended"
)

// Session is one hand-off session as the workbench shows it.
type Session struct {
	ID                int64
	No                int // the agent's number (#N in the DingTalk desk)
	Status            string
	UserKey           string
	ConversationID    string
	ConversationType  string // "1" private, "2" group
	ConversationTitle string
	UserID            string
	Nick              string
	Group             string
	Reason            string
	Agent             string
	AgentName         string
	FromAgent         string
	// Note is the transfer note (转接附言) FromAgent left.
	Note       string
	QueuedAt   time.Time
	AssignedAt time.Time
	EndedAt    time.Time
	EndReason  string
	// Rating is the user's 满意度 of an ended session, 1–5 (0: none);
	// filled in by EndedSessions.
	Rating int
	// LastAt and LastText are the newest transcript line of the session
	// (zero when it has none); Unread counts the user's lines after what
	// the agent last saw in the workbench.
	LastAt   time.Time
	LastText string
	Unread   int
}

// Message is one transcript line: the same record the console's
// transcripts show.
type Message = transcript.Line

// Canned is one 常用语: shared ones come from the config (ID 0), an
// agent's own ones are stored.
type Canned struct {
	ID       int64
	Category string
	Text     string
	Position int
	Shared   bool
}

// AgentLoad is an agent's presence and number of open chats.
type AgentLoad struct {
	Presence  Presence
	OpenChats int
}

// Event is one stored change that browsers are told about. ID is the SSE
// event id (Last-Event-ID); Topic chooses who gets it (AgentTopic,
// GroupTopic); Type and Data are what the page reacts to.
type Event struct {
	ID    int64
	Topic string
	Type  string
	Data  string
	At    time.Time
}

// AgentTopic is the topic of one agent's changes.
func AgentTopic(staffID string) string { return "agent:" + staffID }

// GroupTopic is the topic of one skill group's queue.
func GroupTopic(group string) string { return "group:" + group }

// Event types.
const (
	EventMessage  = "message"  // Data: session id; a transcript line was added
	EventSession  = "session"  // Data: session id; a session changed (ended, transferred, assigned)
	EventQueue    = "queue"    // Data: group; the group's queue changed
	EventPresence = "presence" // Data: presence; the agent's presence changed
)

// Errors of the login links.
var (
	ErrLinkUnknown = errors.New("login link unknown")
	ErrLinkExpired = errors.New("login link expired")
	ErrLinkUsed    = errors.New("login link already used")
)

// Store is the workbench's storage: browser sessions, login links, events,
// and reads of the hand-off tables the engine does not offer.
type Store interface {
	CreateWebSession(ctx context.Context, s WebSession) error
	// WebSession returns the session with this token hash, nil if none.
	WebSession(ctx context.Context, tokenHash string) (*WebSession, error)
	TouchWebSession(ctx context.Context, tokenHash string, seen, expires time.Time) error
	DeleteWebSession(ctx context.Context, tokenHash string) error
	PruneWebSessions(ctx context.Context, now time.Time) (int64, error)

	CreateLoginLink(ctx context.Context, tokenHash, staffID string, now, expires time.Time) error
	// CheckLoginLink reports the link's staff id, or ErrLinkUnknown,
	// ErrLinkExpired or ErrLinkUsed, without using it up.
	CheckLoginLink(ctx context.Context, tokenHash string, now time.Time) (string, error)
	// RedeemLoginLink uses the link up (once, across replicas).
	RedeemLoginLink(ctx context.Context, tokenHash string, now time.Time) (string, error)

	EventsAfter(ctx context.Context, after int64, limit int) ([]Event, error)
	EventsByID(ctx context.Context, ids []int64) ([]Event, error)
	// EventBounds are the oldest and newest stored event ids (0, 0 when none).
	EventBounds(ctx context.Context) (oldest, newest int64, err error)
	PruneEvents(ctx context.Context, before time.Time) (int64, error)

	// Session is one hand-off session, nil if none.
	Session(ctx context.Context, id int64) (*Session, error)
	// ActiveSessions are the agent's active sessions with their newest line
	// and unread count, newest activity first.
	ActiveSessions(ctx context.Context, staffID string) ([]Session, error)
	// QueuedSessions are the sessions waiting in these groups, longest first.
	QueuedSessions(ctx context.Context, groups []string) ([]Session, error)
	// EndedSessions are the agent's sessions ended since, newest first,
	// whose user nick or id contains query ("" for all).
	EndedSessions(ctx context.Context, staffID string, since time.Time, query string, limit int) ([]Session, error)
	// UserSessions are every session of a user, newest first.
	UserSessions(ctx context.Context, userKey string) ([]Session, error)
	// Transcript is up to limit lines of a user before beforeID (0: the
	// newest), oldest first.
	Transcript(ctx context.Context, userKey string, beforeID int64, limit int) ([]Message, error)
	MarkRead(ctx context.Context, staffID string, sessionID, messageID int64) error
	// AgentLoads are the stored presence and open chats of these agents
	// (absent: offline, none).
	AgentLoads(ctx context.Context, staffIDs []string) (map[string]AgentLoad, error)

	CannedReplies(ctx context.Context, staffID string) ([]Canned, error)
	AddCanned(ctx context.Context, staffID, category, text string, now time.Time) (Canned, error)
	UpdateCanned(ctx context.Context, staffID string, id int64, category, text string) error
	DeleteCanned(ctx context.Context, staffID string, id int64) error
	// MoveCanned swaps the reply with its neighbour (delta -1 up, +1 down).
	MoveCanned(ctx context.Context, staffID string, id int64, delta int) error
}

// WebSession is a logged-in browser. Only the hash of its cookie token is
// stored.
type WebSession struct {
	TokenHash string
	StaffID   string
	CSRF      string
	CreatedAt time.Time
	SeenAt    time.Time
	ExpiresAt time.Time
}

// ErrNotFound is returned for a row that does not exist (or is not the
// caller's).
var ErrNotFound = errors.New("not found")
