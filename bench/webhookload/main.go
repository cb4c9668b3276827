// Command webhookload drives a webhook endpoint the way DingTalk does and
// measures it: it runs a fake DingTalk (dingtalktest) whose sessionWebhook
// sink receives the replies, POSTs signed messages from many users with
// bounded concurrency, and reports throughput, the acknowledgement latency
// (POST → HTTP 200) and the reply latency (POST → reply at the sink).
//
//	go run ./bench/webhookload -url http://127.0.0.1:8080/dingtalk/callback -n 20000 -c 64
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
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after")
	fakeAddr := flag.String("fake", "127.0.0.1:18090", "loopback address of the fake DingTalk (the service's dingtalk.api_base)")
	flag.Parse()
	if *n <= 0 || *conc <= 0 || *n > 1_000_000 {
		log.Fatal("need 0 < n <= 1e6 and c > 0")
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
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				m := dingtalktest.Msg{SenderStaffID: fmt.Sprintf("user%05d", i%*users), Text: *text}
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
	if len(replies) < ok {
		os.Exit(1)
	}
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
