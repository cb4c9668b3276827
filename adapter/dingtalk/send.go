package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
)

// sessionMargin: a sessionWebhook this close to its expiry is not used.
const sessionMargin = 30 * time.Second

// pathSession names sessionWebhook posts in errors (they are not rate
// limited: see openAPI.limited).
const pathSession = "/robot/sendBySession"

// Send delivers r, split into parts under DingTalk's size limits, in order.
// The reply's sessionWebhook is used while it is valid and points at a
// trusted host; when it fails (expired session 300001, any errcode ≠ 0,
// non-2xx, network error) that part and the rest go through the OpenAPI
// (batchSend for 1:1, groupMessages/send for groups).
//
// An error wrapped by adapter.Permanent cannot succeed on retry (quota
// exhausted, invalid staff id, other 4xx, nothing to send). Any other error
// may. A failure after some parts went out returns the error: a retry of
// the whole reply repeats those parts.
func (a *Adapter) Send(ctx context.Context, r adapter.Reply) error {
	d, err := a.destination(r)
	if err != nil {
		return adapter.Permanent(err)
	}
	parts, err := renderParts(r, d)
	if err != nil {
		return adapter.Permanent(err)
	}
	session := a.sessionUsable(r)
	for i := range parts {
		p := &parts[i]
		if session {
			err := a.sendSession(ctx, r.SessionWebhook, p)
			if err == nil {
				continue
			}
			if ctx.Err() != nil {
				return fmt.Errorf("dingtalk: send part %d of %d: %w", i+1, len(parts), err)
			}
			a.log.InfoContext(ctx, "session webhook failed, using OpenAPI",
				"conversation_id", r.ConversationID, "group", d.group, "reason", err.Error())
			session = false
		}
		if err := a.sendOpenAPI(ctx, p, d); err != nil {
			a.log.WarnContext(ctx, "send failed", "conversation_id", r.ConversationID,
				"group", d.group, "part", i+1, "parts", len(parts),
				"permanent", adapter.IsPermanent(err), "reason", err.Error())
			return fmt.Errorf("dingtalk: send part %d of %d: %w", i+1, len(parts), err)
		}
	}
	return nil
}

func (a *Adapter) destination(r adapter.Reply) (destination, error) {
	d := destination{
		group:          r.ConversationType == adapter.Group,
		userID:         r.UserID,
		conversationID: r.ConversationID,
		robotCode:      a.api.robotCode,
	}
	if d.group && d.conversationID == "" && r.SessionWebhook == "" {
		return d, errors.New("dingtalk: group reply without conversation id")
	}
	if !d.group && d.userID == "" && r.SessionWebhook == "" {
		return d, errors.New("dingtalk: private reply without user id")
	}
	return d, nil
}

// sessionUsable reports whether r's sessionWebhook may be tried: set, not
// about to expire, and on a trusted host.
func (a *Adapter) sessionUsable(r adapter.Reply) bool {
	if r.SessionWebhook == "" || r.SessionWebhookExpiry.IsZero() {
		return false
	}
	if !a.now().Add(sessionMargin).Before(r.SessionWebhookExpiry) {
		return false
	}
	if !a.trustedSessionURL(r.SessionWebhook) {
		a.log.Warn("session webhook on an untrusted host ignored", "conversation_id", r.ConversationID)
		return false
	}
	return true
}

// trustedSessionURL is the SSRF guard: a sessionWebhook from a payload is
// only POSTed to when its host is in session_webhook_hosts (https), or is
// the api_base host (same scheme; this is how tests and proxies work).
func (a *Adapter) trustedSessionURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Scheme, a.apiBase.Scheme) && strings.EqualFold(u.Host, a.apiBase.Host) {
		return true
	}
	if u.Scheme != "https" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	hostPort := strings.ToLower(u.Host)
	return slices.ContainsFunc(a.cfg.SessionWebhookHosts, func(h string) bool {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, _, err := net.SplitHostPort(h); err == nil {
			return h == hostPort
		}
		return h == host && (u.Port() == "" || u.Port() == "443")
	})
}

// sessionError is a sessionWebhook failure; the caller falls back.
type sessionError struct {
	Status  int
	ErrCode int
	ErrMsg  string
}

func (e *sessionError) Error() string {
	if e.ErrCode != 0 {
		return fmt.Sprintf("dingtalk session webhook: HTTP %d errcode %d: %s", e.Status, e.ErrCode, e.ErrMsg)
	}
	return fmt.Sprintf("dingtalk session webhook: HTTP %d: %s", e.Status, e.ErrMsg)
}

// sessionOK is DingTalk's answer to a sessionWebhook post it took.
var sessionOK = []byte(`{"errcode":0,"errmsg":"ok"}`)

func (a *Adapter) sendSession(ctx context.Context, webhook string, p *part) error {
	body := p.sessionBody
	// No access token and no retry: a failure falls back to the OpenAPI.
	raw, err := a.api.do(ctx, webhook, pathSession, "", body)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status != 0 {
			return &sessionError{Status: ae.Status, ErrMsg: ae.Message}
		}
		return err
	}
	if bytes.Equal(raw, sessionOK) {
		return nil // what every delivered reply gets: no decoder for it
	}
	var resp struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &resp); err != nil {
			return &sessionError{Status: 200, ErrMsg: "unreadable response: " + snippet(raw)}
		}
	}
	if resp.ErrCode != nil && *resp.ErrCode != 0 {
		// 300001 "session 不存在": expired.
		return &sessionError{Status: 200, ErrCode: *resp.ErrCode, ErrMsg: resp.ErrMsg}
	}
	return nil
}

func (a *Adapter) sendOpenAPI(ctx context.Context, p *part, d destination) error {
	if a.api.clientID == "" {
		return adapter.Permanent(errors.New("dingtalk: OpenAPI send needs dingtalk.client_id"))
	}
	if d.group && d.conversationID == "" {
		return adapter.Permanent(errors.New("dingtalk: group reply without conversation id"))
	}
	if !d.group && d.userID == "" {
		return adapter.Permanent(errors.New("dingtalk: private reply without user id"))
	}
	path, body, err := p.apiRequest(d)
	if err != nil {
		return adapter.Permanent(err)
	}
	raw, err := a.api.call(ctx, path, body)
	if err != nil {
		return err
	}
	if path != pathBatchSend {
		return nil
	}
	var resp struct {
		ProcessQueryKey           string   `json:"processQueryKey"`
		InvalidStaffIDList        []string `json:"invalidStaffIdList"`
		FlowControlledStaffIDList []string `json:"flowControlledStaffIdList"`
		FilteredStaffIDList       []string `json:"filteredStaffIdList"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return fmt.Errorf("dingtalk %s: unreadable response: %s", path, snippet(raw))
	}
	switch {
	case slices.Contains(resp.InvalidStaffIDList, d.userID):
		return adapter.Permanent(fmt.Errorf("dingtalk %s: invalid staff id %q", path, d.userID))
	case slices.Contains(resp.FlowControlledStaffIDList, d.userID):
		return fmt.Errorf("dingtalk %s: flow controlled for user %q", path, d.userID)
	case slices.Contains(resp.FilteredStaffIDList, d.userID):
		return fmt.Errorf("dingtalk %s: filtered for user %q", path, d.userID)
	}
	return nil
}
