// Package gormstore is dingdesk's persistence on gorm: SQLite (embedded, the
// zero-setup default) or MySQL-compatible servers (MySQL 8, MariaDB 10.6+,
// TiDB) when several replicas share state. Row types live here and are
// converted to the domain types of adapter, bot and handoff at the edge, so
// gorm tags never leak out of this package.
//
// It implements the interfaces the domain packages define: HandoffStore is
// handoff.Store (its handoffTx is handoff.Tx, which also writes the
// engine's outbox rows and web events and marks the inbound message
// handled); Inbox and OutboxStore keep the pipeline's stored intake and
// outbox, with the replicas' heartbeats and take-over (replica.go);
// WebStore serves web.Store (browser sessions, login links, the event
// table); KnowledgeStore, HitStore, ReportStore, MonitorStore, StatsStore
// and TranscriptStore serve managed knowledge, reports, the monitor and
// transcripts. On SQLite the hand-off transactions waiting at one moment
// share one commit, each in its own savepoint (group.go).
package gormstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	mysqldrv "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"

	"github.com/dingdesk/dingdesk/config"
)

// DB is an open database. Its gorm handle stays inside this package: the
// domain packages reach storage through the interfaces they define
// (handoff.Store) and the stores here implement them.
type DB struct {
	gorm   *gorm.DB
	Driver string // "sqlite" or "mysql"
	// sqliteSync is SQLite's synchronous level as the DSN set it (0 OFF,
	// 1 NORMAL, 2 FULL, 3 EXTRA); durableTx raises it for the inbox.
	sqliteSync int
	// group commits concurrent Handoff transactions together (group.go).
	group *txGroup
	// wal is SQLite's write-ahead log, synced by durableTx (nil on MySQL
	// or when SQLite is not in WAL mode); walSyncs counts those syncs.
	wal      *walFile
	walSyncs atomic.Int64
	// replica identifies this process in the replicas table: it owns the
	// inbox rows it accepted and the sends it claimed (see replica.go).
	replica        string
	replicaTimeout time.Duration
	lastBeat       atomic.Int64 // unix nanos of the last heartbeat written
	// statements counts the SQL statements sent (gorm's and the
	// hand-written ones of the hot path), for the benchmarks'
	// statements-per-message figure. BEGIN and COMMIT are not counted.
	statements atomic.Int64
	preparedStmts
}

// Statements reports how many SQL statements this DB has sent so far
// (BEGIN and COMMIT aside); benchmarks divide its growth by the messages.
func (db *DB) Statements() int64 { return db.statements.Load() }

// countStatements counts every statement gorm runs.
func (db *DB) countStatements() error {
	count := func(*gorm.DB) { db.statements.Add(1) }
	cb := db.gorm.Callback()
	for _, err := range []error{
		cb.Create().Before("gorm:create").Register("dingdesk:count", count),
		cb.Query().Before("gorm:query").Register("dingdesk:count", count),
		cb.Update().Before("gorm:update").Register("dingdesk:count", count),
		cb.Delete().Before("gorm:delete").Register("dingdesk:count", count),
		cb.Row().Before("gorm:row").Register("dingdesk:count", count),
		cb.Raw().Before("gorm:raw").Register("dingdesk:count", count),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// Open connects, tunes the pool for the driver and runs the migrations.
func Open(ctx context.Context, cfg config.Storage, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.Default()
	}
	gcfg := &gorm.Config{
		Logger:                 newGormLogger(log),
		SkipDefaultTransaction: true, // we open transactions where we need them
		PrepareStmt:            false,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
	var (
		g   *gorm.DB
		err error
	)
	switch cfg.Driver {
	case "sqlite":
		dsn, derr := sqliteDSN(cfg.DSN.Reveal())
		if derr != nil {
			return nil, derr
		}
		// Opening applies the DSN's pragmas; switching a new file to WAL
		// needs a lock SQLite does not wait for (no busy handler), so
		// two processes starting on one file at once may see SQLITE_BUSY
		// here: try again for a while.
		for attempt := 0; ; attempt++ {
			g, err = gorm.Open(sqlite.Open(dsn), gcfg)
			if err == nil || !IsRetryable(err) || attempt == 50 {
				break
			}
			if g != nil {
				if sqlDB, e := g.DB(); e == nil {
					sqlDB.Close()
				}
			}
			time.Sleep(time.Duration(10+rand.IntN(30)) * time.Millisecond)
		}
	case "mysql":
		g, err = gorm.Open(mysql.New(mysql.Config{DSN: mysqlDSN(cfg.DSN.Reveal())}), gcfg)
	default:
		return nil, fmt.Errorf("storage.driver: unknown driver %q", cfg.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s storage: %w", cfg.Driver, err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, err
	}
	switch cfg.Driver {
	case "sqlite":
		// SQLite has one writer at a time anyway. With one connection,
		// writers queue in Go (a channel hand-off) instead of sleeping in
		// SQLite's busy handler, which measured steadier under load
		// (docs/BENCHMARKS.md). The price: code must never use the
		// database outside a transaction it is inside of — it would wait
		// for itself. busy_timeout still covers other processes (dingdesk
		// chat -db, backups).
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
	case "mysql":
		sqlDB.SetMaxOpenConns(32)
		// As many idle as open: a connection closed because more than
		// the idle limit came back at once is dialled again (and its
		// prepared statements prepared again) at the next burst.
		sqlDB.SetMaxIdleConns(32)
		sqlDB.SetConnMaxLifetime(5 * time.Minute)
	}
	db := &DB{gorm: g, Driver: cfg.Driver, replica: newReplicaID(), replicaTimeout: cfg.ReplicaTimeout}
	if db.replicaTimeout <= 0 {
		db.replicaTimeout = config.Default().Storage.ReplicaTimeout
	}
	if err := db.prepare(ctx); err != nil {
		sqlDB.Close()
		return nil, err
	}
	if cfg.Driver == "sqlite" {
		db.group = newTxGroup(db, 1, nil)
	} else {
		db.group = newTxGroup(db, mysqlGroupRunners, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	}
	return db, nil
}

// mysqlGroupRunners is how many hand-off groups run at once on MySQL: more
// than one, so that a group waiting for a row lock held elsewhere (another
// replica, an agent's operation) does not hold up every message; few, so
// that groups stay large under load (each runner's group is whatever
// queued while its previous group ran).
const mysqlGroupRunners = 2

// prepare readies an opened DB: statement counting, a reachable and (on
// MySQL) strict server, SQLite's sync level, the schema, the hot path's
// prepared statements.
func (db *DB) prepare(ctx context.Context) error {
	if err := db.countStatements(); err != nil {
		return err
	}
	if err := db.Ping(ctx); err != nil {
		return err
	}
	switch db.Driver {
	case "mysql":
		if err := checkStrict(ctx, db.gorm); err != nil {
			return err
		}
	case "sqlite":
		if err := db.gorm.WithContext(ctx).Raw("PRAGMA synchronous").Scan(&db.sqliteSync).Error; err != nil {
			return fmt.Errorf("read SQLite synchronous level: %w", err)
		}
		if err := db.findWAL(ctx); err != nil {
			return err
		}
	}
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	return db.prepareHot(ctx)
}

// sqliteDSN turns a file path into a DSN with WAL, a busy timeout and
// immediate write transactions (so two writers queue instead of deadlocking
// on a read-to-write upgrade). synchronous=NORMAL in WAL mode syncs at
// checkpoints, not every commit: a power cut may lose the last commits but
// never corrupts the file, and a process crash loses nothing. The inbox's
// commits are synced all the same (durableTx): an acknowledged message
// survives a power cut too.
func sqliteDSN(path string) (string, error) {
	if path == "" {
		return "", errors.New("storage.dsn: empty SQLite path")
	}
	file, query, _ := strings.Cut(path, "?")
	if file != ":memory:" && !strings.HasPrefix(file, "file:") {
		if dir := filepath.Dir(file); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return "", fmt.Errorf("storage.dsn: create %s: %w", dir, err)
			}
		}
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("storage.dsn: %w", err)
	}
	if !q.Has("_pragma") {
		for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"} {
			q.Add("_pragma", p)
		}
	}
	if !q.Has("_txlock") {
		q.Set("_txlock", "immediate")
	}
	return file + "?" + q.Encode(), nil
}

// mysqlDSN adds the parameters dingdesk relies on when missing.
func mysqlDSN(dsn string) string {
	base, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return dsn
	}
	set := func(k, v string) {
		if !q.Has(k) {
			q.Set(k, v)
		}
	}
	set("parseTime", "true")
	set("loc", "UTC")
	set("charset", "utf8mb4")
	set("timeout", "5s")
	// Strict mode: a value too long for its column is an error, never a
	// warning and a cut copy (a truncated message was acknowledged and then
	// could never be handled). Set on every connection of the pool.
	set("sql_mode", strictSQLMode)
	// Statements with arguments go out as one query instead of a
	// prepare/execute/close round trip each: 834-843 -> 587-599 µs per
	// message in the message-path benchmark. The driver escapes the
	// arguments itself, which is safe only for charsets where a backslash
	// or quote byte never occurs inside a multibyte character; for others
	// (big5, gbk, sjis…) the default stays off.
	if safeToInterpolate(q.Get("charset")) {
		set("interpolateParams", "true")
	}
	return base + "?" + q.Encode()
}

// strictSQLMode is the session sql_mode dingdesk runs with on MySQL:
// MySQL 8's TRADITIONAL spelled out (MariaDB's adds NO_AUTO_CREATE_USER,
// which MySQL 8 no longer knows). The quotes are the driver's: it sends
// "SET sql_mode=<value>" as written.
const strictSQLMode = "'STRICT_TRANS_TABLES,STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"

// checkStrict refuses to run on a connection that would truncate instead
// of failing: a DSN may set its own sql_mode, and a proxy may drop session
// settings.
func checkStrict(ctx context.Context, g *gorm.DB) error {
	var mode string
	if err := g.WithContext(ctx).Raw("SELECT @@SESSION.sql_mode").Scan(&mode).Error; err != nil {
		return fmt.Errorf("read sql_mode: %w", err)
	}
	if !strings.Contains(mode, "STRICT_ALL_TABLES") && !strings.Contains(mode, "STRICT_TRANS_TABLES") {
		return fmt.Errorf("storage.dsn: sql_mode %q is not strict: too long values would be cut silently; remove sql_mode from the DSN or add STRICT_ALL_TABLES", mode)
	}
	return nil
}

// safeToInterpolate reports whether every charset in a DSN's charset list
// lets the driver escape arguments client-side.
func safeToInterpolate(charsets string) bool {
	for _, c := range strings.Split(charsets, ",") {
		switch strings.ToLower(strings.TrimSpace(c)) {
		case "utf8mb4", "utf8", "utf8mb3", "latin1", "ascii", "binary":
		default:
			return false
		}
	}
	return true
}

// Ping checks the database answers (for /readyz).
func (db *DB) Ping(ctx context.Context) error {
	sqlDB, err := db.gorm.DB()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("storage unreachable: %w", err)
	}
	return nil
}

// Close closes the pool, after the hand-off transactions already grouped
// for a commit have their results.
func (db *DB) Close() error {
	if db.group != nil {
		db.group.close()
	}
	if db.wal != nil {
		defer db.wal.close()
	}
	sqlDB, err := db.gorm.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// transaction runs fn in a transaction.
func (db *DB) transaction(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if db.Driver != "sqlite" {
		return db.gorm.WithContext(ctx).Transaction(fn)
	}
	return db.gorm.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		return pinnedTx(conn, fn)
	})
}

// pinnedTx runs fn in a transaction on a pinned SQLite connection. When the
// COMMIT fails (SQLITE_BUSY, SQLITE_FULL…), database/sql considers the
// transaction done but SQLite may keep it open, and every later BEGIN on
// the pool's only connection would fail; so after a failed COMMIT the
// transaction is ended before the connection goes back. Only then: when fn
// itself failed, gorm has rolled back already, and a second ROLLBACK would
// only log "cannot rollback - no transaction is active" (issue 13 #8).
// SQLite may also have rolled back on its own when the COMMIT failed, so
// that ROLLBACK runs without logging its error.
func pinnedTx(conn *gorm.DB, fn func(tx *gorm.DB) error, opts ...*sql.TxOptions) error {
	fnDone := false
	err := conn.Transaction(func(tx *gorm.DB) error {
		if err := fn(tx); err != nil {
			return err
		}
		fnDone = true
		return nil
	}, opts...)
	if err != nil && fnDone {
		conn.Session(&gorm.Session{Logger: logger.Discard}).WithContext(context.Background()).Exec("ROLLBACK")
	}
	return err
}

// retryTx runs fn in a transaction and runs it again (a few times, with a
// short pause) when the database chose it as a deadlock victim or a lock
// wait timed out: those transactions were rolled back whole and are safe to
// repeat. fn must not have effects outside the transaction.
func (db *DB) retryTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return retry(ctx, func() error { return db.transaction(ctx, fn) })
}

// retry runs run until it succeeds, fails for a reason other than
// contention, or has failed five times.
func retry(ctx context.Context, run func() error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = run()
		if err == nil || !IsRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * time.Duration(5+rand.IntN(20)) * time.Millisecond):
		}
	}
	return err
}

// durableTx is retryTx for a transaction whose commit must survive a
// power cut before the caller goes on (the inbox: a message is
// acknowledged once stored). MySQL's default already syncs every commit.
// SQLite runs with synchronous=NORMAL, which in WAL mode syncs only at
// checkpoints: this transaction's commit is synced by syncing the WAL file
// once the transaction has committed and let go of the connection (see
// walFile), and with it every commit before it. Other transactions keep
// the DSN's level: they are re-derived from the inbox, or, for a delivery
// record, cost at most a repeated send. Only the inbox's group commit
// calls this, so there is one sync per batch, never one per message.
func (db *DB) durableTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	const full = 2
	if db.Driver != "sqlite" || db.sqliteSync >= full {
		return db.retryTx(ctx, fn) // every commit is synced already
	}
	// Only at NORMAL: OFF syncs nothing at checkpoints either, so a
	// checkpoint may carry the commit into unsynced database pages.
	const normal = 1
	if db.wal != nil && db.sqliteSync == normal {
		if err := db.retryTx(ctx, fn); err != nil {
			return err
		}
		db.walSyncs.Add(1)
		return db.wal.sync()
	}
	// Not in WAL mode (an admin's journal_mode), or synchronous=OFF: the
	// commit syncs itself.
	// One connection (see Open): Connection pins it, so no other
	// transaction runs with the changed setting. The pragma cannot change
	// inside a transaction, hence around it. The two pragmas cost a few
	// µs per batch against ~1 ms for the synced commit; the connection
	// kept at FULL would sync every engine commit too (one-row commit
	// ~0.3 → ~2 ms, BenchmarkInboxSyncLevel), so they stay.
	return db.gorm.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		if _, err := db.sqlOn(conn).exec("PRAGMA synchronous=FULL"); err != nil {
			return err
		}
		defer db.sqlOn(conn.WithContext(context.Background())).exec(fmt.Sprintf("PRAGMA synchronous=%d", db.sqliteSync))
		return retry(ctx, func() error { return pinnedTx(conn, fn) })
	})
}

// walFile syncs an SQLite database's write-ahead log from outside SQLite.
//
// The SQLite pool has one connection, shared by the inbox and the
// engine's group commits. A commit at synchronous=FULL holds that
// connection for its fsync (1–3 ms, most of the inbox's time on it under
// load), so the engine waited on the disk. Instead the inbox commits at
// NORMAL — in WAL mode its frames, commit marker included, are written to
// the WAL with write(2) and not synced — and then, with the connection
// free for the engine, fsyncs the WAL file itself. That makes the commit
// durable just as FULL would: recovery replays the WAL's committed
// frames; and should a checkpoint have copied them into the database file
// in between, SQLite at NORMAL syncs the database file after every
// checkpoint and the WAL header before the WAL is reused, so they are
// durable there (https://www.sqlite.org/pragma.html#pragma_synchronous).
// The WAL file is the database path with "-wal" appended, kept (never
// unlinked) while a connection is open; it is opened once, on first use.
type walFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func (w *walFile) sync() error {
	w.mu.Lock()
	if w.f != nil {
		// Should the log ever be another file than the one held open (a
		// tool that removed it), sync the one SQLite writes now.
		cur, err1 := os.Stat(w.path)
		held, err2 := w.f.Stat()
		if err1 != nil || err2 != nil || !os.SameFile(cur, held) {
			w.f.Close()
			w.f = nil
		}
	}
	if w.f == nil {
		f, err := os.Open(w.path)
		if err != nil {
			w.mu.Unlock()
			return fmt.Errorf("sync the SQLite write-ahead log: %w", err)
		}
		// The log is created when the database opens: sync its directory
		// entry once, as SQLite does for a file it creates at FULL.
		if dir, err := os.Open(filepath.Dir(w.path)); err == nil {
			err = dir.Sync()
			dir.Close()
			if err != nil {
				f.Close()
				w.mu.Unlock()
				return fmt.Errorf("sync the SQLite write-ahead log's directory: %w", err)
			}
		}
		w.f = f
	}
	f := w.f
	w.mu.Unlock()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync the SQLite write-ahead log: %w", err)
	}
	return nil
}

func (w *walFile) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// findWAL sets db.wal when the SQLite database is a file in WAL mode.
func (db *DB) findWAL(ctx context.Context) error {
	var mode string
	if err := db.gorm.WithContext(ctx).Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil {
		return fmt.Errorf("read SQLite journal mode: %w", err)
	}
	var files []struct {
		Name string
		File string
	}
	if err := db.gorm.WithContext(ctx).Raw("PRAGMA database_list").Scan(&files).Error; err != nil {
		return fmt.Errorf("read SQLite database file: %w", err)
	}
	for _, f := range files {
		if f.Name == "main" && f.File != "" && strings.EqualFold(mode, "wal") {
			db.wal = &walFile{path: f.File + "-wal"}
		}
	}
	return nil
}

// IsRetryable reports a transaction the database rolled back for
// contention: MySQL deadlock (1213) or lock wait timeout (1205), SQLite
// busy/locked.
func IsRetryable(err error) bool {
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205
	}
	s := err.Error()
	return strings.Contains(s, "SQLITE_BUSY") || strings.Contains(s, "database is locked") || strings.Contains(s, "(5)") && strings.Contains(s, "locked")
}

var clauseForUpdate = clause.Locking{Strength: "UPDATE"}

// forUpdate locks selected rows on MySQL; SQLite's immediate transactions
// already hold the database write lock.
func (db *DB) forUpdate(q *gorm.DB) *gorm.DB {
	if db.Driver == "mysql" {
		return q.Clauses(clauseForUpdate)
	}
	return q
}

// gormLogger sends gorm's warnings and errors to slog, never the SQL
// arguments (they may hold message text).
type gormLogger struct{ log *slog.Logger }

func newGormLogger(l *slog.Logger) logger.Interface {
	return gormLogger{log: l.With("component", "storage")}
}

func (g gormLogger) LogMode(logger.LogLevel) logger.Interface { return g }
func (g gormLogger) Info(ctx context.Context, msg string, args ...any) {
	g.log.DebugContext(ctx, "gorm", "msg", fmt.Sprintf(msg, args...))
}
func (g gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	g.log.WarnContext(ctx, "gorm", "msg", fmt.Sprintf(msg, args...))
}
func (g gormLogger) Error(ctx context.Context, msg string, args ...any) {
	g.log.ErrorContext(ctx, "gorm", "msg", fmt.Sprintf(msg, args...))
}
func (g gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	// The SQL is not logged: its arguments hold users' message text.
	switch {
	case err == nil, errors.Is(err, gorm.ErrRecordNotFound), errors.Is(err, context.Canceled):
	case IsRetryable(err):
		g.log.DebugContext(ctx, "transaction conflict, retrying", "err", err)
	default:
		g.log.WarnContext(ctx, "query failed", "err", err, "elapsed", time.Since(begin))
	}
}

// Exec runs one raw SQL statement outside any transaction, for tests in
// other packages: fault injection (triggers that refuse writes) and
// seeding. The service itself never calls it.
func (db *DB) Exec(ctx context.Context, query string, args ...any) error {
	return db.gorm.WithContext(ctx).Exec(query, args...).Error
}

// QueryRow runs one raw read, for tests in other packages that check what
// was stored. The service itself never calls it.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return db.gorm.WithContext(ctx).Raw(query, args...).Row()
}
