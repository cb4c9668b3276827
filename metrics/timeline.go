package metrics

import (
	"sync"
	"time"
)

// timeline links a reply to the acceptance of the message whose handling
// wrote it: msgId → accepted while the message waits to be handled, then
// outbox id → accepted while the reply waits to be sent. Entries normally
// live for milliseconds; one that is never closed (a duplicate delivery of
// a message already handled, a reply given up or sent by another replica)
// is dropped after a while, and at most maxTracked of each are held, so
// memory stays bounded whatever happens downstream.
type timeline struct {
	mu       sync.Mutex
	messages map[string]time.Time
	replies  map[int64]time.Time
	pruned   time.Time
	calls    int
	now      func() time.Time
}

const (
	// messageTTL can be short: a message handled later than that is
	// timed from the inbox's record instead (Metrics.TimeHandle).
	messageTTL = 5 * time.Minute
	// trackFor is past the outbox's default max_age (1h): a reply that
	// takes longer has failed anyway.
	trackFor   = 2 * time.Hour
	maxTracked = 100_000
	pruneEvery = 256
)

func newTimeline() *timeline {
	return &timeline{messages: map[string]time.Time{}, replies: map[int64]time.Time{}, now: time.Now}
}

// accepted notes msgID's acceptance; a redelivery keeps the first time.
func (l *timeline) accepted(msgID string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune()
	if _, ok := l.messages[msgID]; !ok && len(l.messages) < maxTracked {
		l.messages[msgID] = at
	}
}

func (l *timeline) acceptedAt(msgID string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.messages[msgID]
	return at, ok
}

// handled forgets msgID: its replies, if any, are tracked by id now.
func (l *timeline) handled(msgID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.messages, msgID)
}

// wrote notes replies written for a message accepted at.
func (l *timeline) wrote(ids []int64, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune()
	for _, id := range ids {
		if len(l.replies) >= maxTracked {
			return
		}
		l.replies[id] = at
	}
}

// forget drops replies that were rolled back.
func (l *timeline) forget(ids []int64) {
	if len(ids) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		delete(l.replies, id)
	}
}

// sent forgets reply id and returns when its message was accepted.
func (l *timeline) sent(id int64) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.replies[id]
	delete(l.replies, id)
	return at, ok
}

// prune drops messages older than messageTTL and replies older than
// trackFor, at most once a minute (the
// maps are small unless something downstream is stuck). It looks at the
// clock only every pruneEvery calls: reading it costs more than the rest
// of an insert. Called locked.
func (l *timeline) prune() {
	if l.calls++; l.calls%pruneEvery != 0 {
		return
	}
	now := l.now()
	if now.Sub(l.pruned) < time.Minute {
		return
	}
	l.pruned = now
	cutoff := now.Add(-messageTTL)
	for k, at := range l.messages {
		if at.Before(cutoff) {
			delete(l.messages, k)
		}
	}
	cutoff = now.Add(-trackFor)
	for k, at := range l.replies {
		if at.Before(cutoff) {
			delete(l.replies, k)
		}
	}
}

// size reports the entries held (tests).
func (l *timeline) size() (messages, replies int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.messages), len(l.replies)
}
