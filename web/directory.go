package web

import (
	"context"
	"sync"
	"time"
)

// detailCache keeps directory answers for a while: 会员信息 is refreshed on
// every session change, and DingTalk's OpenAPI is rate limited. A failed or
// slow lookup shows nothing rather than delaying the panel.
type detailCache struct {
	dir Directory
	now func() time.Time

	mu   sync.Mutex
	byID map[string]detailEntry
}

type detailEntry struct {
	d       *UserDetail // nil: not in the directory
	expires time.Time
}

const (
	detailTTL     = 10 * time.Minute
	detailMissTTL = time.Minute
	detailTimeout = 2 * time.Second
	detailMax     = 5000
)

func newDetailCache(dir Directory, now func() time.Time) *detailCache {
	return &detailCache{dir: dir, now: now, byID: map[string]detailEntry{}}
}

// get returns the user's details, or nil when unknown or unavailable.
func (c *detailCache) get(ctx context.Context, userID string) *UserDetail {
	if c.dir == nil || userID == "" {
		return nil
	}
	now := c.now()
	c.mu.Lock()
	if e, ok := c.byID[userID]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.d
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, detailTimeout)
	defer cancel()
	d, err := c.dir.UserDetail(ctx, userID)
	e := detailEntry{expires: now.Add(detailMissTTL)}
	if err == nil {
		e = detailEntry{d: &d, expires: now.Add(detailTTL)}
	}
	c.mu.Lock()
	if len(c.byID) >= detailMax {
		c.byID = map[string]detailEntry{} // crude bound; lookups are cheap to redo
	}
	c.byID[userID] = e
	c.mu.Unlock()
	return e.d
}
