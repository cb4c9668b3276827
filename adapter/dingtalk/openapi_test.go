package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
)

// apiServer is a scripted OpenAPI: token requests are counted and answered
// with the current token; robot calls go to send.
type apiServer struct {
	*httptest.Server
	tokenCalls atomic.Int32
	token      atomic.Value // string
	tokenDelay time.Duration
	send       func(w http.ResponseWriter, r *http.Request, body map[string]any)
}

func newAPIServer(t *testing.T, send func(w http.ResponseWriter, r *http.Request, body map[string]any)) *apiServer {
	t.Helper()
	s := &apiServer{send: send}
	s.token.Store("tok-1")
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		if r.URL.Path == pathAccessToken {
			s.tokenCalls.Add(1)
			time.Sleep(s.tokenDelay)
			if body["appKey"] != "app" || body["appSecret"] != "s3cret-value" {
				apiErr(w, 400, "invalidClientIdOrSecret")
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"accessToken": s.token.Load(), "expireIn": 7200})
			return
		}
		s.send(w, r, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func apiErr(w http.ResponseWriter, status int, code string) {
	w.Header().Set("x-acs-request-id", "req-1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": "msg of " + code})
}

func newTestAPI(t *testing.T, base string, now func() time.Time) *openAPI {
	cfg := config.Default().DingTalk
	cfg.ClientID, cfg.ClientSecret, cfg.APIBase, cfg.QPS = "app", "s3cret-value", base, 1000
	api := newOpenAPI(cfg, &http.Client{}, now)
	api.backoff = func(int, bool) time.Duration { return time.Millisecond }
	return api
}

func TestCallClassification(t *testing.T) {
	cases := map[string]struct {
		script    []func(w http.ResponseWriter)
		ok        bool
		permanent bool
		calls     int
	}{
		"QPS throttle retried": {script: []func(http.ResponseWriter){
			func(w http.ResponseWriter) { apiErr(w, 403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi") },
			func(w http.ResponseWriter) { apiErr(w, 403, "Forbidden.AccessDenied.QpsLimitForApi") },
		}, ok: true, calls: 3},
		"429 and 5xx retried": {script: []func(http.ResponseWriter){
			func(w http.ResponseWriter) { w.WriteHeader(429) },
			func(w http.ResponseWriter) { w.WriteHeader(502) },
			func(w http.ResponseWriter) { apiErr(w, 504, "GatewayTimeout") },
		}, ok: true, calls: 4},
		"gives up after 4 attempts": {script: []func(http.ResponseWriter){
			func(w http.ResponseWriter) { w.WriteHeader(500) }, func(w http.ResponseWriter) { w.WriteHeader(500) },
			func(w http.ResponseWriter) { w.WriteHeader(500) }, func(w http.ResponseWriter) { w.WriteHeader(500) },
			func(w http.ResponseWriter) { w.WriteHeader(500) },
		}, calls: 4},
		"quota is permanent": {script: []func(http.ResponseWriter){
			func(w http.ResponseWriter) { apiErr(w, 403, "Forbidden.AccessDenied.ApiCountLimitForOrg") },
		}, permanent: true, calls: 1},
		"other 403 is permanent": {script: []func(http.ResponseWriter){
			func(w http.ResponseWriter) { apiErr(w, 403, "Forbidden.AccessDenied.AccessTokenPermissionDenied") },
		}, permanent: true, calls: 1},
		"invalid parameter is permanent": {script: []func(http.ResponseWriter){
			func(w http.ResponseWriter) { apiErr(w, 400, "InvalidParameter") },
		}, permanent: true, calls: 1},
		"InvalidAuthentication refetches once": {script: []func(http.ResponseWriter){
			func(w http.ResponseWriter) { apiErr(w, 400, "InvalidAuthentication") },
		}, ok: true, calls: 2},
		"InvalidAuthentication twice is retryable": {script: []func(http.ResponseWriter){
			func(w http.ResponseWriter) { apiErr(w, 400, "InvalidAuthentication") },
			func(w http.ResponseWriter) { apiErr(w, 400, "InvalidAuthentication") },
		}, calls: 2},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var n atomic.Int32
			srv := newAPIServer(t, func(w http.ResponseWriter, r *http.Request, body map[string]any) {
				if r.Header.Get("x-acs-dingtalk-access-token") == "" {
					t.Error("no token header")
				}
				i := int(n.Add(1)) - 1
				if i < len(tc.script) {
					tc.script[i](w)
					return
				}
				_, _ = w.Write([]byte(`{"processQueryKey":"k"}`))
			})
			api := newTestAPI(t, srv.URL, time.Now)
			_, err := api.call(t.Context(), pathGroupSend, []byte(`{"x":"y"}`))
			if (err == nil) != tc.ok || adapter.IsPermanent(err) != tc.permanent {
				t.Errorf("err = %v; want ok=%v permanent=%v", err, tc.ok, tc.permanent)
			}
			if int(n.Load()) != tc.calls {
				t.Errorf("%d calls, want %d", n.Load(), tc.calls)
			}
			if err != nil && !strings.Contains(err.Error(), "HTTP") {
				t.Errorf("error %q lacks the reason", err)
			}
		})
	}
}

func TestCallNetworkErrorRetried(t *testing.T) {
	var n atomic.Int32
	srv := newAPIServer(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if n.Add(1) == 1 {
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			_ = c.Close() // connection dropped mid-request
			return
		}
		_, _ = w.Write([]byte(`{}`))
	})
	api := newTestAPI(t, srv.URL, time.Now)
	if _, err := api.call(t.Context(), pathGroupSend, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Errorf("%d calls, want 2", n.Load())
	}
}

func TestCallBadCredentialsNotPermanent(t *testing.T) {
	srv := newAPIServer(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) { t.Error("send without token") })
	api := newTestAPI(t, srv.URL, time.Now)
	api.secret = "wrong"
	_, err := api.call(t.Context(), pathGroupSend, []byte(`{}`))
	if err == nil || adapter.IsPermanent(err) || !strings.Contains(err.Error(), "invalidClientIdOrSecret") {
		t.Errorf("err = %v; want a retryable token error with the code", err)
	}
	if srv.tokenCalls.Load() != 1 {
		t.Errorf("%d token calls, want 1 (400 is not retried now)", srv.tokenCalls.Load())
	}
}

func TestBatchSendResultLists(t *testing.T) {
	var resp atomic.Value
	srv := newAPIServer(t, func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		if body["robotCode"] != "app" || fmt.Sprint(body["userIds"]) != "[user001]" {
			t.Errorf("body %v", body)
		}
		if _, ok := body["msgParam"].(string); !ok {
			t.Errorf("msgParam is %T, want a JSON string", body["msgParam"])
		}
		_, _ = w.Write([]byte(resp.Load().(string)))
	})
	cfg := config.Default().DingTalk
	cfg.Mode, cfg.ClientID, cfg.ClientSecret, cfg.APIBase = "webhook", "app", "s3cret-value", srv.URL
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := adapter.Reply{ConversationType: adapter.Private, UserID: "user001", Text: "hi"}
	for name, tc := range map[string]struct {
		body      string
		ok, perm  bool
		errSubstr string
	}{
		"delivered":       {body: `{"processQueryKey":"k","invalidStaffIdList":[],"flowControlledStaffIdList":[]}`, ok: true},
		"invalid staff":   {body: `{"processQueryKey":"k","invalidStaffIdList":["user001"]}`, perm: true, errSubstr: "invalid staff id"},
		"flow controlled": {body: `{"processQueryKey":"k","flowControlledStaffIdList":["user001"]}`, errSubstr: "flow controlled"},
	} {
		t.Run(name, func(t *testing.T) {
			resp.Store(tc.body)
			err := a.Send(t.Context(), r)
			if (err == nil) != tc.ok || adapter.IsPermanent(err) != tc.perm || (err != nil && !strings.Contains(err.Error(), tc.errSubstr)) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestTokenCache(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1700000000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	srv := newAPIServer(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {})
	srv.tokenDelay = 50 * time.Millisecond
	api := newTestAPI(t, srv.URL, clock)
	c := api.tokens

	// Concurrent first use: one fetch.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tok, err := c.get(context.Background()); err != nil || tok != "tok-1" {
				t.Errorf("get = %q, %v", tok, err)
			}
		}()
	}
	wg.Wait()
	if n := srv.tokenCalls.Load(); n != 1 {
		t.Fatalf("%d fetches for 20 concurrent gets, want 1", n)
	}

	// Fresh until 5 minutes before expiry.
	advance(7200*time.Second - tokenRefreshEarly - time.Second)
	if _, _ = c.get(t.Context()); srv.tokenCalls.Load() != 1 {
		t.Error("refreshed too early")
	}
	advance(2 * time.Second)
	srv.token.Store("tok-2")
	if tok, _ := c.get(t.Context()); tok != "tok-2" || srv.tokenCalls.Load() != 2 {
		t.Errorf("refresh before expiry: tok %q, %d fetches", tok, srv.tokenCalls.Load())
	}

	// invalidate drops only the rejected token.
	c.invalidate("tok-1")
	if tok, _ := c.get(t.Context()); tok != "tok-2" {
		t.Errorf("invalidate of an old token dropped the new one: %q", tok)
	}
	c.invalidate("tok-2")
	srv.token.Store("tok-3")
	if tok, _ := c.get(t.Context()); tok != "tok-3" {
		t.Errorf("after invalidate: %q", tok)
	}

	// The token never shows in logs.
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "token", accessToken("tok-3"))
	if strings.Contains(b.String(), "tok-3") || fmt.Sprint(accessToken("tok-3")) == "tok-3" {
		t.Errorf("token leaked: %s", b.String())
	}
}

func TestStaleTokenServedDuringRefresh(t *testing.T) {
	now := time.Unix(1700000000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	release := make(chan struct{})
	fetches := 0
	c := newTokenCache(clock, func(ctx context.Context) (accessToken, time.Duration, error) {
		fetches++
		if fetches == 2 {
			<-release
		}
		return accessToken(fmt.Sprintf("tok-%d", fetches)), time.Hour, nil
	})
	if tok, _ := c.get(t.Context()); tok != "tok-1" {
		t.Fatal(tok)
	}
	mu.Lock()
	now = now.Add(58 * time.Minute) // stale (inside the 5 min window), still valid
	mu.Unlock()
	done := make(chan accessToken)
	go func() { tok, _ := c.get(context.Background()); done <- tok }()
	time.Sleep(20 * time.Millisecond) // the refresh is now blocked in fetch
	if tok, err := c.get(t.Context()); err != nil || tok != "tok-1" {
		t.Errorf("during refresh got %q, %v; want the stale tok-1 without waiting", tok, err)
	}
	close(release)
	if tok := <-done; tok != "tok-2" {
		t.Errorf("refresher got %q", tok)
	}
}

func TestDefaultBackoff(t *testing.T) {
	var total time.Duration
	for attempt := 1; attempt < maxAttempts; attempt++ {
		base := 400 * time.Millisecond << (attempt - 1)
		for i := 0; i < 50; i++ {
			d := defaultBackoff(attempt, false)
			if d < base/2 || d >= base*3/2 {
				t.Fatalf("attempt %d: %v outside [%v, %v)", attempt, d, base/2, base*3/2)
			}
			if q := defaultBackoff(attempt, true); q < time.Second {
				t.Fatalf("QPS backoff %v < 1s", q)
			}
		}
		total += base * 3 / 2
	}
	if total > retryWindow {
		t.Errorf("worst-case backoff %v exceeds the retry window", total)
	}
}

func TestPathLimiter(t *testing.T) {
	l := newPathLimiter(20) // 50 ms apart
	start := time.Now()
	for i := 0; i < 5; i++ {
		if err := l.wait(t.Context(), "/a"); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Errorf("5 calls took %v, want ≥ 200 ms at 20 QPS", d)
	}
	start = time.Now()
	if err := l.wait(t.Context(), "/b"); err != nil || time.Since(start) > 20*time.Millisecond {
		t.Errorf("another path waited %v", time.Since(start))
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for i := 0; i < 3; i++ {
		_ = l.wait(t.Context(), "/c")
	}
	if err := l.wait(ctx, "/c"); err == nil {
		t.Error("wait ignored a cancelled context")
	}
}

// TestDirectRoundTripLikeClient: going to the Transport directly (the
// default) answers and fails as http.Client.Do did: the same error text
// once stripURL has taken the URL out, and a redirect returned as it is.
func TestDirectRoundTripLikeClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
	}))
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	defer srv.Close()
	viaClient := &http.Client{Timeout: time.Minute} // a timeout: Do is used
	for name, hc := range map[string]*http.Client{"direct": {}, "client": viaClient} {
		t.Run(name, func(t *testing.T) {
			a, err := New(config.DingTalk{Mode: "webhook", ClientSecret: "s", APIBase: srv.URL}, Options{HTTPClient: hc})
			if err != nil {
				t.Fatal(err)
			}
			if direct := a.api.direct != nil; direct != (name == "direct") {
				t.Fatalf("direct transport = %v", direct)
			}
			_, err = a.api.do(t.Context(), srv.URL+"/x", "/x", "", []byte("{}"))
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != http.StatusFound {
				t.Errorf("redirect: %v, want the 302 itself", err)
			}
			_, err = a.api.do(t.Context(), closed.URL+"/x", "/x", "", []byte("{}"))
			if err == nil || !strings.HasPrefix(err.Error(), "dingtalk /x: post: dial tcp") || strings.Contains(err.Error(), closed.URL) {
				t.Errorf("network error = %v", err)
			}
		})
	}
}
