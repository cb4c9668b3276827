package bot

import (
	"sync"

	"github.com/go-ego/gse"
)

// segmenter returns the process-wide gse segmenter with gse's embedded
// simplified-Chinese dictionary. It is loaded on first use (about 1.5 s and
// 130 MiB of heap), never from the network, and shared read-only by every
// knowledge base: gse's Segment only reads the dictionary, so concurrent use
// is safe. Only the simplified dictionary is loaded because text is folded to
// simplified characters before segmentation.
var segmenter = sync.OnceValue(func() *gse.Segmenter {
	seg := &gse.Segmenter{SkipLog: true, NotLoadHMM: true}
	if err := seg.LoadDictEmbed("zh_s"); err != nil {
		// The dictionary is compiled into the binary: failing to parse it
		// is a build defect, not a runtime condition.
		panic("bot: load gse dictionary: " + err.Error())
	}
	return seg
})
