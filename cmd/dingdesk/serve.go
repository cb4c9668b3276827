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
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/adapter/dingtalk"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/desk"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/knowledge"
	"github.com/dingdesk/dingdesk/metrics"
	"github.com/dingdesk/dingdesk/pipeline"
	"github.com/dingdesk/dingdesk/web"
)

func runServe(args []string, stderr io.Writer) int {
	cfg, path, code := loadConfigArgs("serve", args, stderr, nil)
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
	logTryIt(log, m.Addr, cfg, path)
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
	// Registry holds every metric /metrics serves (its own, never
	// Prometheus' global default registry).
	Registry *prometheus.Registry
	prom     *metrics.Metrics

	DB    *gormstore.DB
	Inbox *gormstore.Inbox
	Bot   *bot.Bot
	// Knowledge is the managed knowledge base (files + console edits);
	// KnowledgeSync keeps Bot on its latest revision; Reviewer is the
	// unanswered-questions workflow (cmd/dingdesk/knowledge.go).
	Knowledge     *knowledge.Manager
	KnowledgeSync *knowledge.Sync
	Reviewer      *knowledge.Reviewer
	kb            kbState
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
	Web      *web.Server // the workbench (web.go)

	// Addr is the HTTP address actually bound (after Run).
	Addr string

	hits  *hitFlusher
	probe *storageProbe
	// kbInputs fingerprints what the running knowledge base was built from
	// (knowledgeInputs); only Run and the watcher's goroutine touch it.
	kbInputs string
	http     *http.Server
	cancel   context.CancelFunc // stops the background loops
	bg       sync.WaitGroup
}

// NewMain prepares a service for cfg; nothing starts before Run.
func NewMain(cfg *config.Config, log *slog.Logger) *Main {
	return &Main{Config: config.NewStore(cfg), Log: log, Clock: handoff.SystemClock{},
		Metrics: &pipeline.Metrics{}, Registry: prometheus.NewRegistry()}
}

// Run opens storage, loads the knowledge base, starts the engine, the HTTP
// server and the DingTalk connection, and returns once all are up.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config.Current()
	var err error
	if m.DB, err = gormstore.Open(ctx, cfg.Storage, m.Log); err != nil {
		return err
	}
	m.Log.Info("storage ready", "driver", cfg.Storage.Driver, "replica", m.DB.ReplicaID())
	// Alive before accepting anything: the rows this process writes are
	// its own only while its heartbeat is fresh.
	if err := m.DB.Heartbeat(ctx, m.Clock.Now()); err != nil {
		return fmt.Errorf("storage heartbeat: %w", err)
	}
	m.Inbox = gormstore.NewInbox(m.DB, m.Clock.Now)
	m.probe = &storageProbe{check: m.Inbox.Probe}

	m.kbInputs = knowledgeInputs(cfg) // before reading: a later edit then differs
	// The semantic tier outlives knowledge rebuilds (its embedding cache
	// follows the entries); nil when bot.semantic is off.
	m.Semantic = newSemantic(cfg, m.Log.With("component", "semantic"))
	if err := m.startKnowledge(ctx, cfg); err != nil {
		return fmt.Errorf("knowledge: %w", err)
	}
	kb := m.Bot.KB()
	m.hits = &hitFlusher{bot: m.Bot, store: gormstore.NewHitStore(m.DB), flushed: map[string]int64{}}
	if counts, err := m.hits.store.Load(ctx); err == nil {
		m.Bot.SeedHits(counts)
		m.hits.flushed = counts
	}
	m.Log.Info("knowledge base loaded", "entries", kb.Len())

	mo := metrics.Options{
		Version: version, Counters: m.Metrics, Store: gormstore.NewStatsStore(m.DB),
		Groups: func() []config.SkillGroup { return m.Config.Current().SkillGroups },
		Now:    m.Clock.Now, Log: m.Log.With("component", "metrics"),
	}
	if m.DB.Driver == "sqlite" {
		mo.GroupCommits = m.DB.GroupStats
	}
	mo.Queued = func() int {
		if m.Intake == nil { // scraped before the intake is built
			return 0
		}
		return m.Intake.Queued()
	}
	if m.prom, err = metrics.New(m.Registry, mo); err != nil {
		return err
	}
	if m.Semantic != nil {
		for _, c := range m.Semantic.Collectors() {
			if err := m.Registry.Register(c); err != nil {
				return fmt.Errorf("register semantic metrics: %w", err)
			}
		}
	}
	m.Metrics.Delivered = m.prom.Delivered

	if m.Platform == nil {
		dt, err := dingtalk.New(cfg.DingTalk, dingtalk.Options{Logger: m.Log.With("component", "dingtalk")})
		if err != nil {
			return err
		}
		m.Platform, m.webhook = dt, dt.WebhookHandler()
	}
	m.Outbox = pipeline.NewOutbox(gormstore.NewOutboxStore(m.DB), m.Platform,
		func() config.Outbox { return m.Config.Current().Outbox }, m.Clock.Now, m.Log.With("component", "outbox"), m.Metrics)
	m.Engine = handoff.New(handoff.Deps{
		Config: m.Config, Bot: m.Bot, Store: gormstore.NewHandoffStore(m.DB, m.kickCommitted), Clock: m.Clock,
		Log: m.Log.With("component", "handoff"), Observer: m.prom,
	})
	m.Desk = desk.New(m.Engine, m.Config, m.Bot)
	m.Intake = pipeline.NewIntake(m.Inbox, m.prom.TimeHandle(m.route), pipeline.IntakeOptions{
		Shards: 64, Config: func() config.Inbox { return m.Config.Current().Inbox },
		Kick: m.Outbox.Kick, Now: m.Clock.Now, Log: m.Log.With("component", "intake"), Metrics: m.Metrics,
	})

	bg, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.goBackground(func() { m.heartbeat(bg) })
	m.goBackground(func() { m.Intake.RunRecovery(bg, m.DB.HeartbeatInterval()) })
	m.goBackground(func() { m.Outbox.Run(bg) })
	m.goBackground(func() { m.Engine.RunTimers(bg) })
	m.goBackground(func() { m.pruneInbox(bg) })
	m.goBackground(func() { m.flushHits(bg) })
	m.goBackground(func() { m.watchConfig(bg) })
	m.goBackground(func() { m.KnowledgeSync.Run(bg) })

	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("server.listen: %w", err)
	}
	m.Addr = ln.Addr().String()
	if err := m.startWeb(cfg); err != nil {
		ln.Close()
		return err
	}
	m.http = newHTTPServer(m.routes(cfg), cfg.Server)
	m.http.RegisterOnShutdown(m.Web.CloseStreams) // open SSE streams would hold Shutdown
	go func() {
		if err := m.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("http server stopped", "err", err)
		}
	}()
	m.Log.Info("listening", "addr", m.Addr, "dingtalk_mode", cfg.DingTalk.Mode)
	for _, w := range cfg.Warnings() {
		m.Log.Warn("config warning", "key", w.Key, "warning", w.Message)
	}

	if err := m.Platform.Start(ctx, m.prom.TimeAccept(m.Intake.Accept)); err != nil {
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

// kickCommitted hands the replies an engine transaction committed to the
// sender, once the metrics have noted them (a reply can be sent before
// Kick returns).
func (m *Main) kickCommitted(ctx context.Context, items []gormstore.OutboxItem) {
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	m.prom.Enqueued(ctx, ids)
	m.Outbox.Kick(items)
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
		// A write like the inbox's, not a ping: a database that answers
		// pings but refuses writes (disk full, read-only) takes no message.
		if err := m.probe.run(c.Request.Context()); err != nil {
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
	r.GET("/metrics", gin.WrapH(m.prom.Handler()))
	if m.webhook != nil && (cfg.DingTalk.Mode == "webhook" || cfg.DingTalk.Mode == "both") {
		r.POST(cfg.DingTalk.WebhookPath, m.webhook)
	}
	if m.Web != nil {
		m.Web.Mount(r)
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
		// Checked first: the attributes cost allocations on every request
		// even when the line is not written (log.level warn and above).
		if ctx := c.Request.Context(); log.Enabled(ctx, level) {
			log.Log(ctx, level, "request", "method", c.Request.Method, "path", c.Request.URL.Path,
				"status", status, "elapsed", time.Since(start), "bytes", c.Writer.Size())
		}
	}
}

// Close stops in reverse order within ctx: stop intake (DingTalk stream,
// then HTTP), finish handling what was accepted, stop the background
// loops, close gormstore.
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
	if m.Web != nil {
		m.Web.Close()
	}
	if m.Outbox != nil {
		m.Outbox.Close()
	}
	if m.Inbox != nil {
		m.Inbox.Close()
	}
	if m.DB != nil && m.cancel != nil {
		// Whatever is left unfinished is taken over at once, not after the
		// heartbeat timeout.
		rctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := m.DB.Retire(rctx, m.Clock.Now()); err != nil {
			m.Log.Warn("replica not retired; its work is taken over after storage.replica_timeout", "err", err)
		}
		cancel()
	}
	if m.DB != nil {
		if m.hits != nil {
			m.hits.flush(context.Background())
		}
		errs = append(errs, m.DB.Close())
	}
	return errors.Join(errs...)
}

// heartbeat keeps this replica alive in storage; when its beats stop (a
// crash, kill -9, a cut-off network), others take its work over after
// storage.replica_timeout.
func (m *Main) heartbeat(ctx context.Context) {
	t := time.NewTicker(m.DB.HeartbeatInterval())
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		bctx, cancel := context.WithTimeout(ctx, m.DB.HeartbeatInterval())
		err := m.DB.Heartbeat(bctx, m.Clock.Now())
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			m.Log.Warn("heartbeat not written; other replicas may take this one's work over", "err", err)
			failing = true
		case err == nil && failing:
			m.Log.Info("heartbeat written again")
			failing = false
		}
	}
}

// storageProbe runs the inbox's write probe for /readyz, at most once a
// second whatever the probe rate: a probe is a synced commit.
type storageProbe struct {
	check func(context.Context) error
	mu    sync.Mutex
	at    time.Time
	err   error
}

func (p *storageProbe) run(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.at) < time.Second {
		return p.err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	p.err, p.at = p.check(ctx), time.Now()
	return p.err
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
	store   *gormstore.HitStore
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

// Reload reads the config and knowledge files again and applies them whole
// or not at all: an invalid config or knowledge file is logged with every
// problem of both, and the running config and knowledge base stay.
func (m *Main) Reload() {
	old := m.Config.Current()
	cfg, cfgErr := config.Read(old.Path)
	if cfg == nil {
		m.Log.Error("config change rejected; the running config and knowledge base stay", "err", cfgErr)
		return
	}
	// Rebuilding a large knowledge base takes seconds (and retrains its
	// classifier): only when its inputs changed, not for every config edit.
	// The knowledge is read once: for its problems when the config is
	// invalid, else to be built with the managed records (useKnowledge).
	var (
		kbErr error
		files []bot.Entry
		opts  bot.Options
	)
	inputs := knowledgeInputs(cfg)
	kbChanged := inputs != m.kbInputs
	if kbChanged {
		files, opts, kbErr = loadKnowledge(cfg)
	}
	if cfgErr != nil || kbErr != nil {
		m.Log.Error("config change rejected; the running config and knowledge base stay",
			"problems", problemLines(cfgErr, kbErr))
		return
	}
	if kbChanged {
		if err := m.useKnowledge(context.Background(), files, opts); err != nil {
			m.Log.Error("config change rejected; the running config and knowledge base stay", "err", err)
			return
		}
		m.kbInputs = inputs
		m.Log.Info("knowledge base reloaded", "entries", m.Bot.KB().Len())
	}
	for _, key := range restartKeys(old, cfg) {
		m.Log.Warn("config key changed but takes effect only after a restart", "key", key)
	}
	for _, w := range cfg.Warnings() {
		m.Log.Warn("config warning", "key", w.Key, "warning", w.Message)
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
	if a.Server != b.Server {
		keys = append(keys, "server")
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
