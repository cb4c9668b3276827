package bot

import (
	_ "embed"
	"sync"

	"github.com/go-ego/gse"
)

// segDict is gse's simplified-Chinese dictionary (gse v0.80.3,
// data/dict/zh/s_1.txt, Apache-2.0, from jieba) without its rare words:
// only the 81 667 of 352 279 words with a frequency of 20 or more, made by
//
//	awk '$2 >= 20' $(go env GOMODCACHE)/github.com/go-ego/gse@v0.80.3/data/dict/zh/s_1.txt > bot/segdict.txt
//
// The whole dictionary took 127 MiB of heap and 1.4 s to load (most of the
// service's memory at rest and of its start-up); this one 26 MiB and 0.3 s.
// Matching does not miss the rare words: a word the dictionary lacks is
// cut into shorter known words, and the character bigrams still see it.
// TestEvalSharedSets, full → trimmed: UnionPay top-1 0.716 → 0.718, top-5
// 0.876 → 0.877; BQ top-5 0.537 → 0.535; out-of-domain rejected 0.940 →
// 0.940 and 0.915 → 0.920 (docs/BENCHMARKS.md).
//
//go:embed segdict.txt
var segDict string

// segmenter returns the process-wide gse segmenter with segDict. It is
// loaded on first use, never from the network, and shared read-only by
// every knowledge base: gse's Segment only reads the dictionary, so
// concurrent use is safe. Only a simplified dictionary is loaded because
// text is folded to simplified characters before segmentation.
var segmenter = sync.OnceValue(func() *gse.Segmenter {
	seg := &gse.Segmenter{SkipLog: true, NotLoadHMM: true}
	if err := seg.LoadDictStr(segDict); err != nil {
		// The dictionary is compiled into the binary: failing to parse it
		// is a build defect, not a runtime condition.
		panic("bot: load gse dictionary: " + err.Error())
	}
	return seg
})
