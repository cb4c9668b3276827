package dingtalk

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
)

// The benchmarks below are the adapter's share of one message's CPU: the
// webhook (sign check, body, decode, normalise, response) and one reply's
// send (render, encode, request, response check). Compare their ns/op and
// allocs/op before and after a change to this package; the service's own
// figure is BenchmarkMessagePath in cmd/dingdesk.

// BenchmarkWebhook posts a signed private text message to the handler, in
// process (no sockets: only the adapter's and gin's work is measured).
func BenchmarkWebhook(b *testing.B) {
	fake := dingtalktest.NewServer()
	defer fake.Close()
	cfg := testConfig(fake, "webhook")
	a, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	if err := a.Start(context.Background(), func(context.Context, adapter.Message) error { return nil }); err != nil {
		b.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST(cfg.WebhookPath, a.WebhookHandler())
	_, body := fake.Payload(dingtalktest.Msg{SenderStaffID: "bench001", Text: "VPN 连不上怎么办"})
	ts := time.Now().UnixMilli()
	sign := dingtalktest.Sign(fake.ClientSecret, ts)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, cfg.WebhookPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("sign", sign)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkSend sends one bot answer (the example knowledge base's VPN
// answer, private chat) through its sessionWebhook. The HTTP exchange is
// answered in process by a RoundTripper, so the figure is the adapter's
// own work and the client's, not a server's.
func BenchmarkSend(b *testing.B) {
	for _, format := range []adapter.Format{adapter.Text, adapter.Markdown} {
		b.Run(string(format), func(b *testing.B) {
			fake := dingtalktest.NewServer()
			defer fake.Close()
			a, err := New(testConfig(fake, "webhook"), Options{HTTPClient: &http.Client{Transport: okSession{}}})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			m := toMessageOf(b, fake, dingtalktest.Msg{SenderStaffID: "bench001", Text: "VPN 连不上怎么办"})
			r := replyTo(m, format, "请先确认网络正常，然后在 VPN 客户端里选择“自动选择节点”重新连接；如果提示证书过期，请到“自助服务 > 证书更新”重新申请。仍然不行请输入“转人工”。")
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := a.Send(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// okSession answers every request as a sessionWebhook that took the
// message.
type okSession struct{}

func (okSession) RoundTrip(req *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, req.Body)
	_ = req.Body.Close()
	const body = `{"errcode":0,"errmsg":"ok"}`
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		ContentLength: int64(len(body)), Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

func toMessageOf(b *testing.B, fake *dingtalktest.Server, m dingtalktest.Msg) adapter.Message {
	_, body := fake.Payload(m)
	raw, err := decodePayload(body)
	if err != nil {
		b.Fatal(err)
	}
	return toMessage(raw)
}
