package dingtalk

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// accessToken is an OpenAPI access token. It never shows in logs or %v.
type accessToken string

func (t accessToken) String() string {
	if t == "" {
		return ""
	}
	return "******"
}

// LogValue hides the token from slog.
func (t accessToken) LogValue() slog.Value { return slog.StringValue(t.String()) }

const (
	// tokenRefreshEarly refreshes a token this long before it expires.
	tokenRefreshEarly = 5 * time.Minute
	// defaultTokenTTL is assumed when expireIn is missing.
	defaultTokenTTL = 7200 * time.Second
)

// tokenCache holds the app's access token from
// POST {api_base}/v1.0/oauth2/accessToken. One refresh runs at a time
// (refresh is a one-slot semaphore that callers wait on with their ctx);
// while a refresh runs, callers holding a token that is stale but not
// expired keep using it instead of waiting.
type tokenCache struct {
	fetch   func(ctx context.Context) (accessToken, time.Duration, error)
	now     func() time.Time
	refresh chan struct{}

	mu      sync.Mutex
	tok     accessToken
	expires time.Time // hard expiry
	renew   time.Time // refresh from here on
}

func newTokenCache(now func() time.Time, fetch func(ctx context.Context) (accessToken, time.Duration, error)) *tokenCache {
	return &tokenCache{fetch: fetch, now: now, refresh: make(chan struct{}, 1)}
}

func (c *tokenCache) current() (tok accessToken, fresh, valid bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	return c.tok, c.tok != "" && now.Before(c.renew), c.tok != "" && now.Before(c.expires)
}

// get returns a usable token, fetching one if needed.
func (c *tokenCache) get(ctx context.Context) (accessToken, error) {
	tok, fresh, valid := c.current()
	if fresh {
		return tok, nil
	}
	if valid {
		// Stale: refresh unless someone else is; keep using it meanwhile.
		select {
		case c.refresh <- struct{}{}:
		default:
			return tok, nil
		}
	} else {
		select {
		case c.refresh <- struct{}{}:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	defer func() { <-c.refresh }()

	// Another caller may have refreshed while we waited.
	if tok, fresh, _ := c.current(); fresh {
		return tok, nil
	}
	issued := c.now() // expiry counts from the request, not the answer
	tok, ttl, err := c.fetch(ctx)
	if err != nil {
		if tok, _, valid := c.current(); valid {
			return tok, nil // a failed early refresh is retried next time
		}
		return "", err
	}
	if ttl <= 0 {
		ttl = defaultTokenTTL
	}
	early := tokenRefreshEarly
	if ttl < 2*early {
		early = ttl / 2
	}
	c.mu.Lock()
	c.tok, c.expires, c.renew = tok, issued.Add(ttl), issued.Add(ttl-early)
	c.mu.Unlock()
	return tok, nil
}

// invalidate drops tok after DingTalk rejected it (InvalidAuthentication).
// A newer token fetched meanwhile is kept.
func (c *tokenCache) invalidate(tok accessToken) {
	c.mu.Lock()
	if c.tok == tok {
		c.tok, c.expires, c.renew = "", time.Time{}, time.Time{}
	}
	c.mu.Unlock()
}

// fetchToken is the tokenCache's fetch against the new-style OAuth2 API.
func (api *openAPI) fetchToken(ctx context.Context) (accessToken, time.Duration, error) {
	body := map[string]string{"appKey": api.clientID, "appSecret": api.secret.Reveal()}
	var out struct {
		AccessToken string `json:"accessToken"`
		ExpireIn    int64  `json:"expireIn"`
	}
	raw, err := api.post(ctx, pathAccessToken, "", body)
	if err != nil {
		return "", 0, err
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.AccessToken == "" {
		return "", 0, &apiError{Path: pathAccessToken, Status: 200, Message: "response without accessToken", retry: true}
	}
	return accessToken(out.AccessToken), time.Duration(out.ExpireIn) * time.Second, nil
}
