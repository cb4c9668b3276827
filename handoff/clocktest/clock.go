// Package clocktest is a settable clock for tests of the hand-off engine:
// tests move time instead of sleeping.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a fake handoff.Clock. The zero value reads the zero time; use
// New.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New starts the clock at t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}
