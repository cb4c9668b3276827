// Command webhookload drives a webhook endpoint the way DingTalk does and
// measures it: it runs a fake DingTalk (dingtalktest) whose sessionWebhook
// sink receives the replies, POSTs signed messages from many users with
// bounded concurrency (or at a fixed rate with -rate), and reports
// throughput, the acknowledgement latency (POST → HTTP 200) and the reply
// latency (POST → reply at the sink). With -pid it also samples the server
// process (and with -dbpid a database server) from /proc: CPU per reply
// and peak resident memory during the run. With -texts each message asks
// the next question of a file (bench/kbgen writes one) instead of -text.
//
//	go run ./bench/webhookload -url http://127.0.0.1:8080/dingtalk/callback -n 20000 -c 32 -pid $(pgrep -n dingdesk)
//
// The last line is one tab-separated record for scripts (bench/alternate.sh):
//
//	RESULT <label> replies/s p50-ms p99-ms cpu-ms/reply peak-rss-MiB db-cpu-ms/reply
//
// The service under test must use the fake as its dingtalk.api_base (so
// sessionWebhooks on it are trusted and OpenAPI fallbacks land there too)
// and the printed client secret. It stops by itself after -n messages or
// -timeout.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/dingtalk/callback", "webhook URL under test")
	n := flag.Int("n", 10000, "messages to send")
	conc := flag.Int("c", 32, "concurrent senders")
	users := flag.Int("users", 1000, "distinct users")
	text := flag.String("text", "VPN 连不上怎么办", "question text")
	textsFile := flag.String("texts", "", "file of questions, one a line: message i asks line i (mod the lines) instead of -text")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after")
	fakeAddr := flag.String("fake", "127.0.0.1:18090", "loopback address of the fake DingTalk (the service's dingtalk.api_base)")
	rate := flag.Float64("rate", 0, "messages per second in total (0: as fast as the senders go)")
	pid := flag.Int("pid", 0, "server process to sample for CPU and memory (0: none)")
	dbPid := flag.Int("dbpid", 0, "database server process to sample for CPU (0: none)")
	label := flag.String("label", "run", "label of the RESULT line")
	flag.Parse()
	if *n <= 0 || *conc <= 0 || *n > 1_000_000 {
		log.Fatal("need 0 < n <= 1e6 and c > 0")
	}

	texts := []string{*text}
	if *textsFile != "" {
		var err error
		if texts, err = readLines(*textsFile); err != nil {
			log.Fatal(err)
		}
	}

	fake := dingtalktest.NewServerAt(*fakeAddr)
	defer fake.Close()
	fmt.Fprintf(os.Stderr, "fake DingTalk at %s (client_id %s, client_secret %s)\n", fake.URL, fake.ClientID, fake.ClientSecret)

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	type result struct {
		id   string
		sent time.Time
		ack  time.Duration
	}
	results := make([]result, *n)
	var next, failed atomic.Int64
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *conc}}
	// With -rate, senders take a ticket per message: an open loop at a
	// fixed rate, so latency is measured below saturation.
	var tickets chan struct{}
	if *rate > 0 {
		tickets = make(chan struct{}, *conc)
		go func() {
			every := time.Duration(float64(time.Second) / *rate)
			next := time.Now()
			for i := 0; i < *n && ctx.Err() == nil; i++ {
				time.Sleep(time.Until(next))
				next = next.Add(every)
				select {
				case tickets <- struct{}{}:
				case <-ctx.Done():
				}
			}
			close(tickets)
		}()
	}
	sampler := newSampler(*pid, *dbPid)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if tickets != nil {
					if _, ok := <-tickets; !ok {
						return
					}
				}
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				m := dingtalktest.Msg{SenderStaffID: fmt.Sprintf("user%05d", i%*users), Text: texts[i%len(texts)]}
				id, body := fake.Payload(m)
				t0 := time.Now()
				req, _ := http.NewRequest(http.MethodPost, *url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json; charset=utf-8")
				req.Header.Set("timestamp", strconv.FormatInt(t0.UnixMilli(), 10))
				req.Header.Set("sign", dingtalktest.Sign(fake.ClientSecret, t0.UnixMilli()))
				resp, err := client.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
					if resp != nil {
						resp.Body.Close()
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				results[i] = result{id: id, sent: t0, ack: time.Since(t0)}
			}
		}()
	}
	wg.Wait()
	acked := time.Since(start)
	ok := *n - int(failed.Load())
	// Wait for the replies.
	replies, _ := fake.WaitSent(ok, time.Until(deadline(ctx)))
	total := time.Since(start)
	use := sampler.stop()

	bySession := map[string]time.Time{}
	for _, s := range replies {
		if _, seen := bySession[s.Session]; !seen {
			bySession[s.Session] = s.At
		}
	}
	var acks, replyLat []time.Duration
	for _, r := range results {
		if r.id == "" {
			continue
		}
		acks = append(acks, r.ack)
		if at, ok := bySession[fake.SessionFor(r.id)]; ok {
			replyLat = append(replyLat, at.Sub(r.sent))
		}
	}
	fmt.Printf("messages %d, failed %d, replies %d\n", *n, failed.Load(), len(replies))
	fmt.Printf("ack:   %.0f msg/s  p50 %v  p99 %v  max %v\n", float64(len(acks))/acked.Seconds(), pct(acks, 50), pct(acks, 99), pct(acks, 100))
	fmt.Printf("reply: %.0f msg/s  p50 %v  p99 %v  max %v\n", float64(len(replyLat))/total.Seconds(), pct(replyLat, 50), pct(replyLat, 99), pct(replyLat, 100))
	perReply := func(d time.Duration) float64 {
		if len(replies) == 0 {
			return 0
		}
		return float64(d.Microseconds()) / 1000 / float64(len(replies))
	}
	if *pid != 0 {
		fmt.Printf("server: CPU %.3f ms/reply, peak RSS %.1f MiB during the run (%.1f MiB at its start)\n",
			perReply(use.cpu), use.peakRSS, use.startRSS)
	}
	if *dbPid != 0 {
		fmt.Printf("database: CPU %.3f ms/reply\n", perReply(use.dbCPU))
	}
	fmt.Printf("RESULT\t%s\t%.0f\t%.2f\t%.2f\t%.3f\t%.1f\t%.3f\n", *label, float64(len(replyLat))/total.Seconds(),
		ms(pct(replyLat, 50)), ms(pct(replyLat, 99)), perReply(use.cpu), use.peakRSS, perReply(use.dbCPU))
	if len(replies) < ok {
		os.Exit(1)
	}
}

// readLines is the file's non-empty lines.
func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s: no questions", path)
	}
	return lines, nil
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return s[i].Round(10 * time.Microsecond)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// usage is what the sampler saw of the processes during the run.
type usage struct {
	cpu, dbCPU        time.Duration
	peakRSS, startRSS float64 // MiB
}

// sampler reads /proc/<pid>/stat and /proc/<pid>/status: CPU time used
// between start and stop, and the largest resident set seen (every 50 ms).
type sampler struct {
	pid, dbPid    int
	cpu0, dbCPU0  time.Duration
	start         float64
	peak          atomic.Uint64 // KiB
	quit, stopped chan struct{}
}

func newSampler(pid, dbPid int) *sampler {
	s := &sampler{pid: pid, dbPid: dbPid, quit: make(chan struct{}), stopped: make(chan struct{})}
	s.cpu0, s.dbCPU0 = procCPU(pid), procCPU(dbPid)
	rss := procRSS(pid)
	s.start = float64(rss) / 1024
	s.peak.Store(rss)
	go func() {
		defer close(s.stopped)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-t.C:
				if r := procRSS(pid); r > s.peak.Load() {
					s.peak.Store(r)
				}
			}
		}
	}()
	return s
}

func (s *sampler) stop() usage {
	close(s.quit)
	<-s.stopped
	return usage{cpu: procCPU(s.pid) - s.cpu0, dbCPU: procCPU(s.dbPid) - s.dbCPU0,
		peakRSS: float64(s.peak.Load()) / 1024, startRSS: s.start}
}

// procCPU is a process's user and system CPU time (0 without a pid).
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// procRSS is a process's resident set in KiB (0 without a pid).
func procRSS(pid int) uint64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}
