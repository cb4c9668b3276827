package main

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
)

// scrape is one parsed GET /metrics.
type scrape map[string]*dto.MetricFamily

func (s *service) scrape() scrape {
	s.t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("/metrics answered %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		s.t.Fatalf("/metrics Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		s.t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return fams
}

// metric finds the series of name with exactly these label pairs; nil if
// absent.
func (sc scrape) metric(name string, labels ...string) *dto.Metric {
	f := sc[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		if len(m.Label)*2 != len(labels) {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's or gauge's value, -1 when the series is absent.
func (sc scrape) value(name string, labels ...string) float64 {
	m := sc.metric(name, labels...)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

// count is a histogram's sample count and sum (-1 when absent).
func (sc scrape) count(name string, labels ...string) (uint64, float64) {
	m := sc.metric(name, labels...)
	if m == nil || m.Histogram == nil {
		return 0, -1
	}
	return m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum()
}

// /metrics through the real wiring: the latency histograms count every
// message and reply of a conversation (a reply held up by DingTalk
// included, until it goes out), and the state gauges show the agent
// online, the session, the queue and the outbox backlog as they are.
func TestMetricsFollowTheMessagePath(t *testing.T) {
	for _, driver := range gormstoretest.Drivers(t) {
		t.Run(driver, func(t *testing.T) { testMetricsFollowTheMessagePath(t, driver) })
	}
}

func testMetricsFollowTheMessagePath(t *testing.T, driver string) {
	s := startService(t, serviceOpts{driver: driver})
	before := s.scrape()
	for _, name := range []string{"dingdesk_inbound_ack_duration_seconds", "dingdesk_reply_latency_seconds"} {
		if n, _ := before.count(name); n != 0 {
			t.Fatalf("%s counts %d before any message", name, n)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		if before[name] == nil {
			t.Errorf("runtime/process metric %s missing", name)
		}
	}
	if v := before.value("dingdesk_build_info", "version", version); v != 1 {
		t.Errorf("dingdesk_build_info = %v", v)
	}
	if v := before.value("dingdesk_queue_length", "group", "it"); v != 0 {
		t.Errorf("queue_length{it} before = %v, want 0", v)
	}
	if v := before.value("dingdesk_agents", "group", "it", "presence", "online"); v != 0 {
		t.Errorf("agents{it,online} before = %v, want 0", v)
	}

	s.toUser(s.say("agent1", "上线"), "agent1", "已上线")
	if r := s.ask("u1", "打印机怎么添加"); !strings.Contains(r.Text, "打印机答案") {
		t.Fatalf("bot reply %q", r.Text)
	}
	s.waitFor(s.say("u2", "转人工"), "to agent1 about u2", func(x dingtalktest.Sent) bool { return isTo(x, "agent1") })
	s.toUser(s.say("u3", "转人工"), "u3", "") // agent1 takes one chat: u3 queues

	// u4's answer meets DingTalk failing: it waits in the outbox.
	held := s.mark()
	id, body := s.fake.Payload(dingtalktest.Msg{SenderStaffID: "u4", Text: "年假有多少天"})
	s.fake.ExpireSession(s.fake.SessionFor(id))
	s.fake.FailNext(http.StatusServiceUnavailable, 1000)
	now := time.Now()
	resp, err := s.fake.PostWebhookRaw(s.webhookURL(), body, now, dingtalktest.Sign(s.fake.ClientSecret, now.UnixMilli()))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("post: %v %v", resp, err)
	}
	resp.Body.Close()

	// The state gauges come from a read cached for 5s: wait for a fresh one.
	var mid scrape
	pollUntil(t, 15*time.Second, "state gauges to show the agent, the session, the queue and the held reply", func() (bool, string) {
		mid = s.scrape()
		got := map[string]float64{
			"agents{it,online}":   mid.value("dingdesk_agents", "group", "it", "presence", "online"),
			"agents{it,offline}":  mid.value("dingdesk_agents", "group", "it", "presence", "offline"),
			"agents{hr,offline}":  mid.value("dingdesk_agents", "group", "hr", "presence", "offline"),
			"sessions{it,active}": mid.value("dingdesk_sessions", "group", "it", "state", "active"),
			"sessions{it,queued}": mid.value("dingdesk_sessions", "group", "it", "state", "queued"),
			"sessions{hr,queued}": mid.value("dingdesk_sessions", "group", "hr", "state", "queued"),
			"queue_length{it}":    mid.value("dingdesk_queue_length", "group", "it"),
			"outbox_backlog":      mid.value("dingdesk_outbox_backlog_messages"),
			"inbox_backlog":       mid.value("dingdesk_inbox_backlog_messages"),
			"state_up":            mid.value("dingdesk_state_up"),
		}
		want := map[string]float64{"agents{it,online}": 1, "agents{it,offline}": 0, "agents{hr,offline}": 1,
			"sessions{it,active}": 1, "sessions{it,queued}": 1, "sessions{hr,queued}": 0, "queue_length{it}": 1,
			"outbox_backlog": 1, "inbox_backlog": 0, "state_up": 1}
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprint(got)
	})
	if v := mid.value("dingdesk_queue_longest_wait_seconds", "group", "it"); v <= 0 || v > 60 {
		t.Errorf("queue_longest_wait_seconds{it} = %v, want the seconds u3 has waited", v)
	}
	if v := mid.value("dingdesk_outbox_oldest_age_seconds"); v <= 0 || v > 60 {
		t.Errorf("outbox_oldest_age_seconds = %v, want the age of u4's held reply", v)
	}
	accepted := mid.value("dingdesk_inbound_accepted_total")
	if accepted != 5 {
		t.Errorf("inbound_accepted_total = %v, want 5", accepted)
	}
	if n, sum := mid.count("dingdesk_inbound_ack_duration_seconds"); float64(n) != accepted || sum <= 0 {
		t.Errorf("ack histogram: %d samples (sum %v), want one per accepted message (%v)", n, sum, accepted)
	}
	if n, _ := mid.count("dingdesk_bot_match_duration_seconds", "outcome", "answer"); n < 2 {
		t.Errorf("match histogram{answer}: %d samples, want u1's and u4's questions", n)
	}
	if n, sum := mid.count("dingdesk_engine_transaction_duration_seconds", "result", "committed"); n < 5 || sum <= 0 {
		t.Errorf("transaction histogram{committed}: %d samples (sum %v), want one per message at least", n, sum)
	}
	if v := mid.value("dingdesk_outbound_retries_total"); v < 1 {
		t.Errorf("outbound_retries_total = %v after the held send", v)
	}
	if mid.value("dingdesk_storage_group_commits_total") < 0 != (driver != "sqlite") {
		t.Errorf("storage_group_commits_total present=%v on %s", mid.value("dingdesk_storage_group_commits_total") >= 0, driver)
	}

	// DingTalk recovers: the retry delivers u4's answer, and its latency
	// (accepted → sent, the retry wait included) is counted like every
	// other reply's.
	s.fake.FailNext(0, 0)
	var end scrape
	// The retry delays double (2s, 4s, 8s ±20%): the next one may be 10s away.
	pollUntil(t, 30*time.Second, "u4's answer, every delivered reply timed and the backlog cleared", func() (bool, string) {
		answered := false
		for _, x := range s.fake.Sent()[held:] {
			answered = answered || isTo(x, "u4") && strings.Contains(x.Text, "年假答案")
		}
		end = s.scrape()
		sent := end.value("dingdesk_outbound_sent_total")
		n, _ := end.count("dingdesk_reply_latency_seconds")
		backlog := end.value("dingdesk_outbox_backlog_messages")
		return answered && float64(n) == sent && backlog == 0,
			fmt.Sprintf("u4 answered %v, sent %v, timed %d, backlog %v", answered, sent, n, backlog)
	})
	if n, sum := end.count("dingdesk_reply_latency_seconds"); n < 5 || sum/float64(n) <= 0 {
		t.Errorf("reply latency: %d samples, sum %v", n, sum)
	}
	// u4's reply waited for at least one retry (2s ±20%).
	h := end.metric("dingdesk_reply_latency_seconds").Histogram
	var under1 uint64
	for _, b := range h.Bucket {
		if b.GetUpperBound() == 1 {
			under1 = b.GetCumulativeCount()
		}
	}
	if under1 >= h.GetSampleCount() {
		t.Errorf("no reply latency above 1s, though u4's reply waited for a retry: %d of %d under 1s", under1, h.GetSampleCount())
	}
}

// pollUntil calls cond until it reports true or timeout passes; the
// failure shows cond's last description.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The README's metrics table is the operators' reference: every dingdesk_
// metric served is in it, and everything in it is served.
func TestREADMEListsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "\n## Metrics\n")
	if start < 0 {
		t.Fatal("README.md has no Metrics section")
	}
	section := text[start+1:]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(dingdesk_[a-z_]+)` \\|").FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}
	s := startService(t, serviceOpts{}) // SQLite: the grouped-commit counters too
	served := s.scrape()
	for name := range served {
		if strings.HasPrefix(name, "dingdesk_") && !documented[name] {
			t.Errorf("README.md's Metrics table does not list %s", name)
		}
	}
	for name := range documented {
		if served[name] == nil {
			t.Errorf("README.md lists %s, which /metrics does not serve", name)
		}
	}
}
