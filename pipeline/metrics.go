package pipeline

import "sync/atomic"

// Metrics are the pipeline's counters, the one place they are kept.
// Package metrics exports them to Prometheus, reading them at scrape time,
// so the pipeline needs no metrics library and a zero Metrics is ready to
// count (tests use one).
type Metrics struct {
	Accepted, Duplicates, AcceptErrors atomic.Int64
	Handled, HandleErrors              atomic.Int64
	Sent, Retried, Failed              atomic.Int64 // outbound

	// Refused counts deliveries pushed back (the platform delivers them
	// again); GivenUp messages given up after inbox.max_attempts (the user
	// got the apology); Unreadable stored rows that could not be decoded,
	// recorded as failed; TakenOver messages of dead replicas (or of this
	// process's previous life) taken over; Stranded own pending messages
	// found without a worker (a safety net; stays 0).
	Refused, GivenUp, Unreadable, TakenOver, Stranded atomic.Int64

	// Delivered, when set, is told the outbox id of every reply sent (the
	// reply latency: package metrics knows which message caused it). Set
	// it before the pipeline starts; it must be quick.
	Delivered func(outboxID int64)
}

// sent counts one delivery.
func (m *Metrics) sent(outboxID int64) {
	m.Sent.Add(1)
	if m.Delivered != nil {
		m.Delivered(outboxID)
	}
}
