package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
)

// A transaction its own code refuses (a transfer to a group with nobody
// online) is rolled back once: no second ROLLBACK that fails and is logged
// as "cannot rollback - no transaction is active" (issue 13 #8).
func TestRefusedTransactionRollsBackQuietly(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db, logs := gormstoretest.OpenLogged(t, driver)
		if err := db.Gorm().Exec("CREATE TABLE probe (k VARCHAR(32) PRIMARY KEY)").Error; err != nil {
			t.Fatal(err)
		}
		refused := errors.New("nobody online")
		for range 3 {
			err := db.Handoff(context.Background(), func(tx *gormstore.HandoffTx) error {
				if err := tx.G().Exec("INSERT INTO probe (k) VALUES ('x')").Error; err != nil {
					return err
				}
				return refused
			})
			if !errors.Is(err, refused) {
				t.Fatalf("Handoff = %v, want the refusal", err)
			}
		}
		var n int64
		db.Gorm().Raw("SELECT count(*) FROM probe").Scan(&n)
		if n != 0 {
			t.Fatalf("%d rows of refused transactions committed", n)
		}
		if l := logs.String(); strings.Contains(l, "cannot rollback") || strings.Contains(l, "query failed") {
			t.Fatalf("a refused transaction logged a failure:\n%s", l)
		}
	})
}

// A full disk fails the transaction with its own error, logs no failed
// ROLLBACK, and leaves the connection usable once there is room again.
func TestDiskFullRollsBackQuietly(t *testing.T) {
	db, logs := gormstoretest.OpenLogged(t, "sqlite")
	g := db.Gorm()
	if err := g.Exec("CREATE TABLE probe (k INTEGER PRIMARY KEY, v TEXT)").Error; err != nil {
		t.Fatal(err)
	}
	var pages int64
	if err := g.Raw("PRAGMA page_count").Scan(&pages).Error; err != nil {
		t.Fatal(err)
	}
	// The pool has one connection: the limit holds for every transaction.
	if err := g.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages+2)).Error; err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("满", 20000)
	var full error
	for i := 0; i < 20 && full == nil; i++ {
		full = db.Handoff(context.Background(), func(tx *gormstore.HandoffTx) error {
			return tx.G().Exec("INSERT INTO probe (v) VALUES (?)", big).Error
		})
	}
	if full == nil || !strings.Contains(full.Error(), "full") {
		t.Fatalf("no disk-full error: %v", full)
	}
	if l := logs.String(); strings.Contains(l, "cannot rollback") {
		t.Fatalf("disk full logged a failed ROLLBACK:\n%s", l)
	}
	if err := g.Exec("PRAGMA max_page_count = 1073741823").Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Handoff(context.Background(), func(tx *gormstore.HandoffTx) error {
		return tx.G().Exec("INSERT INTO probe (v) VALUES ('room again')").Error
	}); err != nil {
		t.Fatalf("after the disk has room again: %v", err)
	}
}
