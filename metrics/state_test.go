package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/handoff"
)

// fakeStore is a Store whose answers the test sets; it counts the reads.
type fakeStore struct {
	mu       sync.Mutex
	stats    Stats
	err      error
	reads    int
	received map[string]time.Time
	lookups  int           // ReceivedAt calls
	block    chan struct{} // when set, Stats waits for it to close
}

func (f *fakeStore) Stats(ctx context.Context) (Stats, error) {
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.stats, f.err
}

func (f *fakeStore) ReceivedAt(_ context.Context, msgID string) (time.Time, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	at, ok := f.received[msgID]
	return at, ok, nil
}

func (f *fakeStore) set(st Stats, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats, f.err = st, err
}

func (f *fakeStore) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func groupsCfg() []config.SkillGroup {
	return []config.SkillGroup{
		{Name: "it", Members: []config.Member{{StaffID: "a1"}, {StaffID: "a2"}, {StaffID: "a3"}}},
		{Name: "hr", Members: []config.Member{{StaffID: "a2"}, {StaffID: "a4"}}},
	}
}

// The gauges are what the snapshot says, for every configured group
// (a removed group only while users are still in it), with ages taken at
// scrape time.
func TestStateGauges(t *testing.T) {
	clk := &clock{t: t0}
	store := &fakeStore{stats: Stats{
		InboxUnhandled: 3, InboxOldest: t0.Add(-90 * time.Second),
		OutboxUnsent: 2, OutboxOldest: t0.Add(-30 * time.Second),
		Groups: []GroupStats{
			{Name: "gone", Queued: 1, OldestQueued: t0.Add(-time.Hour)}, // removed from the config, a user still waits
			{Name: "it", Queued: 2, Active: 4, OldestQueued: t0.Add(-5 * time.Minute)},
			{Name: "old"}, // removed and empty: no series
		},
		Presence: map[string]string{"a1": string(handoff.Online), "a2": string(handoff.Busy), "a4": string(handoff.Offline), "x": string(handoff.Online)},
	}}
	c := newStateCollector(store, groupsCfg, 5*time.Second, clk.Now, quiet)
	clk.Add(10 * time.Second) // the ages grow between the read and the scrape
	want := `
# HELP dingdesk_agents Members of a skill group by presence (online, busy, offline); an agent in two groups counts in both.
# TYPE dingdesk_agents gauge
dingdesk_agents{group="hr",presence="busy"} 1
dingdesk_agents{group="hr",presence="offline"} 1
dingdesk_agents{group="hr",presence="online"} 0
dingdesk_agents{group="it",presence="busy"} 1
dingdesk_agents{group="it",presence="offline"} 1
dingdesk_agents{group="it",presence="online"} 1
# HELP dingdesk_inbox_backlog_messages Accepted inbound messages not handled yet.
# TYPE dingdesk_inbox_backlog_messages gauge
dingdesk_inbox_backlog_messages 3
# HELP dingdesk_inbox_oldest_age_seconds Age of the oldest accepted inbound message not handled yet; 0 when there is none.
# TYPE dingdesk_inbox_oldest_age_seconds gauge
dingdesk_inbox_oldest_age_seconds 100
# HELP dingdesk_outbox_backlog_messages Replies neither sent nor given up: waiting for a retry or being sent.
# TYPE dingdesk_outbox_backlog_messages gauge
dingdesk_outbox_backlog_messages 2
# HELP dingdesk_outbox_oldest_age_seconds Age of the oldest reply in the outbox backlog; 0 when there is none.
# TYPE dingdesk_outbox_oldest_age_seconds gauge
dingdesk_outbox_oldest_age_seconds 40
# HELP dingdesk_queue_length Users waiting in a skill group's queue.
# TYPE dingdesk_queue_length gauge
dingdesk_queue_length{group="gone"} 1
dingdesk_queue_length{group="hr"} 0
dingdesk_queue_length{group="it"} 2
# HELP dingdesk_queue_longest_wait_seconds How long the longest-waiting user of a skill group's queue has waited; 0 when the queue is empty.
# TYPE dingdesk_queue_longest_wait_seconds gauge
dingdesk_queue_longest_wait_seconds{group="gone"} 3610
dingdesk_queue_longest_wait_seconds{group="hr"} 0
dingdesk_queue_longest_wait_seconds{group="it"} 310
# HELP dingdesk_sessions Open hand-off sessions by skill group and state (queued, active).
# TYPE dingdesk_sessions gauge
dingdesk_sessions{group="gone",state="active"} 0
dingdesk_sessions{group="gone",state="queued"} 1
dingdesk_sessions{group="hr",state="active"} 0
dingdesk_sessions{group="hr",state="queued"} 0
dingdesk_sessions{group="it",state="active"} 4
dingdesk_sessions{group="it",state="queued"} 2
# HELP dingdesk_state_up 1 when the last read of the state gauges from storage succeeded, 0 when it failed (the gauges are then absent).
# TYPE dingdesk_state_up gauge
dingdesk_state_up 1
`
	names := []string{"dingdesk_agents", "dingdesk_inbox_backlog_messages", "dingdesk_inbox_oldest_age_seconds",
		"dingdesk_outbox_backlog_messages", "dingdesk_outbox_oldest_age_seconds", "dingdesk_queue_length",
		"dingdesk_queue_longest_wait_seconds", "dingdesk_sessions", "dingdesk_state_up"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// A collector that lints clean: names, units, help.
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
}

// Scrapes within the TTL share one read, concurrent ones included; the
// next scrape after it reads again.
func TestStateReadIsCached(t *testing.T) {
	clk := &clock{t: t0}
	store := &fakeStore{stats: Stats{OutboxUnsent: 1}, block: make(chan struct{})}
	c := newStateCollector(store, groupsCfg, 5*time.Second, clk.Now, quiet)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond) // let the scrapes pile up on the slow read
	close(store.block)
	wg.Wait()
	if n := store.readCount(); n != 1 {
		t.Fatalf("8 concurrent scrapes read the store %d times, want 1", n)
	}

	store.set(Stats{OutboxUnsent: 7}, nil)
	clk.Add(4 * time.Second)
	if v := gaugeValue(t, reg, "dingdesk_outbox_backlog_messages"); v != 1 || store.readCount() != 1 {
		t.Fatalf("within the TTL: backlog %v after %d reads, want the cached 1 after 1", v, store.readCount())
	}
	clk.Add(2 * time.Second)
	if v := gaugeValue(t, reg, "dingdesk_outbox_backlog_messages"); v != 7 || store.readCount() != 2 {
		t.Fatalf("past the TTL: backlog %v after %d reads, want 7 after 2", v, store.readCount())
	}
}

// A failed read drops the state gauges and says so in dingdesk_state_up;
// the failure is cached too (a database that is down is not asked by every
// scrape), and the gauges come back with the database.
func TestStateReadFailure(t *testing.T) {
	clk := &clock{t: t0}
	store := &fakeStore{err: errors.New("database is locked")}
	c := newStateCollector(store, groupsCfg, 5*time.Second, clk.Now, quiet)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	if v := gaugeValue(t, reg, "dingdesk_state_up"); v != 0 {
		t.Fatalf("state_up = %v after a failed read", v)
	}
	if n := testutil.CollectAndCount(c, "dingdesk_outbox_backlog_messages", "dingdesk_sessions", "dingdesk_agents"); n != 0 {
		t.Fatalf("%d state series served from a failed read", n)
	}
	reg.Gather()
	if store.readCount() != 1 {
		t.Fatalf("a failing store was read %d times within the TTL", store.readCount())
	}
	store.set(Stats{OutboxUnsent: 2}, nil)
	clk.Add(5 * time.Second)
	if v := gaugeValue(t, reg, "dingdesk_state_up"); v != 1 {
		t.Fatalf("state_up = %v once the store answers", v)
	}
	if v := gaugeValue(t, reg, "dingdesk_outbox_backlog_messages"); v != 2 {
		t.Fatalf("backlog = %v once the store answers", v)
	}
}

// gaugeValue gathers reg and returns the single series of name.
func gaugeValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			if len(f.Metric) != 1 {
				t.Fatalf("%s has %d series", name, len(f.Metric))
			}
			m := f.Metric[0]
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
			return m.Counter.GetValue()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}
