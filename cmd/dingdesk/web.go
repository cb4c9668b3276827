package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/adapter/dingtalk"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/desk"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/web"
)

// The web workbench's wiring: the engine, the knowledge base and the
// DingTalk login seen through web's interfaces.

// startWeb builds the workbench for the bound address m.Addr and starts
// its background loops; routes mounts it.
func (m *Main) startWeb(cfg *config.Config) error {
	var (
		login web.Identifier
		dir   web.Directory
	)
	if cfg.DingTalk.ClientID != "" {
		l, err := dingtalk.NewLogin(cfg.DingTalk, dingtalk.Options{Logger: m.Log.With("component", "dingtalk-login")})
		if err != nil {
			return err
		}
		login, dir = webLogin{l}, webLogin{l}
	}
	w, err := web.New(web.Deps{
		Config: m.Config.Current, Store: gormstore.NewWebStore(m.DB), Engine: webEngine{m.Engine, m.Config},
		KB: webKB{m.Bot}, Login: login, Now: m.Clock.Now, Log: m.Log.With("component", "web"),
		PublicURL: cfg.EffectivePublicURL(m.Addr), Directory: dir, Admin: adminConsole{m},
	})
	if err != nil {
		return err
	}
	m.Web = w
	w.Start()
	m.Log.Info("workbench ready", "url", cfg.EffectivePublicURL(m.Addr)+"/desk", "dingtalk_login", login != nil)
	return nil
}

// webEngine is the hand-off engine as the workbench uses it.
type webEngine struct {
	e   *handoff.Engine
	cfg *config.Store
}

var _ web.Engine = webEngine{}

// shown turns the engine's agent-facing refusals into the workbench's
// text for their code, with the DingTalk desk's mapping (desk.RefusalText):
// web.texts words the codes whose desk text names a #N (the web has no
// numbers) or lists the groups (the web offers them), the others read as
// in the DingTalk desk (desk.texts).
func (w webEngine) shown(err error) error {
	var he *handoff.Error
	if !errors.As(err, &he) {
		return err
	}
	cfg := w.cfg.Current()
	t, wt := cfg.Desk.Texts, &cfg.Web.Texts
	t.ErrUnknownSession, t.ErrNoCurrentSession = wt.ErrUnknownSession, wt.ErrUnknownSession
	t.ErrSessionEnded, t.ErrUnknownGroup = wt.ErrSessionEnded, wt.ErrUnknownGroup
	return &web.ShownError{Text: desk.RefusalText(cfg, &t, he)}
}

func (w webEngine) SetPresence(ctx context.Context, staffID string, p web.Presence) error {
	_, err := w.e.SetPresence(ctx, staffID, handoff.Presence(p))
	return w.shown(err)
}

func (w webEngine) AgentState(ctx context.Context, staffID string) (web.Presence, []web.Queue, error) {
	v, err := w.e.Sessions(ctx, staffID)
	if err != nil {
		return web.Offline, nil, w.shown(err)
	}
	qs := make([]web.Queue, len(v.Queues))
	for i, q := range v.Queues {
		qs[i] = web.Queue{Group: q.Group, Display: q.Display, Length: q.Length}
	}
	return web.Presence(v.Presence), qs, nil
}

func (w webEngine) Reply(ctx context.Context, staffID string, no int, text string) error {
	_, err := w.e.AgentReply(ctx, staffID, no, text)
	return w.shown(err)
}

func (w webEngine) End(ctx context.Context, staffID string, no int) error {
	_, err := w.e.End(ctx, staffID, no)
	return w.shown(err)
}

func (w webEngine) Transfer(ctx context.Context, staffID string, no int, group, note string) (web.Transferred, error) {
	mv, err := w.e.Transfer(ctx, staffID, no, group, note)
	if err != nil {
		return web.Transferred{}, w.shown(err)
	}
	return web.Transferred{SessionID: mv.To.ID, Agent: mv.To.Agent, Position: mv.To.Position}, nil
}

func (w webEngine) TransferToAgent(ctx context.Context, staffID string, no int, toStaffID, note string) (web.Transferred, error) {
	mv, err := w.e.TransferToAgent(ctx, staffID, no, toStaffID, note)
	if err != nil {
		return web.Transferred{}, w.shown(err)
	}
	return web.Transferred{SessionID: mv.To.ID, Agent: mv.To.Agent}, nil
}

func (w webEngine) Suggestions(ctx context.Context, staffID string, no int) (string, []web.Suggestion, error) {
	// Suggest also remembers the list as the one this agent was shown, so
	// the desk's 推荐 N picks from what the workbench displayed.
	sg, err := w.e.Suggest(ctx, staffID, no)
	if errors.Is(err, handoff.ErrNoQuestion) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, w.shown(err)
	}
	q, list := sg.Question, sg.Items
	out := make([]web.Suggestion, len(list))
	for i, s := range list {
		out[i] = web.Suggestion{EntryID: s.EntryID, Question: s.Question, Answer: s.Answer}
	}
	return q, out, nil
}

// webKB is the knowledge base as the workbench searches it.
type webKB struct{ b *bot.Bot }

func (k webKB) Search(q string, n int) []web.Answer {
	var out []web.Answer
	for _, e := range k.b.KB().Search(q, n) {
		out = append(out, web.Answer{ID: e.ID, Question: e.Question, Answer: e.Answer})
	}
	return out
}

func (k webKB) Hot(n int) []web.Answer {
	var out []web.Answer
	for _, e := range k.b.Hot(n) {
		out = append(out, web.Answer{ID: e.ID, Question: e.Question, Answer: e.Answer})
	}
	return out
}

// webLogin is DingTalk login as the workbench uses it.
type webLogin struct{ l *dingtalk.Login }

func loginErr(err error) error {
	switch {
	case errors.Is(err, dingtalk.ErrLoginRefused):
		return fmt.Errorf("%w (%v)", web.ErrLoginRefused, err)
	case errors.Is(err, dingtalk.ErrLoginCode):
		return fmt.Errorf("%w (%v)", web.ErrLoginCode, err)
	}
	return err
}

func (w webLogin) AuthorizeURL(redirectURI, state string) string {
	return w.l.AuthorizeURL(redirectURI, state)
}
func (w webLogin) ClientID() string { return w.l.ClientID() }
func (w webLogin) CorpID() string   { return w.l.CorpID() }

func (w webLogin) ByAuthCode(ctx context.Context, code string) (string, error) {
	u, err := w.l.ByAuthCode(ctx, code)
	return u.UserID, loginErr(err)
}

func (w webLogin) ByJSAPICode(ctx context.Context, code string) (string, error) {
	u, err := w.l.ByJSAPICode(ctx, code)
	return u.UserID, loginErr(err)
}

func (w webLogin) UserDetail(ctx context.Context, userID string) (web.UserDetail, error) {
	d, err := w.l.UserDetail(ctx, userID)
	return web.UserDetail{Name: d.Name, Title: d.Title, Mobile: d.Mobile, Email: d.Email}, err
}

// runLoginLink prints a one-time login URL for an agent or admin.
func runLoginLink(args []string, stdout, stderr io.Writer) int {
	var staff *string
	cfg, _, code := loadConfigArgs("login-link", args, stderr, func(fs *flag.FlagSet) {
		staff = fs.String("staff", "", "the agent's or admin's staff id (DingTalk userid)")
	})
	if code != 0 {
		return code
	}
	if strings.TrimSpace(*staff) == "" {
		fmt.Fprintln(stderr, "login-link: --staff STAFFID is required")
		return 2
	}
	if cfg.Server.PublicURL == "" {
		if _, port, err := net.SplitHostPort(cfg.Server.Listen); err != nil || port == "0" {
			fmt.Fprintln(stderr, "login-link: set server.public_url (the link must name the address agents open)")
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, ok := openToolDB(ctx, cfg, stderr)
	if !ok {
		return 1
	}
	defer db.Close()
	link, err := web.CreateLoginLink(ctx, gormstore.NewWebStore(db), cfg, cfg.EffectivePublicURL(cfg.Server.Listen), *staff, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "login-link: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, link)
	fmt.Fprintf(stderr, "valid once, for %s\n", cfg.Web.LoginLinkTTL)
	return 0
}
