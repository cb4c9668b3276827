package dingtalk

import (
	"context"
	"sync"
	"time"
)

// pathLimiter keeps requests under qps per API path. DingTalk counts QPS
// per app per API in 1 s windows (limit 20 on standard orgs), so each path
// gets a token bucket of burst 1: requests are spaced 1/qps apart, and no
// 1 s window sees more than qps+1. A caller reserves its slot under the
// mutex and waits outside it, so no lock is held while sleeping or during
// I/O.
type pathLimiter struct {
	interval time.Duration

	mu   sync.Mutex
	next map[string]time.Time
}

func newPathLimiter(qps float64) *pathLimiter {
	if qps <= 0 {
		qps = 18
	}
	return &pathLimiter{interval: time.Duration(float64(time.Second) / qps), next: map[string]time.Time{}}
}

// wait blocks until path may be called, or ctx ends.
func (l *pathLimiter) wait(ctx context.Context, path string) error {
	l.mu.Lock()
	now := time.Now()
	at := l.next[path]
	if at.Before(now) {
		at = now
	}
	l.next[path] = at.Add(l.interval)
	l.mu.Unlock()

	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
