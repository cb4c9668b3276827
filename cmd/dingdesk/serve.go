package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/adapter/dingtalk"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/desk"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/pipeline"
	"github.com/dingdesk/dingdesk/storage"
)

func runServe(args []string, stderr io.Writer) int {
	cfg, _, code := loadConfigArgs("serve", args, stderr, nil)
	if code != 0 {
		return code
	}
	log := newLogger(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	m := NewMain(cfg, log)
	if err := m.Run(ctx); err != nil {
		log.Error("start failed", "err", err)
		closeCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
		defer cancel()
		m.Close(closeCtx)
		return 1
	}
	<-ctx.Done()
	stop() // a second signal kills the process at once
	log.Info("shutting down", "timeout", cfg.Server.ShutdownTimeout)
	closeCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := m.Close(closeCtx); err != nil {
		log.Error("shutdown incomplete", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Main is the running service: every component and the order they start
// and stop in. Tests run it with server.listen "127.0.0.1:0" and read Addr.
type Main struct {
	Config  *config.Store
	Log     *slog.Logger
	Clock   handoff.Clock
	Metrics *pipeline.Metrics

	DB    *storage.DB
	Inbox *storage.Inbox
	Bot   *bot.Bot
	// Semantic is the bot's semantic tier (nil when off), kept across
	// knowledge-base reloads.
	Semantic *bot.Semantic
	// Platform is DingTalk unless set before Run (dingdesk chat sets a
	// terminal adapter).
	Platform adapter.Adapter
	webhook  gin.HandlerFunc // the DingTalk callback, in webhook mode
	Outbox   *pipeline.Outbox
	Engine   *handoff.Engine
	Desk     *desk.Desk
	Intake   *pipeline.Intake

	// Addr is the HTTP address actually bound (after Run).
	Addr string

	hits *hitFlusher
	// kbInputs fingerprints what the running knowledge base was built from
	// (knowledgeInputs); only Run and the watcher's goroutine touch it.
	kbInputs string
	http     *http.Server
	cancel   context.CancelFunc // stops the background loops
	bg       sync.WaitGroup
}

// NewMain prepares a service for cfg; nothing starts before Run.
func NewMain(cfg *config.Config, log *slog.Logger) *Main {
	return &Main{Config: config.NewStore(cfg), Log: log, Clock: handoff.SystemClock{}, Metrics: &pipeline.Metrics{}}
}

// Run opens storage, loads the knowledge base, starts the engine, the HTTP
// server and the DingTalk connection, and returns once all are up.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config.Current()
	var err error
	if m.DB, err = storage.Open(ctx, cfg.Storage, m.Log); err != nil {
		return err
	}
	m.Log.Info("storage ready", "driver", cfg.Storage.Driver)
	m.Inbox = storage.NewInbox(m.DB, m.Clock.Now)

	m.kbInputs = knowledgeInputs(cfg) // before reading: a later edit then differs
	entries, err := bot.LoadKnowledge(knowledgePaths(cfg))
	if err != nil {
		return fmt.Errorf("knowledge files: %w", err)
	}
	m.Semantic = newSemantic(cfg, m.Log.With("component", "semantic"))
	kb, err := buildKBWith(cfg, entries, m.Semantic)
	if err != nil {
		return fmt.Errorf("knowledge base: %w", err)
	}
	m.Bot = bot.New(kb)
	m.hits = &hitFlusher{bot: m.Bot, store: storage.NewHitStore(m.DB), flushed: map[string]int64{}}
	if counts, err := m.hits.store.Load(ctx); err == nil {
		m.Bot.SeedHits(counts)
		m.hits.flushed = counts
	}
	m.Log.Info("knowledge base loaded", "entries", kb.Len())

	if m.Platform == nil {
		dt, err := dingtalk.New(cfg.DingTalk, dingtalk.Options{Logger: m.Log.With("component", "dingtalk")})
		if err != nil {
			return err
		}
		m.Platform, m.webhook = dt, dt.WebhookHandler()
	}
	m.Outbox = pipeline.NewOutbox(storage.NewOutboxStore(m.DB), m.Platform,
		func() config.Outbox { return m.Config.Current().Outbox }, m.Clock.Now, m.Log.With("component", "outbox"), m.Metrics)
	m.Engine = handoff.New(handoff.Deps{
		Config: m.Config, Bot: m.Bot, DB: m.DB, Clock: m.Clock,
		Log: m.Log.With("component", "handoff"), Kick: m.Outbox.Kick,
	})
	m.Desk = desk.New(m.Engine, m.Config, m.Bot, m.DB, m.Clock.Now)
	m.Intake = pipeline.NewIntake(m.Inbox, m.route, 64, m.Log.With("component", "intake"), m.Metrics)

	bg, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.goBackground(func() { m.Intake.RunRecovery(bg, 10*time.Second, 30*time.Second) })
	m.goBackground(func() { m.Outbox.Run(bg) })
	m.goBackground(func() { m.Engine.RunTimers(bg) })
	m.goBackground(func() { m.pruneInbox(bg) })
	m.goBackground(func() { m.flushHits(bg) })
	m.goBackground(func() { m.watchConfig(bg) })

	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("server.listen: %w", err)
	}
	m.Addr = ln.Addr().String()
	m.http = &http.Server{Handler: m.routes(cfg), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := m.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("http server stopped", "err", err)
		}
	}()
	m.Log.Info("listening", "addr", m.Addr, "dingtalk_mode", cfg.DingTalk.Mode)

	if err := m.Platform.Start(ctx, m.Intake.Accept); err != nil {
		return fmt.Errorf("dingtalk: %w", err)
	}
	return nil
}

// route sends an agent's 1:1 message to the desk and everything else to
// the engine.
func (m *Main) route(ctx context.Context, msg adapter.Message) error {
	if msg.ConversationType == adapter.Private && m.Config.Current().IsAgent(msg.SenderStaffID) {
		return m.Desk.Handle(ctx, msg)
	}
	return m.Engine.Handle(ctx, msg)
}

func (m *Main) goBackground(fn func()) {
	m.bg.Add(1)
	go func() { defer m.bg.Done(); fn() }()
}

// routes is the HTTP surface: health, readiness, metrics and, in webhook
// mode, the DingTalk callback.
func (m *Main) routes(cfg *config.Config) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery(), requestLog(m.Log.With("component", "http")))
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", func(c *gin.Context) {
		checks := gin.H{}
		ready := true
		if err := m.DB.Ping(c.Request.Context()); err != nil {
			checks["storage"], ready = err.Error(), false
		} else {
			checks["storage"] = "ok"
		}
		if err := m.Platform.Ready(); err != nil {
			checks["dingtalk"], ready = err.Error(), false
		} else {
			checks["dingtalk"] = "ok"
		}
		status := http.StatusOK
		if !ready {
			status = http.StatusServiceUnavailable
		}
		c.JSON(status, gin.H{"ready": ready, "checks": checks})
	})
	r.GET("/metrics", func(c *gin.Context) {
		c.Header("Content-Type", "text/plain; version=0.0.4")
		m.Metrics.WriteTo(c.Writer)
		writeCollectors(c.Writer, m.Semantic)
		if m.DB != nil {
			commits, txs := m.DB.GroupStats()
			pipeline.WriteCounter(c.Writer, "dingdesk_storage_group_commits_total", "Commits of grouped hand-off transactions (SQLite).", commits)
			pipeline.WriteCounter(c.Writer, "dingdesk_storage_grouped_transactions_total", "Hand-off transactions committed in those groups (SQLite).", txs)
		}
	})
	if m.webhook != nil && (cfg.DingTalk.Mode == "webhook" || cfg.DingTalk.Mode == "both") {
		r.POST(cfg.DingTalk.WebhookPath, m.webhook)
	}
	return r
}

// requestLog writes one structured line per request.
func requestLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		} else if c.Request.URL.Path == "/healthz" || c.Request.URL.Path == "/readyz" || c.Request.URL.Path == "/metrics" {
			level = slog.LevelDebug
		}
		log.Log(c.Request.Context(), level, "request", "method", c.Request.Method, "path", c.Request.URL.Path,
			"status", status, "elapsed", time.Since(start), "bytes", c.Writer.Size())
	}
}

// Close stops in reverse order within ctx: stop intake (DingTalk stream,
// then HTTP), finish handling what was accepted, stop the background
// loops, close storage.
func (m *Main) Close(ctx context.Context) error {
	var errs []error
	if m.Platform != nil {
		errs = append(errs, m.Platform.Close())
	}
	if m.http != nil {
		errs = append(errs, m.http.Shutdown(ctx))
	}
	if m.Intake != nil {
		if err := m.Intake.Drain(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain: %w (unhandled messages stay stored for the next start)", err))
		}
	}
	if m.cancel != nil {
		m.cancel()
		done := make(chan struct{})
		go func() { m.bg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, errors.New("background loops did not stop in time"))
		}
	}
	if m.Outbox != nil {
		m.Outbox.Close()
	}
	if m.Inbox != nil {
		m.Inbox.Close()
	}
	if m.DB != nil {
		if m.hits != nil {
			m.hits.flush(context.Background())
		}
		errs = append(errs, m.DB.Close())
	}
	return errors.Join(errs...)
}

// pruneInbox forgets msgIds older than storage.dedup_retention, hourly.
func (m *Main) pruneInbox(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		cutoff := m.Clock.Now().Add(-m.Config.Current().Storage.DedupRetention)
		if n, err := m.Inbox.Prune(ctx, cutoff); err != nil {
			m.Log.Warn("inbox prune failed", "err", err)
		} else if n > 0 {
			m.Log.Info("inbox pruned", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// flushHits persists knowledge hit counts every 30s (not per message: a
// popular entry would otherwise be a hot row).
func (m *Main) flushHits(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.hits.flush(ctx); err != nil {
				m.Log.Warn("hit counts not saved", "err", err)
			}
		}
	}
}

// hitFlusher writes the hits counted since its last flush. Counts start
// from storage (SeedHits), so each replica adds only its own.
type hitFlusher struct {
	mu      sync.Mutex
	bot     *bot.Bot
	store   *storage.HitStore
	flushed map[string]int64 // entry id → count already stored
}

func (f *hitFlusher) flush(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	deltas := map[string]int64{}
	for _, e := range f.bot.KB().Entries() {
		if d := f.bot.Hits(e.ID) - f.flushed[e.ID]; d > 0 {
			deltas[e.ID] = d
		}
	}
	if err := f.store.Flush(ctx, deltas); err != nil {
		return err
	}
	for id, d := range deltas {
		f.flushed[id] += d
	}
	return nil
}

// watchConfig reloads the config and knowledge files when they change.
func (m *Main) watchConfig(ctx context.Context) {
	paths := func() []string {
		cfg := m.Config.Current()
		ps := append([]string{cfg.Path}, knowledgePaths(cfg)...)
		if cfg.Bot.SynonymsFile != "" {
			ps = append(ps, cfg.Resolve(cfg.Bot.SynonymsFile))
		}
		return ps
	}
	if err := config.Watch(ctx, paths, 300*time.Millisecond, m.Reload); err != nil {
		m.Log.Error("config watcher failed; live reload is off", "err", err)
	}
}

// Reload reads the config and knowledge files again. An invalid config or
// knowledge file is logged with its problems and the running one stays.
func (m *Main) Reload() {
	old := m.Config.Current()
	cfg, err := config.Load(old.Path)
	if err != nil {
		var ve *config.ValidationError
		if errors.As(err, &ve) {
			problems := make([]string, len(ve.Problems))
			for i, p := range ve.Problems {
				problems[i] = p.String()
			}
			m.Log.Error("config change rejected; the running config stays", "problems", problems)
		} else {
			m.Log.Error("config change rejected; the running config stays", "err", err)
		}
		return
	}
	// Rebuilding a large knowledge base takes seconds (and retrains its
	// classifier): only when its inputs changed, not for every config edit.
	if inputs := knowledgeInputs(cfg); inputs != m.kbInputs {
		entries, err := bot.LoadKnowledge(knowledgePaths(cfg))
		if err == nil {
			var kb *bot.KnowledgeBase
			if kb, err = buildKBWith(cfg, entries, m.Semantic); err == nil {
				m.Bot.Replace(kb)
				m.kbInputs = inputs
				m.Log.Info("knowledge base reloaded", "entries", kb.Len())
			}
		}
		if err != nil {
			m.Log.Error("knowledge change rejected; the running knowledge base stays", "err", err)
		}
	}
	for _, key := range restartKeys(old, cfg) {
		m.Log.Warn("config key changed but takes effect only after a restart", "key", key)
	}
	m.Config.Replace(cfg)
	m.Log.Info("config reloaded", "path", cfg.Path)
}

// knowledgeInputs fingerprints what the knowledge base is built from: the
// bot config and each knowledge or synonyms file's size and modification
// time.
func knowledgeInputs(cfg *config.Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%#v", cfg.Bot)
	files := knowledgePaths(cfg)
	if cfg.Bot.SynonymsFile != "" {
		files = append(files, cfg.Resolve(cfg.Bot.SynonymsFile))
	}
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "|%s %d %d", f, st.Size(), st.ModTime().UnixNano())
		} else {
			fmt.Fprintf(&b, "|%s missing", f)
		}
	}
	return b.String()
}

// restartKeys lists changed keys that a running service cannot apply.
func restartKeys(a, b *config.Config) []string {
	var keys []string
	if a.Server.Listen != b.Server.Listen {
		keys = append(keys, "server.listen")
	}
	if a.Storage.Driver != b.Storage.Driver || a.Storage.DSN != b.Storage.DSN {
		keys = append(keys, "storage")
	}
	if a.DingTalk.Mode != b.DingTalk.Mode || a.DingTalk.ClientID != b.DingTalk.ClientID ||
		a.DingTalk.ClientSecret != b.DingTalk.ClientSecret || a.DingTalk.APIBase != b.DingTalk.APIBase ||
		a.DingTalk.WebhookPath != b.DingTalk.WebhookPath || a.DingTalk.RobotCode != b.DingTalk.RobotCode ||
		!slices.Equal(a.DingTalk.SessionWebhookHosts, b.DingTalk.SessionWebhookHosts) {
		keys = append(keys, "dingtalk")
	}
	if a.Bot.Semantic != b.Bot.Semantic {
		keys = append(keys, "bot.semantic")
	}
	return keys
}
