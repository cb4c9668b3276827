package handoff

import (
	"context"
	"time"
)

// timerBatch bounds one scan of due timers.
const timerBatch = 100

// drainEvery is how many timer ticks pass between the safety-net queue
// pulls of RunTimers.
const drainEvery = 30

// RunTimers fires due timeouts until ctx ends: every TimerInterval it scans
// the sessions whose due time (queue_timeout while queued,
// customer_idle_timeout while with a person) has passed. Due times live in
// the database, so they survive restarts; every replica may run RunTimers,
// and each timeout fires once (see FireDue). Now and then it also pulls
// queued users into capacity a crash may have left unused (DrainQueues).
func (e *Engine) RunTimers(ctx context.Context) {
	t := time.NewTicker(e.interval)
	defer t.Stop()
	for n := 0; ; n++ {
		if n%drainEvery == 0 {
			if err := e.DrainQueues(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("queue pull failed", "err", err)
			}
		}
		if _, err := e.FireDue(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("timer scan failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// FireDue fires every timeout due at the clock's now and reports how many
// fired. The scan reads due rows through an index (O(due)); each row is
// then claimed in its own transaction that locks the conversation, the
// group and the session and re-checks the due time, so a replica that
// lost the race, or a user message that moved the timer meanwhile, makes
// it a no-op: each timeout fires once.
func (e *Engine) FireDue(ctx context.Context) (int, error) {
	fired := 0
	seen := map[int64]bool{}
	for {
		due, err := e.st.DueSessions(ctx, e.now(), timerBatch)
		if err != nil {
			return fired, err
		}
		progress := false
		for _, d := range due {
			if seen[d.ID] {
				continue
			}
			seen[d.ID] = true
			progress = true
			ok, err := e.fire(ctx, d)
			if err != nil {
				return fired, err
			}
			if ok {
				fired++
			}
		}
		if len(due) < timerBatch || !progress {
			return fired, nil
		}
	}
}

func (e *Engine) fire(ctx context.Context, d Session) (bool, error) {
	cfg, err := e.begin(ctx)
	if err != nil {
		return false, err
	}
	now := e.now()
	var fired bool
	o, err := e.transact(ctx, cfg, now, func(o *op) error {
		tx := o.tx
		fired = false
		conv, err := tx.LockConversation(d.UserKey)
		if err != nil {
			return err
		}
		if err := tx.LockGroups(d.Group); err != nil {
			return err
		}
		s, err := tx.LockSession(d.ID)
		if err != nil || s == nil {
			return err
		}
		if s.Due.IsZero() || s.Due.After(now) || s.Status == StatusEnded {
			return nil // claimed by someone else, or moved
		}
		isNew := conv == nil
		if isNew {
			conv = placeholderConv(s)
		}
		why := EndIdle
		if s.Status == StatusQueued {
			why = EndQueueTimeout
		}
		if err := o.end(conv, s, why, true); err != nil {
			return err
		}
		if err := saveConv(tx, conv, isNew, now); err != nil {
			return err
		}
		fired = true
		return nil
	})
	if err != nil {
		return false, err
	}
	e.pullFreed(ctx, o)
	return fired, nil
}

// DrainQueues pulls queued users of every skill group into free capacity.
// Every ending and every presence change already does this; RunTimers
// calls it now and then in case a process died between a commit and its
// follow-up pulls.
func (e *Engine) DrainQueues(ctx context.Context) error {
	cfg, err := e.begin(ctx)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(cfg.SkillGroups))
	for _, g := range cfg.SkillGroups {
		names = append(names, g.Name)
	}
	lens, err := e.st.QueueLengths(ctx, names)
	if err != nil {
		return err
	}
	for _, g := range names {
		if lens[g] > 0 {
			if _, err := e.drainGroup(ctx, g); err != nil {
				return err
			}
		}
	}
	return nil
}
