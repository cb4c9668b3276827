package gormstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"gorm.io/gorm"

	"github.com/dingdesk/dingdesk/handoff"
)

// txGroup commits concurrent hand-off transactions together.
//
// Every message's transaction writes the same few rows: the tail of the
// outbox and transcript tables, the inbox row, the conversation. Running
// the transactions that are waiting one after another inside a single
// transaction writes the pages they share once per group instead of once
// per message (SQLite: one WAL append; MySQL: one redo log flush), saves a
// BEGIN and a COMMIT per message, and lets their rows go in multi-row
// statements (deferred.go).
//
// SQLite has one writer (the pool holds one connection), so concurrent
// Handoff calls queue for it anyway: one runner. On MySQL a few runners
// share the work, so that one group waiting for a row lock another
// replica holds does not stop the others.
//
// Semantics are those of running them serially: each sees the ones before
// it; one that fails is rolled back alone (its savepoint, taken before its
// first write that is not deferred; a member that wrote nothing directly
// just drops its deferred rows) and gets its own error. None is told
// anything before the group's COMMIT has returned: when the group fails
// (BEGIN, a savepoint, the deferred writes, the COMMIT), every member that
// was not cancelled gets errGroupAborted, its own error included (it may
// rest on writes that did not commit), and Handoff runs it again on its
// own. A transaction waits for no one: the group is whatever queued while
// the runner's previous group ran.
type txGroup struct {
	db       *DB
	opts     *sql.TxOptions
	reqs     chan *txReq // unbuffered: a request received is a request run
	stop     chan struct{}
	stopOnce sync.Once
	running  sync.WaitGroup
	done     chan struct{}

	commits, members atomic.Int64 // committed groups and the members they ran, for GroupStats
}

// maxGroup bounds how many transactions share a commit, so one group's
// latency stays bounded.
const maxGroup = 64

// Member states: a queued member's caller may still give up; once running,
// the caller waits for the outcome (fn writes the caller's variables).
const (
	memberQueued int32 = iota
	memberRunning
	memberAbandoned
)

type txReq struct {
	ctx      context.Context
	key      string // the conversation fn locks first, read ahead ("" none)
	fn       func(tx *handoffTx) error
	state    atomic.Int32
	result   chan error // buffered 1
	panicked any        // fn's panic, re-raised in the caller
	goexited bool       // fn called runtime.Goexit (t.FailNow), repeated in the caller
}

var (
	errStorageClosed = errors.New("storage closed")
	// errGroupAborted is the result of a member whose work did not commit
	// through no fault it can be told of. Handoff runs such a member again.
	errGroupAborted = errors.New("grouped hand-off transaction aborted")
	// errMemberFailed rolls back a one-member group whose member returned
	// an error: its own error stands.
	errMemberFailed = errors.New("member failed")
)

// newTxGroup starts runners group runners; opts are the transactions'.
func newTxGroup(db *DB, runners int, opts *sql.TxOptions) *txGroup {
	g := &txGroup{db: db, opts: opts, reqs: make(chan *txReq), stop: make(chan struct{}), done: make(chan struct{})}
	g.running.Add(runners)
	for range runners {
		go g.run()
	}
	go func() {
		g.running.Wait()
		close(g.done)
	}()
	return g
}

// do runs fn in the next group and returns its outcome once that group has
// committed (or failed). The caller's ctx bounds the wait until fn starts.
func (g *txGroup) do(ctx context.Context, key string, fn func(tx *handoffTx) error) error {
	r := &txReq{ctx: ctx, key: key, fn: fn, result: make(chan error, 1)}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.done:
		return errStorageClosed
	}
	var err error
	select {
	case err = <-r.result:
	case <-ctx.Done():
		if r.state.CompareAndSwap(memberQueued, memberAbandoned) {
			return ctx.Err()
		}
		err = <-r.result
	}
	switch {
	case r.panicked != nil:
		panic(r.panicked)
	case r.goexited:
		runtime.Goexit()
	}
	return err
}

// close stops the group runner; callers already in a group get their
// results first.
func (g *txGroup) close() {
	g.stopOnce.Do(func() { close(g.stop) })
	<-g.done
}

func (g *txGroup) run() {
	stopped := false
	defer func() {
		if stopped {
			g.running.Done()
			return
		}
		// A member called runtime.Goexit (t.FailNow inside fn in a test),
		// which ends this goroutine whatever it defers: serve on a new one.
		go g.run()
	}()
	batch := make([]*txReq, 0, maxGroup)
	for {
		batch = batch[:0]
		select {
		case r := <-g.reqs:
			batch = append(batch, r)
		case <-g.stop:
			stopped = true
			return
		}
		g.commit(g.fill(batch))
	}
}

// fill adds the requests queued now to batch, up to maxGroup.
func (g *txGroup) fill(batch []*txReq) []*txReq { return drain(g.reqs, batch, maxGroup) }

// drain appends to batch what ch holds right now, without waiting, until
// batch has max items: the group commits' way of taking in whatever
// queued while the previous write ran.
func drain[T any](ch <-chan T, batch []T, max int) []T {
	for len(batch) < max {
		select {
		case v := <-ch:
			batch = append(batch, v)
		default:
			return batch
		}
	}
	return batch
}

// commit runs batch in one transaction and delivers each member's result.
func (g *txGroup) commit(batch []*txReq) {
	var results []error
	var ran []bool
	var err error
	finished := false // false when a member's runtime.Goexit unwound the group
	// Deliver in a defer, so that members hear even when one of them ends
	// this goroutine with runtime.Goexit (the group is then rolled back).
	defer func() {
		if results == nil { // the connection was never had
			results, ran = make([]error, len(batch)), make([]bool, len(batch))
		}
		failed := !finished || err != nil && err != errMemberFailed
		if n := int64(countTrue(ran)); !failed && n > 0 {
			g.commits.Add(1)
			g.members.Add(n)
		}
		cause := err
		if !finished {
			cause = errors.New("a member called runtime.Goexit")
		}
		for i, r := range batch {
			res := results[i]
			// Its work is lost (or it was never reached): run it again.
			// A member skipped for its context keeps that error.
			if failed && !r.goexited && (ran[i] || res == nil) {
				res = fmt.Errorf("%w: %v", errGroupAborted, cause)
			}
			r.result <- res
		}
	}()
	// The group's transaction runs on a pinned connection (pinnedTx ends
	// what a failed COMMIT leaves open) under no member's context: one
	// caller giving up must not roll back the others. Members' statements
	// do not see their callers' cancellation either: SQLite answers an
	// interrupted INSERT, UPDATE or DELETE inside a transaction by rolling
	// back the whole transaction, every other member's work with it. A
	// caller that gives up before its turn is skipped; once running, a
	// member finishes (they are short).
	err = g.db.gorm.WithContext(context.Background()).Connection(func(conn *gorm.DB) error {
		// What queued while this runner waited for the connection (on
		// SQLite the inbox and the sender share it) joins the group.
		batch = g.fill(batch)
		results, ran = make([]error, len(batch)), make([]bool, len(batch))
		return pinnedTx(conn, func(tx *gorm.DB) error {
			// A lone member needs no savepoint (the transaction is its own)
			// and defers nothing (there is nothing to share a statement
			// with).
			run := &groupRun{db: g.db, tx: tx, shared: len(batch) > 1}
			if run.shared {
				if err := run.readAhead(batch); err != nil {
					return err
				}
			}
			for i, r := range batch {
				if !start(r, &results[i]) {
					continue
				}
				ran[i] = true
				t := &handoffTx{db: g.db, g: tx.WithContext(context.WithoutCancel(r.ctx))}
				if run.shared {
					t.run = run
				}
				run.savepoint = false
				results[i] = runMember(t, r)
				if run.err != nil {
					return run.err // the group's own writes failed
				}
				if results[i] != nil {
					if !run.shared {
						return errMemberFailed // roll back; its own error stands
					}
					// A deadlock (or a lock wait timeout) may have rolled
					// back the whole transaction, the earlier members'
					// work and any savepoint with it: the group fails, and
					// each member runs again alone.
					if IsRetryable(results[i]) {
						return results[i]
					}
					if run.savepoint {
						if err := run.exec("ROLLBACK TO SAVEPOINT handoff_member"); err != nil {
							return err
						}
						if err := run.exec("RELEASE SAVEPOINT handoff_member"); err != nil {
							return err
						}
					}
					continue // what it deferred is dropped with t
				}
				if run.savepoint {
					if err := run.exec("RELEASE SAVEPOINT handoff_member"); err != nil {
						return err
					}
				}
				if t.run != nil {
					run.pending.merge(&t.own)
				}
			}
			return run.pending.flush(g.db, tx)
		}, g.opts)
	})
	finished = true
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// start claims r for running; a member whose caller gave up (or whose
// context ended) is not run and gets that as its result.
func start(r *txReq, result *error) bool {
	if err := r.ctx.Err(); err != nil {
		*result = err
		r.state.Store(memberAbandoned)
		return false
	}
	if !r.state.CompareAndSwap(memberQueued, memberRunning) {
		*result = context.Canceled
		return false
	}
	return true
}

// runMember runs one member's fn with its context's values but not its
// cancellation (see commit). A panic becomes an error here (the group
// goes on) and a panic again in the caller; runtime.Goexit cannot be
// stopped, so it is noted and repeated in the caller.
func runMember(t *handoffTx, r *txReq) (err error) {
	returned := false
	defer func() {
		if p := recover(); p != nil {
			r.panicked = p
			err = fmt.Errorf("hand-off transaction panicked: %v", p)
		} else if !returned {
			r.goexited = true
		}
	}()
	err = r.fn(t)
	returned = true
	return err
}

// groupRun is one group's transaction while its members run.
type groupRun struct {
	db      *DB
	tx      *gorm.DB
	shared  bool     // more than one member: members defer and isolate
	pending deferred // the finished members' deferred writes
	// savepoint is set once the running member has taken its savepoint
	// (before its first direct write).
	savepoint bool
	// err is set when writing the group's deferred rows (or a savepoint)
	// failed: the group is rolled back whatever the member returns.
	err error
	// ahead are the conversations the members lock first, read (and on
	// MySQL locked) with one statement before the first member runs; nil
	// for one that has no row. Dropped at a member's first direct write,
	// which may change them.
	ahead map[string]*handoffConversationRow
}

// readAhead reads the conversations the batch's members will lock first,
// in key order (so groups lock them in one order).
func (r *groupRun) readAhead(batch []*txReq) error {
	keys := make([]string, 0, len(batch))
	for _, m := range batch {
		if m.key != "" {
			keys = append(keys, m.key)
		}
	}
	if len(keys) < 2 {
		return nil
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	q := selectConversation + " WHERE user_key IN " + inList(len(keys)) + " ORDER BY user_key"
	if r.db.Driver == "mysql" {
		q += " FOR UPDATE"
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	rows, err := r.db.sqlOn(r.tx).query(q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	r.ahead = make(map[string]*handoffConversationRow, len(keys))
	for _, k := range keys {
		r.ahead[k] = nil
	}
	for rows.Next() {
		c, err := scanConversation(rows)
		if err != nil {
			return err
		}
		r.ahead[c.UserKey] = &c
	}
	return rows.Err()
}

func (r *groupRun) exec(q string) error {
	_, err := r.db.sqlOn(r.tx).exec(q)
	return err
}

// direct ends t's deferring, before its first statement that is not
// deferred: the finished members' rows are written (outside t's
// savepoint: they are not t's to roll back), t's savepoint is taken, then
// t's own deferred rows are written inside it. A failure of the group's
// rows or of the savepoint fails the group; of t's own rows, only t.
func (r *groupRun) direct(t *handoffTx) error {
	t.run = nil
	r.ahead = nil
	if err := r.pending.flush(r.db, r.tx); err != nil {
		r.err = err
		return err
	}
	if err := r.exec("SAVEPOINT handoff_member"); err != nil {
		r.err = err
		return err
	}
	r.savepoint = true
	err := t.own.flush(r.db, t.g)
	if errors.Is(err, errHandledConflict) {
		// Its own message was handled elsewhere: as MarkHandled says.
		return handoff.ErrAlreadyHandled
	}
	return err
}

// GroupStats reports how many grouped commits the hand-off transactions
// took and how many transactions they held: their ratio is the mean group
// size, which rises with load.
func (db *DB) GroupStats() (commits, transactions int64) {
	if db.group == nil {
		return 0, 0
	}
	return db.group.commits.Load(), db.group.members.Load()
}
