// Package web is dingdesk's browser side: the agent workbench (客服工作台)
// under /desk, the login (DingTalk OAuth, 免登 inside the DingTalk client,
// one-time login links), browser sessions with CSRF protection, and the
// live transport (Server-Sent Events backed by a stored event table). The
// events are written by the hand-off engine in its own transactions
// (handoff.Tx.Publish, written to the table by storage); the Hub tails it and
// fans them out, so every replica's browsers see every change. An admin
// console (/admin, the landing page of an admin's login) is meant to mount
// on the same pieces — Server.Protected, Server.Hub and Mount's router —
// and is not part of this package: until it is mounted, /admin is not
// served.
//
// Pages are html/template, embedded with go:embed; htmx swaps fragments;
// static assets are embedded and served under a content-hash path, cached
// for a year. The package talks to the hand-off engine through Engine, to
// the knowledge base through Knowledge and to storage through Store: all
// defined here, implemented and wired in cmd/dingdesk.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dingdesk/dingdesk/config"
)

// Engine is what the workbench asks the hand-off engine to do. Sessions
// are addressed by the agent's number (Session.No), as in the DingTalk
// desk, so both desks act on the same sessions.
type Engine interface {
	SetPresence(ctx context.Context, staffID string, p Presence) error
	// AgentState is the agent's presence and their groups' queue lengths.
	AgentState(ctx context.Context, staffID string) (Presence, []Queue, error)
	Reply(ctx context.Context, staffID string, no int, text string) error
	End(ctx context.Context, staffID string, no int) error
	// Transfer moves the session to a skill group, with an optional note
	// (转接附言) for whoever takes it.
	Transfer(ctx context.Context, staffID string, no int, group, note string) (Transferred, error)
	// TransferToAgent moves the session to a named agent, with an
	// optional note.
	TransferToAgent(ctx context.Context, staffID string, no int, toStaffID, note string) (Transferred, error)
	// Suggestions are the knowledge base's best entries for the user's last
	// question, with that question.
	Suggestions(ctx context.Context, staffID string, no int) (question string, list []Suggestion, err error)
}

// Queue is the queue length of one skill group.
type Queue struct {
	Group, Display string
	Length         int
}

// Transferred is where a transferred session went.
type Transferred struct {
	SessionID int64  // the new session
	Agent     string // its agent; "" when it queues
	Position  int    // its queue position when it queues
}

// Suggestion is one 推荐知识 entry.
type Suggestion struct{ EntryID, Question, Answer string }

// Knowledge is the knowledge base as the workbench searches it.
type Knowledge interface {
	Search(query string, n int) []Answer
	Hot(n int) []Answer
}

// Answer is one knowledge entry.
type Answer struct{ ID, Question, Answer string }

// ShownError is an error whose text is fit to show the agent (the engine's
// Chinese refusals: 该会话已结束, 该技能组现在没有其他客服在线, …).
type ShownError struct{ Text string }

func (e *ShownError) Error() string { return e.Text }

// Identifier logs people in with DingTalk (docs/DINGTALK-LOGIN.md).
type Identifier interface {
	AuthorizeURL(redirectURI, state string) string
	// ByAuthCode and ByJSAPICode return the org userid; ErrLoginRefused
	// when the person may not log in, ErrLoginCode for a bad code.
	ByAuthCode(ctx context.Context, code string) (string, error)
	ByJSAPICode(ctx context.Context, code string) (string, error)
	ClientID() string
	CorpID() string
}

// Directory looks users up in the organisation's address book, for 会员信息
// (an Identifier may also be one).
type Directory interface {
	UserDetail(ctx context.Context, userID string) (UserDetail, error)
}

// UserDetail is what the directory says about a user.
type UserDetail struct{ Name, Title, Mobile, Email string }

// Errors an Identifier returns.
var (
	ErrLoginRefused = errors.New("not a member of the organisation")
	ErrLoginCode    = errors.New("login code invalid or expired")
)

// Deps are the server's collaborators.
type Deps struct {
	Config func() *config.Config
	Store  Store
	Engine Engine
	KB     Knowledge
	// Login is nil when DingTalk login is not configured; login links
	// still work.
	Login Identifier
	Now   func() time.Time
	Log   *slog.Logger
	// PublicURL is the effective server.public_url.
	PublicURL string
	// Directory, when set, adds DingTalk's details of a user to 会员信息.
	Directory Directory
	// Admin, when set, adds the admin console under /admin (admin.go).
	Admin Admin
}

// Server is the web side, mounted on the service's gin engine.
type Server struct {
	d      Deps
	hub    *Hub
	pages  *pages
	secure bool
	base   *url.URL
	people *detailCache

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds the server; Start runs its background loops.
func New(d Deps) (*Server, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	base, err := url.Parse(strings.TrimRight(d.PublicURL, "/"))
	if err != nil || base.Host == "" {
		return nil, errors.New("web: public URL " + d.PublicURL + " is not an absolute URL")
	}
	p, err := loadPages(func() *config.WebTexts { return &d.Config().Web.Texts })
	if err != nil {
		return nil, err
	}
	s := &Server{d: d, pages: p, secure: base.Scheme == "https", base: base, people: newDetailCache(d.Directory, d.Now)}
	s.hub = NewHub(d.Store, d.Log, d.Now, func() time.Duration { return d.Config().Web.EventRetention })
	return s, nil
}

// Hub is the live transport (and the Publisher the engine may call).
func (s *Server) Hub() *Hub { return s.hub }

// Start runs the event tailer and the hourly prune of expired browser
// sessions. The events come from the engine's transactions (whatever
// front end, user or timer caused them, on any replica).
func (s *Server) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.goBG(func() { s.hub.Run(ctx) })
	s.goBG(func() {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			if _, err := s.d.Store.PruneWebSessions(ctx, s.d.Now()); err != nil && ctx.Err() == nil {
				s.d.Log.Warn("web session prune failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

func (s *Server) goBG(fn func()) {
	s.wg.Add(1)
	go func() { defer s.wg.Done(); fn() }()
}

// CloseStreams ends the open SSE streams, so an HTTP shutdown does not
// wait for them (register it with http.Server.RegisterOnShutdown).
func (s *Server) CloseStreams() { s.hub.Close() }

// Close stops the background loops and the streams.
func (s *Server) Close() {
	s.hub.Close()
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// Mount adds the login, the workbench and the static assets to r.
func (s *Server) Mount(r gin.IRouter) {
	r.GET("/static/:hash/*name", s.static)
	r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusFound, "/desk") })
	r.GET("/login", s.loginPage)
	r.POST("/logout", s.Protected(), s.logout)
	r.GET("/auth/dingtalk/start", s.oauthStart)
	r.GET("/auth/dingtalk/callback", s.oauthCallback)
	r.POST("/auth/dingtalk/jsapi", s.jsapiLogin)
	r.GET("/auth/link", s.linkPage)
	r.POST("/auth/link", s.linkRedeem)

	d := r.Group("/desk", s.Protected(RoleAgent))
	d.GET("", s.deskPage)
	d.GET("/events", s.events)
	d.GET("/status", s.statusFragment)
	d.POST("/presence", s.setPresence)
	d.GET("/list", s.listFragment)
	d.GET("/ended", s.endedPage)
	d.GET("/s/:id", s.sessionPage)
	d.GET("/s/:id/chat", s.chatFragment)
	d.GET("/s/:id/transcript", s.transcriptFragment)
	d.GET("/s/:id/info", s.infoFragment)
	d.GET("/s/:id/suggest", s.suggestFragment)
	d.POST("/s/:id/reply", s.reply)
	d.POST("/s/:id/read", s.markRead)
	d.POST("/s/:id/end", s.end)
	d.GET("/s/:id/transfer", s.transferDialog)
	d.POST("/s/:id/transfer", s.transfer)
	d.GET("/kb", s.kbSearch)
	d.GET("/canned", s.cannedFragment)
	d.GET("/settings", s.settingsPage)
	d.POST("/settings/canned", s.cannedAdd)
	d.POST("/settings/canned/:cid", s.cannedUpdate)
	d.POST("/settings/canned/:cid/delete", s.cannedDelete)
	d.POST("/settings/canned/:cid/move", s.cannedMove)
	s.mountAdmin(r)
}
