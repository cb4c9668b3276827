// Package bot is the knowledge-base robot: it loads knowledge files and
// matches a user's question against their standard and similar questions,
// deciding between a direct answer, a clarify list and no answer. Its only
// I/O beyond reading knowledge and synonym files is the optional semantic
// tier (an Embedder, with a disk cache of entry embeddings).
//
// How matching works, and what was measured, is in docs/MATCHING-RESULTS.md.
// In short: text is normalised (NFKC, case, punctuation, traditional to
// simplified), synonyms are rewritten, and gse words plus character unigrams
// and bigrams are indexed with BM25, one document per entry (all its
// questions together). An entry's confidence in [0,1] blends its BM25 score
// divided by the query's score against itself with the probability a sparse
// softmax classifier, trained on the knowledge base's own questions, gives
// it; entries are ranked by that blend fused with a fastText-style
// classifier trained on the same questions and with each entry's likeness
// to the best one (pseudo-relevance feedback).
package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Outcome is what the bot does with a question.
type Outcome string

// The three outcomes.
const (
	OutcomeAnswer  Outcome = "answer"  // answer with Result.Best
	OutcomeClarify Outcome = "clarify" // offer the best candidates (推荐问题)
	OutcomeNone    Outcome = "none"    // no answer (无答案回复)
)

// Candidate is one ranked entry of a match.
type Candidate struct {
	ID       string  `json:"id"`
	Question string  `json:"question"`
	Score    float64 `json:"score"`
}

// NearBest are the first of cs (ranked best first) worth showing anyone: at
// most n, each with a positive score of at least half the best one's. The
// matcher ranks every entry, so the tail of a list is unrelated entries: a
// clarify list, an agent's suggestions and an admin's candidates leave it
// out.
func NearBest(cs []Candidate, n int) []Candidate {
	var out []Candidate
	for _, c := range cs {
		if len(out) == n || c.Score <= 0 || c.Score < cs[0].Score/2 {
			break
		}
		out = append(out, c)
	}
	return out
}

// Result is the outcome of matching one question.
type Result struct {
	Outcome Outcome
	// Candidates are the best entries, best first: NumCandidates of them (or
	// all entries of a smaller knowledge base), also for OutcomeNone.
	Candidates []Candidate
	// Best is the top entry; nil for OutcomeNone. Callers must not modify it.
	Best *Entry
}

// NumCandidates is how many candidates a Result carries.
const NumCandidates = 10

// Default thresholds, used when Options leaves both at zero. They mirror
// config.Default().Bot.
const (
	DefaultAnswerThreshold  = 0.6
	DefaultClarifyThreshold = 0.28
)

// Matching parameters, chosen on the shared evaluation sets (see
// docs/MATCHING-RESULTS.md).
const (
	bm25K1 = 1.2
	bm25B  = 0.5
	// clfBlend is the sparse classifier's share of the blended confidence,
	// ftBlend the fastText-style classifier's share of the result (chosen
	// by cross-validation on the dev queries: eval_test.go).
	clfBlend = 0.4
	ftBlend  = 0.6
	// fbBlend is the share of the feedback score (likeness to the best
	// entry, see feedback) in the ranking's BM25 part, used with the
	// fastText part (chosen by cross-validation, like ftBlend).
	fbBlend = 0.3
	// bm25Temp is the temperature of the BM25 softmax that stands in for
	// the classifier until it is trained.
	bm25Temp = 10
	// specificityFloor: a query whose rarest known term has an idf below
	// this share of the largest possible idf gets its confidence scaled
	// down ("怎么办" matches everything a little).
	specificityFloor = 0.3
	// Near ties between the two best entries (see discountAmbiguity).
	ambiguityRatio    = 0.8
	ambiguityDiscount = 0.25
)

// Query-time limits that keep Match fast on large knowledge bases (they
// never bind on a few thousand entries). traverseBudget is how many
// postings a query reads, rarest terms first; a term that does not fit is
// not read. When not even the rarest fits, champion lists (the champSize
// highest-impact postings of a term) are read instead, within the same
// budget. The best rescoreCandidates partial candidates are then completed
// exactly from the forward index and scored.
const (
	traverseBudget    = 2048
	champSize         = 128
	rescoreCandidates = 64
)

// kindWeight weighs the three term kinds in BM25 (words, unigrams,
// bigrams); clfKindWeight in the classifier's features.
var (
	kindWeight    = [numKinds]float32{1, 1, 0.5}
	clfKindWeight = [numKinds]float32{1, 1, 0.5}
)

// KnowledgeBase is an immutable index of entries. Match is safe for
// concurrent use.
type KnowledgeBase struct {
	entries []Entry
	byID    map[string]int
	an      *analyzer
	answer  float64
	clarify float64

	vocab map[uint64]uint32 // term hash → term id
	terms []termInfo
	postE []uint32  // entry ids per term, ascending
	postW []float32 // BM25 impact per posting: kind weight × idf × tf saturation
	// Forward index: the terms of entry e are fwd[fwdOff[e]:fwdOff[e+1]],
	// ascending, each with its BM25 impact.
	fwdOff []uint32
	fwd    []fwdItem
	// champ holds, for terms with more than champSize postings, the posting
	// indexes of their champSize highest impacts (termInfo.champ).
	champ []uint32
	// exact maps a question's normalised text to its entry.
	exact  exactIndex
	idfMax float32 // idf of a term no entry has
	// Query-time limits (traverseBudget, rescoreCandidates); tests raise
	// them to compare with exhaustive scoring.
	budget, rescore int

	sem     *Semantic                  // nil: no semantic tier
	semIdx  atomic.Pointer[semIndex]   // nil until the entries are embedded
	semDone chan struct{}              // closed when embedding ended (or was skipped)
	clf     atomic.Pointer[classifier] // nil until trained
	ft      atomic.Pointer[fastText]   // nil until trained (or too large to train)
	retired *atomic.Bool               // set by Bot.Replace (or collection): stop background training
	trained chan struct{}              // closed when training ended (or was skipped)
	pool    sync.Pool                  // *matchScratch
}

// fwdItem is one term of an entry in the forward index.
type fwdItem struct {
	term uint32
	w    float32 // BM25 impact
}

// classifier holds the trained weights twice: in posting order (read while
// traversing postings) and in forward-index order (read while completing
// candidates), so both reads are sequential. Only terms from first on (those
// in at most clfMaxDF entries: clfStart) have weights: post[p-p0] is
// posting p's, and fwd[fwdOff[e]:fwdOff[e+1]] are the last of entry e's
// forward items, those with such terms.
type classifier struct {
	post   []float32
	fwd    []float32
	fwdOff []uint32
	first  uint32
	p0     uint32
}

type termInfo struct {
	off, n uint32 // postings range
	champ  uint32 // champion list start in KnowledgeBase.champ (if n > champSize)
	idf    float32
	kind   uint8
}

// NewKnowledgeBase indexes entries (as LoadKnowledge returns them) for
// matching. Zero thresholds in opts mean the defaults. Entries must have
// unique, non-empty ids and non-empty questions.
//
// The classifier is trained here for knowledge bases up to a few thousand
// questions; larger ones are matched with BM25 alone until training, in a
// background goroutine (one at a time per process), completes.
func NewKnowledgeBase(entries []Entry, opts Options) (*KnowledgeBase, error) {
	if opts.AnswerThreshold == 0 && opts.ClarifyThreshold == 0 {
		opts.AnswerThreshold, opts.ClarifyThreshold = DefaultAnswerThreshold, DefaultClarifyThreshold
	}
	if opts.ClarifyThreshold < 0 || opts.AnswerThreshold > 1 || opts.ClarifyThreshold > opts.AnswerThreshold {
		return nil, fmt.Errorf("bot: thresholds must satisfy 0 <= clarify (%v) <= answer (%v) <= 1", opts.ClarifyThreshold, opts.AnswerThreshold)
	}
	stop := opts.StopWords
	if stop == nil {
		stop = DefaultStopWords
	}
	kb := &KnowledgeBase{
		entries: slices.Clone(entries),
		byID:    make(map[string]int, len(entries)),
		an:      newAnalyzer(stop, opts.Synonyms),
		answer:  opts.AnswerThreshold,
		clarify: opts.ClarifyThreshold,
		trained: make(chan struct{}),
		semDone: make(chan struct{}),
		sem:     opts.Semantic,
		retired: new(atomic.Bool),
		budget:  traverseBudget,
		rescore: rescoreCandidates,
	}
	var errs []error
	for i, e := range kb.entries {
		switch {
		case e.ID == "":
			errs = append(errs, fmt.Errorf("bot: entry %d (%s): empty id", i, e.Source))
		case e.Question == "":
			errs = append(errs, fmt.Errorf("bot: entry %q: empty question", e.ID))
		}
		if _, dup := kb.byID[e.ID]; dup {
			errs = append(errs, fmt.Errorf("bot: duplicate id %q", e.ID))
		}
		kb.byID[e.ID] = i
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	kb.startTraining(kb.build())
	kb.startEmbedding()
	return kb, nil
}

// Len is the number of entries.
func (kb *KnowledgeBase) Len() int { return len(kb.entries) }

// Entry finds an entry by id. Callers must not modify it.
func (kb *KnowledgeBase) Entry(id string) (*Entry, bool) {
	i, ok := kb.byID[id]
	if !ok {
		return nil, false
	}
	return &kb.entries[i], true
}

// Search is an agent's search (搜索) of the knowledge: the entries of
// query's best candidates with a positive score, at most n, best first.
// Unlike a user's match it applies no threshold: the agent judges.
// Callers must not modify them.
func (kb *KnowledgeBase) Search(query string, n int) []*Entry {
	var out []*Entry
	for _, c := range kb.Match(query).Candidates {
		if len(out) == n {
			break
		}
		if e, ok := kb.Entry(c.ID); ok && c.Score > 0 {
			out = append(out, e)
		}
	}
	return out
}

// Entries returns the entries in knowledge-file order. Callers must not
// modify them.
func (kb *KnowledgeBase) Entries() []Entry { return kb.entries }

// matchScratch holds the per-query buffers of Match.
type matchScratch struct {
	sc      scratch
	qterms  []qterm
	accs    []entryAcc // per entry; valid where stamp == epoch
	epoch   uint32
	touched []uint32
	cands   []scored
	qsorted []qterm
	h       []float32 // fastText hidden vector
	probs   []float32 // fastText probabilities, per candidate
	logits  []float32 // fastText logits (all entries, or the normaliser's sample)
	sum     []float32 // fastText probabilities summed over the models
	fbw     []float32 // per term: the feedback query's weight (zero between queries)
	keep    int       // candidates kept (evaluation); 0: NumCandidates
	// si and qv are the semantic index and the query's unit vector, nil
	// when the query is matched lexically only.
	si *semIndex
	qv []float32
	// specific and withFT are the last query's specificity and whether the
	// fastText part scored it (evaluation).
	specific float32
	withFT   bool
}

func (ms *matchScratch) hidden(d int) []float32 {
	if len(ms.h) != d {
		ms.h = make([]float32, d)
	}
	return ms.h
}

// entryAcc accumulates one entry's partial scores (one cache line access
// per posting).
type entryAcc struct {
	stamp uint32
	acc   float32 // BM25 from fully read terms
	est   float32 // BM25 from champion lists (to pick candidates only)
	logit float32 // classifier logit from fully read terms
}

// touch returns e's accumulator, zeroed on first use in this query.
func (ms *matchScratch) touch(e uint32) *entryAcc {
	a := &ms.accs[e]
	if a.stamp != ms.epoch {
		*a = entryAcc{stamp: ms.epoch}
		ms.touched = append(ms.touched, e)
	}
	return a
}

type qterm struct {
	id   uint32
	qtf  float32
	xval float32 // classifier feature value
}

type scored struct {
	entry uint32
	bm25  float32
	logit float32
	conf  float32
	ratio float32 // bm25 / self
	prob  float32 // sparse classifier probability
	ft    float32 // fastText-style classifier probability
	sem   float32 // calibrated embedding similarity, -1 without one
	fb    float32 // likeness to the best entry (feedback)
	exact bool    // the query is one of the entry's questions
	cal   float32 // calibrated confidence (finish)
}

func (kb *KnowledgeBase) getScratch() *matchScratch {
	if ms, ok := kb.pool.Get().(*matchScratch); ok {
		return ms
	}
	return &matchScratch{accs: make([]entryAcc, len(kb.entries))}
}

// Match ranks the entries for query and decides the outcome. With the
// semantic tier on, it waits at most the tier's timeout for the query's
// embedding.
func (kb *KnowledgeBase) Match(query string) Result {
	return kb.MatchContext(context.Background(), query)
}

// MatchContext is Match with a context that can cut the wait for the
// query's embedding short (the lexical match never waits).
func (kb *KnowledgeBase) MatchContext(ctx context.Context, query string) Result {
	ms := kb.getScratch()
	defer kb.pool.Put(ms)
	ms.si, ms.qv = nil, nil
	if kb.sem != nil && strings.TrimSpace(query) != "" {
		if si := kb.semIdx.Load(); si == nil {
			kb.sem.metrics.fallbacks.WithLabelValues("not_ready").Inc()
		} else if qv := kb.sem.embedQuery(ctx, query, si.dims); qv != nil {
			ms.si, ms.qv = si, qv
		}
	}
	cands := kb.rank(query, ms)
	ms.si, ms.qv = nil, nil
	res := Result{Outcome: OutcomeNone, Candidates: make([]Candidate, 0, NumCandidates)}
	for _, c := range cands {
		e := &kb.entries[c.entry]
		res.Candidates = append(res.Candidates, Candidate{ID: e.ID, Question: e.Question, Score: round4(min(float64(c.conf), 1))})
	}
	// Fill up with entries in knowledge-file order (score 0), so a caller
	// always has something to suggest.
	for i := 0; len(res.Candidates) < NumCandidates && i < len(kb.entries); i++ {
		if slices.ContainsFunc(cands, func(c scored) bool { return c.entry == uint32(i) }) {
			continue
		}
		res.Candidates = append(res.Candidates, Candidate{ID: kb.entries[i].ID, Question: kb.entries[i].Question})
	}
	if len(cands) > 0 {
		top := res.Candidates[0].Score
		switch {
		case top >= kb.answer:
			res.Outcome = OutcomeAnswer
		case top >= kb.clarify:
			res.Outcome = OutcomeClarify
		}
		if res.Outcome != OutcomeNone {
			res.Best = &kb.entries[cands[0].entry]
		}
	}
	return res
}

func round4(f float64) float64 { return math.Round(f*1e4) / 1e4 }

// rank returns up to NumCandidates scored entries, best first, in
// ms.cands.
func (kb *KnowledgeBase) rank(query string, ms *matchScratch) []scored {
	ms.cands = ms.cands[:0]
	if len(kb.entries) == 0 {
		return nil
	}
	ts := kb.an.terms(query, &ms.sc)
	// Self-score (the query as its own document) and classifier norm
	// include unknown terms: a question about things no entry mentions gets
	// a low confidence.
	var self, xnorm, unknown float32
	ms.qterms = ms.qterms[:0]
	for _, t := range ts {
		id, known := kb.vocab[t.h]
		w := kb.idfMax
		if known {
			w = kb.terms[id].idf
		} else {
			unknown += kindWeight[t.kind] * w
		}
		self += kindWeight[t.kind] * w * t.tf
		x := clfKindWeight[t.kind] * float32(math.Sqrt(float64(t.tf))) * w
		xnorm += x * x
		if known {
			ms.qterms = append(ms.qterms, qterm{id: id, qtf: t.tf, xval: x})
		}
	}
	if len(ms.qterms) == 0 || self == 0 {
		return nil
	}
	// Specificity: a question made only of words most entries use ("怎么办")
	// says too little to answer, however well it matches.
	var maxIDF float32
	for _, qt := range ms.qterms {
		maxIDF = max(maxIDF, kb.terms[qt.id].idf)
	}
	specific := min(1, maxIDF/kb.idfMax/specificityFloor)
	xinv := 1 / float32(math.Sqrt(float64(xnorm)))
	for i := range ms.qterms {
		qt := &ms.qterms[i]
		qt.xval *= xinv
		if kb.terms[qt.id].n > clfMaxDF {
			qt.xval = 0 // not in the classifier: its weights are 0
		}
	}
	clf := kb.clf.Load()
	ms.epoch++
	if ms.epoch == 0 { // wrapped: forget every stamp
		clear(ms.accs)
		ms.epoch = 1
	}
	ms.touched = ms.touched[:0]
	// Rare terms first: read their postings in full while within budget,
	// then only the champion lists of the others.
	slices.SortFunc(ms.qterms, func(a, b qterm) int { return cmp.Compare(kb.terms[a.id].n, kb.terms[b.id].n) })
	read, full := 0, 0
	for ; full < len(ms.qterms); full++ {
		ti := &kb.terms[ms.qterms[full].id]
		if full > 0 && read+int(ti.n) > kb.budget || int(ti.n) > kb.budget && ti.n > champSize {
			break
		}
		read += int(ti.n)
		kb.accumulate(ms, ms.qterms[full], ti, clf)
	}
	for _, qt := range ms.qterms[full:] {
		ti := &kb.terms[qt.id]
		if ti.n <= champSize || read >= kb.budget {
			continue // small, or no budget left: completed exactly below
		}
		read += champSize
		for _, p := range kb.champ[ti.champ : ti.champ+champSize] {
			ms.touch(kb.postE[p]).est += qt.qtf * kb.postW[p]
		}
	}
	cands := ms.cands[:0]
	for _, e := range ms.touched {
		a := &ms.accs[e]
		cands = append(cands, scored{entry: e, bm25: a.acc + a.est, logit: a.logit})
	}
	// Only the best partial candidates are completed and scored.
	if len(cands) > kb.rescore {
		selectTop(cands, kb.rescore, true)
		cands = cands[:kb.rescore]
	}
	if full < len(ms.qterms) {
		// Complete them exactly with the terms not read in full.
		rest := ms.qterms[full:]
		slices.SortFunc(rest, func(a, b qterm) int { return cmp.Compare(a.id, b.id) })
		for i := range cands {
			c := &cands[i]
			c.bm25 = ms.accs[c.entry].acc
			kb.complete(c, rest, clf)
		}
	}
	if ms.qv != nil {
		cands = kb.addSemantic(ms, cands, clf)
	}
	// Blend the BM25 ratio with the classifier's softmax probability, every
	// entry without a shared term at logit 0. Until the classifier is
	// trained, a softmax of the BM25 ratios (temperature bm25Temp) stands in
	// for it: on the evaluation sets both give nearly the same outcome
	// rates, so the thresholds keep their meaning.
	var mx float32
	for i := range cands {
		c := &cands[i]
		if clf == nil {
			c.logit = bm25Temp * c.bm25 / self
		}
		mx = max(mx, c.logit)
	}
	z := float64(len(kb.entries)-len(cands)) * math.Exp(float64(-mx))
	for i := range cands {
		c := &cands[i]
		e := math.Exp(float64(c.logit - mx))
		c.conf = float32(e) // probability numerator, normalised below
		z += e
	}
	ft := kb.ft.Load()
	if ft != nil && !ft.hidden(kb, ms.qterms, unknown, ms.hidden(ftDims)) {
		ft = nil
	}
	if ft != nil {
		ft.candidateProbs(ms.h, cands, ms)
		if len(ft.peers) > 0 {
			ms.sum = append(ms.sum[:0], ms.probs...)
			for _, p := range ft.peers {
				p.hidden(kb, ms.qterms, unknown, ms.h)
				p.candidateProbs(ms.h, cands, ms)
				for i, x := range ms.probs {
					ms.sum[i] += x
				}
			}
			inv := 1 / float32(1+len(ft.peers))
			for i := range ms.probs {
				ms.probs[i] = ms.sum[i] * inv
			}
		}
	}
	normQ := kb.exactMatch(ms)
	for i := range cands {
		c := &cands[i]
		c.prob = float32(float64(c.conf) / z)
		c.ratio = c.bm25 / self
		if ft != nil {
			c.ft = ms.probs[i]
		}
		c.exact = int32(c.entry) == normQ
		c.sem = -1
		if ms.qv != nil {
			c.sem = ms.si.calibrate(ms.si.cos(c.entry, ms.qv))
		}
	}
	if ft != nil {
		kb.feedback(ms, cands, specific, true, ftBlend)
	}
	ms.specific, ms.withFT = specific, ft != nil
	keep := NumCandidates
	if ms.keep > 0 {
		keep = ms.keep
	}
	cands = finish(cands, specific, ft != nil, ftBlend, fbBlend, float32(kb.clarify), keep)
	ms.cands = cands
	return cands
}

// finish ranks candidates (their parts set) and gives them their scores,
// keeping the best keep. Ranking and confidence are separate: entries are
// ranked by the full fusion (with the fastText part, once trained, and the
// feedback score), while the first one's score is the largest calibrated
// confidence among all the candidates — the BM25 + sparse classifier blend,
// the scale the thresholds were chosen on, which separates out-of-domain
// questions best (the fastText part adds ranking skill but not separation:
// docs/MATCHING-RESULTS.md §3c). Taken over every candidate, not only the
// kept ones, it does not depend on the ranking at all, so the outcome of a
// question is the same whatever the ranking's weights. Every other
// candidate scores that times its fused score relative to the first, so
// scores still fall with rank. An exact question match scores 1 on both
// scales.
func finish(cands []scored, specific float32, withFT bool, ftShare, fbShare, clarify float32, keep int) []scored {
	for i := range cands {
		c := &cands[i]
		conf, rank := scores(c, specific, withFT, ftShare, fbShare)
		c.cal = conf
		// Not clamped: ties at 1 would lose the ranking (Match clamps the
		// reported score).
		c.conf = rank
	}
	// The best and second-best calibrated confidences, whichever entries
	// hold them.
	var top, second float32
	for i := range cands {
		if c := cands[i].cal; c > top {
			top, second = c, top
		} else if c > second {
			second = c
		}
	}
	n := len(cands)
	if len(cands) > keep {
		selectTop(cands, keep, false)
		cands = cands[:keep]
	}
	sortCandidates(cands)
	if len(cands) == 0 || cands[0].conf <= 0 {
		return cands
	}
	if n > 1 {
		top *= ambiguity(second/top, top, clarify)
	}
	first := cands[0].conf
	for i := range cands {
		cands[i].conf = top * cands[i].conf / first
	}
	return cands
}

// ambiguity is the factor that lowers the best score top when the two best
// entries are nearly tied (second/first above ambiguityRatio), by up to
// ambiguityDiscount, so a coin flip between two entries is asked about
// rather than answered. It never takes the score below the clarify
// threshold: ambiguity is a reason to ask, not to give up.
func ambiguity(ratio, top, clarify float32) float32 {
	if top >= 1 || top <= 0 {
		return 1 // an exact question match, or nothing
	}
	if ratio <= ambiguityRatio {
		return 1
	}
	d := 1 - ambiguityDiscount*(ratio-ambiguityRatio)/(1-ambiguityRatio)
	if floor := min(top, clarify); top*d < floor {
		d = floor / top
	}
	return d
}

// scores are an entry's calibrated confidence and ranking score from its
// parts (the semantic similarity and an exact match included).
func scores(c *scored, specific float32, withFT bool, ftShare, fbShare float32) (conf, rank float32) {
	if !withFT {
		fbShare = 0 // feedback scores are only computed with the fastText part
	}
	conf, rank = fuse(c, specific, false, 0, 0), fuse(c, specific, withFT, ftShare, fbShare)
	if c.sem >= 0 {
		conf = (1-semWeight)*conf + semWeight*c.sem
		rank = (1-semWeight)*rank + semWeight*c.sem
	}
	if c.exact {
		conf, rank = max(conf, 1), max(rank, 1)
	}
	return conf, rank
}

// fuse is an entry's lexical confidence from its parts: the BM25 ratio (with
// fbShare of it the feedback score) and the sparse classifier blended, then
// the fastText-style classifier (once trained) blended in, all scaled by the
// query's specificity. The calibrated confidence is fuse with both shares 0.
func fuse(c *scored, specific float32, withFT bool, ftShare, fbShare float32) float32 {
	ratio := c.ratio
	if fbShare > 0 {
		ratio = (1-fbShare)*ratio + fbShare*c.fb
	}
	conf := (1-clfBlend)*ratio + clfBlend*c.prob
	if withFT {
		conf = (1-ftShare)*conf + ftShare*c.ft
	}
	return conf * specific
}

// feedback sets every candidate's feedback score: how much of the best
// entry's vocabulary it shares, the entry's own BM25 impacts (its term
// distribution) taken as a query against the candidate, relative to that
// query's score against itself. Pseudo-relevance feedback from one entry,
// for ranking only: a candidate worded like the best entry moves up the
// list, which brings the other entries of the same intent (near-duplicate
// entries, BQ's several ids per intent) into the first five; the best one
// keeps its place (it is most like itself). Expanding with more entries
// moved the first place too and gained less (docs/MATCHING-RESULTS.md §3e).
// The best entry is the one ranked first without feedback (at fastText
// share ftShare). Only used with the fastText part: without it (large
// knowledge bases) feedback gained nothing measurable and would cost
// latency where the budget is tight.
func (kb *KnowledgeBase) feedback(ms *matchScratch, cands []scored, specific float32, withFT bool, ftShare float32) {
	best, bestR := -1, float32(0)
	for i := range cands {
		_, r := scores(&cands[i], specific, withFT, ftShare, 0)
		if best < 0 || r > bestR || r == bestR && cands[i].entry < cands[best].entry {
			best, bestR = i, r
		}
	}
	if best < 0 {
		return
	}
	be := cands[best].entry
	q := kb.fwd[kb.fwdOff[be]:kb.fwdOff[be+1]]
	// The query's term weights are the best entry's impacts (any scale:
	// the score is divided by the self score), its self score Σ impact ·
	// kind weight × idf, the impact of a single occurrence before
	// saturation. They are scattered over a per-term array, so each
	// candidate's forward list is read once without a merge.
	if len(ms.fbw) != len(kb.terms) {
		ms.fbw = make([]float32, len(kb.terms))
	}
	var self float32
	for _, it := range q {
		ti := &kb.terms[it.term]
		self += it.w * kindWeight[ti.kind] * ti.idf
		ms.fbw[it.term] = it.w
	}
	if self > 0 {
		inv := 1 / self
		for i := range cands {
			c := &cands[i]
			var s float32
			for _, it := range kb.fwd[kb.fwdOff[c.entry]:kb.fwdOff[c.entry+1]] {
				s += ms.fbw[it.term] * it.w
			}
			c.fb = s * inv
		}
	}
	for _, it := range q {
		ms.fbw[it.term] = 0
	}
}

// addSemantic adds to cands the entries most similar to the query's
// embedding that the lexical pass did not find (when the knowledge base is
// small enough to scan: semScanLimit), with their lexical parts computed
// exactly.
func (kb *KnowledgeBase) addSemantic(ms *matchScratch, cands []scored, clf *classifier) []scored {
	si := ms.si
	if len(kb.entries)*si.dims > semScanLimit {
		return cands
	}
	type hit struct {
		e   uint32
		cos float32
	}
	var best [semAdd]hit
	nb := 0
	for e := range kb.entries {
		c := si.cos(uint32(e), ms.qv)
		if nb == semAdd && c <= best[nb-1].cos {
			continue
		}
		j := min(nb, semAdd-1)
		for j > 0 && best[j-1].cos < c {
			if j < semAdd {
				best[j] = best[j-1]
			}
			j--
		}
		best[j] = hit{uint32(e), c}
		nb = min(nb+1, semAdd)
	}
	ms.qsorted = append(ms.qsorted[:0], ms.qterms...)
	slices.SortFunc(ms.qsorted, func(a, b qterm) int { return cmp.Compare(a.id, b.id) })
	for _, h := range best[:nb] {
		if slices.ContainsFunc(cands, func(c scored) bool { return c.entry == h.e }) {
			continue
		}
		c := scored{entry: h.e}
		kb.complete(&c, ms.qsorted, clf)
		cands = append(cands, c)
	}
	return cands
}

// exactMatch is the entry whose question equals the query after
// normalisation (ms.sc.syn still holds the query's normalised text), or -1.
func (kb *KnowledgeBase) exactMatch(ms *matchScratch) int32 {
	return kb.lookupExact(ms.sc.syn)
}

func (kb *KnowledgeBase) accumulate(ms *matchScratch, qt qterm, ti *termInfo, clf *classifier) {
	lo, hi := ti.off, ti.off+ti.n
	es, ps := kb.postE[lo:hi], kb.postW[lo:hi]
	if clf == nil || lo < clf.p0 { // or a term without weights (in more than clfMaxDF entries)
		for i, e := range es {
			ms.touch(e).acc += qt.qtf * ps[i]
		}
		return
	}
	ws := clf.post[lo-clf.p0 : hi-clf.p0]
	for i, e := range es {
		a := ms.touch(e)
		a.acc += qt.qtf * ps[i]
		a.logit += qt.xval * ws[i]
	}
}

// complete adds the contributions of terms (sorted by id) that c's entry
// has, merging them with the entry's forward index.
func (kb *KnowledgeBase) complete(c *scored, terms []qterm, clf *classifier) {
	lo, hi := kb.fwdOff[c.entry], kb.fwdOff[c.entry+1]
	f := kb.fwd[lo:hi]
	var cw []float32
	first, skip := uint32(math.MaxUint32), 0
	if clf != nil {
		cw = clf.fwd[clf.fwdOff[c.entry]:clf.fwdOff[c.entry+1]]
		first, skip = clf.first, len(f)-len(cw)
	}
	i, j := 0, 0
	for i < len(f) && j < len(terms) {
		switch t := terms[j].id; {
		case f[i].term < t:
			i++
		case f[i].term > t:
			j++
		default:
			c.bm25 += terms[j].qtf * f[i].w
			if f[i].term >= first && terms[j].xval != 0 {
				c.logit += terms[j].xval * cw[i-skip]
			}
			i++
			j++
		}
	}
}

// sortCandidates orders by score descending, then knowledge-file order.
func sortCandidates(c []scored) {
	slices.SortFunc(c, func(a, b scored) int {
		if x := cmp.Compare(b.conf, a.conf); x != 0 {
			return x
		}
		return cmp.Compare(a.entry, b.entry)
	})
}

// selectTop reorders c so that its first k elements are those with the
// largest key (bm25 when byBM25, else conf; ties: smaller entry first), in
// no particular order. Quickselect; len(c) > k.
func selectTop(c []scored, k int, byBM25 bool) {
	key := func(x *scored) float32 {
		if byBM25 {
			return x.bm25
		}
		return x.conf
	}
	before := func(a, b *scored) bool {
		ka, kb := key(a), key(b)
		return ka > kb || ka == kb && a.entry < b.entry
	}
	lo, hi := 0, len(c)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if before(&c[mid], &c[lo]) {
			c[mid], c[lo] = c[lo], c[mid]
		}
		if before(&c[hi], &c[lo]) {
			c[hi], c[lo] = c[lo], c[hi]
		}
		if before(&c[hi], &c[mid]) {
			c[hi], c[mid] = c[mid], c[hi]
		}
		pivot := c[mid]
		i, j := lo, hi
		for i <= j {
			for before(&c[i], &pivot) {
				i++
			}
			for before(&pivot, &c[j]) {
				j--
			}
			if i <= j {
				c[i], c[j] = c[j], c[i]
				i++
				j--
			}
		}
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}
