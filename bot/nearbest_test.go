package bot

import (
	"slices"
	"testing"
)

func TestNearBest(t *testing.T) {
	ids := func(cs []Candidate) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	cs := []Candidate{{ID: "a", Score: 0.8}, {ID: "b", Score: 0.4}, {ID: "c", Score: 0.39}, {ID: "d", Score: 0.3}}
	for _, tc := range []struct {
		cs   []Candidate
		n    int
		want []string
	}{
		{cs, 3, []string{"a", "b"}}, // c scores under half the best
		{cs, 1, []string{"a"}},
		{[]Candidate{{ID: "a", Score: 0.2}, {ID: "b", Score: 0}}, 3, []string{"a"}}, // zero never counts
		{[]Candidate{{ID: "a", Score: 0}}, 3, nil},
		{nil, 3, nil},
	} {
		if got := ids(NearBest(tc.cs, tc.n)); !slices.Equal(got, tc.want) {
			t.Errorf("NearBest(%v, %d) = %v, want %v", tc.cs, tc.n, got, tc.want)
		}
	}
}
