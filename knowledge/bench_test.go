package knowledge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/knowledge"
)

// BenchmarkMergeActive: what every rebuild and admin page pays before
// indexing: 5000 file entries, 500 of them edited, 500 created.
func BenchmarkMergeActive(b *testing.B) {
	files := make([]bot.Entry, 5000)
	for i := range files {
		files[i] = bot.Entry{ID: fmt.Sprintf("e%d", i), Question: fmt.Sprintf("问题 %d 怎么办", i), Similar: []string{"相似 1", "相似 2"}, Answer: "答案"}
	}
	var recs []knowledge.Record
	for i := 0; i < 500; i++ {
		recs = append(recs, knowledge.Record{ID: fmt.Sprintf("e%d", i*10), Question: "改过的", Answer: "新答案", BaseHash: "x"},
			knowledge.Record{ID: fmt.Sprintf("n%d", i), Question: "新建", Answer: "a", CreatedAt: time.Unix(int64(i), 0)})
	}
	b.ReportAllocs()
	for b.Loop() {
		if n := len(knowledge.Active(knowledge.Merge(files, recs))); n != 5500 {
			b.Fatal(n)
		}
	}
}
