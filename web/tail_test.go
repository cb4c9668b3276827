package web

import (
	"slices"
	"testing"
	"time"
)

func TestGapTailDeliversLateCommits(t *testing.T) {
	now := time.Now()
	tl := newGapTail(10, time.Second)
	// 13 commits before 11 and 12: both are gaps until they show up.
	if got := tl.seen([]int64{13}, now); !got[0] {
		t.Fatal("13 not fresh")
	}
	if gaps := tl.openGaps(now); !slices.Equal(gaps, []int64{11, 12}) {
		t.Fatalf("gaps %v", gaps)
	}
	if got := tl.seen([]int64{12, 13}, now); !got[0] || got[1] {
		t.Fatalf("late 12 / repeated 13: %v", got)
	}
	// 11 never commits (rolled back): given up after the timeout.
	if gaps := tl.openGaps(now.Add(2 * time.Second)); len(gaps) != 0 {
		t.Fatalf("expired gap kept: %v", gaps)
	}
	if got := tl.seen([]int64{9, 11}, now); got[0] || got[1] {
		t.Fatalf("old ids fresh again: %v", got)
	}
}
