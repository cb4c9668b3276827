package gormstore

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

// preparedStmts are the hot path's statements prepared on MySQL (see
// sqlOn.prepared), embedded in DB.
type preparedStmts struct {
	prep map[string]*sql.Stmt // read-only after Open
}

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
	if st := s.prepared(query); st != nil {
		defer st.Close()
		return st.ExecContext(s.ctx, args...)
	}
	return s.pool.ExecContext(s.ctx, query, args...)
}

func (s sqlOn) queryRow(query string, args ...any) *sql.Row {
	s.db.statements.Add(1)
	if st := s.prepared(query); st != nil {
		defer st.Close()
		return st.QueryRowContext(s.ctx, args...)
	}
	return s.pool.QueryRowContext(s.ctx, query, args...)
}

func (s sqlOn) query(query string, args ...any) (*sql.Rows, error) {
	s.db.statements.Add(1)
	return s.pool.QueryContext(s.ctx, query, args...)
}

// prepared returns query as a server-side prepared statement of the
// transaction's connection, on MySQL: the server then parses it once per
// connection instead of once per execution (MariaDB parsing the
// interpolated statements was a large part of its CPU per message).
// database/sql keeps each statement prepared on every connection it ran
// on, and Tx.StmtContext reuses it there. The returned statement is the
// transaction's view, closed by the caller (the prepared one stays). Nil
// on SQLite, whose driver prepares every execution again anyway, outside
// transactions, and for statements prepareHot did not prepare.
func (s sqlOn) prepared(query string) *sql.Stmt {
	tx, ok := s.pool.(*sql.Tx)
	if !ok || s.db.Driver != "mysql" {
		return nil
	}
	st := s.db.preparedStmt(query)
	if st == nil {
		return nil
	}
	return tx.StmtContext(s.ctx, st)
}

func (db *DB) preparedStmt(query string) *sql.Stmt { return db.prep[query] }

// prepareHot prepares the hot path's statements on MySQL, once, at Open:
// preparing needs a connection of the pool, which a transaction asking
// for one while every connection is held by transactions would wait for
// forever. Statements not in the list run unprepared.
func (db *DB) prepareHot(ctx context.Context) error {
	if db.Driver != "mysql" {
		return nil
	}
	sqlDB, err := db.gorm.DB()
	if err != nil {
		return err
	}
	byKey := selectConversation + " WHERE user_key = ?"
	queries := []string{byKey, byKey + " FOR UPDATE", markHandledSQL, inboxInsertMySQL,
		"UPDATE handoff_conversations SET last_question = ?, last_question_msg = ?, changed_at = ? WHERE user_key = ?",
		"UPDATE handoff_conversations SET picks = ?, last_question = ?, last_question_msg = ?, changed_at = ? WHERE user_key = ?",
		"UPDATE handoff_conversations SET changed_at = ? WHERE user_key = ?",
		insertSQL("bot_turns", botTurnColumns, 1)}
	for n := 1; n <= 4; n++ {
		queries = append(queries, insertSQL("outbox", outboxColumns, n), insertSQL("handoff_messages", lineColumns, n))
	}
	db.prep = make(map[string]*sql.Stmt, len(queries))
	for _, q := range queries {
		st, err := sqlDB.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		db.prep[q] = st
	}
	return nil
}

// inList is "(?, ?, …)" with n placeholders (n ≥ 1): a row of values or
// the list of an IN.
func inList(n int) string {
	return "(?" + strings.Repeat(", ?", n-1) + ")"
}

// insertSQL is an INSERT of n rows of columns into table.
func insertSQL(table string, columns []string, n int) string {
	var b strings.Builder
	b.Grow(64 + n*len(columns)*3)
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (")
	b.WriteString(strings.Join(columns, ", "))
	b.WriteString(") VALUES ")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(inList(len(columns)))
	}
	return b.String()
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
		args := make([]any, 0, len(chunk)*len(columns))
		for _, r := range chunk {
			if len(r) != len(columns) {
				return nil, fmt.Errorf("insert into %s: %d values for %d columns", table, len(r), len(columns))
			}
			args = append(args, r...)
		}
		res, err := s.exec(insertSQL(table, columns, len(chunk)), args...)
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
