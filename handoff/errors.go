package handoff

import (
	"errors"
	"fmt"
)

// Code classifies the errors of agent operations, for front ends: both map
// a code to its text with desk.RefusalText (desk.texts, with the web
// workbench's web.texts rewordings).
type Code string

const (
	CodeNotAgent          Code = "not_agent"          // the staffId is in no skill group
	CodeUnknownSession    Code = "unknown_session"    // the agent has no session #N
	CodeSessionEnded      Code = "session_ended"      // session #N has ended
	CodeNoCurrentSession  Code = "no_current_session" // plain text with no current session
	CodeUnknownGroup      Code = "unknown_group"      // transfer to a group not in the config
	CodeGroupClosed       Code = "group_closed"       // transfer outside the group's service hours
	CodeNoAgentOnline     Code = "no_agent_online"    // transfer to a group with nobody else online
	CodeNoQuestion        Code = "no_question"        // suggestions for a session without a question
	CodeNoSuggestions     Code = "no_suggestions"     // `推荐 N` before any list was shown
	CodeUnknownSuggestion Code = "unknown_suggestion" // `推荐 N` beyond the list shown
	CodeEmptyText         Code = "empty_text"         // a reply without text
	CodeInvalid           Code = "invalid"            // a malformed request (front ends: usage)
	CodeUnknownAgent      Code = "unknown_agent"      // transfer to someone in no skill group
	CodeAgentOffline      Code = "agent_offline"      // transfer to an agent who is not online
	CodeAgentFull         Code = "agent_full"         // transfer to an agent at max_chats
	CodeSelfTransfer      Code = "self_transfer"      // transfer to oneself
	CodeNoteTooLong       Code = "note_too_long"      // a transfer note over MaxNote characters
)

// MaxNote is the longest transfer note (转接附言), in characters.
const MaxNote = 255

// Error is an error an agent operation returns to the agent's front end:
// a Code and the values its text needs. Error() is English, for logs;
// front ends show the text they map the code to.
type Error struct {
	Code    Code
	Session int    // the session number (#N) concerned, 0 when none
	Group   string // the skill group concerned
	Agent   string // the agent concerned (transfer to an agent): staffId
	N       int    // the suggestion asked for (CodeUnknownSuggestion)
	Count   int    // how many there are (CodeUnknownSuggestion)
}

func (e *Error) Error() string {
	s := "handoff: " + string(e.Code)
	if e.Session != 0 {
		s += fmt.Sprintf(" (session #%d)", e.Session)
	}
	if e.Group != "" {
		s += " (group " + e.Group + ")"
	}
	if e.Agent != "" {
		s += " (agent " + e.Agent + ")"
	}
	return s
}

// Is matches errors by code, so errors.Is(err, ErrSessionEnded) holds for
// every session's ErrSessionEnded.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// ErrorCode is err's code, "" for internal errors (storage, bugs), which
// front ends log and answer with a generic text.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// The errors of agent operations, for errors.Is.
var (
	ErrNotAgent          = &Error{Code: CodeNotAgent}
	ErrUnknownSession    = &Error{Code: CodeUnknownSession}
	ErrSessionEnded      = &Error{Code: CodeSessionEnded}
	ErrNoCurrentSession  = &Error{Code: CodeNoCurrentSession}
	ErrUnknownGroup      = &Error{Code: CodeUnknownGroup}
	ErrGroupClosed       = &Error{Code: CodeGroupClosed}
	ErrNoAgentOnline     = &Error{Code: CodeNoAgentOnline}
	ErrNoQuestion        = &Error{Code: CodeNoQuestion}
	ErrNoSuggestions     = &Error{Code: CodeNoSuggestions}
	ErrUnknownSuggestion = &Error{Code: CodeUnknownSuggestion}
	ErrEmptyText         = &Error{Code: CodeEmptyText}
	ErrUnknownAgent      = &Error{Code: CodeUnknownAgent}
	ErrAgentOffline      = &Error{Code: CodeAgentOffline}
	ErrAgentFull         = &Error{Code: CodeAgentFull}
	ErrSelfTransfer      = &Error{Code: CodeSelfTransfer}
	ErrNoteTooLong       = &Error{Code: CodeNoteTooLong}
)

func agentErr(c Code, staffID string) error { return &Error{Code: c, Agent: staffID} }

func sessionErr(c Code, no int) error     { return &Error{Code: c, Session: no} }
func groupErr(c Code, group string) error { return &Error{Code: c, Group: group} }
