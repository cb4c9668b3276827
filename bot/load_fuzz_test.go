package bot_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dingdesk/dingdesk/bot"
)

// Fuzz targets for the knowledge loaders, through their exported entry
// points (files on disk, as admins give them): whatever a file holds, the
// loader reports problems as *bot.LoadError with the file named, and what
// it loads is valid (and, in the seed run, builds a knowledge base that
// can be asked).

func seedFiles(f *testing.F, pattern string, extra ...string) {
	files, _ := filepath.Glob(filepath.Join("testdata", pattern))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, e := range extra {
		f.Add([]byte(e))
	}
}

func fuzzLoader(f *testing.F, ext string) {
	path := filepath.Join(f.TempDir(), "kb"+ext)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		entries, err := bot.LoadKnowledge([]string{path})
		for _, e := range unjoin(err) {
			var le *bot.LoadError
			if !errors.As(e, &le) || le.File != path || le.Line < 0 || le.Msg == "" {
				t.Fatalf("problem without its file and message: %v (%T)", e, e)
			}
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if e.ID == "" || e.Question == "" || e.Answer == "" || seen[e.ID] {
				t.Fatalf("invalid entry loaded: %+v", e)
			}
			if e.ID != strings.TrimSpace(e.ID) || !strings.HasPrefix(e.Source, path+":") {
				t.Fatalf("entry not normalised: id %q source %q", e.ID, e.Source)
			}
			seen[e.ID] = true
		}
		// Building a knowledge base of what loaded is left to the seed run
		// (go test): under -fuzz the instrumented segmenter would make each
		// input cost a hundred times more, and the index is not a parser of
		// outside input.
		if !fuzzing() && len(entries) > 0 {
			askable(t, entries, bot.Options{})
		}
	})
}

// askable builds a knowledge base of entries and asks it their first
// question.
func askable(t *testing.T, entries []bot.Entry, opts bot.Options) {
	t.Helper()
	kb, err := bot.NewKnowledgeBase(entries, opts)
	if err != nil {
		t.Fatalf("loaded entries refused by the knowledge base: %v", err)
	}
	if kb.Len() != len(entries) {
		t.Fatalf("knowledge base has %d of %d entries", kb.Len(), len(entries))
	}
	for _, c := range kb.Match(entries[0].Question).Candidates {
		if _, ok := kb.Entry(c.ID); !ok {
			t.Fatalf("candidate %q is not an entry", c.ID)
		}
	}
}

// fuzzing reports whether the test binary runs with -fuzz (not just the
// seed corpus).
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

func FuzzLoadYAML(f *testing.F) {
	seedFiles(f, "*.yaml",
		"entries:\n  - {id: 1, question: q, answer: a, similar: x}\n",
		"- id: a\n  question: q\n  answer: a\n  handoff: maybe\n- id: a\n  question: q\n  answer: b\n",
		"- &x {id: a, question: q, answer: a}\n- *x\n", "{", "- [1, 2]\n", "\xef\xbb\xbf- {id: b, question: 问, answer: 答}\n")
	fuzzLoader(f, ".yaml")
}

func FuzzLoadCSV(f *testing.F) {
	seedFiles(f, "*.csv", "id,question,answer\n1,\"q\nq\",a\n", "question,answer\n", "id,question,similar,answer\nx,q,a|b|,c\nx,q,,\n", "\"")
	fuzzLoader(f, ".csv")
}

func FuzzLoadJSONL(f *testing.F) {
	seedFiles(f, "*.jsonl", `{"id":1.5,"question":"q","answer":"a","similar":"x"}`, "{}\n\n[]\n", `{"id":"a","question":"q","answer":"a","handoff":"是"}`)
	fuzzLoader(f, ".jsonl")
}

// FuzzLoadSynonyms: a synonyms file gives groups of non-empty words with
// no separator inside, or an error; the groups build a knowledge base.
func FuzzLoadSynonyms(f *testing.F) {
	f.Add([]byte("密码 口令 passwd\n# comment\n电脑，笔记本、计算机|主机\n\n"))
	f.Add([]byte("\xef\xbb\xbfwifi,无线网\tWi-Fi\n单独\n"))
	f.Add([]byte(" , ，\n"))
	path := filepath.Join(f.TempDir(), "synonyms.txt")
	entries := []bot.Entry{{ID: "a", Question: "密码忘了怎么办", Answer: "重置", Source: "x:1"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		groups, err := bot.LoadSynonyms(path)
		if err != nil {
			return
		}
		for _, g := range groups {
			for _, w := range g {
				if w == "" || strings.ContainsAny(w, " \t,，、|\u3000\n") {
					t.Fatalf("bad word %q in group %q", w, g)
				}
			}
		}
		if !fuzzing() {
			askable(t, entries, bot.Options{Synonyms: groups})
		}
	})
}
