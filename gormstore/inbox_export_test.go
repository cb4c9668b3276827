package gormstore

import "github.com/dingdesk/dingdesk/adapter"

// WriteBatch writes msgs as one batch of the inbox's writer, in this
// order, bypassing its queue (the writer may be writing another batch at
// the same time, as a second replica would): tests and benchmarks choose
// the batch size and which duplicates share a batch.
func (in *Inbox) WriteBatch(msgs ...adapter.Message) ([]bool, []error) {
	batch := make([]*acceptReq, len(msgs))
	for i, m := range msgs {
		r, err := in.newReq(m)
		if err != nil {
			panic(err)
		}
		batch[i] = r
	}
	in.write(batch)
	isNew, errs := make([]bool, len(batch)), make([]error, len(batch))
	for i, r := range batch {
		isNew[i], errs[i] = r.isNew, r.err
	}
	return isNew, errs
}

// SetBeforeInsert makes every MySQL batch run fn between reading which
// msgIds are stored and inserting the others, where another replica may
// store one of them. Set before the first Accept.
func (in *Inbox) SetBeforeInsert(fn func()) { in.beforeInsert = fn }
