package main

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/bot/embedtest"
)

// The semantic tier through the real serve wiring: configured from the
// environment, its metrics on /metrics, and a killed endpoint costing
// replies nothing but (at most) the timeout.
func TestServeWithSemanticTier(t *testing.T) {
	emb := embedtest.New(32, map[string]string{"远程办公": "vpn", "vpn": "vpn", "薪水": "salary", "工资": "salary"})
	defer emb.Close()
	const timeout = 200 * time.Millisecond
	t.Setenv("DINGDESK_BOT_SEMANTIC_ENABLED", "true")
	t.Setenv("DINGDESK_BOT_SEMANTIC_BASE_URL", emb.BaseURL())
	t.Setenv("DINGDESK_BOT_SEMANTIC_MODEL", "fake-embed")
	t.Setenv("DINGDESK_BOT_SEMANTIC_TIMEOUT", timeout.String())
	s := startService(t, serviceOpts{})
	eventually(t, "the entries to be embedded", func() bool { return s.main.Bot.KB().SemanticReady() })

	if reply := s.ask("u1", "每月几号发工资"); !strings.Contains(reply.Text, "工资答案") {
		t.Fatalf("reply %q", reply.Text)
	}
	metric := func(name string) float64 {
		resp, err := http.Get(s.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("/metrics has no %s:\n%s", name, body)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	if n := metric(`dingdesk_bot_embedding_requests_total{kind="entries"}`); n < 1 {
		t.Errorf("entry requests %v", n)
	}
	if n := metric(`dingdesk_bot_embedding_requests_total{kind="query"}`); n < 1 {
		t.Errorf("query requests %v", n)
	}
	// The endpoint dies: replies still come, matched lexically, each
	// delayed by at most the timeout (then the breaker stops even that).
	emb.DieAfter(0)
	for i, q := range []string{"VPN 连不上怎么办", "年假有多少天", "打印机怎么添加", "每月几号发工资"} {
		start := time.Now()
		reply := s.ask("u2", q)
		if reply.Text == "" {
			t.Fatalf("no reply to %q", q)
		}
		if d := time.Since(start); d > timeout+2*time.Second {
			t.Errorf("reply %d took %v with the endpoint dead (timeout %v)", i, d, timeout)
		}
	}
	if n := metric(`dingdesk_bot_semantic_fallbacks_total{reason="error"}`); n < 1 {
		t.Errorf("error fallbacks %v", n)
	}
	if n := metric(`dingdesk_bot_semantic_fallbacks_total{reason="breaker_open"}`); n < 1 {
		t.Errorf("breaker_open fallbacks %v", n)
	}
}
