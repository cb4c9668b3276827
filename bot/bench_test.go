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

	"golang.org/x/sys/unix"
)

// Benchmarks run on knowledge bases synthesised in memory from the shared
// evaluation sets (never written anywhere): every synthetic entry takes a
// real entry's questions and perturbs them by swapping, dropping and
// borrowing words from other questions, so vocabulary and lengths stay
// realistic. Queries are the real dev queries of both sets. The synthetic
// sets are more repetitive than a real knowledge base of the same size (100k
// entries recombine 7.8k questions), so common terms have long postings:
// a pessimistic load.
//
//	go test -run '^$' -bench 'Match' -benchtime 20000x ./bot/
//	go test -run '^$' -bench 'Build|Approximation' -benchtime 1x ./bot/

type benchData struct {
	questions [][]string // every question of both sets, segmented into words
	queries   []string
}

var loadBenchData = sync.OnceValues(func() (*benchData, error) {
	dir := sharedDataDir()
	if dir == "" {
		return nil, fmt.Errorf("shared evaluation data not found")
	}
	seg := segmenter()
	d := &benchData{}
	for _, name := range []string{"unionpay", "bq"} {
		entries, qs, err := readEvalSet(dir, name)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			for _, q := range append([]string{e.Question}, e.Similar...) {
				d.questions = append(d.questions, seg.Cut(q))
			}
		}
		for _, q := range qs {
			d.queries = append(d.queries, q.Query)
		}
	}
	return d, nil
})

// synthesize builds n entries.
func (d *benchData) synthesize(n int) []Entry {
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	perturb := func(words []string) string {
		w := slices.Clone(words)
		for k := rng.IntN(3); k > 0 && len(w) > 1; k-- {
			switch rng.IntN(3) {
			case 0: // swap two words
				i, j := rng.IntN(len(w)), rng.IntN(len(w))
				w[i], w[j] = w[j], w[i]
			case 1: // drop a word
				i := rng.IntN(len(w))
				w = slices.Delete(w, i, i+1)
			default: // borrow a word from another question
				other := d.questions[rng.IntN(len(d.questions))]
				w = slices.Insert(w, rng.IntN(len(w)+1), other[rng.IntN(len(other))])
			}
		}
		return strings.Join(w, "")
	}
	entries := make([]Entry, n)
	for i := range entries {
		base := d.questions[rng.IntN(len(d.questions))]
		e := Entry{ID: fmt.Sprintf("syn%06d", i), Question: perturb(base), Answer: "答案"}
		// About 3.2 questions per entry, as in the shared sets.
		for k := rng.IntN(5); k > 0; k-- {
			e.Similar = append(e.Similar, perturb(d.questions[rng.IntN(len(d.questions))]))
		}
		entries[i] = e
	}
	return entries
}

var benchKBs sync.Map // size → *KnowledgeBase (trained)

func benchKB(b *testing.B, n int) (*KnowledgeBase, *benchData) {
	b.Helper()
	d, err := loadBenchData()
	if err != nil {
		b.Skipf("%v: skipping (needs ../shared/data)", err)
	}
	if kb, ok := benchKBs.Load(n); ok {
		return kb.(*KnowledgeBase), d
	}
	kb, err := NewKnowledgeBase(d.synthesize(n), Options{})
	if err != nil {
		b.Fatal(err)
	}
	kb.WaitTrained()
	benchKBs.Store(n, kb)
	return kb, d
}

var benchSizes = []int{1_000, 10_000, 100_000}

// BenchmarkMatch measures Match with the trained classifier, reporting
// p50/p99 latency.
func BenchmarkMatch(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			kb, d := benchKB(b, n)
			benchMatch(b, kb, d.queries)
		})
	}
}

// BenchmarkMatchBM25 is Match before the classifier is trained.
func BenchmarkMatchBM25(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			trained, d := benchKB(b, n)
			benchMatch(b, bm25Only(trained), d.queries)
		})
	}
}

func benchMatch(b *testing.B, kb *KnowledgeBase, queries []string) {
	for _, q := range queries[:100] { // warm the scratch pool
		kb.Match(q)
	}
	// Wall-clock latency, and the CPU time of the matching thread: on a
	// machine shared with other jobs the wall clock also counts the time
	// the thread waited for a core, the CPU time does not.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lat := make([]time.Duration, 0, b.N)
	cpu := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0 := threadCPU()
		t0 := time.Now()
		kb.Match(queries[i%len(queries)])
		lat = append(lat, time.Since(t0))
		cpu = append(cpu, threadCPU()-c0)
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(cpu)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(cpu[len(cpu)/2].Microseconds()), "cpu-p50-µs")
	b.ReportMetric(float64(cpu[len(cpu)*99/100].Microseconds()), "cpu-p99-µs")
}

// threadCPU is the CPU time the calling OS thread has used.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// BenchmarkBuild measures NewKnowledgeBase (index, synchronous part) and the
// classifier training, and the heap the knowledge base holds.
func BenchmarkBuild(b *testing.B) {
	d, err := loadBenchData()
	if err != nil {
		b.Skipf("%v: skipping (needs ../shared/data)", err)
	}
	segmenter() // the shared dictionary is not part of a knowledge base
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			entries := d.synthesize(n)
			var build, train time.Duration
			var heap, peak, total uint64
			for i := 0; i < b.N; i++ {
				before := heapInUse()
				stop := samplePeak(&peak)
				t0 := time.Now()
				kb, err := NewKnowledgeBase(entries, Options{})
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				kb.WaitTrained()
				stop()
				build += t1.Sub(t0)
				train += time.Since(t1)
				total = heapInUse()
				heap = total - before
				runtime.KeepAlive(kb)
			}
			b.ReportMetric(build.Seconds()/float64(b.N), "build-s")
			b.ReportMetric(train.Seconds()/float64(b.N), "train-s")
			b.ReportMetric(float64(heap)/(1<<20), "kb-heap-MiB")
			b.ReportMetric(float64(total)/(1<<20), "process-heap-MiB")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

// samplePeak records the largest HeapAlloc seen until stop is called.
func samplePeak(peak *uint64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			*peak = max(*peak, ms.HeapAlloc)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// bm25Only is kb sharing its index but without the classifier.
func bm25Only(kb *KnowledgeBase) *KnowledgeBase {
	return &KnowledgeBase{
		entries: kb.entries, byID: kb.byID, an: kb.an, answer: kb.answer, clarify: kb.clarify,
		vocab: kb.vocab, terms: kb.terms, postE: kb.postE, postW: kb.postW, exact: kb.exact,
		fwdOff: kb.fwdOff, fwd: kb.fwd, champ: kb.champ,
		idfMax: kb.idfMax, trained: kb.trained, retired: kb.retired, budget: kb.budget, rescore: kb.rescore,
	}
}

// BenchmarkApproximation measures how far the query-time limits
// (traverseBudget, champion lists, rescoreCandidates) move results on the
// synthetic 100k knowledge base, against scoring every posting (BM25 only,
// so both sides see the same scores): how often the top score is within 3 %
// of the exhaustive top score, and how often the exhaustive best entry is
// among the first five.
func BenchmarkApproximation(b *testing.B) {
	d, err := loadBenchData()
	if err != nil {
		b.Skipf("%v: skipping (needs ../shared/data)", err)
	}
	skipTraining = true
	kb, err := NewKnowledgeBase(d.synthesize(100_000), Options{})
	skipTraining = false
	if err != nil {
		b.Fatal(err)
	}
	qs := d.queries[:1000]
	kb.budget, kb.rescore = math.MaxInt, math.MaxInt
	exact := make([]Result, len(qs))
	for i, q := range qs {
		exact[i] = kb.Match(q)
	}
	kb.budget, kb.rescore = traverseBudget, rescoreCandidates
	for i := 0; i < b.N; i++ {
		near, in5 := 0, 0
		for i, q := range qs {
			r := kb.Match(q)
			if r.Candidates[0].Score >= 0.97*exact[i].Candidates[0].Score {
				near++
			}
			for _, c := range r.Candidates[:5] {
				if c.ID == exact[i].Candidates[0].ID {
					in5++
				}
			}
		}
		b.ReportMetric(float64(near)/float64(len(qs)), "top-within-3%")
		b.ReportMetric(float64(in5)/float64(len(qs)), "exact-best-in-top5")
	}
}

// BenchmarkMatchDev measures Match on the real UnionPay and BQ knowledge
// bases with their dev queries, with and without the fastText part.
func BenchmarkMatchDev(b *testing.B) {
	for _, name := range []string{"unionpay", "bq", "unionpay-without-fasttext", "bq-without-fasttext"} {
		b.Run(name, func(b *testing.B) {
			name, noFT := strings.CutSuffix(name, "-without-fasttext")
			entries, qs := loadEvalSet(b, name)
			kb, err := NewKnowledgeBase(entries, Options{})
			if err != nil {
				b.Fatal(err)
			}
			kb.WaitTrained()
			if noFT {
				kb.ft.Store(nil)
			}
			queries := make([]string, len(qs))
			for i, q := range qs {
				queries[i] = q.Query
			}
			benchMatch(b, kb, queries)
		})
	}
}
