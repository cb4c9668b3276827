package bot

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// memBenchKB keeps the last knowledge base of BenchmarkKBMemory alive, so
// that -memprofile (inuse_space) shows what it holds.
var memBenchKB *KnowledgeBase

// BenchmarkKBMemory reports the live heap a knowledge base of synthetic
// entries (as BenchmarkMatch builds them) holds after a full collection:
// built without training (untrained-MiB), one second into the background
// training with the training set and the weights being trained live
// (training-MiB), and trained (trained-MiB); peak-heap-MiB is the largest
// HeapAlloc sampled while building and training (garbage included). The entries themselves and
// the segmenter's dictionary exist before and are not counted. Every MiB
// kept live costs about two of peak RSS under GOGC=100
// (docs/BENCHMARKS.md §4).
//
//	go test -run '^$' -bench KBMemory -benchtime 1x ./bot/
//	go test -run '^$' -bench KBMemory/entries=100000 -benchtime 1x -memprofile /tmp/mem.out ./bot/
//	go tool pprof -sample_index=inuse_space -top bot.test /tmp/mem.out
func BenchmarkKBMemory(b *testing.B) {
	d, err := loadBenchData()
	if err != nil {
		b.Skipf("%v: skipping (needs ../shared/data)", err)
	}
	segmenter()
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			entries := d.synthesize(n)
			memBenchKB = nil
			var untrained, training, trained, peak, base uint64
			for i := 0; i < b.N; i++ {
				before := heapInUse()
				skipTraining = true
				kb, err := NewKnowledgeBase(entries, Options{})
				skipTraining = false
				if err != nil {
					b.Fatal(err)
				}
				untrained = heapInUse() - before
				runtime.KeepAlive(kb)
				kb = nil

				before = heapInUse()
				base = before
				stop := samplePeak(&peak)
				kb, err = NewKnowledgeBase(entries, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if !kb.Trained() {
					time.Sleep(time.Second)
					training = heapInUse() - before
				}
				kb.WaitTrained()
				stop()
				trained = heapInUse() - before
				memBenchKB = kb
			}
			b.ReportMetric(float64(untrained)/(1<<20), "untrained-MiB")
			b.ReportMetric(float64(training)/(1<<20), "training-MiB")
			b.ReportMetric(float64(trained)/(1<<20), "trained-MiB")
			b.ReportMetric(float64(peak-base)/(1<<20), "peak-heap-MiB")
		})
	}
}
