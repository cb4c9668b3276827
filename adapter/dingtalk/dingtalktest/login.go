package dingtalktest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The login side of DingTalk (docs/DINGTALK-LOGIN.md §5): the browser OAuth
// page on login.dingtalk.com, the token exchange and users/me on
// api.dingtalk.com, and the user lookups of oapi.dingtalk.com. All live on
// Server.URL, like the rest of the fake: point dingtalk.login_base and
// dingtalk.oapi_base at it.
//
// Choices where DINGTALK-LOGIN.md says UNCONFIRMED: codes (OAuth and 免登)
// live 300 s and work once; a redirect_uri matches a registered one when
// scheme, host and path are equal (its query is kept and extended); the
// denied login answers error=access_denied; an unknown or used OAuth code
// gets 400 invalidParameter.authCode.notFound; a bad app token on oapi gets
// errcode 88 with sub_code 40014.

// LoginUser is a person the fake's login pages can log in.
type LoginUser struct {
	UserID, UnionID, OpenID, Nick, Mobile, Email string
	Title                                        string // 职位 (topapi/v2/user/get)
	// ContactType is 0 for an employee, 1 for an external contact.
	ContactType int
	// NotInOrg makes getbyunionid answer 60121 (找不到该用户).
	NotInOrg bool
}

const loginCodeTTL = 300 * time.Second

type loginCode struct {
	userID  string
	expires time.Time
	corp    bool // the corpid scope was asked for
}

type loginState struct {
	users       map[string]*LoginUser // by userid
	redirects   []string              // registered redirect URIs
	selected    string                // who "logs in" on the OAuth page
	deny        bool
	noContact   bool                  // users/me answers 403 (Contact.User.Read missing)
	corpOfCodes string                // corpId returned by userAccessToken; default CorpID
	codes       map[string]*loginCode // OAuth authCodes
	jsapiCodes  map[string]*loginCode // 免登 codes
	userTokens  map[string]string     // user access token → userid
	refresh     map[string]string     // refresh token → userid
	appTokens   map[string]time.Time  // oapi /gettoken tokens
}

func (s *Server) registerLogin(mux *http.ServeMux) {
	s.login = &loginState{
		users: map[string]*LoginUser{}, codes: map[string]*loginCode{}, jsapiCodes: map[string]*loginCode{},
		userTokens: map[string]string{}, refresh: map[string]string{}, appTokens: map[string]time.Time{},
	}
	mux.HandleFunc("GET /oauth2/auth", s.handleOAuthAuthorize)
	mux.HandleFunc("POST /v1.0/oauth2/userAccessToken", s.handleUserAccessToken)
	mux.HandleFunc("GET /v1.0/contact/users/me", s.handleUsersMe)
	mux.HandleFunc("GET /gettoken", s.handleGetToken)
	mux.HandleFunc("POST /topapi/user/getbyunionid", s.handleGetByUnionID)
	mux.HandleFunc("POST /topapi/v2/user/getuserinfo", s.handleGetUserInfo)
	mux.HandleFunc("POST /topapi/v2/user/get", s.handleUserGet)
	mux.HandleFunc("POST /__fake/jsapi-code", s.handleFakeJSAPICode)
}

// AddLoginUser adds (or replaces) a person of the organisation. Empty
// UnionID and OpenID get generated values; the user is returned as stored.
func (s *Server) AddLoginUser(u LoginUser) LoginUser {
	if u.UnionID == "" {
		u.UnionID = "union-" + u.UserID
	}
	if u.OpenID == "" {
		u.OpenID = "open-" + u.UserID
	}
	if u.Nick == "" {
		u.Nick = u.UserID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.login.users[u.UserID] = &u
	return u
}

// AllowRedirect registers a redirect URL (开发者后台 → 安全设置 → 重定向URL).
func (s *Server) AllowRedirect(uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.login.redirects = append(s.login.redirects, uri)
}

// SelectLoginUser chooses who logs in when a browser reaches the OAuth page
// (the person scanning the QR code); "" makes the page refuse with 400.
func (s *Server) SelectLoginUser(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.login.selected = userID
}

// DenyLogin makes the OAuth page redirect with error=access_denied (the
// person declined).
func (s *Server) DenyLogin(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.login.deny = deny
}

// SetContactPermission toggles Contact.User.Read: without it users/me
// answers 403.
func (s *Server) SetContactPermission(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.login.noContact = !ok
}

// SetLoginCorp sets the corpId userAccessToken returns (with the corpid
// scope); default CorpID.
func (s *Server) SetLoginCorp(corpID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.login.corpOfCodes = corpID
}

// MintJSAPICode returns a 免登 code for userID, as
// dd.runtime.permission.requestAuthCode would in the DingTalk client.
func (s *Server) MintJSAPICode(userID string) string {
	code := randHex(16)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.login.jsapiCodes[code] = &loginCode{userID: userID, expires: time.Now().Add(loginCodeTTL)}
	return code
}

// ExpireLoginCodes makes every outstanding OAuth and 免登 code expired.
func (s *Server) ExpireLoginCodes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := time.Now().Add(-time.Second)
	for _, c := range s.login.codes {
		c.expires = past
	}
	for _, c := range s.login.jsapiCodes {
		c.expires = past
	}
}

func (s *Server) handleFakeJSAPICode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserID string `json:"userid"`
	}
	body, _ := readBody(r)
	if json.Unmarshal(body, &req) != nil || req.UserID == "" {
		http.Error(w, `want {"userid":"…"}`, http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"code": s.MintJSAPICode(req.UserID)})
}

// redirectAllowedLocked matches scheme, host and path. s.mu must be held.
func (s *Server) redirectAllowedLocked(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return false
	}
	return slices.ContainsFunc(s.login.redirects, func(reg string) bool {
		ru, err := url.Parse(reg)
		return err == nil && ru.Scheme == u.Scheme && ru.Host == u.Host && ru.Path == u.Path
	})
}

func (s *Server) handleOAuthAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	scopes := strings.Fields(q.Get("scope"))
	redirect := q.Get("redirect_uri")
	s.mu.Lock()
	var problem string
	switch {
	case q.Get("client_id") != s.ClientID:
		problem = "client_id 无效"
	case q.Get("response_type") != "code":
		problem = "response_type 必须为 code"
	case !slices.Contains(scopes, "openid"):
		problem = "scope 必须包含 openid"
	case !strings.Contains(q.Get("prompt"), "consent"):
		problem = "prompt 必须为 consent"
	case !s.redirectAllowedLocked(redirect):
		problem = "redirect_uri 未登记"
	case !s.login.deny && s.login.users[s.login.selected] == nil:
		problem = "dingtalktest: no login user selected"
	}
	if problem != "" {
		s.mu.Unlock()
		http.Error(w, problem, http.StatusBadRequest)
		return
	}
	u, _ := url.Parse(redirect)
	back := u.Query()
	if s.login.deny {
		back.Set("error", "access_denied")
	} else {
		code := randHex(16)
		s.login.codes[code] = &loginCode{userID: s.login.selected, expires: time.Now().Add(loginCodeTTL),
			corp: slices.Contains(scopes, "corpid")}
		back.Set("authCode", code)
		back.Set("code", code)
	}
	s.mu.Unlock()
	if st := q.Get("state"); st != "" {
		back.Set("state", st)
	}
	u.RawQuery = back.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Server) handleUserAccessToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
		Code         string `json:"code"`
		RefreshToken string `json:"refreshToken"`
		GrantType    string `json:"grantType"`
	}
	body, _ := readBody(r)
	if err := json.Unmarshal(body, &req); err != nil {
		writeAPIError(w, http.StatusBadRequest, "InvalidParameter", "body is not valid JSON")
		return
	}
	if !s.credentialsOK(req.ClientID, req.ClientSecret) {
		writeAPIError(w, http.StatusBadRequest, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var userID string
	corp := false
	switch req.GrantType {
	case "authorization_code":
		c := s.login.codes[req.Code]
		delete(s.login.codes, req.Code) // single use, also when expired
		if c == nil || !time.Now().Before(c.expires) {
			writeAPIError(w, http.StatusBadRequest, "invalidParameter.authCode.notFound", "不合法的临时授权码")
			return
		}
		userID, corp = c.userID, c.corp
	case "refresh_token":
		userID = s.login.refresh[req.RefreshToken]
		if userID == "" {
			writeAPIError(w, http.StatusBadRequest, "invalidParameter.refreshToken.notFound", "refreshToken无效")
			return
		}
	default:
		writeAPIError(w, http.StatusBadRequest, "invalidParameter.grantType", "grantType无效")
		return
	}
	tok, ref := randHex(16), randHex(16)
	s.login.userTokens[tok], s.login.refresh[ref] = userID, userID
	out := map[string]any{"accessToken": tok, "refreshToken": ref, "expireIn": int64(7200)}
	if corp {
		c := s.login.corpOfCodes
		if c == "" {
			c = s.CorpID
		}
		out["corpId"] = c
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleUsersMe(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	u := s.login.users[s.login.userTokens[r.Header.Get("x-acs-dingtalk-access-token")]]
	noContact := s.login.noContact
	s.mu.Unlock()
	switch {
	case u == nil:
		writeAPIError(w, http.StatusBadRequest, "InvalidAuthentication", "不合法的access_token")
	case noContact:
		writeAPIError(w, http.StatusForbidden, "Forbidden.AccessDenied.AccessTokenPermissionDenied", "没有调用该接口的权限")
	default:
		writeJSON(w, http.StatusOK, map[string]any{"nick": u.Nick, "unionId": u.UnionID, "openId": u.OpenID,
			"mobile": u.Mobile, "email": u.Email, "stateCode": "86", "avatarUrl": ""})
	}
}

// handleGetToken is the old-style app token: GET /gettoken?appkey=&appsecret=.
func (s *Server) handleGetToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !s.credentialsOK(q.Get("appkey"), q.Get("appsecret")) {
		writeJSON(w, http.StatusOK, map[string]any{"errcode": 40089, "errmsg": "不合法的corpid或corpsecret"})
		return
	}
	tok := randHex(16)
	s.mu.Lock()
	s.login.appTokens[tok] = time.Now().Add(s.tokenTTL)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"errcode": 0, "errmsg": "ok", "access_token": tok, "expires_in": 7200})
}

// appTokenOK accepts tokens of either token API (casdoor uses the new one
// on oapi too).
func (s *Server) appTokenOK(tok string) bool {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.tokens[tok]; ok && now.Before(exp) {
		return true
	}
	exp, ok := s.login.appTokens[tok]
	return ok && now.Before(exp)
}

// oapi answers are HTTP 200 with errcode, success or not.
func oapiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, http.StatusOK, map[string]any{"errcode": code, "errmsg": msg, "request_id": randHex(8)})
}

func oapiOK(w http.ResponseWriter, result any) {
	writeJSON(w, http.StatusOK, map[string]any{"errcode": 0, "errmsg": "ok", "result": result, "request_id": randHex(8)})
}

// oapiRequest is the start every oapi user lookup shares: the app token of
// the query (errcode 88 / sub_code 40014 when bad) and the JSON body into
// req. A body that is not JSON leaves req empty, which each lookup answers
// as "not found", as oapi does. It reports whether the handler goes on.
func (s *Server) oapiRequest(w http.ResponseWriter, r *http.Request, req any) bool {
	if !s.appTokenOK(r.URL.Query().Get("access_token")) {
		writeJSON(w, http.StatusOK, map[string]any{"errcode": 88, "sub_code": "40014", "errmsg": "不合法的access_token"})
		return false
	}
	body, _ := readBody(r)
	_ = json.Unmarshal(body, req)
	return true
}

func (s *Server) handleGetByUnionID(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UnionID string `json:"unionid"`
	}
	if !s.oapiRequest(w, r, &req) {
		return
	}
	s.mu.Lock()
	var found *LoginUser
	for _, u := range s.login.users {
		if u.UnionID == req.UnionID && req.UnionID != "" {
			found = u
		}
	}
	s.mu.Unlock()
	if found == nil || found.NotInOrg {
		oapiError(w, 60121, "找不到该用户")
		return
	}
	oapiOK(w, map[string]any{"contact_type": found.ContactType, "userid": found.UserID})
}

func (s *Server) handleGetUserInfo(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code string `json:"code"`
	}
	if !s.oapiRequest(w, r, &req) {
		return
	}
	s.mu.Lock()
	c := s.login.jsapiCodes[req.Code]
	delete(s.login.jsapiCodes, req.Code)
	var u *LoginUser
	if c != nil && time.Now().Before(c.expires) {
		u = s.login.users[c.userID]
	}
	s.mu.Unlock()
	if u == nil {
		oapiError(w, 40078, "不存在的临时授权码")
		return
	}
	oapiOK(w, map[string]any{"userid": u.UserID, "unionid": u.UnionID, "name": u.Nick, "sys": false, "sys_level": 0,
		"device_id": randHex(8), "associated_unionid": ""})
}

func (s *Server) handleUserGet(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserID string `json:"userid"`
	}
	if !s.oapiRequest(w, r, &req) {
		return
	}
	s.mu.Lock()
	u := s.login.users[req.UserID]
	s.mu.Unlock()
	if u == nil || u.NotInOrg {
		oapiError(w, 60121, "找不到该用户")
		return
	}
	oapiOK(w, map[string]any{"userid": u.UserID, "unionid": u.UnionID, "name": u.Nick, "mobile": u.Mobile,
		"email": u.Email, "title": u.Title, "dept_id_list": []int{1}})
}
