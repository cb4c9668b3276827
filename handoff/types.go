package handoff

import (
	"errors"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
)

// Clock tells the time. The engine reads it for every decision (service
// hours, timeouts, stored times), so tests move time instead of sleeping.
type Clock interface{ Now() time.Time }

// SystemClock is the real clock.
type SystemClock struct{}

// Now is time.Now.
func (SystemClock) Now() time.Time { return time.Now() }

// State is where a user's conversation is.
type State string

const (
	StateBot    State = "bot"    // the bot answers
	StateQueued State = "queued" // waiting for an agent; the bot is silent
	StateHuman  State = "human"  // an agent serves the user; the bot is silent
)

// Reason is why a conversation was handed to a person.
type Reason string

const (
	ReasonNoAnswer  Reason = "no_answer"  // routing.no_answer_limit unanswered questions in a row
	ReasonKeyword   Reason = "keyword"    // a routing.transfer_keywords message
	ReasonKBHandoff Reason = "kb_handoff" // the answered entry has handoff: true
	ReasonHumanOnly Reason = "human_only" // the conversation's mode is human_only
	ReasonTransfer  Reason = "transfer"   // an agent transferred it, or went offline
)

// EndReason is why a session ended.
type EndReason string

const (
	EndUser         EndReason = "user_end"      // the user's end keyword
	EndAgent        EndReason = "agent_end"     // the agent ended it
	EndIdle         EndReason = "idle"          // customer_idle_timeout
	EndQueueLeft    EndReason = "queue_left"    // the user's end keyword while queued
	EndQueueTimeout EndReason = "queue_timeout" // queue_timeout
	EndTransferred  EndReason = "transferred"   // continued in another session (Transfer)
	EndAgentOffline EndReason = "agent_offline" // continued in another session (agent went offline)
)

// Presence is an agent's availability.
type Presence string

const (
	Online  Presence = "online"  // gets new sessions up to max_chats
	Busy    Presence = "busy"    // keeps current sessions, gets no new ones
	Offline Presence = "offline" // has no sessions: going offline hands them on
)

// Status is a session's phase.
type Status string

const (
	StatusQueued Status = "queued"
	StatusActive Status = "active"
	StatusEnded  Status = "ended"
)

// Session is one hand-off of one user to a skill group: queued, then
// served by one agent, then ended. A transfer continues the conversation
// in a new session.
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
	GroupDisplay      string // its display_name
	Reason            Reason
	Agent             string // staffId; "" while queued
	AgentName         string
	FromAgent         string // the agent who transferred it (or went offline)
	QueuedAt          time.Time
	AssignedAt        time.Time
	EndedAt           time.Time
	EndReason         EndReason
	// Position is the queue position while queued (1 = next), when the
	// call that returned the session computed it.
	Position int
}

// Conversation is a user's current state.
type Conversation struct {
	UserKey string
	State   State
	// Misses counts unanswered questions in a row (bot_first hands off at
	// routing.no_answer_limit).
	Misses int
	// Session is the open session while queued or with a person.
	Session *Session
}

// AgentView is what an agent's 列表 shows.
type AgentView struct {
	StaffID  string
	Name     string
	Presence Presence
	// Current is the session plain text goes to (0: none).
	Current  int
	Sessions []Session // open sessions by number
	Queues   []GroupQueue
}

// GroupQueue is the queue length of one of the agent's skill groups.
type GroupQueue struct {
	Group   string
	Display string
	Length  int
}

// PresenceResult reports what a presence change did.
type PresenceResult struct {
	Presence Presence
	// Assigned are the queued users going online pulled in (to this agent
	// or, for capacity freed elsewhere, to colleagues).
	Assigned []Session
	// Moved are the sessions an agent going offline handed on.
	Moved []Move
}

// Move is a session handed on: From ended, To is active with another agent
// or queued (at the front) with its Position.
type Move struct {
	From Session
	To   Session
}

// Suggestion is a knowledge entry proposed for a session (推荐知识).
type Suggestion struct {
	N        int // 1-based, what `推荐 N` picks
	EntryID  string
	Question string
	Answer   string
}

// Errors returned to the agent desk; their texts are fit to show an agent.
var (
	ErrNotAgent         = errors.New("您不是任何技能组的客服")
	ErrUnknownSession   = errors.New("没有这个会话")
	ErrSessionEnded     = errors.New("该会话已结束")
	ErrNoCurrentSession = errors.New("当前没有选中的会话，请用“#编号 内容”指定会话")
	ErrUnknownGroup     = errors.New("没有这个技能组")
	ErrGroupClosed      = errors.New("该技能组现在不在服务时间")
	ErrNoAgentOnline    = errors.New("该技能组现在没有其他客服在线")
	ErrNoQuestion       = errors.New("该会话还没有用户提问")
	ErrEmptyText        = errors.New("消息内容为空")
)
