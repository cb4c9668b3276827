// Package metrics is dingdesk's Prometheus instrumentation: the Go runtime
// and process collectors, the pipeline's counters, latency histograms of
// the message path, and gauges of the open work read from storage at
// scrape time. Everything is registered on a registry the caller owns (no
// global default registry), and served by Handler.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/pipeline"
)

const namespace = "dingdesk"

// Options are what the metrics read from the service. Only Counters is
// required.
type Options struct {
	// Version is the build's version (dingdesk_build_info).
	Version string
	// Counters are the pipeline's counters, read at every scrape.
	Counters *pipeline.Metrics
	// GroupCommits reports the storage's grouped commits and the
	// transactions in them (SQLite); nil exports neither.
	GroupCommits func() (commits, transactions int64)
	// Queued reports the intake's queue (pipeline.Intake.Queued); nil
	// exports no gauge. Read at every scrape, so it may refer to an intake
	// built later.
	Queued func() int
	// Store reads the open work for the state gauges and the acceptance
	// time of recovered messages; nil exports no state gauges.
	Store Store
	// Groups are the configured skill groups (for agents per group and
	// which groups always have a series); read at every scrape.
	Groups func() []config.SkillGroup
	// StateTTL is how long one read of Store.Stats serves scrapes. Default 5s.
	StateTTL time.Duration
	// Now is the clock the stored times were written with. Default
	// time.Now.
	Now func() time.Time
	// Log receives gathering and state read errors. Default slog.Default.
	Log *slog.Logger
}

// Store is what the metrics read from storage (gormstore.StatsStore
// implements it).
type Store interface {
	// Stats reads the open work: backlogs, sessions, presences.
	Stats(ctx context.Context) (Stats, error)
	// ReceivedAt is when the inbox accepted msgID (ok false: unknown).
	ReceivedAt(ctx context.Context, msgID string) (at time.Time, ok bool, err error)
}

// Metrics are the service's Prometheus metrics. Its methods are safe for
// concurrent use.
type Metrics struct {
	gatherer prometheus.Gatherer
	reg      prometheus.Registerer
	log      *slog.Logger
	store    Store // nil: recovered messages are not timed

	ack   prometheus.Histogram
	reply prometheus.Histogram
	match *prometheus.HistogramVec
	tx    *prometheus.HistogramVec

	line *timeline
}

// Interface guard: the engine reports its timings to Metrics.
var _ handoff.Observer = (*Metrics)(nil)

// New registers every metric on reg, which also serves them (Handler).
func New(reg *prometheus.Registry, o Options) (*Metrics, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StateTTL <= 0 {
		o.StateTTL = 5 * time.Second
	}
	m := &Metrics{
		gatherer: reg, reg: reg, log: o.Log, store: o.Store, line: newTimeline(),
		ack: prometheus.NewHistogram(histogram("inbound_ack_duration_seconds",
			"Time from an inbound message reaching the service to it being stored, after which the platform is acknowledged.",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10})),
		reply: prometheus.NewHistogram(histogram("reply_latency_seconds",
			"Time from an inbound message being accepted to each reply its handling wrote being sent, retries included.",
			[]float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600})),
		match: prometheus.NewHistogramVec(histogram("bot_match_duration_seconds",
			"Time the knowledge base took to match a user's message, by outcome (answer, clarify, none).",
			[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25}), []string{"outcome"}),
		tx: prometheus.NewHistogramVec(histogram("engine_transaction_duration_seconds",
			"Time of one hand-off engine transaction, deadlock retries and the wait for a grouped commit included, by result (committed, rolled_back).",
			[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}), []string{"result"}),
	}
	for _, r := range []string{"committed", "rolled_back"} {
		m.tx.WithLabelValues(r) // a series from the start, so rate() sees the first one
	}
	for _, oc := range []bot.Outcome{bot.OutcomeAnswer, bot.OutcomeClarify, bot.OutcomeNone} {
		m.match.WithLabelValues(string(oc))
	}

	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
			Help: "Always 1; the version label is the running build.", ConstLabels: prometheus.Labels{"version": o.Version}},
			func() float64 { return 1 }),
		m.ack, m.reply, m.match, m.tx,
	}
	c := o.Counters
	for _, k := range []struct {
		name, help string
		v          func() int64
	}{
		{"inbound_accepted_total", "Inbound messages stored for handling.", c.Accepted.Load},
		{"inbound_duplicates_total", "Redeliveries of an already accepted msgId, ignored.", c.Duplicates.Load},
		{"inbound_store_errors_total", "Inbound messages refused because storage failed (the platform redelivers them).", c.AcceptErrors.Load},
		{"inbound_handled_total", "Inbound messages handled by the engine.", c.Handled.Load},
		{"inbound_handle_errors_total", "Engine attempts that failed and were retried.", c.HandleErrors.Load},
		{"outbound_sent_total", "Outbound messages delivered.", c.Sent.Load},
		{"outbound_retries_total", "Outbound attempts that failed and were scheduled again.", c.Retried.Load},
		{"outbound_failed_total", "Outbound messages given up and recorded as failed.", c.Failed.Load},
		{"inbound_refused_total", "Deliveries pushed back because the intake could not keep up in order (the platform redelivers them).", c.Refused.Load},
		{"inbound_failed_total", "Inbound messages given up after inbox.max_attempts; the user got inbox.failed_reply.", c.GivenUp.Load},
		{"inbound_unreadable_total", "Stored inbound rows that could not be decoded, recorded as failed and skipped.", c.Unreadable.Load},
		{"inbound_taken_over_total", "Pending messages of dead replicas (or of this process before a restart) taken over.", c.TakenOver.Load},
		{"inbound_stranded_total", "Own pending messages the sweep found without a worker and queued (a safety net: should stay 0).", c.Stranded.Load},
	} {
		cs = append(cs, counterFunc(k.name, k.help, k.v))
	}
	if gc := o.GroupCommits; gc != nil {
		cs = append(cs,
			counterFunc("storage_group_commits_total", "Commits of grouped hand-off transactions.",
				func() int64 { n, _ := gc(); return n }),
			counterFunc("storage_grouped_transactions_total", "Hand-off transactions committed in those groups.",
				func() int64 { _, n := gc(); return n }))
	}
	if queued := o.Queued; queued != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "intake_queued_messages",
			Help: "Accepted messages waiting in this replica's memory for, or in, their user's worker."},
			func() float64 { return float64(queued()) }))
	}
	if o.Store != nil {
		cs = append(cs, newStateCollector(o.Store, o.Groups, o.StateTTL, o.Now, o.Log))
	}
	for _, col := range cs {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// histogram is the options of a histogram in seconds: the classic buckets
// given, and a native histogram for servers that scrape those.
func histogram(name, help string, buckets []float64) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Namespace: namespace, Name: name, Help: help, Buckets: buckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  100,
		NativeHistogramMinResetDuration: time.Hour,
	}
}

func counterFunc(name, help string, v func() int64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help},
		func() float64 { return float64(v()) })
}

// Handler serves the registry in the Prometheus exposition formats. A
// collector that fails is logged and the rest is still served.
func (m *Metrics) Handler() http.Handler {
	h := promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{
		ErrorLog:      errorLog{m.log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg, // promhttp_metric_handler_errors_total
	})
	return promhttp.InstrumentMetricHandler(m.reg, h)
}

type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Error("metrics gathering failed", "err", fmt.Sprint(v...)) }

// TimeAccept wraps the intake's handler: it times each message until it is
// stored (the ack latency).
func (m *Metrics) TimeAccept(h adapter.Handler) adapter.Handler {
	return func(ctx context.Context, msg adapter.Message) error {
		start := time.Now()
		if err := h(ctx, msg); err != nil {
			return err
		}
		m.ack.Observe(time.Since(start).Seconds())
		return nil
	}
}

// TimeHandle wraps the handler of stored messages: the replies its
// transactions write are timed from the message's acceptance, which the
// intake puts in the context (pipeline.AcceptedAt). A message this process
// did not accept (recovered after a restart, or from another replica) is
// timed from when the inbox received it: one indexed read, only for those.
func (m *Metrics) TimeHandle(h pipeline.HandleFunc) pipeline.HandleFunc {
	return func(ctx context.Context, msg adapter.Message) error {
		if _, ok := pipeline.AcceptedAt(ctx); !ok && m.store != nil {
			if t, found, err := m.store.ReceivedAt(ctx, msg.ID); err == nil && found {
				ctx = pipeline.ContextWithAccepted(ctx, t)
			}
		}
		return h(ctx, msg)
	}
}

// Matched implements handoff.Observer.
func (m *Metrics) Matched(outcome bot.Outcome, took time.Duration) {
	m.match.WithLabelValues(string(outcome)).Observe(took.Seconds())
}

// Enqueued notes the replies a committed transaction wrote, before they
// are handed to the sender (the wiring calls it from the hand-off store's
// kick): those written on behalf of an accepted message are timed until
// sent. Replies that were rolled back never get here.
func (m *Metrics) Enqueued(ctx context.Context, ids []int64) {
	if len(ids) == 0 {
		return
	}
	if at, ok := pipeline.AcceptedAt(ctx); ok {
		m.line.wrote(ids, at)
	}
}

// Transacted implements handoff.Observer.
func (m *Metrics) Transacted(ctx context.Context, took time.Duration, err error) {
	result := "committed"
	if err != nil {
		result = "rolled_back"
	}
	m.tx.WithLabelValues(result).Observe(took.Seconds())
}

// Delivered is pipeline.Metrics.Delivered: a reply went out.
func (m *Metrics) Delivered(outboxID int64) {
	if at, ok := m.line.sent(outboxID); ok {
		m.reply.Observe(time.Since(at).Seconds())
	}
}

// Stats is a snapshot of the service's state for the gauges of /metrics.
// Times are UTC; a zero time means there is no such row.
type Stats struct {
	// InboxUnhandled counts accepted messages not handled yet;
	// InboxOldest is when the oldest of them was received.
	InboxUnhandled int64
	InboxOldest    time.Time
	// OutboxUnsent counts replies neither sent nor given up (waiting for
	// a retry or being sent); OutboxOldest is when the oldest was written.
	OutboxUnsent int64
	OutboxOldest time.Time
	// Groups are the skill groups that have a lock row (every group a
	// config ever named), by name.
	Groups []GroupStats
	// Presence is every known agent's presence by staffId; agents who
	// never went online have no entry.
	Presence map[string]string
}

// GroupStats are one skill group's open sessions.
type GroupStats struct {
	Name           string
	Queued, Active int64
	// OldestQueued is when the longest-waiting queued session was queued.
	OldestQueued time.Time
}
