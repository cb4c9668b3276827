package bot

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Bot is the live knowledge base, swapped atomically on reload, plus the
// hit count of every entry (高频问题). It is safe for concurrent use.
type Bot struct {
	state atomic.Pointer[botState]
	mu    sync.Mutex // serialises Replace and SeedHits
}

// botState is one knowledge base with the counters of its entries. Counters
// are shared between states, so hits survive a reload for ids that remain.
type botState struct {
	kb   *KnowledgeBase
	hits map[string]*atomic.Int64
	// order are the counters in knowledge-file order.
	order []*atomic.Int64
}

// New returns a Bot serving kb (which may be nil: an empty knowledge base).
func New(kb *KnowledgeBase) *Bot {
	b := &Bot{}
	b.Replace(kb)
	return b
}

// KB is the current knowledge base (never nil).
func (b *Bot) KB() *KnowledgeBase { return b.state.Load().kb }

// Replace swaps in kb (nil: an empty knowledge base). Hit counts of ids kb
// still has are kept. A background training of the previous knowledge base
// is stopped: if that one is swapped in again later, it matches with BM25
// alone.
func (b *Bot) Replace(kb *KnowledgeBase) {
	if kb == nil {
		kb, _ = NewKnowledgeBase(nil, Options{})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.state.Load()
	st := &botState{kb: kb, hits: make(map[string]*atomic.Int64, kb.Len()), order: make([]*atomic.Int64, kb.Len())}
	for i, e := range kb.entries {
		c := (*atomic.Int64)(nil)
		if old != nil {
			c = old.hits[e.ID]
		}
		if c == nil {
			c = new(atomic.Int64)
		}
		st.hits[e.ID] = c
		st.order[i] = c
	}
	b.state.Store(st)
	if old != nil && old.kb != kb {
		old.kb.retire()
	}
}

// Hit counts one use of entry id; unknown ids are ignored. It takes no lock.
func (b *Bot) Hit(id string) {
	if c := b.state.Load().hits[id]; c != nil {
		c.Add(1)
	}
}

// Hits is the hit count of entry id.
func (b *Bot) Hits(id string) int64 {
	if c := b.state.Load().hits[id]; c != nil {
		return c.Load()
	}
	return 0
}

// SeedHits adds stored counts (for example from the database at start-up)
// to the counters of the entries the knowledge base has.
func (b *Bot) SeedHits(counts map[string]int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.state.Load()
	for id, n := range counts {
		if c := st.hits[id]; c != nil {
			c.Add(n)
		}
	}
}

// Hot returns up to n entries, most hit first; ties and entries never hit
// follow knowledge-file order.
func (b *Bot) Hot(n int) []*Entry {
	st := b.state.Load()
	if n <= 0 || len(st.order) == 0 {
		return nil
	}
	n = min(n, len(st.order))
	type hc struct {
		i    int
		hits int64
	}
	// Keep the n best in a small sorted slice: O(entries × n).
	best := make([]hc, 0, n+1)
	for i, c := range st.order {
		h := c.Load()
		if len(best) == n && h <= best[n-1].hits {
			continue
		}
		j, _ := slices.BinarySearchFunc(best, h, func(x hc, h int64) int {
			// descending hits; equal hits keep file order (insert after)
			if x.hits >= h {
				return -1
			}
			return 1
		})
		best = slices.Insert(best, j, hc{i, h})
		if len(best) > n {
			best = best[:n]
		}
	}
	out := make([]*Entry, len(best))
	for i, x := range best {
		out[i] = &st.kb.entries[x.i]
	}
	return out
}
