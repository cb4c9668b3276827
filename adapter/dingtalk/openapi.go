package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
)

// DingTalk OpenAPI paths (new style, host api_base).
// Docs: https://open.dingtalk.com/document/orgapp/the-robot-sends-a-group-message
const (
	pathAccessToken = "/v1.0/oauth2/accessToken"
	pathBatchSend   = "/v1.0/robot/oToMessages/batchSend"
	pathGroupSend   = "/v1.0/robot/groupMessages/send"
)

const (
	// maxAttempts per OpenAPI call: the first try and three retries.
	maxAttempts = 4
	// retryWindow: no retry starts later than this after the first try.
	retryWindow = 10 * time.Second
	// attemptTimeout bounds one HTTP exchange; DingTalk's own server side
	// gives up after 3 s and answers 504.
	attemptTimeout = 5 * time.Second
	// maxResponse is the most of a response body that is read.
	maxResponse = 1 << 20
)

// openAPI calls DingTalk's server API: token cache, QPS limiter per path,
// retries with backoff and error classification.
type openAPI struct {
	base      string
	clientID  string
	secret    config.Secret
	robotCode string
	http      *http.Client
	// direct is http's Transport when the client adds nothing to a
	// request (see directTransport), nil otherwise.
	direct  http.RoundTripper
	limiter *pathLimiter
	tokens  *tokenCache
	// backoff is the wait before retry number attempt (1-based); qps is
	// true after a QPS throttle. Tests shorten it.
	backoff func(attempt int, qps bool) time.Duration
}

func newOpenAPI(cfg config.DingTalk, hc *http.Client, now func() time.Time) *openAPI {
	api := &openAPI{
		base:      strings.TrimRight(cfg.APIBase, "/"),
		clientID:  cfg.ClientID,
		secret:    cfg.ClientSecret,
		robotCode: cfg.EffectiveRobotCode(),
		http:      hc,
		direct:    directTransport(hc),
		limiter:   newPathLimiter(cfg.QPS),
		backoff:   defaultBackoff,
	}
	api.tokens = newTokenCache(now, api.fetchToken)
	return api
}

// defaultBackoff doubles from 400 ms with ±50 % jitter (0.4, 0.8, 1.6 s);
// after a QPS throttle it waits at least 1 s, DingTalk's QPS window.
func defaultBackoff(attempt int, qps bool) time.Duration {
	d := 400 * time.Millisecond << (attempt - 1)
	d = d/2 + rand.N(d)
	if qps && d < time.Second {
		d = time.Second + rand.N(250*time.Millisecond)
	}
	return d
}

// apiError is one failed exchange with DingTalk.
type apiError struct {
	Path      string
	Status    int    // HTTP status; 0 when no response arrived
	Code      string // DingTalk's code, e.g. Forbidden.AccessDenied.QpsLimitForApi
	Message   string
	RequestID string
	Err       error // transport error

	retry     bool // worth retrying now (throttle, 5xx, 429, network)
	qps       bool // QPS throttle: wait out the 1 s window
	auth      bool // access token rejected: refetch once
	permanent bool // retrying later cannot help
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("dingtalk %s: %v", e.Path, e.Err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "dingtalk %s: HTTP %d", e.Path, e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	return b.String()
}

func (e *apiError) Unwrap() error { return e.Err }

// classify sets the flags of an HTTP error. QPS codes come first: they are
// 403 "Forbidden…" and must not be mistaken for permission errors.
// Docs: https://open.dingtalk.com/document/development/how-to-process-api-throttling-on-the-dingtalk-server
func (e *apiError) classify() {
	switch {
	case strings.Contains(e.Code, "QpsLimitForAppkeyAndApi"), strings.Contains(e.Code, "QpsLimitForApi"):
		e.retry, e.qps = true, true
	case strings.Contains(e.Code, "ApiCountLimitForOrg"):
		e.permanent = true // monthly quota exhausted
	case strings.Contains(e.Code, "InvalidAuthentication"), e.Status == http.StatusUnauthorized:
		e.auth = true
	case e.Status == http.StatusTooManyRequests, e.Status >= 500:
		e.retry = true
	case e.Status >= 400:
		e.permanent = true
	}
}

// post makes one request. token "" sends no token header.
func (api *openAPI) post(ctx context.Context, path string, token accessToken, body any) ([]byte, error) {
	payload, err := marshal(body)
	if err != nil {
		return nil, &apiError{Path: path, Err: err, permanent: true}
	}
	return api.limited(ctx, path, token, payload)
}

// limited POSTs to the OpenAPI path once its limiter allows. DingTalk's QPS
// limit is per app per OpenAPI; sessionWebhook posts (per-conversation URLs,
// not OpenAPIs) call do directly: limiting every reply of every user to
// 18/s would cap the whole service, and a session that refuses a post falls
// back to the OpenAPI, which is limited.
func (api *openAPI) limited(ctx context.Context, path string, token accessToken, payload []byte) ([]byte, error) {
	if err := api.limiter.wait(ctx, path); err != nil {
		return nil, &apiError{Path: path, Err: err}
	}
	return api.do(ctx, api.base+path, path, token, payload)
}

// do POSTs payload to url once; path names the call in errors.
func (api *openAPI) do(ctx context.Context, url, path string, token accessToken, payload []byte) ([]byte, error) {
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, &apiError{Path: path, Err: err, permanent: true}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("x-acs-dingtalk-access-token", string(token))
	}
	resp, err := api.roundTrip(req)
	if err != nil {
		// Timeouts and network errors are retried unless the caller gave up.
		return nil, &apiError{Path: path, Err: stripURL(err), retry: ctx.Err() == nil}
	}
	defer resp.Body.Close()
	raw, err := readBody(io.LimitReader(resp.Body, maxResponse), min(resp.ContentLength, maxResponse))
	if err != nil {
		return nil, &apiError{Path: path, Status: resp.StatusCode, Err: err, retry: ctx.Err() == nil}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return raw, nil
	}
	var body struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"requestid"`
	}
	_ = json.Unmarshal(raw, &body)
	e := &apiError{Path: path, Status: resp.StatusCode, Code: body.Code, Message: body.Message, RequestID: body.RequestID}
	if e.RequestID == "" {
		e.RequestID = resp.Header.Get("x-acs-request-id")
	}
	if e.Code == "" && e.Message == "" {
		e.Message = snippet(raw)
	}
	e.classify()
	return nil, e
}

// directTransport is hc's Transport when hc would add nothing to our
// requests: no timeout, no cookie jar, and redirects are never followed
// (New's CheckRedirect). http.Client.Do still copies every request's
// headers and keeps redirect state for it (a fifth of a reply's send).
func directTransport(hc *http.Client) http.RoundTripper {
	if hc.Timeout != 0 || hc.Jar != nil {
		return nil
	}
	if hc.Transport == nil {
		return http.DefaultTransport
	}
	return hc.Transport
}

// roundTrip makes one exchange as api.http.Do would: errors are a
// *url.Error (stripURL takes the URL out again), a 3xx is returned as it
// is. A URL with credentials goes through the client, which sends them.
func (api *openAPI) roundTrip(req *http.Request) (*http.Response, error) {
	if api.direct == nil || req.URL.User != nil {
		return api.http.Do(req)
	}
	resp, err := api.direct.RoundTrip(req)
	if err != nil {
		return nil, &url.Error{Op: "Post", URL: req.URL.String(), Err: err}
	}
	return resp, nil
}

// call POSTs payload (a JSON body) to path with the access token, retrying as the error
// says: QPS throttles, 429, 5xx and network errors with backoff (maxAttempts
// within retryWindow, honouring ctx); an InvalidAuthentication once with a
// fresh token. A final error is adapter.Permanent when retrying later cannot
// help (quota exhausted, other 4xx); otherwise it is a plain error.
func (api *openAPI) call(ctx context.Context, path string, payload []byte) ([]byte, error) {
	start := time.Now()
	reauthed := false
	var last error
	tokenFailed := false
	for attempt := 1; ; {
		var raw []byte
		tok, err := api.tokens.get(ctx)
		tokenFailed = err != nil
		if err == nil {
			raw, err = api.limited(ctx, path, tok, payload)
			if err == nil {
				return raw, nil
			}
			var ae *apiError
			if errors.As(err, &ae) && ae.auth && !reauthed {
				api.tokens.invalidate(tok)
				reauthed = true
				continue // one refetch and one retry, outside the backoff budget
			}
		}
		last = err
		var ae *apiError
		retry := errors.As(err, &ae) && ae.retry
		if !retry || ctx.Err() != nil || attempt >= maxAttempts {
			break
		}
		d := api.backoff(attempt, ae.qps)
		if time.Since(start)+d > retryWindow {
			break
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			break
		}
		if !sleep(ctx, d) {
			break
		}
		attempt++
	}
	if tokenFailed {
		// A bad app secret can be fixed by a config reload; let the outbox
		// keep the message until its own limits.
		return nil, fmt.Errorf("dingtalk: access token: %w", last)
	}
	var ae *apiError
	if errors.As(last, &ae) && ae.permanent {
		return nil, adapter.Permanent(last)
	}
	if err := ctx.Err(); err != nil && !errors.Is(last, err) {
		return nil, fmt.Errorf("%w (%w)", last, err)
	}
	return nil, last
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// marshal encodes JSON without HTML escaping (DingTalk shows the text as
// is, and \u003c would also count against the 20 000-byte limit).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// stripURL drops the URL from a *url.Error: a sessionWebhook URL carries
// its session token in the query.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}
