package web

import (
	"slices"
	"time"
)

// gapTail follows an append-only table by its auto-increment id without
// missing rows that commit out of id order. On MySQL two transactions may
// take ids 10 and 11 and commit 11 first: a reader that only asks for
// "id > highest seen" would skip 10 forever. gapTail remembers the ids
// below the highest seen that it has not seen yet (gaps) and asks for them
// again on every poll, until they appear or gapTimeout passes (a rolled
// back insert, or an id MySQL skipped, never appears).
//
// Each poll costs one range query on the primary key (id > max) and, while
// gaps are open, one point query (id IN gaps): cheap enough every 100 ms.
type gapTail struct {
	max     int64
	gaps    map[int64]time.Time // id → when it was first missed
	timeout time.Duration
	maxGaps int
}

func newGapTail(start int64, timeout time.Duration) *gapTail {
	return &gapTail{max: start, gaps: map[int64]time.Time{}, timeout: timeout, maxGaps: 10000}
}

// openGaps are the ids still worth asking for, oldest first; expired ones
// are forgotten.
func (t *gapTail) openGaps(now time.Time) []int64 {
	ids := make([]int64, 0, len(t.gaps))
	for id, since := range t.gaps {
		if now.Sub(since) > t.timeout {
			delete(t.gaps, id)
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// seen records ids read (in any order) and reports which of them are new:
// above max, or filling a gap. An id at or below max that is not a gap was
// seen before.
func (t *gapTail) seen(ids []int64, now time.Time) []bool {
	fresh := make([]bool, len(ids))
	for i, id := range ids {
		switch {
		case id > t.max:
			for g := t.max + 1; g < id && len(t.gaps) < t.maxGaps; g++ {
				t.gaps[g] = now
			}
			t.max = id
			fresh[i] = true
		default:
			if _, ok := t.gaps[id]; ok {
				delete(t.gaps, id)
				fresh[i] = true
			}
		}
	}
	return fresh
}
