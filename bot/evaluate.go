package bot

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
)

// LabelledQuery is a user's question with the entry that answers it; an
// empty Expect means the question is out of domain and the right outcome is
// no answer.
type LabelledQuery struct {
	Query  string
	Expect string
}

// LoadLabelledQueries reads a JSON Lines file of {"query", "expect_id"}
// objects ("expect_id": null or "" for out of domain). Every bad line is
// reported with file:line.
func LoadLabelledQueries(path string) ([]LabelledQuery, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLabelledQueries(path, f)
}

func readLabelledQueries(path string, r io.Reader) ([]LabelledQuery, error) {
	var (
		out  []LabelledQuery
		errs []error
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		}
		if len(b) == 0 {
			continue
		}
		var q struct {
			Query  *string `json:"query"`
			Expect *string `json:"expect_id"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&q); err != nil {
			errs = append(errs, &LoadError{path, line, "not a {\"query\", \"expect_id\"} object: " + err.Error()})
			continue
		}
		if q.Query == nil || strings.TrimSpace(*q.Query) == "" {
			errs = append(errs, &LoadError{path, line, "empty query"})
			continue
		}
		lq := LabelledQuery{Query: *q.Query}
		if q.Expect != nil {
			lq.Expect = *q.Expect
		}
		out = append(out, lq)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, &LoadError{File: path, Msg: err.Error()})
	}
	return out, errors.Join(errs...)
}

// Evaluation is how a knowledge base does on labelled queries, with its
// thresholds as configured.
type Evaluation struct {
	InDomain, OOD int
	// Top1, Top5: in-domain queries whose entry is first / in the first
	// five; MRR the mean reciprocal rank of it (0 when not among the
	// candidates).
	Top1, Top5, MRR float64
	// Answered is the share of in-domain queries answered directly,
	// AnsweredRight the share of those answers that were the right entry;
	// Clarified the share offered a clarify list.
	Answered, AnsweredRight, Clarified float64
	// OODRejected: out-of-domain queries given no answer; FalseRejected:
	// in-domain queries given no answer; OODAnswered: out-of-domain
	// queries answered directly.
	OODRejected, FalseRejected, OODAnswered float64
	// AUROC of the best score, in-domain against out-of-domain.
	AUROC float64
	// Curve is what other thresholds would do with the same scores.
	Curve []CurvePoint
}

// CurvePoint is the outcome rates at one threshold on the best score: as a
// clarify threshold (FalseRejected, OODRejected) and as an answer threshold
// (Answered, AnsweredRight, OODAnswered). The near-tie discount was applied
// at the configured clarify threshold, so points far from it are
// approximate.
type CurvePoint struct {
	Threshold                                float64
	FalseRejected, OODRejected               float64
	Answered, AnsweredRight, OODAnsweredRate float64
}

// Evaluate matches every query (waiting for training and embeddings first,
// as the service would once they are done) and measures the outcomes. An
// expected id the knowledge base does not have is an error.
func Evaluate(kb *KnowledgeBase, qs []LabelledQuery) (Evaluation, error) {
	var errs []error
	for i, q := range qs {
		if _, ok := kb.byID[q.Expect]; q.Expect != "" && !ok {
			errs = append(errs, fmt.Errorf("query %d (%q): expect_id %q is not in the knowledge base", i+1, q.Query, q.Expect))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Evaluation{}, err
	}
	kb.WaitTrained()
	kb.WaitSemantic()
	type scoredQuery struct {
		top     float64
		ood     bool
		topOK   bool // the best candidate is the expected entry
		outcome Outcome
	}
	var (
		ev                       Evaluation
		sq                       []scoredQuery
		answered, right, clarify float64
	)
	for _, q := range qs {
		r := kb.Match(q.Query)
		top := 0.0
		if len(r.Candidates) > 0 {
			top = r.Candidates[0].Score
		}
		s := scoredQuery{top: top, ood: q.Expect == "", outcome: r.Outcome}
		if s.ood {
			ev.OOD++
			switch r.Outcome {
			case OutcomeNone:
				ev.OODRejected++
			case OutcomeAnswer:
				ev.OODAnswered++
			}
			sq = append(sq, s)
			continue
		}
		ev.InDomain++
		rank := slices.IndexFunc(r.Candidates, func(c Candidate) bool { return c.ID == q.Expect && c.Score > 0 })
		s.topOK = rank == 0
		if rank == 0 {
			ev.Top1++
		}
		if rank >= 0 && rank < 5 {
			ev.Top5++
		}
		if rank >= 0 {
			ev.MRR += 1 / float64(rank+1)
		}
		switch r.Outcome {
		case OutcomeNone:
			ev.FalseRejected++
		case OutcomeAnswer:
			answered++
			if r.Best.ID == q.Expect {
				right++
			}
		case OutcomeClarify:
			clarify++
		}
		sq = append(sq, s)
	}
	in, ood := float64(max(ev.InDomain, 1)), float64(max(ev.OOD, 1))
	ev.Top1 /= in
	ev.Top5 /= in
	ev.MRR /= in
	ev.FalseRejected /= in
	ev.Answered, ev.Clarified = answered/in, clarify/in
	if answered > 0 {
		ev.AnsweredRight = right / answered
	}
	ev.OODRejected /= ood
	ev.OODAnswered /= ood
	var inTop, oodTop []float64
	for _, s := range sq {
		if s.ood {
			oodTop = append(oodTop, s.top)
		} else {
			inTop = append(inTop, s.top)
		}
	}
	ev.AUROC = auroc(inTop, oodTop)
	for t := 0.10; t < 0.905; t += 0.02 {
		p := CurvePoint{Threshold: round4(t)}
		var ans, ansRight, oodAns float64
		for _, s := range sq {
			below := s.top < p.Threshold
			switch {
			case s.ood && below:
				p.OODRejected++
			case s.ood:
				oodAns++
			case below:
				p.FalseRejected++
			default:
				ans++
				if s.topOK {
					ansRight++
				}
			}
		}
		p.FalseRejected /= in
		p.OODRejected /= ood
		p.Answered, p.OODAnsweredRate = ans/in, oodAns/ood
		if ans > 0 {
			p.AnsweredRight = ansRight / ans
		}
		ev.Curve = append(ev.Curve, p)
	}
	return ev, nil
}

// auroc is the probability that an in-domain query's score is above an
// out-of-domain one's (ties count half).
func auroc(in, ood []float64) float64 {
	if len(in) == 0 || len(ood) == 0 {
		return 0
	}
	s := slices.Clone(in)
	sort.Float64s(s)
	var pairs float64
	for _, o := range ood {
		lo := sort.SearchFloat64s(s, o)                                 // in-domain scores < o
		hi := sort.Search(len(s), func(i int) bool { return s[i] > o }) // ≤ o
		pairs += float64(len(s)-hi) + 0.5*float64(hi-lo)
	}
	return pairs / float64(len(in)*len(ood))
}
