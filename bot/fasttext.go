package bot

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
)

// The fastText-style classifier is the dense part of the fusion: every term
// (word, unigram, bigram) has an embedding, a question is the idf-weighted
// mean of its terms' embeddings, and a full softmax over entries scores it.
// It is trained on the knowledge base's own questions, like the sparse
// classifier, but shares strength between terms that occur in the same
// entries, which the sparse one cannot. Weighting the mean by idf (rather
// than fastText's plain mean) is what makes it work on questions this short:
// 0.72 top-1 alone on UnionPay dev against 0.62 unweighted
// (docs/MATCHING-RESULTS.md).
const (
	ftDims   = 64
	ftEpochs = 20
	ftRate   = 1.0
	// ftMaxWork caps training (examples × entries × dims × epochs, about
	// 10 s of one core); epochs are cut to fit, and a knowledge base
	// that does not fit ftMinEpochs goes without this part.
	ftMaxWork   = 8e9
	ftMinEpochs = 10
)

// fastText is a trained model: emb is terms × ftDims, out entries × ftDims.
type fastText struct {
	emb, out []float32
	n        int
	// peers are further models trained with other seeds; probabilities are
	// averaged over all (bagging: less variance on questions nobody
	// trained on).
	peers []*fastText
}

// ftExamples are the training questions as (term, weight) lists, weights
// kindWeight × idf.
func (kb *KnowledgeBase) ftWeight(term uint32) float32 {
	ti := &kb.terms[term]
	return kindWeight[ti.kind] * ti.idf
}

// ftEpochsFor is how many epochs training ts takes, 0 when it is too large.
func ftEpochsFor(examples, entries int) int {
	per := float64(examples) * float64(entries) * ftDims
	if per == 0 {
		return 0
	}
	ep := min(ftEpochs, int(ftMaxWork/per))
	if ep < ftMinEpochs {
		return 0
	}
	return ep
}

// trainFastText runs SGD with a linearly decaying rate over ts and returns
// the model, or nil when retired was set meanwhile. Deterministic.
func (kb *KnowledgeBase) trainFastText(ts *trainingSet, epochs int, retired *atomic.Bool) *fastText {
	var first *fastText
	for seed := 0; seed < ftModels; seed++ {
		m := kb.trainFastTextSeed(ts, epochs, retired, uint64(seed))
		if m == nil {
			return nil
		}
		if first == nil {
			first = m
		} else {
			first.peers = append(first.peers, m)
		}
	}
	return first
}

// ftModels is how many models are trained with different seeds.
var ftModels = 2

func (kb *KnowledgeBase) trainFastTextSeed(ts *trainingSet, epochs int, retired *atomic.Bool, seed uint64) *fastText {
	n, v, d := len(kb.entries), len(kb.terms), ftDims
	m := &fastText{emb: make([]float32, v*d), out: make([]float32, n*d), n: n}
	rng := rand.New(rand.NewPCG(uint64(n)+7+seed*1_000_003, uint64(ts.len())))
	for i := range m.emb {
		m.emb[i] = (rng.Float32()*2 - 1) / float32(d)
	}
	h, gh := make([]float32, d), make([]float32, d)
	p := make([]float32, n)
	order := make([]int, ts.len())
	for i := range order {
		order[i] = i
	}
	total, step := float32(epochs*len(order)), 0
	for ep := 0; ep < epochs; ep++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for k, i := range order {
			if k%256 == 0 && retired.Load() {
				return nil
			}
			lr := ftRate * (1 - float32(step)/total)
			step++
			terms := ts.exTerms[ts.exOff[i]:ts.exOff[i+1]]
			if len(terms) == 0 {
				continue
			}
			var sw float32
			clear(h)
			for _, t := range terms {
				w := kb.ftWeight(t)
				sw += w
				axpy(h, m.emb[int(t)*d:int(t+1)*d], w)
			}
			for j := range h {
				h[j] /= sw
			}
			m.softmax(h, p)
			clear(gh)
			label := int(ts.exEntry[i])
			for e := 0; e < n; e++ {
				g := p[e]
				if e == label {
					g--
				}
				if g > -1e-4 && g < 1e-4 { // negligible: skip the update
					continue
				}
				row := m.out[e*d : (e+1)*d]
				axpy(gh, row, g)
				axpy(row, h, -lr*g)
			}
			for _, t := range terms {
				axpy(m.emb[int(t)*d:int(t+1)*d], gh, -lr*kb.ftWeight(t)/sw)
			}
		}
	}
	return m
}

// softmax fills p with the probabilities of every entry for hidden vector h.
func (m *fastText) softmax(h, p []float32) {
	d := len(h)
	mx := float32(math.Inf(-1))
	for e := 0; e < m.n; e++ {
		p[e] = dot(m.out[e*d:(e+1)*d], h)
		mx = max(mx, p[e])
	}
	var z float64
	for e := range p[:m.n] {
		x := math.Exp(float64(p[e] - mx))
		p[e] = float32(x)
		z += x
	}
	inv := float32(1 / z)
	for e := range p[:m.n] {
		p[e] *= inv
	}
}

// ftExactSoftmax is the largest knowledge base whose softmax normaliser a
// query computes over every entry; larger ones estimate the part of it
// outside the candidates from ftNormSample entries spread over the
// knowledge base, so a query costs the same at any size.
const (
	ftExactSoftmax = 256
	ftNormSample   = 128
)

// candidateProbs sets ms.probs[i] to candidate i's probability for hidden
// vector h.
func (m *fastText) candidateProbs(h []float32, cands []scored, ms *matchScratch) {
	d := len(h)
	ms.probs = slices.Grow(ms.probs[:0], len(cands))[:len(cands)]
	if m.n <= ftExactSoftmax {
		all := slices.Grow(ms.logits[:0], m.n)[:m.n]
		m.softmax(h, all)
		for i, c := range cands {
			ms.probs[i] = all[c.entry]
		}
		ms.logits = all
		return
	}
	mx := float32(math.Inf(-1))
	for i, c := range cands {
		ms.probs[i] = dot(m.out[int(c.entry)*d:int(c.entry+1)*d], h)
		mx = max(mx, ms.probs[i])
	}
	// Sample every step-th entry that is not a candidate.
	sample := ms.logits[:0]
	step := m.n / ftNormSample
	for e := step / 2; e < m.n; e += step {
		if slices.ContainsFunc(cands, func(c scored) bool { return c.entry == uint32(e) }) {
			continue
		}
		l := dot(m.out[e*d:(e+1)*d], h)
		sample = append(sample, l)
		mx = max(mx, l)
	}
	ms.logits = sample
	var zc, zs float64
	for i := range cands {
		x := math.Exp(float64(ms.probs[i] - mx))
		ms.probs[i] = float32(x)
		zc += x
	}
	for _, l := range sample {
		zs += math.Exp(float64(l - mx))
	}
	z := zc
	if len(sample) > 0 {
		z += zs / float64(len(sample)) * float64(m.n-len(cands))
	}
	inv := float32(1 / z)
	for i := range cands {
		ms.probs[i] *= inv
	}
}

// hidden sets h to the query's idf-weighted mean embedding; unknown terms
// count in the weights (with the largest idf), so a question about things no
// entry mentions gets a flat distribution. It returns false when no term is
// known.
func (m *fastText) hidden(kb *KnowledgeBase, qs []qterm, unknown float32, h []float32) bool {
	clear(h)
	sw := unknown
	for _, q := range qs {
		w := kb.ftWeight(q.id)
		sw += w
		axpy(h, m.emb[int(q.id)*ftDims:int(q.id+1)*ftDims], w)
	}
	if len(qs) == 0 || sw == 0 {
		return false
	}
	for j := range h {
		h[j] /= sw
	}
	return true
}

// axpy adds a·x to y, unrolled like dot.
func axpy(y, x []float32, a float32) {
	x = x[:len(y)]
	i := 0
	for ; i+4 <= len(y); i += 4 {
		y[i] += a * x[i]
		y[i+1] += a * x[i+1]
		y[i+2] += a * x[i+2]
		y[i+3] += a * x[i+3]
	}
	for ; i < len(y); i++ {
		y[i] += a * x[i]
	}
}

// dot is unrolled by four (independent sums the CPU can overlap: Go does
// not vectorise this loop).
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
