// Package gormstoretest opens real databases for tests: an SQLite file in a
// temporary directory always, and a fresh MySQL/MariaDB database when
// DINGDESK_TEST_MYSQL_DSN is set (e.g. "root@tcp(127.0.0.1:3306)/"); each
// test gets its own database, dropped afterwards.
package gormstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/gormstore"
)

// EnvMySQL names the variable that enables the MySQL runs.
const EnvMySQL = "DINGDESK_TEST_MYSQL_DSN"

var skipNote sync.Once

// Drivers are the drivers to test on: sqlite always, mysql when enabled.
func Drivers(tb testing.TB) []string {
	if os.Getenv(EnvMySQL) == "" {
		skipNote.Do(func() {
			tb.Logf("MySQL storage tests skipped: set %s=\"root@tcp(127.0.0.1:3306)/\" to run them against MySQL/MariaDB", EnvMySQL)
		})
		return []string{"sqlite"}
	}
	return []string{"sqlite", "mysql"}
}

// ForEachDriver runs fn as a subtest per driver.
func ForEachDriver(t *testing.T, fn func(t *testing.T, driver string)) {
	for _, d := range Drivers(t) {
		t.Run(d, func(t *testing.T) { fn(t, d) })
	}
}

// NewStorage creates an empty database for driver and returns the storage
// config that reaches it. Several Open calls on it share one database (two
// "replicas").
func NewStorage(tb testing.TB, driver string) config.Storage {
	tb.Helper()
	cfg := config.Default().Storage
	cfg.Driver = driver
	switch driver {
	case "sqlite":
		cfg.DSN = config.Secret(filepath.Join(tb.TempDir(), "dingdesk.db"))
	case "mysql":
		base := os.Getenv(EnvMySQL)
		if base == "" {
			tb.Skipf("set %s to run MySQL tests", EnvMySQL)
		}
		name := "dingdesk_t_" + randomHex(6)
		admin, err := sql.Open("mysql", serverDSN(base, ""))
		if err != nil {
			tb.Fatal(err)
		}
		defer admin.Close()
		if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
			tb.Fatalf("create test database (is MariaDB running at %s?): %v", base, err)
		}
		tb.Cleanup(func() {
			admin, err := sql.Open("mysql", serverDSN(base, ""))
			if err == nil {
				admin.Exec("DROP DATABASE IF EXISTS " + name)
				admin.Close()
			}
		})
		cfg.DSN = config.Secret(serverDSN(base, name))
	default:
		tb.Fatalf("unknown driver %q", driver)
	}
	return cfg
}

// Open creates a fresh database for driver and opens it (migrated); it is
// closed when the test ends.
func Open(tb testing.TB, driver string) *gormstore.DB {
	tb.Helper()
	return OpenStorage(tb, NewStorage(tb, driver))
}

// OpenStorage opens cfg (migrated) and closes it when the test ends.
func OpenStorage(tb testing.TB, cfg config.Storage) *gormstore.DB {
	tb.Helper()
	db, err := gormstore.Open(context.Background(), cfg, nil)
	if err != nil {
		tb.Fatalf("open %s: %v", cfg.Driver, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// OpenReplicas opens n handles (migrated) on one fresh database for
// driver, as n replicas of the service would; they are closed when the
// test ends.
func OpenReplicas(tb testing.TB, driver string, n int) []*gormstore.DB {
	tb.Helper()
	cfg := NewStorage(tb, driver)
	dbs := make([]*gormstore.DB, n)
	for i := range dbs {
		dbs[i] = OpenStorage(tb, cfg)
	}
	return dbs
}

// serverDSN puts database name into a DSN like "root@tcp(h:3306)/?x=y".
func serverDSN(base, name string) string {
	head, query, _ := strings.Cut(base, "?")
	if i := strings.LastIndex(head, "/"); i >= 0 {
		head = head[:i]
	}
	dsn := fmt.Sprintf("%s/%s", head, name)
	if query != "" {
		dsn += "?" + query
	}
	return dsn
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Logs collects what a logger writes, safe for the storage's goroutines.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }

// String is everything logged so far.
func (l *Logs) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// Logger logs to l as text.
func (l *Logs) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// OpenLogged is Open with the storage's log collected.
func OpenLogged(tb testing.TB, driver string) (*gormstore.DB, *Logs) {
	tb.Helper()
	logs := &Logs{}
	db, err := gormstore.Open(context.Background(), NewStorage(tb, driver), logs.Logger())
	if err != nil {
		tb.Fatalf("open %s: %v", driver, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, logs
}
