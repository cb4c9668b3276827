package bot

import (
	"testing"
)

func BenchmarkAnalyze(b *testing.B) {
	d, err := loadBenchData()
	if err != nil {
		b.Skip(err)
	}
	a := newAnalyzer(DefaultStopWords, nil)
	var sc scratch
	b.ReportAllocs()
	n := 0
	for i := 0; i < b.N; i++ {
		n += len(a.terms(d.queries[i%len(d.queries)], &sc))
	}
	b.ReportMetric(float64(n)/float64(b.N), "terms/op")
}

func BenchmarkTouched(b *testing.B) {
	kb, d := benchKB(b, 10000)
	ms := kb.getScratch()
	tot, totT := 0, 0
	for i := 0; i < 2000; i++ {
		ts := kb.an.terms(d.queries[i%len(d.queries)], &ms.sc)
		for _, t := range ts {
			if id, ok := kb.vocab[t.h]; ok {
				tot += int(kb.terms[id].n)
				totT++
			}
		}
	}
	b.ReportMetric(float64(tot)/2000, "postings/query")
	b.ReportMetric(float64(totT)/2000, "knownterms/query")
}
