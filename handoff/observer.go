package handoff

import (
	"context"
	"time"

	"github.com/dingdesk/dingdesk/bot"
)

// Observer is told how long the engine's steps took (the wiring passes the
// Prometheus metrics). Its methods must be quick and safe for concurrent
// use.
type Observer interface {
	// Matched reports one knowledge-base match of a user's message.
	Matched(outcome bot.Outcome, took time.Duration)
	// Enqueued reports the outbox ids of the replies a transaction has just
	// written, before it commits: the store hands committed replies to the
	// sender at once, so a reply may be sent before Transacted is called.
	Enqueued(ctx context.Context, ids []int64)
	// Transacted reports one engine transaction, its deadlock retries
	// included: err is nil when it committed. discarded are the ids
	// Enqueued reported that were rolled back (all of them when err is not
	// nil; those of retried attempts otherwise): they were never written
	// and may be handed out again. ctx is the operation's.
	Transacted(ctx context.Context, took time.Duration, err error, discarded []int64)
}

// noObserver observes nothing (Deps.Observer unset).
type noObserver struct{}

func (noObserver) Matched(bot.Outcome, time.Duration)                        {}
func (noObserver) Enqueued(context.Context, []int64)                         {}
func (noObserver) Transacted(context.Context, time.Duration, error, []int64) {}
