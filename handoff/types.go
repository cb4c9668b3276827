package handoff

import (
	"time"
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

// Mode is a conversation's service mode (服务模式).
type Mode string

const (
	BotFirst  Mode = "bot_first"  // 机器人优先: the bot answers, hands off on its conditions
	BotOnly   Mode = "bot_only"   // 仅机器人服务: the bot answers, never hands off
	HumanOnly Mode = "human_only" // 仅客服服务: every message goes to a person
)

// ConversationState is where a user's conversation is, for callers.
type ConversationState struct {
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

// Suggestions is a suggestion list as shown to an agent: for the user
// message ForMsg, which asked Question.
type Suggestions struct {
	Session  Session
	ForMsg   string
	Question string
	Items    []Suggestion
}
