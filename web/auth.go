package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dingdesk/dingdesk/config"
)

const (
	sessionCookie = "dingdesk_session"
	stateCookie   = "dingdesk_login_state" // OAuth state / 免登 double-submit token
	csrfHeader    = "X-CSRF-Token"
	csrfField     = "_csrf"
)

// NewToken is a random URL-safe token (256 bits).
func NewToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand docs)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken is what is stored of a token: its SHA-256, hex.
func HashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// IdentityOf is who staffID is in cfg: an agent when in a skill group, an
// admin when in admins; no roles means no login.
func IdentityOf(cfg *config.Config, staffID string) Identity {
	id := Identity{StaffID: staffID, Name: staffID}
	if cfg.IsAgent(staffID) {
		id.Roles = append(id.Roles, RoleAgent)
		for _, g := range cfg.SkillGroups {
			for _, m := range g.Members {
				if m.StaffID == staffID {
					id.Name = m.Name
				}
			}
		}
	}
	if cfg.IsAdmin(staffID) {
		id.Roles = append(id.Roles, RoleAdmin)
		for _, a := range cfg.Admins {
			if a.StaffID == staffID && id.Name == staffID {
				id.Name = a.Name
			}
		}
	}
	return id
}

// CreateLoginLink stores a one-time login link for staffID and returns its
// absolute URL (dingdesk login-link). The link works on any replica
// sharing the gormstore.
func CreateLoginLink(ctx context.Context, store Store, cfg *config.Config, publicURL, staffID string, now time.Time) (string, error) {
	if len(IdentityOf(cfg, staffID).Roles) == 0 {
		return "", errors.New("staff id " + staffID + " is neither an agent (skill_groups, agents) nor an admin (admins)")
	}
	tok := NewToken()
	if err := store.CreateLoginLink(ctx, HashToken(tok), staffID, now, now.Add(cfg.Web.LoginLinkTTL)); err != nil {
		return "", err
	}
	return strings.TrimRight(publicURL, "/") + "/auth/link?t=" + url.QueryEscape(tok), nil
}

// IdentityFrom is the logged-in person of a request that passed Protected.
func IdentityFrom(c *gin.Context) Identity {
	id, _ := c.Get("dingdesk.identity")
	v, _ := id.(Identity)
	return v
}

func webSessionFrom(c *gin.Context) *WebSession {
	ws, _ := c.Get("dingdesk.websession")
	v, _ := ws.(*WebSession)
	return v
}

// Protected admits a request with a valid session cookie of a person who
// holds one of roles (any role when none is given) in the current config,
// and checks the CSRF token of every state-changing request. Refusals get a
// page that says why; nothing runs behind them.
func (s *Server) Protected(roles ...Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		now := s.d.Now()
		tok, err := c.Cookie(sessionCookie)
		if err != nil || tok == "" {
			s.refuseLogin(c, s.texts().LoginRequired)
			return
		}
		ws, err := s.d.Store.WebSession(c.Request.Context(), HashToken(tok))
		if err != nil {
			s.fail(c, err)
			return
		}
		if ws == nil || !now.Before(ws.ExpiresAt) {
			s.clearCookie(c, sessionCookie, "/")
			s.refuseLogin(c, s.texts().LoginExpired)
			return
		}
		id := IdentityOf(s.d.Config(), ws.StaffID)
		if len(id.Roles) == 0 {
			_ = s.d.Store.DeleteWebSession(c.Request.Context(), ws.TokenHash)
			s.clearCookie(c, sessionCookie, "/")
			s.refuse(c, http.StatusForbidden, s.texts().TitleForbidden, s.texts().Removed)
			return
		}
		if len(roles) > 0 && !hasAny(id, roles) {
			s.refuse(c, http.StatusForbidden, s.texts().TitleForbidden, s.texts().NoRole)
			return
		}
		if c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead {
			got := c.GetHeader(csrfHeader)
			if got == "" {
				got = c.PostForm(csrfField)
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(ws.CSRF)) != 1 {
				s.refuse(c, http.StatusForbidden, s.texts().TitleCSRF, s.texts().CSRF)
				return
			}
		}
		// Sliding expiry, written at most once a minute.
		if now.Sub(ws.SeenAt) > time.Minute {
			ttl := s.d.Config().Web.SessionTTL
			if err := s.d.Store.TouchWebSession(c.Request.Context(), ws.TokenHash, now, now.Add(ttl)); err == nil {
				ws.SeenAt, ws.ExpiresAt = now, now.Add(ttl)
			}
		}
		c.Set("dingdesk.identity", id)
		c.Set("dingdesk.websession", ws)
		c.Next()
	}
}

func hasAny(id Identity, roles []Role) bool {
	for _, r := range roles {
		if id.Has(r) {
			return true
		}
	}
	return false
}

// isHTMX tells fragment requests from page loads.
func isHTMX(c *gin.Context) bool { return c.GetHeader("HX-Request") == "true" }

// refuseLogin answers 401 with the login page (htmx requests are sent
// there by HX-Redirect).
func (s *Server) refuseLogin(c *gin.Context, why string) {
	if isHTMX(c) {
		c.Header("HX-Redirect", "/login")
	}
	s.renderLogin(c, http.StatusUnauthorized, why)
	c.Abort()
}

// refuse answers with an error page (or, for htmx, the same text as a
// fragment the page shows in its alert area).
func (s *Server) refuse(c *gin.Context, status int, title, text string) {
	if isHTMX(c) {
		c.Header("HX-Retarget", "#flash")
		c.Header("HX-Reswap", "innerHTML")
		s.pages.fragment(c, status, "flash", gin.H{"Error": text})
	} else {
		s.pages.page(c, status, "error", gin.H{"Title": title, "Text": text})
	}
	c.Abort()
}

// fail logs an internal error and shows a generic one.
func (s *Server) fail(c *gin.Context, err error) {
	var shown *ShownError
	if errors.As(err, &shown) {
		s.refuse(c, http.StatusConflict, s.texts().TitleRefused, shown.Text)
		return
	}
	if errors.Is(err, context.Canceled) && c.Request.Context().Err() != nil {
		// The browser went away (navigated, htmx replaced the request):
		// nothing failed, and nobody reads the answer.
		s.d.Log.Debug("web request cancelled by the browser", "method", c.Request.Method, "path", c.Request.URL.Path)
		c.AbortWithStatus(499)
		return
	}
	s.d.Log.Error("web request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
	s.refuse(c, http.StatusInternalServerError, s.texts().TitleError, s.texts().Internal)
}

func (s *Server) setCookie(c *gin.Context, name, value, path string, maxAge time.Duration) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

// clearCookie deletes a cookie set by setCookie (same path and flags).
func (s *Server) clearCookie(c *gin.Context, name, path string) {
	s.setCookie(c, name, "", path, -time.Second) // MaxAge -1: delete now
}

// startSession logs staffID in: a new server-side session and its cookie,
// then on to the page of their role.
func (s *Server) startSession(c *gin.Context, staffID, via string) {
	id := IdentityOf(s.d.Config(), staffID)
	if len(id.Roles) == 0 {
		s.d.Log.Warn("login refused: not an agent or admin", "staff_id", staffID, "via", via)
		s.refuse(c, http.StatusForbidden, s.texts().TitleCannotLogin, expand(s.texts().NotMember, "staff", staffID))
		return
	}
	now := s.d.Now()
	tok := NewToken()
	ttl := s.d.Config().Web.SessionTTL
	ws := WebSession{TokenHash: HashToken(tok), StaffID: staffID, CSRF: NewToken(), CreatedAt: now, SeenAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.d.Store.CreateWebSession(c.Request.Context(), ws); err != nil {
		s.fail(c, err)
		return
	}
	s.setCookie(c, sessionCookie, tok, "/", ttl)
	s.d.Log.Info("web login", "staff_id", staffID, "via", via)
	next := "/desk"
	if !id.Has(RoleAgent) {
		next = "/admin"
	}
	c.Redirect(http.StatusSeeOther, next)
}

func (s *Server) loginPage(c *gin.Context) {
	s.renderLogin(c, http.StatusOK, "")
}

func (s *Server) renderLogin(c *gin.Context, status int, why string) {
	// The 免登 form posts this token back; the cookie makes it a
	// double-submit check (a page of another site cannot read it).
	tok := NewToken()
	s.setCookie(c, stateCookie, tok, "/auth", 10*time.Minute)
	data := gin.H{"Title": s.texts().TitleLogin, "Why": why, "State": tok, "DingTalk": s.d.Login != nil}
	if s.d.Login != nil {
		data["CorpID"], data["ClientID"] = s.d.Login.CorpID(), s.d.Login.ClientID()
	}
	s.pages.page(c, status, "login", data)
}

func (s *Server) logout(c *gin.Context) {
	if ws := webSessionFrom(c); ws != nil {
		_ = s.d.Store.DeleteWebSession(c.Request.Context(), ws.TokenHash)
	}
	s.clearCookie(c, sessionCookie, "/")
	if isHTMX(c) {
		c.Header("HX-Redirect", "/login")
		c.Status(http.StatusNoContent)
		return
	}
	c.Redirect(http.StatusSeeOther, "/login")
}

func (s *Server) redirectURI() string { return s.base.String() + "/auth/dingtalk/callback" }

func (s *Server) oauthStart(c *gin.Context) {
	if s.d.Login == nil {
		s.refuse(c, http.StatusNotFound, s.texts().TitleNoDingTalk, s.texts().NoDingTalk)
		return
	}
	state := NewToken()
	s.setCookie(c, stateCookie, state, "/auth", 10*time.Minute)
	c.Redirect(http.StatusFound, s.d.Login.AuthorizeURL(s.redirectURI(), state))
}

func (s *Server) checkState(c *gin.Context, got string) bool {
	want, err := c.Cookie(stateCookie)
	s.clearCookie(c, stateCookie, "/auth")
	return err == nil && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (s *Server) oauthCallback(c *gin.Context) {
	if s.d.Login == nil {
		s.refuse(c, http.StatusNotFound, s.texts().TitleNoDingTalk, s.texts().NoDingTalk)
		return
	}
	if !s.checkState(c, c.Query("state")) {
		s.refuse(c, http.StatusBadRequest, s.texts().TitleLoginFailed, s.texts().OAuthState)
		return
	}
	if e := c.Query("error"); e != "" {
		s.refuse(c, http.StatusForbidden, s.texts().TitleLoginFailed, s.texts().OAuthDenied)
		return
	}
	// DingTalk documents authCode; real callbacks carry code too.
	code := c.Query("authCode")
	if code == "" {
		code = c.Query("code")
	}
	if code == "" {
		s.refuse(c, http.StatusBadRequest, s.texts().TitleLoginFailed, s.texts().OAuthNoCode)
		return
	}
	staffID, err := s.d.Login.ByAuthCode(c.Request.Context(), code)
	if err != nil {
		s.loginFailed(c, err, "oauth")
		return
	}
	s.startSession(c, staffID, "oauth")
}

func (s *Server) loginFailed(c *gin.Context, err error, via string) {
	switch {
	case errors.Is(err, ErrLoginRefused):
		s.d.Log.Warn("login refused by the organisation check", "via", via, "err", err)
		s.refuse(c, http.StatusForbidden, s.texts().TitleCannotLogin, s.texts().Outsider)
	case errors.Is(err, ErrLoginCode):
		s.refuse(c, http.StatusBadRequest, s.texts().TitleLoginFailed, s.texts().BadCode)
	default:
		s.d.Log.Error("dingtalk login failed", "via", via, "err", err)
		s.refuse(c, http.StatusBadGateway, s.texts().TitleLoginFailed, s.texts().DingTalkDown)
	}
}

// jsapiLogin takes a 免登 code from the login page running inside the
// DingTalk client.
func (s *Server) jsapiLogin(c *gin.Context) {
	if s.d.Login == nil {
		s.refuse(c, http.StatusNotFound, s.texts().TitleNoDingTalk, s.texts().NoDingTalk)
		return
	}
	if !s.checkState(c, c.PostForm("state")) {
		s.refuse(c, http.StatusBadRequest, s.texts().TitleLoginFailed, s.texts().JSAPIState)
		return
	}
	staffID, err := s.d.Login.ByJSAPICode(c.Request.Context(), c.PostForm("code"))
	if err != nil {
		s.loginFailed(c, err, "jsapi")
		return
	}
	s.startSession(c, staffID, "jsapi")
}

func (s *Server) linkError(c *gin.Context, err error) {
	switch {
	case errors.Is(err, ErrLinkUsed):
		s.refuse(c, http.StatusGone, s.texts().TitleLinkUsed, s.texts().LinkUsed)
	case errors.Is(err, ErrLinkExpired):
		s.refuse(c, http.StatusGone, s.texts().TitleLinkExpired, s.texts().LinkExpired)
	case errors.Is(err, ErrLinkUnknown):
		s.refuse(c, http.StatusNotFound, s.texts().TitleLinkUnknown, s.texts().LinkUnknown)
	default:
		s.fail(c, err)
	}
}

// linkPage checks a login link without using it and shows a page that
// posts it: link previews and prefetchers (which GET) cannot use it up.
func (s *Server) linkPage(c *gin.Context) {
	tok := c.Query("t")
	staff, err := s.d.Store.CheckLoginLink(c.Request.Context(), HashToken(tok), s.d.Now())
	if err != nil {
		s.linkError(c, err)
		return
	}
	s.pages.page(c, http.StatusOK, "link", gin.H{"Title": s.texts().TitleLogin, "Token": tok, "Name": IdentityOf(s.d.Config(), staff).Name})
}

func (s *Server) linkRedeem(c *gin.Context) {
	staff, err := s.d.Store.RedeemLoginLink(c.Request.Context(), HashToken(c.PostForm("t")), s.d.Now())
	if err != nil {
		s.linkError(c, err)
		return
	}
	s.startSession(c, staff, "link")
}
