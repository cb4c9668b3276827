package web

import (
	"context"
	"log/slog"
	"strconv"
	"time"
)

// bridge turns the engine's transcript lines into events until the engine
// publishes its own (the Publisher it will call after the hand-off
// refactor): every change the engine makes to a session — a user message,
// an assignment, a queue notice, a transfer, an end — writes a transcript
// line of that session, so tailing handoff_messages sees what the DingTalk
// desk, the users and the timers did, on every replica. Each replica runs
// it; an event's Source (the line id) is unique, so the first replica to
// store it wins and the others' inserts are dropped.
//
// Lines only the bot and the user share (session 0) concern no agent and
// make no event.
// sourcesPerLine bounds the events one line makes (eventsOfChange: at most 3).
const sourcesPerLine = 4

type bridge struct {
	store Store
	pub   Publisher
	log   *slog.Logger
	now   func() time.Time
	poll  time.Duration
}

func (b *bridge) run(ctx context.Context) {
	var tail *gapTail
	for tail == nil {
		// Resume after the last line a stored event came from (any
		// replica's): lines written while every replica was down still make
		// their events. A fresh table starts at the newest line.
		src, err := b.store.LatestSource(ctx)
		src /= sourcesPerLine
		if err == nil && src == 0 {
			src, err = b.store.LatestMessageID(ctx)
		}
		if err == nil {
			tail = newGapTail(src, 30*time.Second)
			break
		}
		b.log.Warn("transcript bridge cannot start; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	t := time.NewTicker(b.poll)
	defer t.Stop()
	for {
		if err := b.step(ctx, tail); err != nil && ctx.Err() == nil {
			b.log.Warn("transcript bridge failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *bridge) step(ctx context.Context, tail *gapTail) error {
	now := b.now()
	var got []TranscriptChange
	if gaps := tail.openGaps(now); len(gaps) > 0 {
		filled, err := b.store.TranscriptChangesByID(ctx, gaps)
		if err != nil {
			return err
		}
		got = append(got, filled...)
	}
	for after := tail.max; ; {
		batch, err := b.store.TranscriptChangesAfter(ctx, after, 500)
		if err != nil {
			return err
		}
		got = append(got, batch...)
		if len(batch) < 500 {
			break
		}
		after = batch[len(batch)-1].MessageID
	}
	ids := make([]int64, 0, len(got))
	for _, c := range got {
		ids = append(ids, c.MessageID)
	}
	fresh := tail.seen(ids, now)
	var events []Event
	for i, c := range got {
		if fresh[i] && c.SessionID != 0 {
			events = append(events, eventsOfChange(c)...)
		}
	}
	if len(events) == 0 {
		return nil
	}
	return b.pub.Publish(ctx, events...)
}

// eventsOfChange: the session's agent (and the agent it came from) hear of
// every line; a system line (queue, assignment, closing) also changes the
// group's queue.
func eventsOfChange(c TranscriptChange) []Event {
	data := strconv.FormatInt(c.SessionID, 10)
	var out []Event
	add := func(topic, typ string) {
		// Source is unique per event: line id × sourcesPerLine + its index.
		out = append(out, Event{Topic: topic, Type: typ, Data: data, Source: c.MessageID*sourcesPerLine + int64(len(out))})
	}
	if c.Agent != "" {
		add(AgentTopic(c.Agent), EventMessage)
	}
	if c.FromAgent != "" && c.FromAgent != c.Agent {
		add(AgentTopic(c.FromAgent), EventSession)
	}
	if c.SenderKind == "system" || c.Status == StatusQueued {
		out = append(out, Event{Topic: GroupTopic(c.Group), Type: EventQueue, Data: c.Group,
			Source: c.MessageID*sourcesPerLine + int64(len(out))})
	}
	return out
}
