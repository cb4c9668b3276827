package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/pipeline"
)

func newTestMetrics(t *testing.T, o Options) (*Metrics, *prometheus.Registry) {
	t.Helper()
	if o.Counters == nil {
		o.Counters = &pipeline.Metrics{}
	}
	o.Log = quiet
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg, o)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// histogramOf gathers reg and returns the series of name with the label
// pairs given.
func histogramOf(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) *dto.Histogram {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.Metric {
			for i := 0; i < len(labels); i += 2 {
				ok := false
				for _, l := range m.Label {
					ok = ok || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}
				if !ok {
					continue series
				}
			}
			return m.Histogram
		}
	}
	t.Fatalf("%s%v not gathered", name, labels)
	return nil
}

// The pipeline's counters are served under their names, read at scrape
// time; the grouped-commit counters only when asked for.
func TestCountersAreExported(t *testing.T) {
	c := &pipeline.Metrics{}
	c.Accepted.Add(3)
	c.Duplicates.Add(1)
	c.Sent.Add(2)
	c.Failed.Add(1)
	c.Refused.Add(5)
	c.GivenUp.Add(2)
	c.Stranded.Add(1)
	_, reg := newTestMetrics(t, Options{Counters: c, Queued: func() int { return 7 }, GroupCommits: func() (int64, int64) { return 4, 9 }})
	c.Accepted.Add(1) // after registration: read at scrape time
	want := `
# HELP dingdesk_inbound_accepted_total Inbound messages stored for handling.
# TYPE dingdesk_inbound_accepted_total counter
dingdesk_inbound_accepted_total 4
# HELP dingdesk_inbound_duplicates_total Redeliveries of an already accepted msgId, ignored.
# TYPE dingdesk_inbound_duplicates_total counter
dingdesk_inbound_duplicates_total 1
# HELP dingdesk_inbound_failed_total Inbound messages given up after inbox.max_attempts; the user got inbox.failed_reply.
# TYPE dingdesk_inbound_failed_total counter
dingdesk_inbound_failed_total 2
# HELP dingdesk_inbound_refused_total Deliveries pushed back because the intake could not keep up in order (the platform redelivers them).
# TYPE dingdesk_inbound_refused_total counter
dingdesk_inbound_refused_total 5
# HELP dingdesk_inbound_stranded_total Own pending messages the sweep found without a worker and queued (a safety net: should stay 0).
# TYPE dingdesk_inbound_stranded_total counter
dingdesk_inbound_stranded_total 1
# HELP dingdesk_intake_queued_messages Accepted messages waiting in this replica's memory for, or in, their user's worker.
# TYPE dingdesk_intake_queued_messages gauge
dingdesk_intake_queued_messages 7
# HELP dingdesk_outbound_failed_total Outbound messages given up and recorded as failed.
# TYPE dingdesk_outbound_failed_total counter
dingdesk_outbound_failed_total 1
# HELP dingdesk_outbound_sent_total Outbound messages delivered.
# TYPE dingdesk_outbound_sent_total counter
dingdesk_outbound_sent_total 2
# HELP dingdesk_storage_group_commits_total Commits of grouped hand-off transactions.
# TYPE dingdesk_storage_group_commits_total counter
dingdesk_storage_group_commits_total 4
# HELP dingdesk_storage_grouped_transactions_total Hand-off transactions committed in those groups.
# TYPE dingdesk_storage_grouped_transactions_total counter
dingdesk_storage_grouped_transactions_total 9
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "dingdesk_inbound_accepted_total",
		"dingdesk_inbound_duplicates_total", "dingdesk_inbound_failed_total", "dingdesk_inbound_refused_total",
		"dingdesk_inbound_stranded_total", "dingdesk_intake_queued_messages", "dingdesk_outbound_failed_total", "dingdesk_outbound_sent_total",
		"dingdesk_storage_group_commits_total", "dingdesk_storage_grouped_transactions_total"); err != nil {
		t.Fatal(err)
	}
	// Runtime and process collectors are there; nothing went to the
	// global default registry.
	for _, name := range []string{"go_goroutines", "process_start_time_seconds", "dingdesk_build_info"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n == 0 {
			t.Errorf("%s: %d series, %v", name, n, err)
		}
	}
	if n, _ := testutil.GatherAndCount(prometheus.DefaultGatherer, "dingdesk_inbound_accepted_total"); n != 0 {
		t.Error("metrics registered on the global default registry")
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}

	_, reg = newTestMetrics(t, Options{})
	if n, _ := testutil.GatherAndCount(reg, "dingdesk_storage_group_commits_total"); n != 0 {
		t.Error("grouped-commit counters exported without GroupCommits")
	}
}

// A reply is timed from the acceptance of the message whose handling
// wrote it until it is sent, however long the send took (retries); an
// acknowledgement is timed until the message is stored.
func TestReplyLatencyFollowsTheMessage(t *testing.T) {
	store := &fakeStore{received: map[string]time.Time{"recovered": time.Now().Add(-time.Minute)}}
	m, reg := newTestMetrics(t, Options{Store: store})
	ctx := context.Background()

	var handleCtx context.Context
	accept := m.TimeAccept(func(ctx context.Context, msg adapter.Message) error {
		time.Sleep(5 * time.Millisecond) // storing
		return nil
	})
	handle := m.TimeHandle(func(ctx context.Context, msg adapter.Message) error {
		handleCtx = ctx
		return nil
	})
	if err := accept(ctx, adapter.Message{ID: "m1"}); err != nil {
		t.Fatal(err)
	}
	accepted := pipeline.ContextWithAccepted(ctx, time.Now()) // what the intake hands its handler
	ack := histogramOf(t, reg, "dingdesk_inbound_ack_duration_seconds")
	if ack.GetSampleCount() != 1 || ack.GetSampleSum() < 0.005 {
		t.Fatalf("ack histogram: %d samples, sum %v; want 1 of at least 5ms", ack.GetSampleCount(), ack.GetSampleSum())
	}
	time.Sleep(20 * time.Millisecond) // waiting in the intake queue
	if err := handle(accepted, adapter.Message{ID: "m1"}); err != nil {
		t.Fatal(err)
	}
	// The engine commits two replies; a failed transaction's reply (13)
	// never reaches the store's kick, so it is never noted.
	m.Enqueued(handleCtx, []int64{11, 12})
	m.Transacted(handleCtx, time.Millisecond, nil)
	m.Transacted(handleCtx, time.Millisecond, errors.New("deadlock"))
	m.Delivered(11)
	m.Delivered(13) // never committed: not timed
	m.Delivered(99) // a timer's reply, not caused by a message
	reply := histogramOf(t, reg, "dingdesk_reply_latency_seconds")
	if reply.GetSampleCount() != 1 || reply.GetSampleSum() < 0.020 || reply.GetSampleSum() > 5 {
		t.Fatalf("reply histogram: %d samples, sum %v; want 1 of the 20ms+ the message waited", reply.GetSampleCount(), reply.GetSampleSum())
	}
	m.Delivered(12)
	m.Delivered(12) // sent twice (a crashed sender): timed once
	if n := histogramOf(t, reg, "dingdesk_reply_latency_seconds").GetSampleCount(); n != 2 {
		t.Fatalf("reply histogram: %d samples after the second reply, want 2", n)
	}
	if replies := m.line.size(); replies != 0 {
		t.Fatalf("timeline holds %d replies after everything was sent", replies)
	}
	if store.lookups != 0 {
		t.Fatalf("%d inbox reads for a message the intake timed", store.reads)
	}

	// A message accepted before a restart is timed from the inbox's record.
	if err := handle(ctx, adapter.Message{ID: "recovered"}); err != nil {
		t.Fatal(err)
	}
	m.Enqueued(handleCtx, []int64{21})
	m.Transacted(handleCtx, time.Millisecond, nil)
	m.Delivered(21)
	reply = histogramOf(t, reg, "dingdesk_reply_latency_seconds")
	if got := reply.GetSampleSum() - 0.040; reply.GetSampleCount() != 3 || got < 60 || got > 70 {
		t.Fatalf("recovered message: %d samples, sum %v; want a third of about 60s", reply.GetSampleCount(), reply.GetSampleSum())
	}

	tx := histogramOf(t, reg, "dingdesk_engine_transaction_duration_seconds", "result", "committed")
	rolled := histogramOf(t, reg, "dingdesk_engine_transaction_duration_seconds", "result", "rolled_back")
	if tx.GetSampleCount() != 2 || rolled.GetSampleCount() != 1 {
		t.Fatalf("transactions: %d committed, %d rolled back; want 2 and 1", tx.GetSampleCount(), rolled.GetSampleCount())
	}
}

// A failed acceptance is not acknowledged (not timed); a failed handling
// keeps the acceptance time for the retry.
func TestFailuresAreNotTimed(t *testing.T) {
	m, reg := newTestMetrics(t, Options{})
	ctx := context.Background()
	refuse := m.TimeAccept(func(context.Context, adapter.Message) error { return errors.New("disk full") })
	if err := refuse(ctx, adapter.Message{ID: "m1"}); err == nil {
		t.Fatal("the handler's error was swallowed")
	}
	if n := histogramOf(t, reg, "dingdesk_inbound_ack_duration_seconds").GetSampleCount(); n != 0 {
		t.Fatalf("a refused message was timed as acknowledged (%d)", n)
	}

	store := &fakeStore{received: map[string]time.Time{"m2": time.Now()}}
	m, _ = newTestMetrics(t, Options{Store: store})
	fails := true
	var seen []bool
	handle := m.TimeHandle(func(ctx context.Context, msg adapter.Message) error {
		_, ok := pipeline.AcceptedAt(ctx)
		seen = append(seen, ok)
		if fails {
			return errors.New("database away")
		}
		return nil
	})
	handle(ctx, adapter.Message{ID: "m2"})
	fails = false
	handle(ctx, adapter.Message{ID: "m2"})
	if len(seen) != 2 || !seen[0] || !seen[1] {
		t.Fatalf("acceptance time in the handler's context per attempt: %v, want both", seen)
	}
}

func TestMatchesAreTimedByOutcome(t *testing.T) {
	m, reg := newTestMetrics(t, Options{})
	m.Matched(bot.OutcomeAnswer, 2*time.Millisecond)
	m.Matched(bot.OutcomeNone, time.Millisecond)
	m.Matched(bot.OutcomeNone, time.Millisecond)
	for outcome, want := range map[string]uint64{"answer": 1, "clarify": 0, "none": 2} {
		if n := histogramOf(t, reg, "dingdesk_bot_match_duration_seconds", "outcome", outcome).GetSampleCount(); n != want {
			t.Errorf("outcome %s: %d samples, want %d", outcome, n, want)
		}
	}
}

// Entries nobody closes (a reply sent by another replica) go after
// trackFor, and the map never passes maxTracked.
func TestTimelineStaysBounded(t *testing.T) {
	clk := &clock{t: t0}
	l := newTimeline()
	l.now = clk.Now
	// prune looks at the clock every pruneEvery inserts.
	touch := func() {
		for i := 0; i < pruneEvery; i++ {
			l.wrote([]int64{3}, clk.Now())
		}
	}
	l.wrote([]int64{1, 2}, t0)
	clk.Add(trackFor - time.Minute)
	touch()
	if replies := l.size(); replies != 3 {
		t.Fatalf("before trackFor: %d replies; want 3", replies)
	}
	clk.Add(2 * time.Minute)
	touch()
	if replies := l.size(); replies != 1 {
		t.Fatalf("after trackFor: %d replies; want the fresh one only", replies)
	}
	if _, ok := l.sent(1); ok {
		t.Fatal("an expired reply was still timed")
	}

	ids := make([]int64, maxTracked+10)
	for i := range ids {
		ids[i] = int64(1000 + i)
	}
	l.wrote(ids, clk.Now())
	if replies := l.size(); replies != maxTracked {
		t.Fatalf("%d replies held, want the cap %d", replies, maxTracked)
	}
}
