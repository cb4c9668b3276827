package bot

import (
	"bytes"
	"cmp"
	"hash/maphash"
	"math"
	"runtime"
	"slices"
	"sync"
)

// trainingSet is the classifier's training data: one example per question,
// flat. Example i has terms exTerms[exOff[i]:exOff[i+1]] with term
// frequencies exTF (same range) and label exEntry[i]. Its feature values
// (values) are computed from the frequencies when training reads them:
// stored as float32 they took four times the memory for the whole training.
type trainingSet struct {
	exOff   []uint32
	exTerms []uint32
	exTF    []uint8            // tfBig holds those of tfOverflow and above
	tfBig   map[uint32]float32 // by position in exTerms
	exInv   []float32          // per example: 1 / L2 norm of its values (1 when 0)
	exEntry []uint32
}

// tfOverflow marks a term frequency kept in trainingSet.tfBig.
const tfOverflow = math.MaxUint8

func (ts *trainingSet) len() int { return len(ts.exEntry) }

func (ts *trainingSet) addTF(tf float32) {
	if tf >= tfOverflow {
		if ts.tfBig == nil {
			ts.tfBig = make(map[uint32]float32)
		}
		ts.tfBig[uint32(len(ts.exTF))] = tf
		ts.exTF = append(ts.exTF, tfOverflow)
		return
	}
	ts.exTF = append(ts.exTF, uint8(tf))
}

func (ts *trainingSet) tf(i uint32) float32 {
	if tf := ts.exTF[i]; tf != tfOverflow {
		return float32(tf)
	}
	return ts.tfBig[i]
}

// unscaled is the classifier feature value of a term with frequency tf
// before the example's normalisation: idf-weighted sqrt(tf).
func unscaled(ti *termInfo, tf float32) float32 {
	return clfKindWeight[ti.kind] * float32(math.Sqrt(float64(tf))) * ti.idf
}

// values appends example q's feature values to dst.
func (ts *trainingSet) values(dst []float32, q int, terms []termInfo) []float32 {
	inv := ts.exInv[q]
	for i := ts.exOff[q]; i < ts.exOff[q+1]; i++ {
		dst = append(dst, unscaled(&terms[ts.exTerms[i]], ts.tf(i))*inv)
	}
	return dst
}

// analysed is one question after analysis.
type analysed struct {
	norm  string
	terms []tfTerm
}

// buildBlock is how many entries are analysed (in parallel) at a time.
const buildBlock = 1024

// build creates the inverted index, forward index and champion lists, and
// returns the classifier's training set. Questions are analysed in
// parallel (GOMAXPROCS workers), block by block so memory stays bounded.
func (kb *KnowledgeBase) build() *trainingSet {
	n := len(kb.entries)
	kb.vocab = make(map[uint64]uint32)
	kb.exact.byHash = make(map[uint64]int32)
	var esc scratch // for addExact
	kb.fwdOff = make([]uint32, n+1)
	var (
		kinds  []uint8
		lens   = make([][numKinds]float32, n)
		ts     = &trainingSet{exOff: []uint32{0}}
		qs     []string
		qEntry []int
		res    []analysed
		pairs  []fwdItem // one entry's (term, tf) before merging
	)
	workers := runtime.GOMAXPROCS(0)
	for start := 0; start < n; start += buildBlock {
		end := min(start+buildBlock, n)
		qs, qEntry = qs[:0], qEntry[:0]
		for e := start; e < end; e++ {
			qs = append(qs, kb.entries[e].Question)
			qEntry = append(qEntry, e)
			for _, s := range kb.entries[e].Similar {
				qs = append(qs, s)
				qEntry = append(qEntry, e)
			}
		}
		res = slices.Grow(res[:0], len(qs))[:len(qs)]
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var sc scratch
				for i := w; i < len(qs); i += workers {
					ts := kb.an.terms(qs[i], &sc)
					res[i] = analysed{norm: string(sc.syn), terms: slices.Clone(ts)}
				}
			}()
		}
		wg.Wait()
		// Merge in order: vocabulary ids, examples, per-entry terms.
		for i := 0; i < len(qs); {
			e := qEntry[i]
			pairs = pairs[:0]
			for ; i < len(qs) && qEntry[i] == e; i++ {
				r := &res[i]
				kb.addExact(r.norm, int32(e), &esc)
				for _, t := range r.terms {
					id, ok := kb.vocab[t.h]
					if !ok {
						id = uint32(len(kinds))
						kb.vocab[t.h] = id
						kinds = append(kinds, t.kind)
					}
					ts.exTerms = append(ts.exTerms, id)
					ts.addTF(t.tf)
					lens[e][t.kind] += t.tf
					pairs = append(pairs, fwdItem{id, t.tf})
				}
				ts.exOff = append(ts.exOff, uint32(len(ts.exTerms)))
				ts.exEntry = append(ts.exEntry, uint32(e))
				res[i] = analysed{}
			}
			slices.SortFunc(pairs, func(a, b fwdItem) int { return cmp.Compare(a.term, b.term) })
			// fwd holds term frequencies in w until impacts are known.
			for j, p := range pairs {
				if j > 0 && p.term == pairs[j-1].term {
					kb.fwd[len(kb.fwd)-1].w += p.w
					continue
				}
				kb.fwd = append(kb.fwd, p)
			}
			kb.fwdOff[e+1] = uint32(len(kb.fwd))
		}
	}
	for e := 1; e <= n; e++ { // entries without terms
		kb.fwdOff[e] = max(kb.fwdOff[e], kb.fwdOff[e-1])
	}
	// Appending left up to a fifth of kb.fwd's capacity unused, and the
	// forward index lives as long as the knowledge base.
	kb.fwd = slices.Clone(kb.fwd)

	// Document frequencies; then renumber terms by descending frequency, so
	// that the common terms (the ones a query may not read in full) come
	// first in every entry's forward list and completing a candidate stops
	// early.
	df := make([]uint32, len(kinds))
	for _, it := range kb.fwd {
		df[it.term]++
	}
	order := make([]uint32, len(kinds)) // new id → old id
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortStableFunc(order, func(a, b uint32) int { return cmp.Compare(df[b], df[a]) })
	renum := make([]uint32, len(kinds)) // old id → new id
	for newID, oldID := range order {
		renum[oldID] = uint32(newID)
	}
	for h, id := range kb.vocab {
		kb.vocab[h] = renum[id]
	}
	for i, id := range ts.exTerms {
		ts.exTerms[i] = renum[id]
	}
	for i := range kb.fwd {
		kb.fwd[i].term = renum[kb.fwd[i].term]
	}
	for e := 0; e < n; e++ {
		slices.SortFunc(kb.fwd[kb.fwdOff[e]:kb.fwdOff[e+1]], func(a, b fwdItem) int { return cmp.Compare(a.term, b.term) })
	}
	newKinds := make([]uint8, len(kinds))
	for newID, oldID := range order {
		newKinds[newID] = kinds[oldID]
	}
	kinds = newKinds

	// idf, average lengths.
	kb.terms = make([]termInfo, len(kinds))
	for _, it := range kb.fwd {
		kb.terms[it.term].n++
	}
	nf := float64(max(n, 1))
	var off uint32
	for id := range kb.terms {
		ti := &kb.terms[id]
		ti.off, ti.kind, ti.idf = off, kinds[id], idf(nf, float64(ti.n))
		off += ti.n
	}
	kb.idfMax = idf(nf, 0)
	var avg [numKinds]float64
	for e := range lens {
		for k := range avg {
			avg[k] += float64(lens[e][k])
		}
	}
	for k := range avg {
		avg[k] = max(avg[k]/nf, 1)
	}

	// Postings by counting sort: walking entries in order leaves each
	// term's postings sorted by entry.
	kb.postE = make([]uint32, len(kb.fwd))
	kb.postW = make([]float32, len(kb.fwd))
	next := make([]uint32, len(kb.terms))
	for id := range kb.terms {
		next[id] = kb.terms[id].off
	}
	for e := 0; e < n; e++ {
		for i := kb.fwdOff[e]; i < kb.fwdOff[e+1]; i++ {
			id := kb.fwd[i].term
			ti := &kb.terms[id]
			k := ti.kind
			norm := bm25K1 * (1 - bm25B + bm25B*float64(lens[e][k])/avg[k])
			tf := float64(kb.fwd[i].w)
			w := kindWeight[k] * ti.idf * float32(tf*(bm25K1+1)/(tf+norm))
			p := next[id]
			next[id]++
			kb.postE[p], kb.postW[p] = uint32(e), w
			kb.fwd[i].w = w
		}
	}
	kb.buildChampions()

	// Classifier features: idf-weighted sqrt(tf), L2-normalised per question.
	ts.exInv = make([]float32, ts.len())
	for q := 0; q < ts.len(); q++ {
		lo, hi := ts.exOff[q], ts.exOff[q+1]
		var ss float32
		for i := lo; i < hi; i++ {
			v := unscaled(&kb.terms[ts.exTerms[i]], ts.tf(i))
			ss += v * v
		}
		ts.exInv[q] = 1
		if ss > 0 {
			ts.exInv[q] = 1 / float32(math.Sqrt(float64(ss)))
		}
	}
	return ts
}

// buildChampions keeps the champSize highest-impact postings of every
// common term.
func (kb *KnowledgeBase) buildChampions() {
	var idx []uint32
	for t := range kb.terms {
		ti := &kb.terms[t]
		if ti.n <= champSize {
			continue
		}
		idx = idx[:0]
		for p := ti.off; p < ti.off+ti.n; p++ {
			idx = append(idx, p)
		}
		slices.SortFunc(idx, func(a, b uint32) int {
			if c := cmp.Compare(kb.postW[b], kb.postW[a]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		ti.champ = uint32(len(kb.champ))
		kb.champ = append(kb.champ, idx[:champSize]...)
	}
}

// exactIndex maps a question's normalised text to its entry. It is keyed by
// a 64-bit hash of the text (string keys took twice the memory: the texts
// and larger slots), so a hit is confirmed against the entry's questions.
type exactIndex struct {
	byHash map[uint64]int32
	// coll holds the texts whose hash another text of the knowledge base
	// has; almost always empty.
	coll map[string]int32
}

// exactSeed seeds the hash of exactIndex.
var exactSeed = maphash.MakeSeed()

// addExact records that entry e (entries are added in order) has a
// question with normalised text norm; the first entry with a text keeps it.
// A hash already taken by another entry is a duplicate question (a text that
// entry has) or a collision (kept in coll).
func (kb *KnowledgeBase) addExact(norm string, e int32, sc *scratch) {
	x := &kb.exact
	if norm == "" {
		return
	}
	h := maphash.String(exactSeed, norm)
	first, taken := x.byHash[h]
	switch {
	case !taken:
		x.byHash[h] = e
	case first == e || kb.hasQuestion(first, []byte(norm), sc):
		// A text of e's (lookupExact confirms it against e), or one an
		// earlier entry has and keeps.
	default:
		if _, dup := x.coll[norm]; !dup {
			if x.coll == nil {
				x.coll = make(map[string]int32)
			}
			x.coll[norm] = e
		}
	}
}

// lookupExact is the entry with a question whose normalised text is norm, or -1.
func (kb *KnowledgeBase) lookupExact(norm []byte) int32 {
	x := &kb.exact
	if len(norm) == 0 {
		return -1
	}
	if e, ok := x.coll[string(norm)]; ok {
		return e
	}
	e, ok := x.byHash[maphash.Bytes(exactSeed, norm)]
	if !ok {
		return -1
	}
	var sc scratch
	if !kb.hasQuestion(e, norm, &sc) {
		return -1 // another text with the same hash
	}
	return e
}

// hasQuestion reports whether entry e has a question whose normalised text
// is norm.
func (kb *KnowledgeBase) hasQuestion(e int32, norm []byte, sc *scratch) bool {
	en := &kb.entries[e]
	if bytes.Equal(kb.an.normalize(en.Question, sc), norm) {
		return true
	}
	for _, q := range en.Similar {
		if bytes.Equal(kb.an.normalize(q, sc), norm) {
			return true
		}
	}
	return false
}

// idf is BM25's inverse document frequency (always positive).
func idf(n, df float64) float32 {
	return float32(math.Log(1 + (n-df+0.5)/(df+0.5)))
}
