package storage

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// The message path's statements, written by hand: every bot-answered
// message runs them, and gorm's statement building (reflection over the
// row types, callbacks, clause trees) cost more CPU than the statements
// themselves (59 % of on-CPU stacks in issue 15's profile). They run on
// the transaction gorm opened (its ConnPool), so they are part of it; the
// rows written are exactly those gorm wrote (same columns, same values).
// Everything off the hot path stays on gorm.

// sqlOn is the transaction (or connection) behind a gorm handle, with the
// handle's context, counted in DB.Statements.
type sqlOn struct {
	db   *DB
	pool gorm.ConnPool
	ctx  context.Context
}

func (db *DB) sqlOn(g *gorm.DB) sqlOn {
	ctx := g.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	return sqlOn{db: db, pool: g.Statement.ConnPool, ctx: ctx}
}

func (s sqlOn) exec(query string, args ...any) (sql.Result, error) {
	s.db.statements.Add(1)
	return s.pool.ExecContext(s.ctx, query, args...)
}

func (s sqlOn) queryRow(query string, args ...any) *sql.Row {
	s.db.statements.Add(1)
	return s.pool.QueryRowContext(s.ctx, query, args...)
}

// maxInsertRows bounds one INSERT's rows, under SQLite's 32 766 and
// MySQL's 65 535 placeholders for the widest row written here.
const maxInsertRows = 1000

// insertRows inserts rows (each a value per column) with multi-row INSERTs
// and returns their ids in order. The ids of one statement's rows are
// consecutive: MySQL and MariaDB hand them out so for a simple INSERT with
// auto_increment_increment 1 (gorm assumes the same), SQLite has one
// writer and gives each row max+1; the database reports the first (MySQL)
// or the last (SQLite).
func (s sqlOn) insertRows(table string, columns []string, rows [][]any) ([]int64, error) {
	ids := make([]int64, 0, len(rows))
	for len(rows) > 0 {
		chunk := rows[:min(len(rows), maxInsertRows)]
		rows = rows[len(chunk):]
		var b strings.Builder
		b.Grow(64 + len(chunk)*len(columns)*3)
		b.WriteString("INSERT INTO ")
		b.WriteString(table)
		b.WriteString(" (")
		b.WriteString(strings.Join(columns, ", "))
		b.WriteString(") VALUES ")
		args := make([]any, 0, len(chunk)*len(columns))
		for i, r := range chunk {
			if len(r) != len(columns) {
				return nil, fmt.Errorf("insert into %s: %d values for %d columns", table, len(r), len(columns))
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?")
			b.WriteString(strings.Repeat(", ?", len(columns)-1))
			b.WriteByte(')')
			args = append(args, r...)
		}
		res, err := s.exec(b.String(), args...)
		if err != nil {
			return nil, err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return nil, err
		}
		if s.db.Driver == "sqlite" {
			id -= int64(len(chunk) - 1)
		}
		for i := range chunk {
			ids = append(ids, id+int64(i))
		}
	}
	return ids, nil
}

// nullTime is t as a nullable column value.
func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}
