package storage

import (
	"context"
	"errors"
	"fmt"

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
// error; none is told it committed before the group's COMMIT has returned,
// and when that COMMIT fails every member gets the error (Handoff's retry
// loop and the callers' retries then run them again). A transaction waits
// for no one: the group is whatever queued while the previous group ran.
type txGroup struct {
	db   *DB
	reqs chan *txReq // unbuffered: a request received is a request run
	stop chan struct{}
	done chan struct{}

	commits, members atomic.Int64 // for GroupStats
}

// maxGroup bounds how many transactions share a commit, so one group's
// latency stays bounded.
const maxGroup = 64

type txReq struct {
	ctx      context.Context
	fn       func(tx *HandoffTx) error
	result   chan error // buffered 1
	panicked any        // fn's panic, re-raised in the caller
}

var errStorageClosed = errors.New("storage closed")

func newTxGroup(db *DB) *txGroup {
	g := &txGroup{db: db, reqs: make(chan *txReq), stop: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

// do runs fn in the next group and returns its outcome once that group has
// committed (or fn failed).
func (g *txGroup) do(ctx context.Context, fn func(tx *HandoffTx) error) error {
	r := &txReq{ctx: ctx, fn: fn, result: make(chan error, 1)}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.done:
		return errStorageClosed
	}
	err := <-r.result
	if r.panicked != nil {
		panic(r.panicked)
	}
	return err
}

// close stops the group runner; callers already in a group get their
// results first.
func (g *txGroup) close() {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	<-g.done
}

func (g *txGroup) run() {
	defer close(g.done)
	batch := make([]*txReq, 0, maxGroup)
	for {
		batch = batch[:0]
		select {
		case r := <-g.reqs:
			batch = append(batch, r)
		case <-g.stop:
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

// errGroupAborted is the result of a member whose work did not commit
// through no fault it can be told of: the group's transaction failed
// before its turn, or failed (or could not commit) after it had run.
// Handoff runs such a member again.
var errGroupAborted = errors.New("grouped hand-off transaction aborted")

// commit runs batch in one transaction and delivers each member's result.
func (g *txGroup) commit(batch []*txReq) {
	results := make([]error, len(batch))
	for i := range results {
		results[i] = errGroupAborted // until it has run
	}
	ran := make([]bool, len(batch))
	// The transaction's own context is not any member's: one caller giving
	// up must not roll back the others. Members' statements do not see
	// their callers' cancellation either: SQLite answers an interrupted
	// INSERT, UPDATE or DELETE inside a transaction by rolling back the
	// whole transaction, every other member's work with it. A caller that
	// gave up before its turn is skipped; once running, a member finishes
	// (they are short), and do reports its real outcome.
	err := g.db.Gorm.WithContext(context.Background()).Transaction(func(tx *gorm.DB) error {
		if len(batch) == 1 { // nothing to isolate: the transaction is the savepoint
			r := batch[0]
			if err := r.ctx.Err(); err != nil {
				results[0] = err
				return err
			}
			ran[0] = true
			results[0] = runMember(g.db, tx, r)
			return results[0]
		}
		for i, r := range batch {
			if err := r.ctx.Err(); err != nil {
				results[i] = err
				continue
			}
			if err := tx.Exec("SAVEPOINT handoff_member").Error; err != nil {
				return err
			}
			ran[i] = true
			if results[i] = runMember(g.db, tx, r); results[i] != nil {
				if err := tx.Exec("ROLLBACK TO handoff_member").Error; err != nil {
					return err
				}
			}
			if err := tx.Exec("RELEASE handoff_member").Error; err != nil {
				return err
			}
		}
		return nil
	})
	g.commits.Add(1)
	g.members.Add(int64(len(batch)))
	for i, r := range batch {
		res := results[i]
		if err != nil && (res == nil && ran[i] || res == errGroupAborted) {
			res = fmt.Errorf("%w: %v", errGroupAborted, err) // its work was lost with the group
		}
		r.result <- res
	}
}

// runMember runs one member's fn with its context's values but not its
// cancellation (see commit), turning a panic into
// an error here (the group goes on) and a panic again in the caller.
func runMember(db *DB, tx *gorm.DB, r *txReq) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked = p
			err = fmt.Errorf("hand-off transaction panicked: %v", p)
		}
	}()
	return r.fn(&HandoffTx{DB: db, G: tx.WithContext(context.WithoutCancel(r.ctx))})
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
