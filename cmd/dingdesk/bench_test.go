package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/bench/baseline"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
)

// BenchmarkMessagePath measures a signed webhook message from POST to the
// reply arriving at the fake DingTalk's sessionWebhook, for the bare
// baseline (check the signature, reply) and for dingdesk (check, store,
// acknowledge, match, outbox, reply). ns/op is per message at the
// benchmark's parallelism; ack-p50/p99 are POST → HTTP 200, reply-p50/p99
// are POST → reply received.
func BenchmarkMessagePath(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		fake := dingtalktest.NewServer()
		defer fake.Close()
		srv := httptest.NewServer(baseline.Handler("/dingtalk/callback", fake.ClientSecret))
		defer srv.Close()
		drive(b, fake, srv.URL+"/dingtalk/callback", nil)
	})
	for _, driver := range gormstoretest.Drivers(b) {
		b.Run("dingdesk-"+driver, func(b *testing.B) {
			s := startService(b, serviceOpts{driver: driver, extra: "\noutbox: { workers: 8 }\n"})
			drive(b, s.fake, s.webhookURL(), s.main.DB)
		})
	}
}

// drive posts b.N messages and reports latencies, the process's CPU per
// message (load generator and fake DingTalk included: compare paths, not
// absolute figures) and, with db, the SQL statements per message.
func drive(b *testing.B, fake *dingtalktest.Server, url string, db *gormstore.DB) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	type req struct {
		id   string
		body []byte
	}
	// Build the payloads outside the timer: 200 users asking in turn.
	reqs := make([]req, b.N)
	for i := range reqs {
		id, body := fake.Payload(dingtalktest.Msg{SenderStaffID: fmt.Sprintf("bench%03d", i%200), Text: "VPN 连不上怎么办"})
		reqs[i] = req{id, body}
	}
	start := len(fake.Sent())
	sentAt := make([]time.Time, b.N)
	acks := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	b.SetParallelism(8) // 8 × GOMAXPROCS concurrent senders
	var stmts0 int64
	if db != nil {
		stmts0 = db.Statements()
	}
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1)) - 1
			t0 := time.Now()
			hr, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(reqs[i].body))
			hr.Header.Set("Content-Type", "application/json")
			hr.Header.Set("timestamp", strconv.FormatInt(t0.UnixMilli(), 10))
			hr.Header.Set("sign", dingtalktest.Sign(fake.ClientSecret, t0.UnixMilli()))
			resp, err := client.Do(hr)
			if err != nil || resp.StatusCode != 200 {
				failed.Add(1)
				continue
			}
			resp.Body.Close()
			sentAt[i], acks[i] = t0, time.Since(t0)
		}
	})
	sent, err := fake.WaitSent(start+b.N, 60*time.Second)
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
	if db != nil {
		// Let the last delivery records land before counting.
		time.Sleep(200 * time.Millisecond)
		b.ReportMetric(float64(db.Statements()-stmts0)/float64(b.N), "stmts/msg")
	}
	if err != nil || failed.Load() > 0 {
		b.Fatalf("%d failed posts; replies: %v", failed.Load(), err)
	}
	at := map[string]time.Time{}
	for _, s := range sent[start:] {
		at[s.Session] = s.At
	}
	var replies []time.Duration
	for i, r := range reqs {
		if t, ok := at[fake.SessionFor(r.id)]; ok {
			replies = append(replies, t.Sub(sentAt[i]))
		}
	}
	report(b, "ack", acks)
	report(b, "reply", replies)
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func report(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	b.ReportMetric(float64(s[len(s)/2].Microseconds()), name+"-p50-µs")
	b.ReportMetric(float64(s[(len(s)-1)*99/100].Microseconds()), name+"-p99-µs")
}
