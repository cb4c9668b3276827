package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/config"
)

// Login identifies people of the organisation for the web workbench
// (docs/DINGTALK-LOGIN.md): the browser OAuth flow (§1) and the in-client
// 免登 code (§2). It yields the org userid (the staffId agents are keyed
// by) and never trusts a corpId or user id sent by the browser.
type Login struct {
	api       *openAPI // app token (POST /v1.0/oauth2/accessToken) and api.dingtalk.com calls
	http      *http.Client
	loginBase string
	oapiBase  string
	clientID  string
	secret    config.Secret
	corpID    string
}

// LoginUser is who logged in.
type LoginUser struct {
	UserID  string // the org userid (staffId)
	UnionID string
	Name    string
}

// ErrLoginRefused means DingTalk identified the person but they may not log
// in: not in the organisation, an external contact, or another corp.
var ErrLoginRefused = errors.New("dingtalk: login refused")

// ErrLoginCode means the code was unknown, used or expired.
var ErrLoginCode = errors.New("dingtalk: login code invalid or expired")

// NewLogin builds the login client; it makes no call before it is used.
func NewLogin(cfg config.DingTalk, opts Options) (*Login, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("dingtalk login: client_id and client_secret are required")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	hc := &http.Client{}
	if opts.HTTPClient != nil {
		c := *opts.HTTPClient
		hc = &c
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if cfg.QPS <= 0 {
		cfg.QPS = 18
	}
	return &Login{
		api: newOpenAPI(cfg, hc, now), http: hc,
		loginBase: strings.TrimRight(orDefault(cfg.LoginBase, "https://login.dingtalk.com"), "/"),
		oapiBase:  strings.TrimRight(orDefault(cfg.OAPIBase, "https://oapi.dingtalk.com"), "/"),
		clientID:  cfg.ClientID, secret: cfg.ClientSecret, corpID: cfg.CorpID,
	}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ClientID is the app's Client ID (the 免登 page needs it).
func (l *Login) ClientID() string { return l.clientID }

// CorpID is the configured organisation ("" when not set).
func (l *Login) CorpID() string { return l.corpID }

// AuthorizeURL is DingTalk's login page for a browser (§1.1). The corpid
// scope makes DingTalk return the chosen org, checked against corp_id.
func (l *Login) AuthorizeURL(redirectURI, state string) string {
	q := url.Values{}
	q.Set("client_id", l.clientID)
	q.Set("redirect_uri", redirectURI)
	q.Set("response_type", "code")
	q.Set("scope", "openid corpid")
	q.Set("prompt", "consent")
	q.Set("state", state)
	return l.loginBase + "/oauth2/auth?" + q.Encode()
}

// ByAuthCode turns the OAuth callback's authCode into the org user: code
// → user token (§1.3) → unionId (§1.4) → userid and contact_type (§1.5).
func (l *Login) ByAuthCode(ctx context.Context, code string) (LoginUser, error) {
	body := map[string]string{"clientId": l.clientID, "clientSecret": l.secret.Reveal(), "code": code, "grantType": "authorization_code"}
	raw, err := l.api.post(ctx, "/v1.0/oauth2/userAccessToken", "", body)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
			return LoginUser{}, fmt.Errorf("%w: %v", ErrLoginCode, err)
		}
		return LoginUser{}, err
	}
	var tok struct {
		AccessToken string `json:"accessToken"`
		CorpID      string `json:"corpId"`
	}
	if err := json.Unmarshal(raw, &tok); err != nil || tok.AccessToken == "" {
		return LoginUser{}, errors.New("dingtalk userAccessToken: response without accessToken")
	}
	if l.corpID != "" && tok.CorpID != "" && tok.CorpID != l.corpID {
		return LoginUser{}, fmt.Errorf("%w: corpId %q is not the configured organisation", ErrLoginRefused, tok.CorpID)
	}
	me, err := l.usersMe(ctx, tok.AccessToken)
	if err != nil {
		return LoginUser{}, err
	}
	var res struct {
		ContactType int    `json:"contact_type"`
		UserID      string `json:"userid"`
	}
	errcode, err := l.oapi(ctx, "/topapi/user/getbyunionid", map[string]string{"unionid": me.UnionID}, &res)
	if err != nil {
		return LoginUser{}, err
	}
	switch {
	case errcode == 60121:
		return LoginUser{}, fmt.Errorf("%w: not a member of the organisation", ErrLoginRefused)
	case errcode != 0:
		return LoginUser{}, fmt.Errorf("dingtalk getbyunionid: errcode %d", errcode)
	case res.ContactType != 0:
		return LoginUser{}, fmt.Errorf("%w: an external contact", ErrLoginRefused)
	case res.UserID == "":
		return LoginUser{}, errors.New("dingtalk getbyunionid: no userid")
	}
	return LoginUser{UserID: res.UserID, UnionID: me.UnionID, Name: me.Nick}, nil
}

type usersMe struct {
	Nick    string `json:"nick"`
	UnionID string `json:"unionId"`
}

func (l *Login) usersMe(ctx context.Context, userToken string) (usersMe, error) {
	var me usersMe
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, l.api.base+"/v1.0/contact/users/me", nil)
	if err != nil {
		return me, err
	}
	req.Header.Set("x-acs-dingtalk-access-token", userToken)
	resp, err := l.http.Do(req)
	if err != nil {
		return me, fmt.Errorf("dingtalk users/me: %w", stripURL(err))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode != http.StatusOK {
		return me, fmt.Errorf("dingtalk users/me: HTTP %d: %s (the app needs the Contact.User.Read permission)", resp.StatusCode, snippet(raw))
	}
	if err := json.Unmarshal(raw, &me); err != nil || me.UnionID == "" {
		return me, errors.New("dingtalk users/me: response without unionId")
	}
	return me, nil
}

// ByJSAPICode turns a 免登 code (dd.runtime.permission.requestAuthCode in
// the DingTalk client) into the org user (§2).
func (l *Login) ByJSAPICode(ctx context.Context, code string) (LoginUser, error) {
	var res struct {
		UserID  string `json:"userid"`
		UnionID string `json:"unionid"`
		Name    string `json:"name"`
	}
	errcode, err := l.oapi(ctx, "/topapi/v2/user/getuserinfo", map[string]string{"code": code}, &res)
	if err != nil {
		return LoginUser{}, err
	}
	switch {
	case errcode == 40078:
		return LoginUser{}, ErrLoginCode
	case errcode != 0:
		return LoginUser{}, fmt.Errorf("dingtalk getuserinfo: errcode %d", errcode)
	case res.UserID == "":
		return LoginUser{}, errors.New("dingtalk getuserinfo: no userid")
	}
	return LoginUser{UserID: res.UserID, UnionID: res.UnionID, Name: res.Name}, nil
}

// oapi POSTs body to an oapi.dingtalk.com path with the app token and
// decodes result into out. It returns DingTalk's errcode (HTTP is 200 for
// errors too); a rejected token (88, 40014) is refetched once.
func (l *Login) oapi(ctx context.Context, path string, body any, out any) (int, error) {
	payload, err := marshal(body)
	if err != nil {
		return 0, err
	}
	for attempt := 0; ; attempt++ {
		tok, err := l.api.tokens.get(ctx)
		if err != nil {
			return 0, fmt.Errorf("dingtalk: access token: %w", err)
		}
		raw, err := l.api.do(ctx, l.oapiBase+path+"?access_token="+url.QueryEscape(string(tok)), path, "", payload)
		if err != nil {
			return 0, err
		}
		var env struct {
			ErrCode int             `json:"errcode"`
			SubCode string          `json:"sub_code"`
			Result  json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			return 0, fmt.Errorf("dingtalk %s: %w", path, err)
		}
		if (env.ErrCode == 88 || env.ErrCode == 40014) && attempt == 0 {
			l.api.tokens.invalidate(tok)
			continue
		}
		if env.ErrCode == 0 && out != nil && len(env.Result) > 0 {
			if err := json.Unmarshal(env.Result, out); err != nil {
				return 0, fmt.Errorf("dingtalk %s: result: %w", path, err)
			}
		}
		return env.ErrCode, nil
	}
}

// UserDetail is what the directory says about a member (topapi/v2/user/get).
type UserDetail struct {
	UserID, Name, Mobile, Email, Title string
}

// ErrNoSuchUser means the userid is not a member of the organisation.
var ErrNoSuchUser = errors.New("dingtalk: no such user in the organisation")

// UserDetail looks a member up by userid (the app needs 成员信息读; mobile
// and email come only with their own permissions).
func (l *Login) UserDetail(ctx context.Context, userID string) (UserDetail, error) {
	var res struct {
		UserID string `json:"userid"`
		Name   string `json:"name"`
		Mobile string `json:"mobile"`
		Email  string `json:"email"`
		Title  string `json:"title"`
	}
	errcode, err := l.oapi(ctx, "/topapi/v2/user/get", map[string]string{"userid": userID}, &res)
	switch {
	case err != nil:
		return UserDetail{}, err
	case errcode == 60121:
		return UserDetail{}, ErrNoSuchUser
	case errcode != 0:
		return UserDetail{}, fmt.Errorf("dingtalk user/get: errcode %d", errcode)
	}
	return UserDetail{UserID: res.UserID, Name: res.Name, Mobile: res.Mobile, Email: res.Email, Title: res.Title}, nil
}
