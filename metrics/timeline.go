package metrics

import (
	"sync"
	"time"
)

// timeline links a reply to the acceptance of the message whose handling
// wrote it: outbox id → accepted while the reply waits to be sent (the
// message's own acceptance time travels in its handler's context). Entries
// normally live for milliseconds; one that is never closed (a reply given
// up or sent by another replica) is dropped after trackFor, and at most
// maxTracked are held, so memory stays bounded whatever happens downstream.
type timeline struct {
	mu      sync.Mutex
	replies map[int64]time.Time
	pruned  time.Time
	calls   int
	now     func() time.Time
}

const (
	// trackFor is past the outbox's default max_age (1h): a reply that
	// takes longer has failed anyway.
	trackFor   = 2 * time.Hour
	maxTracked = 100_000
	pruneEvery = 256
)

func newTimeline() *timeline {
	return &timeline{replies: map[int64]time.Time{}, now: time.Now}
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

// sent forgets reply id and returns when its message was accepted.
func (l *timeline) sent(id int64) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.replies[id]
	delete(l.replies, id)
	return at, ok
}

// prune drops replies older than trackFor, at most once a minute (the map
// is small unless something downstream is stuck). It looks at the
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
	cutoff := now.Add(-trackFor)
	for k, at := range l.replies {
		if at.Before(cutoff) {
			delete(l.replies, k)
		}
	}
}

// size reports the replies held (tests).
func (l *timeline) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.replies)
}
