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
	// Transacted reports one engine transaction, its deadlock retries
	// included: err is nil when it committed. ctx is the operation's.
	Transacted(ctx context.Context, took time.Duration, err error)
}

// noObserver observes nothing (Deps.Observer unset).
type noObserver struct{}

func (noObserver) Matched(bot.Outcome, time.Duration)               {}
func (noObserver) Transacted(context.Context, time.Duration, error) {}
