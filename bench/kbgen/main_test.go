package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/kbfile"
)

// The generated file is a knowledge file the service loads, the same for
// the same seed, with every question made of seed words.
func TestGenerateLoads(t *testing.T) {
	src, err := bot.LoadKnowledge([]string{"../../examples/kb/faq.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	entries, qs, err := generate(src, 500, 50, 7)
	if err != nil {
		t.Fatal(err)
	}
	again, qs2, _ := generate(src, 500, 50, 7)
	var b1, b2 bytes.Buffer
	kbfile.Write(&b1, kbfile.JSONL, entries)
	kbfile.Write(&b2, kbfile.JSONL, again)
	if !bytes.Equal(b1.Bytes(), b2.Bytes()) || !slices.Equal(qs, qs2) {
		t.Fatal("two runs with the same seed differ")
	}
	path := filepath.Join(t.TempDir(), "kb.jsonl")
	if err := os.WriteFile(path, b1.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := bot.LoadKnowledge([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 500 {
		t.Fatalf("loaded %d entries, want 500", len(loaded))
	}
	var questions int
	for _, e := range loaded {
		questions += 1 + len(e.Similar)
		if strings.TrimSpace(e.Question) == "" || e.Answer == "" {
			t.Fatalf("entry %s has an empty question or answer", e.ID)
		}
	}
	if avg := float64(questions) / 500; avg < 2.5 || avg > 3.5 {
		t.Errorf("%.2f questions an entry, want about 3", avg)
	}
	if len(qs) != 50 || slices.Contains(qs, "") {
		t.Errorf("questions: %d, or an empty one", len(qs))
	}
}

func TestCutJoin(t *testing.T) {
	got := cut("VPN 连不上，怎么办？wi fi 95516")
	want := []string{"VPN", "连不", "上", "怎么", "办", "wi", "fi", "95516"}
	if !slices.Equal(got, want) {
		t.Fatalf("cut = %q, want %q", got, want)
	}
	if j := join(got); j != "VPN连不上怎么办wi fi 95516" {
		t.Fatalf("join = %q", j)
	}
}
