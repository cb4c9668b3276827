package bot

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync/atomic"
	"weak"
)

// The classifier is a softmax over entries whose weights live next to the
// BM25 postings: one weight per (term, entry) pair where the term occurs in
// the entry's questions, so it adds no term-by-entry matrix and is scored in
// the same pass as BM25. It is trained with SGD on the knowledge base's own
// questions (standard and similar), each labelled with its entry; every entry
// a question shares no term with keeps logit 0.
const (
	clfEpochs = 10
	clfRate   = 2.0
	// clfMaxDF leaves terms found in more entries out of the classifier:
	// they say little about which entry is meant and dominate training time.
	clfMaxDF = 512
	// maxTrainWork caps a background training (fewer epochs, at least 2):
	// about 15–20 s of one core on the project machine.
	maxTrainWork = 1_500_000_000
)

// syncTrainBudget is the training work (posting updates) done inside
// NewKnowledgeBase, about 0.5 s; more is done in the background. Tests
// lower it.
var syncTrainBudget = 100_000_000

// syncFTBudget is the fastText training work (examples × entries × dims ×
// epochs) done inside NewKnowledgeBase, about 0.3 s; more is done in the
// background.
var syncFTBudget = 5e8

// skipTraining disables the classifier (tests and benchmarks only).
var skipTraining bool

// trainSem lets one background training run at a time per process.
var trainSem = make(chan struct{}, 1)

// startTraining trains the classifiers now when it is cheap, else in the
// background. kb.trained is closed when training has ended.
func (kb *KnowledgeBase) startTraining(ts *trainingSet) {
	perEpoch := 0
	for _, id := range ts.exTerms {
		if n := kb.terms[id].n; n <= clfMaxDF {
			perEpoch += 2 * int(n) // forward and backward
		}
	}
	if ts.len() == 0 || skipTraining {
		close(kb.trained)
		return
	}
	epochs := 0
	if perEpoch > 0 {
		epochs = clfEpochs
		if perEpoch*epochs > maxTrainWork {
			epochs = max(2, maxTrainWork/perEpoch)
		}
	}
	ftEp := ftEpochsFor(ts.len(), len(kb.entries))
	ix := trainIndex{n: len(kb.entries), terms: kb.terms, postE: kb.postE}
	clfNow := epochs > 0 && perEpoch*epochs <= syncTrainBudget
	if clfNow {
		kb.clf.Store(kb.newClassifier(train(ix, ts, epochs, kb.retired)))
		epochs = 0
	}
	ftNow := ftEp > 0 && float64(ts.len())*float64(len(kb.entries))*ftDims*float64(ftEp) <= syncFTBudget
	if ftNow {
		kb.ft.Store(kb.trainFastText(ts, ftEp, kb.retired))
		ftEp = 0
	}
	if epochs == 0 && ftEp == 0 {
		close(kb.trained)
		return
	}
	// The goroutine holds the index data but only a weak pointer to the
	// knowledge base: one that is dropped without Bot.Replace (say, built
	// to validate a config) is collected, and its cleanup stops training.
	// The fastText model needs the knowledge base's terms, which the
	// goroutine holds through a copy of the fields it reads.
	ftkb := &KnowledgeBase{entries: kb.entries, terms: kb.terms}
	wp, trained, retired := weak.Make(kb), kb.trained, kb.retired
	runtime.AddCleanup(kb, func(r *atomic.Bool) { r.Store(true) }, retired)
	go func() {
		defer close(trained)
		trainSem <- struct{}{}
		defer func() { <-trainSem }()
		if epochs > 0 {
			w := train(ix, ts, epochs, retired)
			if kb := wp.Value(); w != nil && kb != nil {
				kb.clf.Store(kb.newClassifier(w))
			}
		}
		if ftEp > 0 && !retired.Load() {
			m := ftkb.trainFastText(ts, ftEp, retired)
			if kb := wp.Value(); m != nil && kb != nil {
				kb.ft.Store(m)
			}
		}
	}()
}

// clfStart is the first term the classifier has weights for, and that
// term's first posting: build numbers terms by descending document
// frequency, so the terms left out (more than clfMaxDF entries) are the
// first ids and own the first postings. At 100 000 synthetic entries they
// hold 80 % of the postings, which need no weights.
func clfStart(terms []termInfo) (term, post uint32) {
	t, _ := slices.BinarySearchFunc(terms, clfMaxDF, func(ti termInfo, limit int) int {
		if int(ti.n) > limit {
			return -1
		}
		return 1
	})
	switch {
	case t < len(terms):
		return uint32(t), terms[t].off
	case t > 0:
		return uint32(t), terms[t-1].off + terms[t-1].n
	}
	return 0, 0
}

// newClassifier lays out weights (post: one per posting from clfStart on,
// as train returns them) for Match, adding their copy in forward order.
func (kb *KnowledgeBase) newClassifier(post []float32) *classifier {
	first, p0 := clfStart(kb.terms)
	c := &classifier{post: post, first: first, p0: p0, fwd: make([]float32, 0, len(post)), fwdOff: make([]uint32, len(kb.entries)+1)}
	// Walking entries in order meets every term's postings in order (as
	// build laid them out), so the next posting of a term is its entry's.
	next := make([]uint32, len(kb.terms)-int(first))
	for i := range next {
		next[i] = kb.terms[int(first)+i].off - p0
	}
	for e := range kb.entries {
		for _, it := range kb.fwd[kb.fwdOff[e]:kb.fwdOff[e+1]] {
			if it.term < first {
				continue
			}
			c.fwd = append(c.fwd, post[next[it.term-first]])
			next[it.term-first]++
		}
		c.fwdOff[e+1] = uint32(len(c.fwd))
	}
	return c
}

// WaitTrained blocks until both classifiers are trained (or training was
// abandoned because the knowledge base was replaced). Until then Match uses
// BM25 alone or without the fastText part. Mostly for tests and tools.
func (kb *KnowledgeBase) WaitTrained() { <-kb.trained }

// Trained reports whether the sparse classifier is in use.
func (kb *KnowledgeBase) Trained() bool { return kb.clf.Load() != nil }

// retire stops a background training that has not finished.
func (kb *KnowledgeBase) retire() { kb.retired.Store(true) }

// trainIndex is what training reads of a knowledge base.
type trainIndex struct {
	n     int // entries
	terms []termInfo
	postE []uint32
}

// train runs SGD over ts and returns the weights (one per posting from
// clfStart on: w[p-p0] for posting p), or nil when retired was set
// meanwhile. Deterministic for a given input.
func train(ix trainIndex, ts *trainingSet, epochs int, retired *atomic.Bool) []float32 {
	n := ix.n
	_, p0 := clfStart(ix.terms)
	w := make([]float32, len(ix.postE)-int(p0))
	z := make([]float32, n)
	seen := make([]bool, n)
	var touched []uint32
	var vals []float32
	rng := rand.New(rand.NewPCG(uint64(n), uint64(ts.len())))
	order := make([]int, ts.len())
	for i := range order {
		order[i] = i
	}
	for ep := 0; ep < epochs; ep++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		eta := float32(clfRate * (1 - float64(ep)/float64(epochs)))
		for step, i := range order {
			if step%1024 == 0 && retired.Load() {
				return nil
			}
			terms := ts.exTerms[ts.exOff[i]:ts.exOff[i+1]]
			vals = ts.values(vals[:0], i, ix.terms)
			label := ts.exEntry[i]
			// Forward: logits of the entries sharing a term.
			for k, t := range terms {
				ti := &ix.terms[t]
				if ti.n > clfMaxDF {
					continue
				}
				v := vals[k]
				for p := ti.off; p < ti.off+ti.n; p++ {
					e := ix.postE[p]
					if !seen[e] {
						seen[e] = true
						touched = append(touched, e)
						z[e] = 0
					}
					z[e] += v * w[p-p0]
				}
			}
			var mx float32
			for _, e := range touched {
				mx = max(mx, z[e])
			}
			sum := float64(n-len(touched)) * math.Exp(float64(-mx))
			for _, e := range touched {
				x := math.Exp(float64(z[e] - mx))
				z[e] = float32(x)
				sum += x
			}
			inv := float32(1 / sum)
			for _, e := range touched {
				z[e] *= inv // now the probability
			}
			// Backward: cross-entropy gradient on the same postings.
			for k, t := range terms {
				ti := &ix.terms[t]
				if ti.n > clfMaxDF {
					continue
				}
				g := eta * vals[k]
				for p := ti.off; p < ti.off+ti.n; p++ {
					e := ix.postE[p]
					pr := z[e]
					if e == label {
						pr--
					}
					w[p-p0] -= g * pr
				}
			}
			for _, e := range touched {
				seen[e] = false
			}
			touched = touched[:0]
		}
	}
	return w
}
