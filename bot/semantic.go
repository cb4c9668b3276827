package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"time"
	"weak"

	"github.com/prometheus/client_golang/prometheus"
)

// Embedder turns texts into vectors, one per text and in order. The
// implementation for OpenAI-compatible endpoints is bot/openaiembed.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// SemanticConfig tunes the optional semantic tier.
type SemanticConfig struct {
	// Model names the embedding model; it keys the disk cache.
	Model string
	// Dimensions, when > 0, is the length every vector must have.
	Dimensions int
	// Timeout bounds one query's embedding (default 300 ms).
	Timeout time.Duration
	// BatchTimeout bounds one batch of entry questions at load (default 30 s).
	BatchTimeout time.Duration
	// BatchSize is how many questions one load request carries (default 32).
	BatchSize int
	// CacheDir holds the entry embeddings between runs; "" keeps none.
	CacheDir string
}

// Circuit breaker: after breakerFailures consecutive failed query
// embeddings, queries skip the endpoint for breakerCooldown; then one query
// probes it, and a success closes the breaker again.
const (
	breakerFailures = 3
	breakerCooldown = 30 * time.Second
)

// Semantic fusion: semWeight is the share of the calibrated embedding
// similarity in an entry's confidence. It could not be chosen on the shared
// sets (no embedding model may be fetched on the project machine), so it is
// a moderate share: lexical evidence still decides alone between entries
// the embeddings find equally similar. semScanLimit bounds the exhaustive
// scan over entry vectors (entries × dimensions multiply-adds); above it the
// semantic score re-ranks the lexical candidates only.
const (
	semWeight    = 0.3
	semAdd       = 8 // semantic-only candidates added to the lexical ones
	semScanLimit = 2 << 20
)

// Semantic is the optional semantic tier: it embeds every entry's questions
// when a knowledge base is built (in the background, with a disk cache) and
// each query under a strict timeout, behind a circuit breaker. It outlives
// knowledge bases: pass the same one in Options on every reload, so the
// breaker, metrics and cache carry over. Safe for concurrent use.
type Semantic struct {
	emb Embedder
	cfg SemanticConfig
	log *slog.Logger

	mu       sync.Mutex // guards the breaker and the in-memory cache
	failures int
	openTill time.Time
	probing  bool
	// mem holds the vectors of the last build's questions (keyed like the
	// disk cache) when there is no disk cache, so a reload embeds only what
	// changed without one too.
	mem map[cacheKey][]float32

	now     func() time.Time
	metrics semMetrics
}

type semMetrics struct {
	calls     *prometheus.CounterVec
	errors    *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	fallbacks *prometheus.CounterVec
	cached    prometheus.Counter
	breaker   prometheus.Gauge
}

// NewSemantic returns the semantic tier over emb. log may be nil.
func NewSemantic(emb Embedder, cfg SemanticConfig, log *slog.Logger) *Semantic {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 300 * time.Millisecond
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = 30 * time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 32
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Semantic{emb: emb, cfg: cfg, log: log, now: time.Now}
	s.metrics = semMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dingdesk_bot_embedding_requests_total",
			Help: "Requests to the embeddings endpoint, by kind (query, entries).",
		}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dingdesk_bot_embedding_errors_total",
			Help: "Failed requests to the embeddings endpoint (errors, timeouts, bad vectors), by kind.",
		}, []string{"kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dingdesk_bot_embedding_request_seconds",
			Help:    "Latency of requests to the embeddings endpoint, by kind.",
			Buckets: []float64{.005, .01, .025, .05, .1, .2, .3, .5, 1, 2.5, 5, 10, 30},
		}, []string{"kind"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dingdesk_bot_semantic_fallbacks_total",
			Help: "Questions matched lexically only, by reason (error, breaker_open, not_ready).",
		}, []string{"reason"}),
		cached: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dingdesk_bot_embedding_cache_hits_total",
			Help: "Entry questions whose embedding came from the cache at load.",
		}),
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dingdesk_bot_embedding_breaker_open",
			Help: "1 while the circuit breaker keeps queries off the embeddings endpoint.",
		}),
	}
	for _, k := range []string{"query", "entries"} {
		s.metrics.calls.WithLabelValues(k)
		s.metrics.errors.WithLabelValues(k)
	}
	for _, r := range []string{"error", "breaker_open", "not_ready"} {
		s.metrics.fallbacks.WithLabelValues(r)
	}
	return s
}

// Collectors are the tier's metrics, for the service's registry.
func (s *Semantic) Collectors() []prometheus.Collector {
	m := &s.metrics
	return []prometheus.Collector{m.calls, m.errors, m.latency, m.fallbacks, m.cached, m.breaker}
}

// call runs one request and records it.
func (s *Semantic) call(ctx context.Context, kind string, texts []string) ([][]float32, error) {
	start := time.Now()
	vecs, err := s.emb.Embed(ctx, texts)
	s.metrics.calls.WithLabelValues(kind).Inc()
	s.metrics.latency.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	if err == nil {
		err = s.checkVectors(vecs, len(texts))
	}
	if err != nil {
		s.metrics.errors.WithLabelValues(kind).Inc()
		return nil, err
	}
	return vecs, nil
}

func (s *Semantic) checkVectors(vecs [][]float32, n int) error {
	if len(vecs) != n {
		return fmt.Errorf("embeddings: %d vectors for %d texts", len(vecs), n)
	}
	for _, v := range vecs {
		if s.cfg.Dimensions > 0 && len(v) != s.cfg.Dimensions {
			return fmt.Errorf("embeddings: vector of %d dimensions, want %d", len(v), s.cfg.Dimensions)
		}
		if len(v) == 0 || len(v) != len(vecs[0]) {
			return errors.New("embeddings: vectors of different lengths")
		}
	}
	return nil
}

// allow reports whether a query may call the endpoint (breaker closed, or
// open long enough that this query is the probe).
func (s *Semantic) allow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures < breakerFailures {
		return true
	}
	if s.probing || s.now().Before(s.openTill) {
		return false
	}
	s.probing = true
	return true
}

func (s *Semantic) record(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.probing = false
	if ok {
		s.failures = 0
		s.metrics.breaker.Set(0)
		return
	}
	s.failures++
	if s.failures >= breakerFailures {
		if s.failures == breakerFailures {
			s.log.Warn("embeddings endpoint failing; matching lexically", "cooldown", breakerCooldown)
		}
		s.openTill = s.now().Add(breakerCooldown)
		s.metrics.breaker.Set(1)
	}
}

// embedQuery returns the query's unit vector, or nil (and counts a
// fallback) when the endpoint is unavailable, slow or wrong.
func (s *Semantic) embedQuery(ctx context.Context, q string, dims int) []float32 {
	if !s.allow() {
		s.metrics.fallbacks.WithLabelValues("breaker_open").Inc()
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	vecs, err := s.call(ctx, "query", []string{q})
	if err == nil && len(vecs[0]) != dims {
		err = fmt.Errorf("embeddings: query vector of %d dimensions, entries have %d", len(vecs[0]), dims)
		s.metrics.errors.WithLabelValues("query").Inc()
	}
	if err != nil {
		s.record(false)
		s.metrics.fallbacks.WithLabelValues("error").Inc()
		s.log.Debug("query embedding failed; matching lexically", "err", err)
		return nil
	}
	s.record(true)
	return unit(vecs[0])
}

// unit returns v scaled to length 1 (a new slice).
func unit(v []float32) []float32 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if ss == 0 {
		return out
	}
	inv := float32(1 / math.Sqrt(ss))
	for i, x := range v {
		out[i] = x * inv
	}
	return out
}

// semIndex is one knowledge base's entry vectors: every entry's centroid
// (the mean of its questions' unit vectors, made unit again) quantised to
// int8 with one scale per entry, and the calibration of cosines.
type semIndex struct {
	dims   int
	vecs   []int8    // entries × dims
	scales []float32 // per entry: value = int8 × scale
	// lo, hi map a cosine to [0, 1]: lo is the median best similarity of
	// a knowledge-base question to another entry, hi the median similarity
	// to its own entry (the other questions). Both are measured on the
	// knowledge base itself, so the calibration follows the model.
	lo, hi float32
}

func (si *semIndex) cos(e uint32, q []float32) float32 {
	v := si.vecs[int(e)*si.dims : int(e+1)*si.dims]
	var dot float32
	for i, x := range v {
		dot += float32(x) * q[i]
	}
	return dot * si.scales[e]
}

// calibrate maps a cosine to the confidence scale.
func (si *semIndex) calibrate(c float32) float32 {
	return min(1, max(0, (c-si.lo)/(si.hi-si.lo)))
}

// buildIndex embeds every question of entries (cached ones from the cache)
// and returns the index, or an error when the endpoint failed. stop aborts
// (the knowledge base was retired).
func (s *Semantic) buildIndex(entries []Entry, stop func() bool) (*semIndex, error) {
	type q struct {
		key  cacheKey
		text string
	}
	var (
		qs   []q
		keys []cacheKey
		qOff = make([]int, len(entries)+1)
	)
	for i, e := range entries {
		for _, t := range append([]string{e.Question}, e.Similar...) {
			qs = append(qs, q{keyOf(s.cfg.Model, t), t})
			keys = append(keys, qs[len(qs)-1].key)
		}
		qOff[i+1] = len(qs)
	}
	s.mu.Lock()
	mem := s.mem
	s.mu.Unlock()
	disk := map[cacheKey][]float32{}
	if s.cfg.CacheDir != "" {
		var err error
		want := make(map[cacheKey]bool, len(qs))
		for _, x := range qs {
			if mem[x.key] == nil {
				want[x.key] = true
			}
		}
		if disk, err = readCache(s.cfg.CacheDir, s.cfg.Model, want); err != nil {
			s.log.Warn("embedding cache unreadable; embedding again", "err", err)
		}
	}
	vecs := make(map[cacheKey][]float32, len(qs))
	var missing []q
	for _, x := range qs {
		if _, done := vecs[x.key]; done {
			continue
		}
		if v := mem[x.key]; v != nil {
			vecs[x.key] = v
		} else if v := disk[x.key]; v != nil {
			vecs[x.key] = v
		} else {
			vecs[x.key] = nil
			missing = append(missing, x)
			continue
		}
		s.metrics.cached.Inc()
	}
	for start := 0; start < len(missing); start += s.cfg.BatchSize {
		if stop() {
			return nil, errors.New("knowledge base retired")
		}
		batch := missing[start:min(start+s.cfg.BatchSize, len(missing))]
		texts := make([]string, len(batch))
		for i, x := range batch {
			texts[i] = x.text
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.BatchTimeout)
		out, err := s.call(ctx, "entries", texts)
		cancel()
		if err != nil {
			// Keep what was embedded, so the next load sends only the rest.
			s.keep(vecs)
			return nil, err
		}
		for i, x := range batch {
			vecs[x.key] = unit(out[i])
		}
	}
	dims := 0
	for _, v := range vecs {
		if dims == 0 {
			dims = len(v)
		} else if len(v) != dims {
			// A model changed its output under the same name: the cache
			// is stale.
			return nil, fmt.Errorf("embeddings: cached vectors of %d and %d dimensions for model %q; clear the cache", dims, len(v), s.cfg.Model)
		}
	}
	if dims == 0 {
		return nil, errors.New("embeddings: no questions")
	}
	s.keep(vecs)
	return newSemIndex(entries, keys, qOff, vecs, dims), nil
}

// keep makes vecs (this build's questions; nil for those not embedded) the
// in-memory cache and writes them to the disk cache.
func (s *Semantic) keep(vecs map[cacheKey][]float32) {
	done := make(map[cacheKey][]float32, len(vecs))
	dims := 0
	for k, v := range vecs {
		if v != nil {
			done[k] = v
			dims = len(v)
		}
	}
	// With a cache dir the file is the cache, and the vectors (questions ×
	// dimensions × 4 bytes) are not held between loads; without one, or
	// when the file cannot be written, they are.
	if s.cfg.CacheDir != "" && dims > 0 {
		err := writeCache(s.cfg.CacheDir, s.cfg.Model, dims, done)
		if err == nil {
			done = nil
		} else {
			s.log.Warn("embedding cache not written; keeping the vectors in memory", "err", err)
		}
	}
	s.mu.Lock()
	s.mem = done
	s.mu.Unlock()
}

// semCalibrationSample bounds the questions measured for calibration.
const semCalibrationSample = 2000

func newSemIndex(entries []Entry, keys []cacheKey, qOff []int, vecs map[cacheKey][]float32, dims int) *semIndex {
	n := len(entries)
	si := &semIndex{dims: dims, vecs: make([]int8, n*dims), scales: make([]float32, n)}
	cent := make([]float32, dims)
	sum := func(lo, hi, skip int) []float32 {
		clear(cent)
		for i := lo; i < hi; i++ {
			if i == skip {
				continue
			}
			for j, x := range vecs[keys[i]] {
				cent[j] += x
			}
		}
		return unit(cent)
	}
	for e := 0; e < n; e++ {
		c := sum(qOff[e], qOff[e+1], -1)
		var mx float32
		for _, x := range c {
			mx = max(mx, float32(math.Abs(float64(x))))
		}
		if mx == 0 {
			continue
		}
		si.scales[e] = mx / 127
		for j, x := range c {
			si.vecs[e*dims+j] = int8(math.Round(float64(x / si.scales[e])))
		}
	}
	// Calibration on a deterministic sample of questions of entries with
	// at least two: similarity to the rest of their own entry, and the best
	// similarity to another entry.
	var pos, neg []float32
	step := max(1, len(keys)/semCalibrationSample)
	// The best other entry is searched among all entries while that stays
	// within about a second of work, else among 256 spread over them.
	exhaustive := float64(n)*float64(dims)*float64(min(n, semCalibrationSample)) <= 2e9
	for e := 0; e < n && len(pos) < semCalibrationSample; e++ {
		lo, hi := qOff[e], qOff[e+1]
		if hi-lo < 2 || (e%step) != 0 {
			continue
		}
		q := vecs[keys[lo+1]]
		own := sum(lo, hi, lo+1)
		var p float32
		for j, x := range own {
			p += x * q[j]
		}
		pos = append(pos, p)
		best := float32(-1)
		if exhaustive {
			for o := 0; o < n; o++ {
				if o != e {
					best = max(best, si.cos(uint32(o), q))
				}
			}
		} else {
			for k := 1; k <= 256; k++ {
				best = max(best, si.cos(uint32((e+k*7919)%n), q))
			}
		}
		neg = append(neg, best)
	}
	si.lo, si.hi = 0.5, 0.9 // a guess for knowledge bases too small to measure
	if len(pos) >= 10 {
		si.lo, si.hi = median(neg), median(pos)
	}
	if si.hi-si.lo < 0.02 {
		si.hi = si.lo + 0.02
	}
	return si
}

func median(xs []float32) float32 {
	s := slices.Clone(xs)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// startEmbedding embeds the entries in the background when the semantic
// tier is on; until it is done (and for good, if the endpoint fails), the
// knowledge base matches lexically. The goroutine holds the entries and a
// weak pointer to the knowledge base only.
func (kb *KnowledgeBase) startEmbedding() {
	if kb.sem == nil || len(kb.entries) == 0 {
		close(kb.semDone)
		return
	}
	sem, entries, retired, done := kb.sem, kb.entries, kb.retired, kb.semDone
	wp := weak.Make(kb)
	go func() {
		defer close(done)
		start := time.Now()
		si, err := sem.buildIndex(entries, retired.Load)
		if err != nil {
			if !retired.Load() {
				sem.log.Warn("entry embeddings failed; matching lexically until the next reload", "err", err)
			}
			return
		}
		if kb := wp.Value(); kb != nil {
			kb.semIdx.Store(si)
			sem.log.Info("entry embeddings ready", "entries", len(entries), "dims", si.dims, "took", time.Since(start).Round(time.Millisecond), "calibration", [2]float32{si.lo, si.hi})
		}
	}()
}

// WaitSemantic blocks until the entries' embeddings are ready or failed
// (at once without a semantic tier). Mostly for tests and tools.
func (kb *KnowledgeBase) WaitSemantic() { <-kb.semDone }

// SemanticReady reports whether queries are matched with embeddings too.
func (kb *KnowledgeBase) SemanticReady() bool { return kb.semIdx.Load() != nil }
