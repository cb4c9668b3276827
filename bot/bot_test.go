package bot

import (
	"sync"
	"testing"
)

func ids(es []*Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func equalIDs(a []string, b ...string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBotHitHot(t *testing.T) {
	b := New(mustSampleKB(t, Options{}))
	if got := ids(b.Hot(3)); !equalIDs(got, "it-vpn", "it-wifi", "it-password") {
		t.Errorf("no hits: Hot = %v, want file order", got)
	}
	for i := 0; i < 3; i++ {
		b.Hit("hr-salary")
	}
	b.Hit("adm-canteen")
	b.Hit("it-printer")
	b.Hit("unknown-id") // ignored
	if got := ids(b.Hot(4)); !equalIDs(got, "hr-salary", "it-printer", "adm-canteen", "it-vpn") {
		t.Errorf("Hot = %v; ties must keep file order, zero hits follow", got)
	}
	if b.Hits("hr-salary") != 3 || b.Hits("unknown-id") != 0 {
		t.Errorf("Hits = %d, %d", b.Hits("hr-salary"), b.Hits("unknown-id"))
	}
	if got := b.Hot(100); len(got) != 20 {
		t.Errorf("Hot(100) returned %d entries", len(got))
	}
	if got := b.Hot(0); len(got) != 0 {
		t.Errorf("Hot(0) = %v", ids(got))
	}
	b.SeedHits(map[string]int64{"adm-express": 10, "gone": 5})
	if got := ids(b.Hot(1)); !equalIDs(got, "adm-express") {
		t.Errorf("after SeedHits: %v", got)
	}
}

func TestBotReplace(t *testing.T) {
	first := mustSampleKB(t, Options{})
	b := New(first)
	b.Hit("it-vpn")
	b.Hit("it-vpn")
	b.Hit("hr-leave")
	next, err := NewKnowledgeBase([]Entry{
		{ID: "it-vpn", Question: "VPN连不上怎么办？", Answer: "新答案"},
		{ID: "new", Question: "新问题", Answer: "新"},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b.Replace(next)
	if b.KB() != next || b.KB().Len() != 2 {
		t.Fatal("KB not replaced")
	}
	if b.Hits("it-vpn") != 2 || b.Hits("hr-leave") != 0 || b.Hits("new") != 0 {
		t.Errorf("counts after Replace: vpn %d, leave %d, new %d", b.Hits("it-vpn"), b.Hits("hr-leave"), b.Hits("new"))
	}
	if got := ids(b.Hot(5)); !equalIDs(got, "it-vpn", "new") {
		t.Errorf("Hot = %v", got)
	}
	if !first.retired.Load() {
		t.Error("old knowledge base not retired")
	}
	// An id that comes back starts from zero: its counter was dropped.
	b.Replace(first)
	if b.Hits("hr-leave") != 0 || b.Hits("it-vpn") != 2 {
		t.Errorf("after second Replace: leave %d, vpn %d", b.Hits("hr-leave"), b.Hits("it-vpn"))
	}
}

func TestBotNil(t *testing.T) {
	b := New(nil)
	if b.KB() == nil || b.KB().Len() != 0 || len(b.Hot(5)) != 0 {
		t.Fatal("nil knowledge base not served as empty")
	}
	if r := b.KB().Match("你好"); r.Outcome != OutcomeNone {
		t.Errorf("empty: %v", r.Outcome)
	}
}

func TestBotConcurrent(t *testing.T) {
	kb := mustSampleKB(t, Options{})
	b := New(kb)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				b.Hit("it-vpn")
				if i%100 == 0 {
					b.Hot(3)
					b.KB().Match("VPN连不上")
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 10; i++ {
			b.Replace(kb)
		}
	}()
	wg.Wait()
	if got := b.Hits("it-vpn"); got != 4000 {
		t.Errorf("hits = %d, want 4000", got)
	}
}
