package bot

import (
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"testing"
)

// The exact-question index is keyed by hashes of the normalised texts: a
// hit is an exact match only when its entry has a question with the query's
// text, and texts whose hashes collide are found by text.
func TestExactIndexConfirmsHits(t *testing.T) {
	kb, err := NewKnowledgeBase([]Entry{
		{ID: "a", Question: "怎么开通手机银行", Similar: []string{"手机银行开通"}, Answer: "x"},
		{ID: "b", Question: "信用卡额度", Answer: "y"},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	norm := func(s string) []byte {
		var sc scratch
		return slices.Clone(kb.an.normalize(s, &sc))
	}
	for _, c := range []struct {
		text string
		want int32
	}{
		{"怎么开通手机银行", 0}, {"手机银行开通！", 0}, {"信用卡额度", 1}, {"信用卡", -1}, {"", -1},
	} {
		if got := kb.lookupExact(norm(c.text)); got != c.want {
			t.Errorf("lookupExact(%q) = %d, want %d", c.text, got, c.want)
		}
	}
	// A text no entry has under a hash the index holds, as another text
	// with the same hash would be.
	other := norm("网银转账")
	kb.exact.byHash[maphash.Bytes(exactSeed, other)] = 1
	if got := kb.lookupExact(other); got != -1 {
		t.Errorf("unconfirmed hash hit: lookupExact = %d, want -1", got)
	}
	kb.exact.coll = map[string]int32{string(other): 0}
	if got := kb.lookupExact(other); got != 0 {
		t.Errorf("colliding text: lookupExact = %d, want 0", got)
	}
}

// The training set keeps term frequencies in a byte each, larger ones
// aside, and computes the feature values (idf-weighted sqrt(tf), unit
// length per question) from them.
func TestTrainingSetFrequencies(t *testing.T) {
	var ts trainingSet
	tfs := []float32{1, 2, 254, 255, 300, 70000}
	for _, tf := range tfs {
		ts.addTF(tf)
	}
	for i, want := range tfs {
		if got := ts.tf(uint32(i)); got != want {
			t.Errorf("tf %d = %v, want %v", i, got, want)
		}
	}

	kb, err := NewKnowledgeBase([]Entry{
		{ID: "a", Question: strings.Repeat("卡", 300) + "怎么办", Answer: "x"},
		{ID: "b", Question: "信用卡额度", Answer: "y"},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	built := kb.build()
	var most float32
	for i := built.exOff[0]; i < built.exOff[1]; i++ {
		most = max(most, built.tf(i))
	}
	if most != 300 {
		t.Errorf("largest term frequency of the first question = %v, want 300", most)
	}
	for q := range built.len() {
		var ss float64
		for _, v := range built.values(nil, q, kb.terms) {
			ss += float64(v) * float64(v)
		}
		if math.Abs(ss-1) > 1e-5 {
			t.Errorf("question %d: squared feature values sum to %v, want 1", q, ss)
		}
	}
}
