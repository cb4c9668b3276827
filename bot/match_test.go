package bot

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMatchOutcomes(t *testing.T) {
	kb := mustSampleKB(t, Options{}) // default thresholds
	cases := map[string]struct {
		query   string
		outcome Outcome
		best    string // "" for none
	}{
		"standard question":      {"VPN连不上怎么办？", OutcomeAnswer, "it-vpn"},
		"similar question":       {"域账号密码忘了", OutcomeAnswer, "it-password"},
		"paraphrase":             {"在家里连不上vpn", OutcomeAnswer, "it-vpn"},
		"paraphrase from CSV":    {"请问年休假的流程", OutcomeAnswer, "hr-leave"},
		"paraphrase from JSONL":  {"工牌丢了", OutcomeAnswer, "adm-badge"},
		"one word several match": {"申请", OutcomeClarify, ""},
		"out of domain":          {"今天天气怎么样", OutcomeNone, ""},
		"no content":             {"怎么办", OutcomeNone, ""},
		"empty":                  {"", OutcomeNone, ""},
		"punctuation only":       {"？？！", OutcomeNone, ""},
		"unknown words only":     {"量子纠缠", OutcomeNone, ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := kb.Match(c.query)
			if r.Outcome != c.outcome {
				t.Fatalf("Match(%q) = %s, want %s (candidates %v)", c.query, r.Outcome, c.outcome, r.Candidates[:3])
			}
			if len(r.Candidates) != NumCandidates {
				t.Fatalf("%d candidates, want %d", len(r.Candidates), NumCandidates)
			}
			for i := 1; i < len(r.Candidates); i++ {
				if r.Candidates[i].Score > r.Candidates[i-1].Score {
					t.Fatalf("candidates not best first: %v", r.Candidates)
				}
			}
			top := r.Candidates[0]
			switch {
			case r.Outcome == OutcomeNone:
				if r.Best != nil {
					t.Errorf("Best = %s for none", r.Best.ID)
				}
				if top.Score >= DefaultClarifyThreshold {
					t.Errorf("none with top score %v", top.Score)
				}
			case r.Best == nil || r.Best.ID != top.ID:
				t.Errorf("Best is not the top candidate")
			case c.best != "" && top.ID != c.best:
				t.Errorf("best = %s, want %s", top.ID, c.best)
			}
			if r.Outcome == OutcomeAnswer && top.Score < DefaultAnswerThreshold ||
				r.Outcome == OutcomeClarify && (top.Score < DefaultClarifyThreshold || top.Score >= DefaultAnswerThreshold) {
				t.Errorf("outcome %s does not fit top score %v", r.Outcome, top.Score)
			}
		})
	}
}

func TestMatchThresholds(t *testing.T) {
	q := "在家里连不上vpn"
	score := mustSampleKB(t, Options{}).Match(q).Candidates[0].Score
	for _, c := range []struct {
		answer, clarify float64
		want            Outcome
	}{
		{score - 0.01, score - 0.02, OutcomeAnswer},
		{score + 0.01, score - 0.01, OutcomeClarify},
		{score + 0.02, score + 0.01, OutcomeNone},
	} {
		kb := mustSampleKB(t, Options{AnswerThreshold: c.answer, ClarifyThreshold: c.clarify})
		if got := kb.Match(q).Outcome; got != c.want {
			t.Errorf("score %v, thresholds %v/%v: %s, want %s", score, c.answer, c.clarify, got, c.want)
		}
	}
	if _, err := NewKnowledgeBase(nil, Options{AnswerThreshold: 0.3, ClarifyThreshold: 0.5}); err == nil {
		t.Error("clarify above answer accepted")
	}
}

func TestMatchNormalisation(t *testing.T) {
	kb := mustSampleKB(t, Options{})
	for _, q := range []string{
		"ＶＰＮ連不上怎麼辦？",    // full width, traditional
		"vpn连不上怎么办",     // lower case, no punctuation
		"VPN 连不上，怎么办!!", // spaces, ASCII punctuation
		"VPN连不上咋办",      // built-in colloquial variant
	} {
		r := kb.Match(q)
		if r.Outcome != OutcomeAnswer || r.Best.ID != "it-vpn" || r.Candidates[0].Score != 1 {
			t.Errorf("Match(%q) = %s %v, want an exact answer it-vpn", q, r.Outcome, r.Candidates[:2])
		}
	}
}

func TestMatchSynonyms(t *testing.T) {
	q := "胸卡不见了"
	plain := mustSampleKB(t, Options{}).Match(q)
	withSyn := mustSampleKB(t, Options{Synonyms: [][]string{{"工牌", "胸卡", "工卡"}, {"丢了", "不见了", "丢失"}}}).Match(q)
	if withSyn.Outcome != OutcomeAnswer || withSyn.Best.ID != "adm-badge" {
		t.Fatalf("with synonyms: %s %v", withSyn.Outcome, withSyn.Candidates[:2])
	}
	if plain.Outcome == OutcomeAnswer {
		t.Errorf("without synonyms %q is answered (%v): the test proves nothing", q, plain.Candidates[:2])
	}
	// Letter runs are replaced only whole: "pc" must not rewrite "pcie".
	s := newSynonyms([][]string{{"电脑", "PC"}})
	if got := string(s.rewrite(nil, []byte("pc坏了 pcie插槽"))); got != "电脑坏了 pcie插槽" {
		t.Errorf("rewrite = %q", got)
	}
}

func TestMatchStopWords(t *testing.T) {
	entries := []Entry{
		{ID: "a", Question: "报销的流程", Answer: "x"},
		{ID: "b", Question: "的的的的", Answer: "y"},
	}
	kb, err := NewKnowledgeBase(entries, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := kb.Match("的"); r.Outcome != OutcomeNone {
		t.Errorf("a stop word alone matched: %v", r.Candidates)
	}
	kb, err = NewKnowledgeBase(entries, Options{StopWords: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if r := kb.Match("的"); r.Candidates[0].ID != "b" || r.Candidates[0].Score == 0 {
		t.Errorf("with no stop words: %v", r.Candidates)
	}
}

func TestMatchSmallKB(t *testing.T) {
	empty, err := NewKnowledgeBase(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := empty.Match("VPN"); r.Outcome != OutcomeNone || len(r.Candidates) != 0 || empty.Len() != 0 {
		t.Errorf("empty KB: %+v", r)
	}
	two, err := NewKnowledgeBase([]Entry{{ID: "1", Question: "年假怎么请", Answer: "a"}, {ID: "2", Question: "工资几号发", Answer: "b"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := two.Match("今天天气不错")
	if len(r.Candidates) != 2 || r.Outcome != OutcomeNone {
		t.Errorf("two entries, unrelated query: %+v", r)
	}
	if r := two.Match("工资几号发"); r.Best == nil || r.Best.ID != "2" || r.Candidates[1].ID != "1" {
		t.Errorf("two entries: %+v", r)
	}
	if _, err := NewKnowledgeBase([]Entry{{ID: "1", Question: "q"}, {ID: "1", Question: "q"}}, Options{}); err == nil {
		t.Error("duplicate ids accepted")
	}
}

func TestEntryLookup(t *testing.T) {
	kb := mustSampleKB(t, Options{})
	if kb.Len() != 20 {
		t.Fatalf("Len = %d", kb.Len())
	}
	e, ok := kb.Entry("hr-salary")
	if !ok || e.Question != "工资什么时候发？" {
		t.Errorf("Entry(hr-salary) = %v, %v", e, ok)
	}
	if _, ok := kb.Entry("nope"); ok {
		t.Error("unknown id found")
	}
}

func TestMatchConcurrent(t *testing.T) {
	kb := mustSampleKB(t, Options{})
	queries := []string{"VPN连不上", "年假怎么请", "打印机卡纸", "今天天气怎么样", "工资什么时候发"}
	want := make([]Result, len(queries))
	for i, q := range queries {
		want[i] = kb.Match(q)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				k := (g + i) % len(queries)
				got := kb.Match(queries[k])
				if fmt.Sprint(got.Candidates) != fmt.Sprint(want[k].Candidates) {
					t.Errorf("concurrent Match(%q) differs", queries[k])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestBackgroundTraining(t *testing.T) {
	// A knowledge base used before its classifier is trained answers with
	// BM25 alone; training is deterministic.
	kb := mustSampleKB(t, Options{})
	if !kb.Trained() {
		t.Fatal("small knowledge base not trained at build")
	}
	again := mustSampleKB(t, Options{})
	a, b := kb.Match("笔记本屏幕坏了"), again.Match("笔记本屏幕坏了")
	if fmt.Sprint(a.Candidates) != fmt.Sprint(b.Candidates) {
		t.Errorf("training not deterministic:\n%v\n%v", a.Candidates, b.Candidates)
	}
	untrained := mustSampleKB(t, Options{})
	untrained.clf.Store(nil)
	if r := untrained.Match("笔记本屏幕坏了"); r.Best == nil || r.Best.ID != "it-laptop" {
		t.Errorf("BM25 alone: %v", r.Candidates[:3])
	}
}

func TestAnalyzer(t *testing.T) {
	a := newAnalyzer(DefaultStopWords, nil)
	var sc scratch
	if got := string(a.normalize("请问ＶＰＮ怎樣連接？", &sc)); got != "请问vpn怎么连接" {
		t.Errorf("normalize = %q", got)
	}
	// "的" is a stop word: no term for it, no bigram across it.
	if ts := a.analyze("的", &sc); len(ts) != 0 {
		t.Errorf("stop word analysed to %d terms", len(ts))
	}
	has := map[uint64]bool{}
	for _, tm := range a.analyze("电脑的屏幕", &sc) {
		has[tm.h] = true
	}
	for _, bad := range [][2]string{{"脑", "的"}, {"的", "屏"}, {"脑", "屏"}} {
		if has[hashTerm(kindBi, []byte(bad[0]), []byte(bad[1]))] {
			t.Errorf("bigram %s%s present", bad[0], bad[1])
		}
	}
	if !has[hashTerm(kindBi, []byte("屏"), []byte("幕"))] || !has[hashTerm(kindUni, []byte("脑"), nil)] {
		t.Error("expected terms missing")
	}
	if !strings.Contains(fmt.Sprint(DefaultStopWords), "请问") {
		t.Error("default stop words lack 请问")
	}
}

func TestSelectTop(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		n := 2 + rng.IntN(300)
		k := 1 + rng.IntN(n-1)
		c := make([]scored, n)
		for i := range c {
			c[i] = scored{entry: uint32(i), conf: float32(rng.IntN(20))} // many ties
		}
		want := slices.Clone(c)
		sortCandidates(want)
		selectTop(c, k, false)
		got := slices.Clone(c[:k])
		sortCandidates(got)
		if !slices.Equal(got, want[:k]) {
			t.Fatalf("n=%d k=%d: got %v, want %v", n, k, got, want[:k])
		}
	}
}

func TestBackgroundTrainingLarge(t *testing.T) {
	// Force background training, and hold the training slot so the test
	// sees the knowledge base before its classifier exists.
	defer func(b int) { syncTrainBudget = b }(syncTrainBudget)
	syncTrainBudget = 0
	trainSem <- struct{}{}
	kb := mustSampleKBNoWait(t)
	if kb.Trained() {
		t.Fatal("trained synchronously")
	}
	// Usable at once, with BM25 alone.
	if r := kb.Match("笔记本屏幕坏了"); r.Best == nil || r.Best.ID != "it-laptop" {
		t.Errorf("before training: %v", r.Candidates[:3])
	}
	<-trainSem
	kb.WaitTrained()
	if !kb.Trained() {
		t.Fatal("not trained after WaitTrained")
	}
	if r := kb.Match("笔记本屏幕坏了"); r.Best == nil || r.Best.ID != "it-laptop" {
		t.Errorf("after training: %v", r.Candidates[:3])
	}

	// A knowledge base dropped before its training starts is collected,
	// and its training ends without running.
	trainSem <- struct{}{}
	dropped := mustSampleKBNoWait(t)
	done, retired := dropped.trained, dropped.retired
	dropped = nil
	for i := 0; i < 100 && !retired.Load(); i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // cleanups run in their own goroutine
	}
	if !retired.Load() {
		t.Error("dropped knowledge base not retired by its cleanup")
	}
	<-trainSem
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("training of a dropped knowledge base did not end")
	}
}

func mustSampleKBNoWait(t *testing.T) *KnowledgeBase {
	t.Helper()
	kb, err := NewKnowledgeBase(mustLoadSample(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return kb
}

// Feedback (likeness to the best entry) moves only the ranking: the score
// that decides the outcome is the same at any feedback share, and an entry
// sharing no term with the best one gets no feedback score.
func TestFeedbackRanksOnly(t *testing.T) {
	kb := mustSampleKB(t, Options{})
	if kb.ft.Load() == nil {
		t.Fatal("the sample knowledge base has no fastText part")
	}
	ms := kb.getScratch()
	defer kb.pool.Put(ms)
	ms.keep = len(kb.entries)
	defer func() { ms.keep = 0 }()
	for _, q := range []string{"VPN连不上怎么办？", "在家里连不上vpn", "申请", "工牌丢了", "今天天气怎么样"} {
		cands := slices.Clone(kb.rank(q, ms))
		if len(cands) == 0 {
			continue
		}
		if !ms.withFT {
			t.Fatalf("%q: matched without the fastText part", q)
		}
		kb.feedback(ms, cands, ms.specific, true, ftBlend)
		best := slices.Clone(cands)
		finish(best, ms.specific, true, ftBlend, 0, DefaultClarifyThreshold, len(best))
		if best[0].fb <= 0 {
			t.Errorf("%q: the best entry %s has feedback score %v", q, kb.entries[best[0].entry].ID, best[0].fb)
		}
		for _, c := range cands {
			if shared := sharesTerm(kb, c.entry, best[0].entry); !shared && c.fb != 0 {
				t.Errorf("%q: %s shares no term with the best entry but has feedback %v", q, kb.entries[c.entry].ID, c.fb)
			}
		}
		var top float32
		for i, fb := range []float32{0, fbBlend, 0.9} {
			r := finish(slices.Clone(cands), ms.specific, true, ftBlend, fb, DefaultClarifyThreshold, NumCandidates)
			if i == 0 {
				top = r[0].conf
			} else if math.Abs(float64(r[0].conf-top)) > 1e-6 { // top × r/r: rounding
				t.Errorf("%q: top score %v at feedback share %v, %v without", q, r[0].conf, fb, top)
			}
		}
	}
}

func sharesTerm(kb *KnowledgeBase, a, b uint32) bool {
	for _, x := range kb.fwd[kb.fwdOff[a]:kb.fwdOff[a+1]] {
		for _, y := range kb.fwd[kb.fwdOff[b]:kb.fwdOff[b+1]] {
			if x.term == y.term {
				return true
			}
		}
	}
	return false
}
