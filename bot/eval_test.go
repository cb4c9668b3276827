package bot

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/dingdesk/dingdesk/config"
)

// The evaluation sets are not part of the repository (no licence to copy
// them): they are read from ../shared/data next to the repository root, or
// from $DINGDESK_EVAL_DATA.

// sharedDataDir finds the shared evaluation data or returns "".
func sharedDataDir() string {
	if d := os.Getenv("DINGDESK_EVAL_DATA"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	root := false // at or above the module root (a worktree may sit deeper)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			root = true
		}
		if root {
			d := filepath.Join(dir, "..", "shared", "data")
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				return d
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

type evalQuery struct {
	Query  string  `json:"query"`
	Expect *string `json:"expect_id"`
}

func loadEvalSet(tb testing.TB, name string) ([]Entry, []evalQuery) {
	tb.Helper()
	dir := sharedDataDir()
	if dir == "" {
		tb.Skip("shared evaluation data not found (../shared/data next to the repository root, or $DINGDESK_EVAL_DATA); skipping")
	}
	entries, qs, err := readEvalSet(dir, name)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return entries, qs
}

// readEvalSet reads one set's faq.jsonl and queries-dev.jsonl.
func readEvalSet(dir, name string) ([]Entry, []evalQuery, error) {
	dir = filepath.Join(dir, name)
	entries, err := LoadKnowledge([]string{filepath.Join(dir, "faq.jsonl")})
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(filepath.Join(dir, "queries-dev.jsonl"))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var qs []evalQuery
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var q evalQuery
		if err := json.Unmarshal(sc.Bytes(), &q); err != nil {
			return nil, nil, fmt.Errorf("queries: %w", err)
		}
		qs = append(qs, q)
	}
	return entries, qs, sc.Err()
}

func labelled(qs []evalQuery) []LabelledQuery {
	out := make([]LabelledQuery, len(qs))
	for i, q := range qs {
		out[i].Query = q.Query
		if q.Expect != nil {
			out[i].Expect = *q.Expect
		}
	}
	return out
}

func (ev Evaluation) String() string {
	return fmt.Sprintf("in-domain %d, OOD %d | top-1 %.3f top-5 %.3f MRR %.3f | OOD rejected %.3f, in-domain falsely rejected %.3f | answered %.3f (%.3f right), clarified %.3f, OOD answered %.3f | AUROC %.3f",
		ev.InDomain, ev.OOD, ev.Top1, ev.Top5, ev.MRR, ev.OODRejected, ev.FalseRejected, ev.Answered, ev.AnsweredRight, ev.Clarified, ev.OODAnswered, ev.AUROC)
}

// evalTargets are floors on the dev queries: the levels this matcher
// reaches, less a small margin, so a change that loses accuracy fails. The
// rejection targets (OOD ≥ 0.85, false rejection ≤ 0.10) are asserted as
// they are, on the dev set and on the cross-validated mean.
var evalTargets = map[string]struct{ top1, top5, oodRejected, falseRejected float64 }{
	"unionpay": {top1: 0.72, top5: 0.90, oodRejected: 0.85, falseRejected: 0.10},
	"bq":       {top1: 0.16, top5: 0.56, oodRejected: 0.85, falseRejected: 0.10},
}

// TestEvalSharedSets measures matching on the shared dev queries with the
// default configuration, then cross-validates the choices: every tuned
// number (the fastText and feedback shares, the clarify threshold) is
// chosen on four fifths of the dev queries of both sets by the rule that
// chose the shipped value, and measured on the fifth left out. The shipped
// value is the median of the five choices, and the test fails when it is
// not.
func TestEvalSharedSets(t *testing.T) {
	if raceEnabled {
		t.Skip("the evaluation trains full-size models: too slow under -race (run it without)")
	}
	opts, err := OptionsFrom(config.Default().Bot, nil)
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string][]cvQuery{}
	for _, name := range []string{"unionpay", "bq"} {
		entries, qs := loadEvalSet(t, name)
		kb, err := NewKnowledgeBase(entries, opts)
		if err != nil {
			t.Fatal(err)
		}
		kb.WaitTrained()
		m, err := Evaluate(kb, labelled(qs))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s dev (answer %.2f, clarify %.2f): %v", name, opts.AnswerThreshold, opts.ClarifyThreshold, m)
		tg := evalTargets[name]
		if m.Top1 < tg.top1 {
			t.Errorf("%s: top-1 %.3f < floor %.2f", name, m.Top1, tg.top1)
		}
		if m.Top5 < tg.top5 {
			t.Errorf("%s: top-5 %.3f < floor %.2f", name, m.Top5, tg.top5)
		}
		if m.OODRejected < tg.oodRejected {
			t.Errorf("%s: OOD rejection %.3f < target %.2f", name, m.OODRejected, tg.oodRejected)
		}
		if m.FalseRejected > tg.falseRejected {
			t.Errorf("%s: in-domain false rejection %.3f > target %.2f", name, m.FalseRejected, tg.falseRejected)
		}
		sets[name] = collectCV(kb, qs)
	}
	cv := crossValidate(sets, 5)
	for _, name := range []string{"unionpay", "bq"} {
		t.Logf("%s cross-validated (5 folds, mean ± sd): %s", name, cv.summary(name))
		tg := evalTargets[name]
		if f := cv.mean(name, func(f cvFigures) float64 { return f.oodRejected }); f < tg.oodRejected {
			t.Errorf("%s: cross-validated OOD rejection %.3f < target %.2f", name, f, tg.oodRejected)
		}
		if f := cv.mean(name, func(f cvFigures) float64 { return f.falseRejected }); f > tg.falseRejected {
			t.Errorf("%s: cross-validated false rejection %.3f > target %.2f", name, f, tg.falseRejected)
		}
	}
	t.Logf("choices per fold: fastText share %v, feedback share %v, clarify %v", cv.ftShares, cv.fbShares, cv.clarifies)
	for name, qs := range sets {
		t.Logf("%s curve: %s", name, curve(qs, shares{ftBlend, fbBlend}))
	}
	if got := medianOf(cv.ftShares); math.Abs(got-round4(float64(float32(ftBlend)))) > 1e-9 {
		t.Errorf("shipped ftBlend %.2f is not the cross-validated median %.2f", ftBlend, got)
	}
	if got := medianOf(cv.fbShares); math.Abs(got-round4(float64(float32(fbBlend)))) > 1e-9 {
		t.Errorf("shipped fbBlend %.2f is not the cross-validated median %.2f", fbBlend, got)
	}
	if got := medianOf(cv.clarifies); math.Abs(got-config.Default().Bot.ClarifyThreshold) > 1e-9 {
		t.Errorf("shipped clarify threshold %.2f is not the cross-validated median %.2f", config.Default().Bot.ClarifyThreshold, got)
	}
}
