package gormstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"gorm.io/gorm"
)

// txGroup commits concurrent hand-off transactions on SQLite together.
//
// SQLite has one writer (the pool holds one connection), so concurrent
// Handoff calls queue for it anyway. Each commit appends every page it
// changed to the WAL, and every message's transaction changes the same
// pages: the tail of the outbox and transcript tables, the inbox row's page,
// their indexes. Running the transactions that are waiting one after another
// inside a single transaction, each in its own savepoint, writes those pages
// once per group instead of once per message.
//
// Semantics are those of running them serially: each sees the ones before
// it; one that fails is rolled back to its savepoint alone and gets its own
// error. None is told anything before the group's COMMIT has returned: when
// the group fails (BEGIN, a savepoint, the COMMIT), every member that was
// not cancelled gets errGroupAborted, its own error included (it may rest
// on writes that did not commit), and Handoff runs it again. A transaction
// waits for no one: the group is whatever queued while the previous group
// ran.
type txGroup struct {
	db       *DB
	reqs     chan *txReq // unbuffered: a request received is a request run
	stop     chan struct{}
	stopOnce sync.Once
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

func newTxGroup(db *DB) *txGroup {
	g := &txGroup{db: db, reqs: make(chan *txReq), stop: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

// do runs fn in the next group and returns its outcome once that group has
// committed (or failed). The caller's ctx bounds the wait until fn starts.
func (g *txGroup) do(ctx context.Context, fn func(tx *handoffTx) error) error {
	r := &txReq{ctx: ctx, fn: fn, result: make(chan error, 1)}
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
			close(g.done)
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
	fill:
		for len(batch) < maxGroup {
			select {
			case r := <-g.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		g.commit(batch)
	}
}

// commit runs batch in one transaction and delivers each member's result.
func (g *txGroup) commit(batch []*txReq) {
	results := make([]error, len(batch))
	ran := make([]bool, len(batch))
	var err error
	finished := false // false when a member's runtime.Goexit unwound the group
	// Deliver in a defer, so that members hear even when one of them ends
	// this goroutine with runtime.Goexit (the group is then rolled back).
	defer func() {
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
		return pinnedTx(conn, func(tx *gorm.DB) error {
			// A lone member needs no savepoint: the transaction is its own.
			isolate := len(batch) > 1
			savepoint := func(q string) error {
				if !isolate {
					return nil
				}
				_, err := g.db.sqlOn(tx).exec(q)
				return err
			}
			for i, r := range batch {
				if !start(r, &results[i]) {
					continue
				}
				if err := savepoint("SAVEPOINT handoff_member"); err != nil {
					return err
				}
				ran[i] = true
				if results[i] = runMember(g.db, tx, r); results[i] != nil {
					if !isolate {
						return errMemberFailed // roll back; its own error stands
					}
					if err := savepoint("ROLLBACK TO handoff_member"); err != nil {
						return err
					}
				}
				if err := savepoint("RELEASE handoff_member"); err != nil {
					return err
				}
			}
			return nil
		})
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
func runMember(db *DB, tx *gorm.DB, r *txReq) (err error) {
	returned := false
	defer func() {
		if p := recover(); p != nil {
			r.panicked = p
			err = fmt.Errorf("hand-off transaction panicked: %v", p)
		} else if !returned {
			r.goexited = true
		}
	}()
	err = r.fn(&handoffTx{db: db, g: tx.WithContext(context.WithoutCancel(r.ctx))})
	returned = true
	return err
}

// GroupStats reports how many grouped commits the hand-off transactions
// took and how many transactions they held (both 0 on MySQL): their ratio
// is the mean group size, which rises with load.
func (db *DB) GroupStats() (commits, transactions int64) {
	if db.group == nil {
		return 0, 0
	}
	return db.group.commits.Load(), db.group.members.Load()
}
