package dingtalk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
)

// Fuzz targets for every parser of what DingTalk (or anyone posing as it)
// sends: the callback payload through the real webhook handler, the
// signature check, reply splitting, and OpenAPI responses. `.ci/run` runs
// each for a few seconds; crashers found are kept under testdata/fuzz.

var fuzzNow = time.UnixMilli(1_760_000_000_000)

func fuzzConfig() config.DingTalk {
	cfg := config.Default().DingTalk
	cfg.Mode, cfg.ClientID, cfg.ClientSecret = "webhook", "ding-fuzz", "fuzz-secret"
	cfg.APIBase = "http://127.0.0.1:1"
	cfg.WebhookMaxBody = 64 << 10
	return cfg
}

func seedPayloads(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) == 0 {
		f.Fatal("no seed payloads in testdata/")
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"msgId":"m","msgtype":"text","text":{"content":"  hi  "},"createAt":"17","conversationType":1}`))
	f.Add([]byte(`{"msgId":"m","msgtype":"richText","content":{"richText":[{"text":"a"},{"type":"picture"}]}}`))
	f.Add([]byte(`[]`))
}

// FuzzWebhookPayload posts signed bodies to the real webhook handler: every
// body gets 200 (delivered once, normalised), 400 or 413, never a panic or
// a 5xx, and nothing but a 200 delivers a message.
func FuzzWebhookPayload(f *testing.F) {
	seedPayloads(f)
	a, err := New(fuzzConfig(), Options{Now: func() time.Time { return fuzzNow }})
	if err != nil {
		f.Fatal(err)
	}
	var mu sync.Mutex
	var got []adapter.Message
	if err := a.Start(context.Background(), func(_ context.Context, m adapter.Message) error {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		return nil
	}); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { a.Close() })
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/cb", a.WebhookHandler())
	ts := strconv.FormatInt(fuzzNow.UnixMilli(), 10)
	sign := computeSign("fuzz-secret", ts)

	f.Fuzz(func(t *testing.T, body []byte) {
		mu.Lock()
		got = got[:0]
		mu.Unlock()
		req := httptest.NewRequest(http.MethodPost, "/cb", bytes.NewReader(body))
		req.Header.Set("timestamp", ts)
		req.Header.Set("sign", sign)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		mu.Lock()
		defer mu.Unlock()
		switch w.Code {
		case http.StatusOK:
			if len(got) != 1 {
				t.Fatalf("200 with %d messages delivered", len(got))
			}
			m := got[0]
			if m.ID == "" || m.Kind == "" {
				t.Fatalf("delivered a message without id or kind: %+v", m)
			}
			if !utf8.ValidString(m.Text) || m.Text != strings.TrimSpace(m.Text) {
				t.Fatalf("text not normalised: %q", m.Text)
			}
			// The same body decodes to the same message.
			raw, err := decodePayload(body)
			if err != nil || toMessage(raw).ID != m.ID {
				t.Fatalf("decodePayload disagrees with the handler: %v", err)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if len(got) != 0 {
				t.Fatalf("%d and yet %d messages delivered", w.Code, len(got))
			}
		default:
			t.Fatalf("status %d for body %q", w.Code, body)
		}
	})
}

// FuzzVerifySign: only the exact signature of a timestamp within an hour
// of now passes.
func FuzzVerifySign(f *testing.F) {
	now := strconv.FormatInt(fuzzNow.UnixMilli(), 10)
	f.Add(now, computeSign("fuzz-secret", now))
	f.Add(now, "")
	f.Add("", "x")
	f.Add("1760000000000.5", "abc=")
	f.Add("-9223372036854775808", computeSign("fuzz-secret", "-9223372036854775808"))
	f.Add(strconv.FormatInt(fuzzNow.Add(-time.Hour-time.Millisecond).UnixMilli(), 10), "")
	a, err := New(fuzzConfig(), Options{Now: func() time.Time { return fuzzNow }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ts, sign string) {
		err := a.verifySign(ts, sign)
		ms, perr := strconv.ParseInt(ts, 10, 64)
		fresh := perr == nil && fuzzNow.Sub(time.UnixMilli(ms)).Abs() <= maxClockSkew
		if err == nil && (sign != computeSign("fuzz-secret", ts) || !fresh) {
			t.Fatalf("accepted ts=%q sign=%q", ts, sign)
		}
		// Its own signature passes exactly when the timestamp is fresh.
		if err := a.verifySign(ts, computeSign("fuzz-secret", ts)); (err == nil) != (fresh && ts != "") {
			t.Fatalf("ts=%q fresh=%v: verify of its own signature = %v", ts, fresh, err)
		}
	})
}

// FuzzSplitText: chunks are at most max runes, never empty, valid UTF-8
// when the input is, and together keep every non-blank rune in order.
func FuzzSplitText(f *testing.F) {
	f.Add("第一段。\n\n第二段 some words here\n第三行", 5)
	f.Add(strings.Repeat("很长的一句话没有空格", 100), 7)
	f.Add("a\u3000b\tc d\r\ne", 1)
	f.Add("```go\nfmt.Println()\n```", 3)
	blank := func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\u3000' }
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 {
			max = -(max + 1)
		}
		max = max%4000 + 1
		chunks := splitText(s, max)
		var joined strings.Builder
		for _, c := range chunks {
			if c == "" {
				t.Fatal("empty chunk")
			}
			if n := utf8.RuneCountInString(c); n > max {
				t.Fatalf("chunk of %d runes > max %d", n, max)
			}
			if utf8.ValidString(s) && !utf8.ValidString(c) {
				t.Fatalf("chunk cut inside a rune: %q", c)
			}
			joined.WriteString(c)
		}
		strip := func(x string) string {
			return strings.Map(func(r rune) rune {
				if blank(r) {
					return -1
				}
				return r
			}, x)
		}
		if strip(joined.String()) != strip(string([]rune(s))) {
			t.Fatalf("content changed:\n in  %q\n out %q", s, chunks)
		}
	})
}

// FuzzRenderParts: every reply renders into parts whose bodies fit
// DingTalk's limits on both paths, or is refused with an error.
func FuzzRenderParts(f *testing.F) {
	f.Add("您好，请问有什么可以帮您？", false, false, "")
	f.Add("# 标题\n\n```\ncode\n```\n"+strings.Repeat("段落 ", 2000), true, true, "user1")
	f.Add(strings.Repeat("\"\\\u2028<>&", 3000), false, true, strings.Repeat("u", 50))
	f.Fuzz(func(t *testing.T, text string, markdown, group bool, user string) {
		r := adapter.Reply{Text: text}
		if markdown {
			r.Format = adapter.Markdown
		}
		d := destination{group: group, userID: user, conversationID: "cid", robotCode: "rc"}
		parts, err := renderParts(r, d)
		if err != nil {
			if strings.TrimSpace(text) != "" && !errors.Is(err, errEmptyReply) && len(user) < 1000 {
				t.Logf("refused: %v", err)
			}
			return
		}
		if len(parts) == 0 {
			t.Fatal("no parts and no error")
		}
		for i := range parts {
			p := &parts[i]
			// The bound that spares rendering the OpenAPI body must hold.
			bound := apiBound(*p, d)
			path, body, err := p.apiRequest(d)
			if err != nil || len(body) > bound {
				t.Fatalf("part %d: OpenAPI body %d bytes over its bound %d (%v)", i, len(body), bound, err)
			}
			if len(p.sessionBody) >= maxBodyBytes || len(body) >= maxBodyBytes || path == "" {
				t.Fatalf("part %d: session %d bytes, api %d bytes, path %q", i, len(p.sessionBody), len(body), path)
			}
		}
	})
}

// fuzzTransport answers every request with one fuzzed response.
type fuzzTransport struct {
	status int
	body   []byte
	header string
}

func (ft fuzzTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h := http.Header{"Content-Type": {"application/json"}}
	if ft.header != "" {
		h.Set("x-acs-request-id", ft.header)
	}
	return &http.Response{StatusCode: ft.status, Header: h, Body: io.NopCloser(bytes.NewReader(ft.body)), Request: req}, nil
}

// FuzzOpenAPIResponse: any status and body from the OpenAPI is classified
// (2xx: the body; else an *apiError carrying the status, never both retry
// and permanent), and a token response is a token or an error.
func FuzzOpenAPIResponse(f *testing.F) {
	f.Add(200, []byte(`{"accessToken":"t","expireIn":7200}`), "")
	f.Add(200, []byte(`{"processQueryKey":"k"}`), "")
	f.Add(403, []byte(`{"code":"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi","message":"m","requestid":"r"}`), "")
	f.Add(401, []byte(`{"code":"InvalidAuthentication","message":"不合法的access_token"}`), "rid")
	f.Add(503, []byte(`<html>gateway</html>`), "")
	f.Add(400, []byte(`{"code":123,"message":["x"]}`), "")
	f.Fuzz(func(t *testing.T, status int, body []byte, requestID string) {
		if status < 0 {
			status = -(status + 1)
		}
		status = 200 + status%400
		cfg := fuzzConfig()
		hc := &http.Client{Transport: fuzzTransport{status, body, requestID},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		api := newOpenAPI(cfg, hc, func() time.Time { return fuzzNow })
		raw, err := api.do(context.Background(), api.base+pathBatchSend, pathBatchSend, "tok", []byte(`{}`))
		if status < 300 {
			if err != nil || !bytes.Equal(raw, body[:min(len(body), maxResponse)]) {
				t.Fatalf("%d: err %v, body %q", status, err, raw)
			}
		} else {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != status || raw != nil {
				t.Fatalf("%d: err %v (%T)", status, err, err)
			}
			if ae.retry && ae.permanent {
				t.Fatalf("%d: both retry and permanent: %+v", status, ae)
			}
			if !utf8.ValidString(ae.Error()) && utf8.Valid(body) && utf8.ValidString(requestID) {
				t.Fatalf("error text not UTF-8: %q", ae.Error())
			}
		}
		tok, ttl, err := api.fetchToken(context.Background())
		if err == nil && (tok == "" || status >= 300) {
			t.Fatalf("%d: token %q ttl %v from %q", status, tok, ttl, body)
		}
		if err != nil && tok != "" {
			t.Fatalf("token %q with error %v", tok, err)
		}
	})
}

// FuzzTwiceEscapedBound: the bound renderParts trusts instead of rendering
// the OpenAPI body is never under the real length of a string encoded
// twice.
func FuzzTwiceEscapedBound(f *testing.F) {
	f.Add("请先确认网络正常，“自动选择节点”…")
	f.Add("\"\\\u2028\u2029<>&\x00\x1f\n\t\x7f")
	f.Add("\xe2\x80\xff\xe2\x80")
	f.Fuzz(func(t *testing.T, s string) {
		once, err := marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		twice, err := marshal(string(once))
		if err != nil {
			t.Fatal(err)
		}
		// Quotes aside: the outer pair, and the inner one (\" twice).
		if got, bound := len(twice)-6, twiceEscapedBound(s); got > bound {
			t.Fatalf("%q: encoded twice %d bytes, bound %d", s, got, bound)
		}
	})
}
