package bot

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dingdesk/dingdesk/bot/embedtest"
	"github.com/dingdesk/dingdesk/bot/openaiembed"
)

// semEntries have a vocabulary gap only embeddings bridge: users say
// 苹果支付 and 刷卡机, the knowledge base Apple Pay and POS机.
var semEntries = []Entry{
	{ID: "applepay", Question: "Apple Pay怎么绑定银行卡？", Similar: []string{"Apple Pay支持哪些银行", "Apple Pay绑卡失败"}, Answer: "在钱包应用里添加银行卡。"},
	{ID: "pos", Question: "POS机消费没有小票怎么办？", Similar: []string{"POS机打印不出凭条"}, Answer: "联系商户补打。"},
	{ID: "limit", Question: "云闪付单笔限额是多少？", Similar: []string{"云闪付每天最多能付多少"}, Answer: "单笔5000元。"},
	{ID: "lost", Question: "银行卡丢了怎么挂失？", Similar: []string{"卡片遗失如何挂失", "挂失银行卡"}, Answer: "拨打95516挂失。"},
	{ID: "fee", Question: "跨行取款手续费多少？", Similar: []string{"异地取款收费吗"}, Answer: "以发卡行为准。"},
	{ID: "open", Question: "怎么开通云闪付？", Similar: []string{"云闪付注册", "下载云闪付"}, Answer: "在应用商店下载。"},
}

var semConcepts = map[string]string{
	"苹果支付": "applepay", "apple pay": "applepay",
	"刷卡机": "pos", "pos机": "pos",
	"小票": "receipt", "凭条": "receipt",
	"绑定": "bind", "绑卡": "bind", "添加": "bind",
	"丢了": "lost", "遗失": "lost", "挂失": "lost",
}

type semFixture struct {
	srv *embedtest.Server
	sem *Semantic
	dir string
}

func newSemFixture(t *testing.T, cfg SemanticConfig) *semFixture {
	t.Helper()
	srv := embedtest.New(32, semConcepts)
	t.Cleanup(srv.Close)
	if cfg.Model == "" {
		cfg.Model = "fake-embed"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 200 * time.Millisecond
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = t.TempDir()
	}
	client := &openaiembed.Client{BaseURL: srv.BaseURL(), Model: cfg.Model, Dimensions: cfg.Dimensions}
	return &semFixture{srv: srv, sem: NewSemantic(client, cfg, nil), dir: cfg.CacheDir}
}

func (f *semFixture) kb(t *testing.T, entries []Entry) *KnowledgeBase {
	t.Helper()
	kb, err := NewKnowledgeBase(entries, Options{Semantic: f.sem})
	if err != nil {
		t.Fatal(err)
	}
	kb.WaitTrained()
	kb.WaitSemantic()
	return kb
}

func lexicalKB(t *testing.T, entries []Entry) *KnowledgeBase {
	t.Helper()
	kb, err := NewKnowledgeBase(entries, Options{})
	if err != nil {
		t.Fatal(err)
	}
	kb.WaitTrained()
	return kb
}

func TestSemanticBridgesVocabulary(t *testing.T) {
	f := newSemFixture(t, SemanticConfig{BatchSize: 4})
	kb := f.kb(t, semEntries)
	if !kb.SemanticReady() {
		t.Fatal("semantic tier not ready after WaitSemantic")
	}
	lex := lexicalKB(t, semEntries)
	for q, want := range map[string]string{
		"苹果支付怎么添加银行卡": "applepay",
		"刷卡机没给小票":     "pos",
	} {
		r := kb.Match(q)
		if r.Candidates[0].ID != want {
			t.Errorf("semantic Match(%q) best %v, want %s", q, r.Candidates[:3], want)
		}
		if r.Outcome == OutcomeNone {
			t.Errorf("semantic Match(%q) = none (%v)", q, r.Candidates[:3])
		}
		lr := lex.Match(q)
		if lr.Candidates[0].ID == want && lr.Candidates[0].Score >= r.Candidates[0].Score {
			t.Errorf("lexical Match(%q) already as good (%v): the test shows nothing", q, lr.Candidates[:3])
		}
	}
	// Out of domain stays out: the calibration keeps thresholds' meaning.
	if r := kb.Match("今天天气怎么样"); r.Outcome != OutcomeNone {
		t.Errorf("OOD query answered with semantics: %s %v", r.Outcome, r.Candidates[:3])
	}
	// An exact question still answers.
	if r := kb.Match("怎么开通云闪付？"); r.Outcome != OutcomeAnswer || r.Best.ID != "open" {
		t.Errorf("exact question: %s %v", r.Outcome, r.Candidates[:3])
	}
	// Entries were embedded in batches of at most 4 questions.
	n := 0
	for _, e := range semEntries {
		n += 1 + len(e.Similar)
	}
	if got := testutil.ToFloat64(f.sem.metrics.calls.WithLabelValues("entries")); got != float64((n+3)/4) {
		t.Errorf("%v entry requests for %d questions in batches of 4", got, n)
	}
	if got := testutil.ToFloat64(f.sem.metrics.calls.WithLabelValues("query")); got < 4 {
		t.Errorf("%v query requests, want ≥ 4", got)
	}
}

func TestSemanticCacheEmbedsOnlyChanges(t *testing.T) {
	f := newSemFixture(t, SemanticConfig{})
	f.kb(t, semEntries)
	first := len(f.srv.Texts())
	if first != 15 {
		t.Fatalf("%d texts embedded at first load, want 15", first)
	}
	// Reload, unchanged: nothing is embedded.
	f.kb(t, semEntries)
	if got := len(f.srv.Texts()); got != first {
		t.Fatalf("unchanged reload embedded %d texts", got-first)
	}
	// One entry changes a question and gains one: only those two are sent.
	changed := slices.Clone(semEntries)
	changed[1].Similar = []string{"POS机打印不出凭条了", "刷卡机不出单"}
	kb := f.kb(t, changed)
	sent := f.srv.Texts()[first:]
	slices.Sort(sent)
	if !slices.Equal(sent, []string{"POS机打印不出凭条了", "刷卡机不出单"}) {
		t.Fatalf("reload embedded %q, want only the changed questions", sent)
	}
	if !kb.SemanticReady() {
		t.Fatal("not ready after reload")
	}
	// A new process (a fresh Semantic on the same cache dir) embeds nothing.
	before := len(f.srv.Texts())
	client := &openaiembed.Client{BaseURL: f.srv.BaseURL(), Model: "fake-embed"}
	fresh := NewSemantic(client, SemanticConfig{Model: "fake-embed", CacheDir: f.dir}, nil)
	kb2, err := NewKnowledgeBase(changed, Options{Semantic: fresh})
	if err != nil {
		t.Fatal(err)
	}
	kb2.WaitSemantic()
	if got := len(f.srv.Texts()); got != before || !kb2.SemanticReady() {
		t.Fatalf("restart with a warm cache embedded %d texts (ready %v)", got-before, kb2.SemanticReady())
	}
	// Another model does not reuse the first one's vectors.
	other := NewSemantic(&openaiembed.Client{BaseURL: f.srv.BaseURL(), Model: "other"}, SemanticConfig{Model: "other", CacheDir: f.dir}, nil)
	kb3, _ := NewKnowledgeBase(changed, Options{Semantic: other})
	kb3.WaitSemantic()
	if got := len(f.srv.Texts()) - before; got != 16 {
		t.Fatalf("another model embedded %d texts, want all 16", got)
	}
	// The cache holds one file per model, each with the current questions only.
	files, _ := filepath.Glob(filepath.Join(f.dir, "embeddings-*.bin"))
	if len(files) != 2 {
		t.Fatalf("cache files %v", files)
	}
	st, _ := os.Stat(cachePath(f.dir, "fake-embed"))
	if want := int64(len(cacheMagic) + 4 + 16*(16+4*32)); st.Size() != want {
		t.Errorf("cache file %d bytes, want %d (16 questions)", st.Size(), want)
	}
}

// sameRanking compares a semantic knowledge base that fell back with a
// lexical one.
func sameRanking(t *testing.T, kb, lex *KnowledgeBase, q string) {
	t.Helper()
	r, l := kb.Match(q), lex.Match(q)
	if r.Outcome != l.Outcome || !slices.Equal(r.Candidates, l.Candidates) {
		t.Errorf("fallback Match(%q) = %s %v, lexical %s %v", q, r.Outcome, r.Candidates[:3], l.Outcome, l.Candidates[:3])
	}
}

func TestSemanticQueryErrorsFallBackAndOpenBreaker(t *testing.T) {
	f := newSemFixture(t, SemanticConfig{})
	kb := f.kb(t, semEntries)
	lex := lexicalKB(t, semEntries)
	now := time.Now()
	f.sem.now = func() time.Time { return now }
	f.srv.Fail(http.StatusInternalServerError)
	before := f.srv.Requests()
	for range breakerFailures {
		sameRanking(t, kb, lex, "银行卡丢了")
	}
	if got := f.srv.Requests() - before; got != breakerFailures {
		t.Fatalf("%d requests for %d failing queries", got, breakerFailures)
	}
	// Open: no more requests, still lexical answers.
	for range 5 {
		sameRanking(t, kb, lex, "银行卡丢了")
	}
	if got := f.srv.Requests() - before; got != breakerFailures {
		t.Fatalf("breaker open, yet %d requests", got-breakerFailures)
	}
	if got := testutil.ToFloat64(f.sem.metrics.fallbacks.WithLabelValues("breaker_open")); got != 5 {
		t.Errorf("breaker_open fallbacks %v, want 5", got)
	}
	if got := testutil.ToFloat64(f.sem.metrics.fallbacks.WithLabelValues("error")); got != breakerFailures {
		t.Errorf("error fallbacks %v, want %d", got, breakerFailures)
	}
	if testutil.ToFloat64(f.sem.metrics.breaker) != 1 {
		t.Error("breaker gauge not 1 while open")
	}
	// After the cooldown one probe goes out; it fails, so the breaker stays
	// open for another cooldown.
	now = now.Add(breakerCooldown + time.Second)
	kb.Match("银行卡丢了")
	kb.Match("银行卡丢了")
	if got := f.srv.Requests() - before; got != breakerFailures+1 {
		t.Fatalf("%d requests after the cooldown, want one probe", got-breakerFailures)
	}
	// The endpoint recovers: the next probe closes the breaker.
	f.srv.Fail(0)
	now = now.Add(breakerCooldown + time.Second)
	r := kb.Match("苹果支付怎么添加银行卡")
	if r.Candidates[0].ID != "applepay" || testutil.ToFloat64(f.sem.metrics.breaker) != 0 {
		t.Fatalf("after recovery: %v, breaker %v", r.Candidates[:2], testutil.ToFloat64(f.sem.metrics.breaker))
	}
	if errs := testutil.ToFloat64(f.sem.metrics.errors.WithLabelValues("query")); errs != breakerFailures+1 {
		t.Errorf("query errors %v, want %d", errs, breakerFailures+1)
	}
}

func TestSemanticSlowQueryCostsAtMostTheTimeout(t *testing.T) {
	const timeout = 150 * time.Millisecond
	f := newSemFixture(t, SemanticConfig{Timeout: timeout})
	kb := f.kb(t, semEntries)
	lex := lexicalKB(t, semEntries)
	f.srv.Stall(5 * time.Second)
	start := time.Now()
	sameRanking(t, kb, lex, "银行卡丢了怎么办")
	if d := time.Since(start); d > timeout+time.Second {
		t.Fatalf("a stalled endpoint cost %v (timeout %v)", d, timeout)
	}
}

func TestSemanticWrongDimensions(t *testing.T) {
	// At load: the configured dimensions are enforced; the knowledge base
	// loads without error and matches lexically.
	f := newSemFixture(t, SemanticConfig{Dimensions: 32})
	f.srv.WrongDims(16)
	kb, err := NewKnowledgeBase(semEntries, Options{Semantic: f.sem})
	if err != nil {
		t.Fatalf("wrong dimensions failed the load: %v", err)
	}
	kb.WaitSemantic()
	if kb.SemanticReady() {
		t.Fatal("ready with vectors of the wrong length")
	}
	if got := testutil.ToFloat64(f.sem.metrics.errors.WithLabelValues("entries")); got != 1 {
		t.Errorf("entry errors %v, want 1", got)
	}
	lex := lexicalKB(t, semEntries)
	sameRanking(t, kb, lex, "银行卡丢了")
	if got := testutil.ToFloat64(f.sem.metrics.fallbacks.WithLabelValues("not_ready")); got != 1 {
		t.Errorf("not_ready fallbacks %v, want 1", got)
	}
	// At query time, without configured dimensions: a query vector that
	// differs from the entries' is refused.
	g := newSemFixture(t, SemanticConfig{})
	kb = g.kb(t, semEntries)
	g.srv.WrongDims(48)
	sameRanking(t, kb, lex, "银行卡丢了")
	if got := testutil.ToFloat64(g.sem.metrics.errors.WithLabelValues("query")); got != 1 {
		t.Errorf("query errors %v, want 1", got)
	}
}

func TestSemanticEndpointKilledMidLoad(t *testing.T) {
	const timeout = 150 * time.Millisecond
	f := newSemFixture(t, SemanticConfig{BatchSize: 2, Timeout: timeout})
	f.srv.DieAfter(2) // two batches, then the process is gone
	kb, err := NewKnowledgeBase(semEntries, Options{Semantic: f.sem})
	if err != nil {
		t.Fatalf("killed endpoint failed the load: %v", err)
	}
	// Matching works at once, before the embeddings were given up on, and
	// after.
	lex := lexicalKB(t, semEntries)
	sameRanking(t, kb, lex, "银行卡丢了")
	kb.WaitSemantic()
	if kb.SemanticReady() {
		t.Fatal("ready although the endpoint died mid-load")
	}
	start := time.Now()
	for _, q := range []string{"银行卡丢了", "苹果支付怎么添加银行卡", "跨行取款要钱吗"} {
		sameRanking(t, kb, lex, q)
	}
	if d := time.Since(start); d > 3*timeout {
		t.Fatalf("three replies took %v with a dead endpoint (timeout %v)", d, timeout)
	}
	// A reload once the endpoint is back embeds only what is missing (the
	// two batches that made it were kept).
	f.srv.DieAfter(1 << 30)
	before := len(f.srv.Texts())
	kb = f.kb(t, semEntries)
	if !kb.SemanticReady() {
		t.Fatal("not ready after the endpoint came back")
	}
	if got := len(f.srv.Texts()) - before; got != 15-4 {
		t.Errorf("reload sent %d texts, want the 11 the dead endpoint never answered", got)
	}
	if r := kb.Match("苹果支付怎么添加银行卡"); r.Candidates[0].ID != "applepay" {
		t.Errorf("after recovery: %v", r.Candidates[:3])
	}
}

func registryOf(t *testing.T, cs ...prometheus.Collector) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

func TestSemanticCollectors(t *testing.T) {
	f := newSemFixture(t, SemanticConfig{})
	// Every labelled series exists before the first call, so dashboards and
	// alerts see zeros rather than nothing.
	reg := registryOf(t, f.sem.Collectors()...)
	n, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 + 2 + 3 + 1 + 1; n < want {
		t.Errorf("%d series before any call, want ≥ %d", n, want)
	}
	lint, err := testutil.GatherAndLint(reg)
	if err != nil || len(lint) > 0 {
		t.Errorf("metric lint: %v %v", err, lint)
	}
}

func TestSemanticWithoutCacheDirReusesMemory(t *testing.T) {
	srv := embedtest.New(32, semConcepts)
	defer srv.Close()
	sem := NewSemantic(&openaiembed.Client{BaseURL: srv.BaseURL(), Model: "m"}, SemanticConfig{Model: "m"}, nil)
	for range 2 {
		kb, err := NewKnowledgeBase(semEntries, Options{Semantic: sem})
		if err != nil {
			t.Fatal(err)
		}
		kb.WaitSemantic()
		if !kb.SemanticReady() {
			t.Fatal("not ready")
		}
	}
	if got := len(srv.Texts()); got != 15 {
		t.Fatalf("two loads without a cache dir embedded %d texts, want 15 once", got)
	}
}
