package handoff

import "strconv"

// Events: the engine tells agent front ends what changed, whoever caused
// it (a user, the DingTalk desk, the web workbench, a timer, another
// replica). Each operation collects its events and writes them with
// Tx.Publish in its own transaction, so an event exists exactly when the
// change it reports committed: a front end that reads the stored events
// (the web workbench tails them and streams them to browsers) misses
// nothing and never shows a change that was rolled back.

// EventType is what kind of change an event reports; front ends refresh
// the part of their screen it concerns.
type EventType string

const (
	// EventSession: one of Agent's sessions (SessionID) was assigned to
	// them, ended, or transferred away: front ends read the session.
	EventSession EventType = "session"
	// EventLine: a transcript line was added to Agent's session SessionID
	// (a user message, the agent's reply from either desk, a notice).
	EventLine EventType = "message"
	// EventQueue: Group's queue changed (a session queued, left it, was
	// pulled in), or its online count did.
	EventQueue EventType = "queue"
	// EventPresence: Agent's presence is now Presence.
	EventPresence EventType = "presence"
)

// Event is one change for agent front ends. Agent is who it concerns
// (EventSession, EventLine, EventPresence); Group the queue
// (EventQueue).
type Event struct {
	Type      EventType
	Agent     string
	Group     string
	SessionID int64
	Presence  Presence
}

// Data is the event's payload as front ends get it: the session id, the
// group or the presence.
func (e Event) Data() string {
	switch e.Type {
	case EventQueue:
		return e.Group
	case EventPresence:
		return string(e.Presence)
	}
	return strconv.FormatInt(e.SessionID, 10)
}

// publish adds events to the op (written by flush, deduplicated).
func (o *op) publish(events ...Event) { o.events = append(o.events, events...) }

// touch remembers who serves session s, so flush can tell them about the
// transcript lines this op adds to it.
func (o *op) touch(s *Session) {
	if o.served == nil {
		o.served = map[int64]string{}
	}
	if s.Status == StatusActive || s.Agent != "" {
		o.served[s.ID] = s.Agent
	}
}

// pendingEvents are the op's events plus one EventLine per session and
// agent that got transcript lines, without duplicates, in order.
func (o *op) pendingEvents() []Event {
	all := append([]Event(nil), o.events...)
	for _, l := range o.lines {
		if agent := o.served[l.SessionID]; l.SessionID != 0 && agent != "" {
			all = append(all, Event{Type: EventLine, Agent: agent, SessionID: l.SessionID})
		}
	}
	seen := make(map[Event]bool, len(all))
	out := all[:0]
	for _, e := range all {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}
