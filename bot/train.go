package bot

import (
	"math"
	"math/rand/v2"
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
	// syncTrainBudget is the training work (posting updates) done inside
	// NewKnowledgeBase, about 0.5 s; more is done in the background.
	syncTrainBudget = 100_000_000
	// maxTrainWork caps a background training (fewer epochs, at least 2):
	// about 15 s of one core.
	maxTrainWork = 3_000_000_000
)

// skipTraining disables the classifier (tests and benchmarks only).
var skipTraining bool

// trainSem lets one background training run at a time per process.
var trainSem = make(chan struct{}, 1)

// startTraining trains the classifier now when it is cheap, else in the
// background. kb.trained is closed when training has ended.
func (kb *KnowledgeBase) startTraining(exs []example) {
	perEpoch := 0
	for _, ex := range exs {
		for _, id := range ex.terms {
			if n := kb.terms[id].n; n <= clfMaxDF {
				perEpoch += 2 * int(n) // forward and backward
			}
		}
	}
	if len(exs) == 0 || perEpoch == 0 || skipTraining {
		close(kb.trained)
		return
	}
	epochs := clfEpochs
	if perEpoch*epochs > maxTrainWork {
		epochs = max(2, maxTrainWork/perEpoch)
	}
	if perEpoch*epochs <= syncTrainBudget {
		kb.clf.Store(kb.newClassifier(kb.train(exs, epochs)))
		close(kb.trained)
		return
	}
	go func() {
		defer close(kb.trained)
		trainSem <- struct{}{}
		defer func() { <-trainSem }()
		if w := kb.train(exs, epochs); w != nil {
			kb.clf.Store(kb.newClassifier(w))
		}
	}()
}

// newClassifier lays out weights (in posting order) for Match.
func (kb *KnowledgeBase) newClassifier(post []float32) *classifier {
	fwd := make([]float32, len(post))
	for i, p := range kb.fwdPost {
		fwd[i] = post[p]
	}
	return &classifier{post: post, fwd: fwd}
}

// WaitTrained blocks until the classifier is trained (or training was
// abandoned because the knowledge base was replaced). Until then Match uses
// BM25 alone. Mostly for tests and benchmarks.
func (kb *KnowledgeBase) WaitTrained() { <-kb.trained }

// Trained reports whether the classifier is in use.
func (kb *KnowledgeBase) Trained() bool { return kb.clf.Load() != nil }

// retire stops a background training that has not finished.
func (kb *KnowledgeBase) retire() { kb.retired.Store(true) }

// train runs SGD over exs and returns the weights, or nil when the
// knowledge base was retired meanwhile. Deterministic for a given input.
func (kb *KnowledgeBase) train(exs []example, epochs int) []float32 {
	n := len(kb.entries)
	w := make([]float32, len(kb.postE))
	z := make([]float32, n)
	seen := make([]bool, n)
	var touched []uint32
	rng := rand.New(rand.NewPCG(uint64(n), uint64(len(exs))))
	order := make([]int, len(exs))
	for i := range order {
		order[i] = i
	}
	for ep := 0; ep < epochs; ep++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		eta := float32(clfRate * (1 - float64(ep)/float64(epochs)))
		for step, i := range order {
			if step%1024 == 0 && kb.retired.Load() {
				return nil
			}
			ex := &exs[i]
			// Forward: logits of the entries sharing a term.
			for k, t := range ex.terms {
				ti := &kb.terms[t]
				if ti.n > clfMaxDF {
					continue
				}
				v := ex.vals[k]
				for p := ti.off; p < ti.off+ti.n; p++ {
					e := kb.postE[p]
					if !seen[e] {
						seen[e] = true
						touched = append(touched, e)
						z[e] = 0
					}
					z[e] += v * w[p]
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
			for k, t := range ex.terms {
				ti := &kb.terms[t]
				if ti.n > clfMaxDF {
					continue
				}
				g := eta * ex.vals[k]
				for p := ti.off; p < ti.off+ti.n; p++ {
					e := kb.postE[p]
					pr := z[e]
					if e == ex.entry {
						pr--
					}
					w[p] -= g * pr
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
