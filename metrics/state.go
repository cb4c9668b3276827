package metrics

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/handoff"
)

// stateCollector computes the state gauges at scrape time from a read of
// the store. One read serves every scrape within ttl, and concurrent
// scrapes share it, so however often (and by however many Prometheus
// servers) /metrics is scraped, the database sees at most one read per
// ttl. A failed read is cached as well: a database that is down is not
// asked again by every scrape.
type stateCollector struct {
	store   Store
	groups  func() []config.SkillGroup
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger

	mu     sync.Mutex // held during a read: concurrent scrapes wait for it
	readAt time.Time  // zero before the first read
	took   time.Duration
	stats  Stats
	err    error

	up, readSeconds                  *prometheus.Desc
	inboxBacklog, inboxOldest        *prometheus.Desc
	outboxBacklog, outboxOldest      *prometheus.Desc
	sessions, queueLength, queueWait *prometheus.Desc
	agents                           *prometheus.Desc
}

func newStateCollector(store Store, groups func() []config.SkillGroup, ttl time.Duration, now func() time.Time, log *slog.Logger) *stateCollector {
	if groups == nil {
		groups = func() []config.SkillGroup { return nil }
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	}
	return &stateCollector{
		store: store, groups: groups, ttl: ttl, timeout: 5 * time.Second, now: now, log: log,
		up: desc("state_up",
			"1 when the last read of the state gauges from storage succeeded, 0 when it failed (the gauges are then absent)."),
		readSeconds: desc("state_read_duration_seconds",
			"How long the last read of the state gauges from storage took."),
		inboxBacklog: desc("inbox_backlog_messages",
			"Accepted inbound messages not handled yet."),
		inboxOldest: desc("inbox_oldest_age_seconds",
			"Age of the oldest accepted inbound message not handled yet; 0 when there is none."),
		outboxBacklog: desc("outbox_backlog_messages",
			"Replies neither sent nor given up: waiting for a retry or being sent."),
		outboxOldest: desc("outbox_oldest_age_seconds",
			"Age of the oldest reply in the outbox backlog; 0 when there is none."),
		sessions: desc("sessions",
			"Open hand-off sessions by skill group and state (queued, active).", "group", "state"),
		queueLength: desc("queue_length",
			"Users waiting in a skill group's queue.", "group"),
		queueWait: desc("queue_longest_wait_seconds",
			"How long the longest-waiting user of a skill group's queue has waited; 0 when the queue is empty.", "group"),
		agents: desc("agents",
			"Members of a skill group by presence (online, busy, offline); an agent in two groups counts in both.", "group", "presence"),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.readSeconds, c.inboxBacklog, c.inboxOldest,
		c.outboxBacklog, c.outboxOldest, c.sessions, c.queueLength, c.queueWait, c.agents} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st, took, err := c.read()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.readSeconds, took.Seconds())
	if err != nil {
		gauge(c.up, 0)
		return
	}
	gauge(c.up, 1)
	now := c.now()
	age := func(t time.Time) float64 {
		if t.IsZero() || !now.After(t) {
			return 0
		}
		return now.Sub(t).Seconds()
	}
	gauge(c.inboxBacklog, float64(st.InboxUnhandled))
	gauge(c.inboxOldest, age(st.InboxOldest))
	gauge(c.outboxBacklog, float64(st.OutboxUnsent))
	gauge(c.outboxOldest, age(st.OutboxOldest))

	// Every configured group has its series, zero or not; a group no
	// longer configured shows only while users are still in it.
	groups := c.groups()
	stored := make(map[string]GroupStats, len(st.Groups))
	for _, g := range st.Groups {
		stored[g.Name] = g
	}
	names := map[string]bool{}
	for _, g := range groups {
		names[g.Name] = true
	}
	for _, g := range st.Groups {
		if g.Queued+g.Active > 0 {
			names[g.Name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		g := stored[name]
		gauge(c.sessions, float64(g.Queued), name, string(handoff.StatusQueued))
		gauge(c.sessions, float64(g.Active), name, string(handoff.StatusActive))
		gauge(c.queueLength, float64(g.Queued), name)
		gauge(c.queueWait, age(g.OldestQueued), name)
	}
	for _, g := range groups {
		n := map[string]int{string(handoff.Online): 0, string(handoff.Busy): 0, string(handoff.Offline): 0}
		for _, mem := range g.Members {
			p, ok := st.Presence[mem.StaffID]
			if _, known := n[p]; !ok || !known {
				p = string(handoff.Offline)
			}
			n[p]++
		}
		for p, v := range n {
			gauge(c.agents, float64(v), g.Name, p)
		}
	}
}

// read returns the cached read, or reads again once it is older than ttl.
func (c *stateCollector) read() (Stats, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.readAt.IsZero() && c.now().Sub(c.readAt) < c.ttl {
		return c.stats, c.took, c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	start := time.Now()
	c.stats, c.err = c.store.Stats(ctx)
	c.took = time.Since(start)
	c.readAt = c.now()
	if c.err != nil {
		c.log.Warn("state gauges not read from storage", "err", c.err, "retry_in", c.ttl)
	}
	return c.stats, c.took, c.err
}
