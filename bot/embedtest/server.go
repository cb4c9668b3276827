// Package embedtest is a fake OpenAI-compatible embeddings endpoint for
// tests: POST /v1/embeddings returns deterministic vectors, and the fake can
// fail, stall, return wrong dimensions or die, on request.
package embedtest

import (
	"encoding/json"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server embeds a text as the sum of one random direction per concept it
// mentions (Concepts maps a phrase to its concept, so "苹果支付" and
// "apple pay" can share one) and a smaller one per remaining character:
// texts sharing concepts or characters get similar vectors, the way a real
// model's do, and nothing else does.
type Server struct {
	*httptest.Server
	dims     int
	concepts map[string]string

	status    atomic.Int32 // non-zero: answer every request with it
	delay     atomic.Int64 // nanoseconds to stall before answering
	wrongDims atomic.Int32 // non-zero: vectors of this length
	dieAfter  atomic.Int64 // requests answered before the endpoint dies; <0 never
	queryOnly atomic.Bool  // failures/delays apply to one-text requests only

	mu       sync.Mutex
	requests int
	texts    []string
}

// New starts a fake with vectors of dims dimensions.
func New(dims int, concepts map[string]string) *Server {
	s := &Server{dims: dims, concepts: map[string]string{}}
	for k, v := range concepts {
		s.concepts[strings.ToLower(k)] = v
	}
	s.dieAfter.Store(-1)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// BaseURL is what a client is configured with ("…/v1").
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// Fail makes requests answer with status (0: succeed again).
func (s *Server) Fail(status int) { s.status.Store(int32(status)) }

// Stall makes requests wait d before answering.
func (s *Server) Stall(d time.Duration) { s.delay.Store(int64(d)) }

// WrongDims makes vectors n long (0: the right length again).
func (s *Server) WrongDims(n int) { s.wrongDims.Store(int32(n)) }

// DieAfter lets n more requests through; every later one has its
// connection closed without an answer, like a killed process.
func (s *Server) DieAfter(n int) {
	s.mu.Lock()
	s.dieAfter.Store(int64(s.requests + n))
	s.mu.Unlock()
}

// QueryFaultsOnly limits Fail and Stall to requests of one text (queries),
// so entries still load.
func (s *Server) QueryFaultsOnly(on bool) { s.queryOnly.Store(on) }

// Requests is how many requests arrived.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Texts are the texts embedded so far (answered requests only), in order.
func (s *Server) Texts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.texts...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/embeddings" {
		http.NotFound(w, r)
		return
	}
	var req struct {
		Model string   `json:"model"`
		Input []string `json:"input"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model == "" || len(req.Input) == 0 {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests++
	n := s.requests
	s.mu.Unlock()
	if d := s.dieAfter.Load(); d >= 0 && int64(n) > d {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	faulty := !s.queryOnly.Load() || len(req.Input) == 1
	if d := time.Duration(s.delay.Load()); d > 0 && faulty {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	if st := s.status.Load(); st != 0 && faulty {
		http.Error(w, `{"error":{"message":"fake failure"}}`, int(st))
		return
	}
	type item struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	out := struct {
		Object string `json:"object"`
		Data   []item `json:"data"`
		Model  string `json:"model"`
	}{Object: "list", Model: req.Model}
	for i, t := range req.Input {
		v := s.Vector(t)
		if wd := int(s.wrongDims.Load()); wd > 0 {
			v = append(v, make([]float32, max(wd-len(v), 0))...)[:wd]
		}
		out.Data = append(out.Data, item{"embedding", i, v})
	}
	s.mu.Lock()
	s.texts = append(s.texts, req.Input...)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// Vector is the fake's embedding of text.
func (s *Server) Vector(text string) []float32 {
	t := strings.ToLower(text)
	v := make([]float32, s.dims)
	for phrase, concept := range s.concepts {
		if strings.Contains(t, phrase) {
			s.add(v, "concept:"+concept, 3)
			t = strings.ReplaceAll(t, phrase, " ")
		}
	}
	for _, r := range t {
		if r > ' ' && !strings.ContainsRune("？?！!，,。.", r) {
			s.add(v, "char:"+string(r), 1)
		}
	}
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	if ss > 0 {
		inv := float32(1 / math.Sqrt(ss))
		for i := range v {
			v[i] *= inv
		}
	}
	return v
}

func (s *Server) add(v []float32, key string, w float32) {
	h := fnv.New64a()
	h.Write([]byte(key))
	rng := rand.New(rand.NewPCG(h.Sum64(), 1))
	for i := range v {
		v[i] += w * float32(rng.NormFloat64())
	}
}
