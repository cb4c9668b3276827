// Command kbgen writes a synthetic knowledge file of -n entries, and a file
// of questions for bench/webhookload -texts, from seed knowledge files (any
// file bot.knowledge loads: the example FAQ, or for realistic vocabulary the
// shared evaluation sets). It is how the service is measured at 100 000
// entries without shipping such a file:
//
//	go run ./bench/kbgen -seed ../shared/data/unionpay/faq.jsonl,../shared/data/bq/faq.jsonl \
//	  -n 100000 -out /tmp/kb100k/kb.jsonl -questions /tmp/kb100k/questions.txt
//
// Every entry takes a seed question at random and perturbs it (swaps two
// words, drops one, borrows one from another seed question; up to two such
// steps), adds 0–4 similar questions made the same way from other seed
// questions (about 3 questions an entry, as in the shared sets), and the
// answer and category of the entry its standard question came from — the
// idea of bot/bench_test.go's synthetic sets, with real answers so that the
// memory held is realistic. Words here are a light cut (ASCII runs, Han
// characters in pairs), not the bot's segmenter: the tool must not depend on
// bot internals, and the pieces only need to look like a real vocabulary.
// The questions file holds -nq perturbed seed questions, one a line, so the
// load is answered, clarified and refused about as real traffic would be.
//
// The output is deterministic for a given seed file, -n, -nq and -rand.
// Generated files belong in /tmp, never in the repository (the shared
// sets carry no licence).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/kbfile"
	"github.com/dingdesk/dingdesk/knowledge"
)

func main() {
	seeds := flag.String("seed", "examples/kb/faq.yaml", "seed knowledge files, comma-separated")
	n := flag.Int("n", 100_000, "entries to write")
	out := flag.String("out", "/tmp/kbgen/kb.jsonl", "knowledge file to write (.jsonl, .yaml or .csv)")
	questions := flag.String("questions", "", "also write this many perturbed questions (-nq), one a line, to this file")
	nq := flag.Int("nq", 2000, "questions for -questions")
	seed := flag.Uint64("rand", 1, "random seed")
	flag.Parse()
	if *n <= 0 || *nq <= 0 {
		log.Fatal("need -n > 0 and -nq > 0")
	}
	format, ok := kbfile.FormatOf(*out)
	if !ok {
		log.Fatalf("%s: want a .jsonl, .yaml or .csv name", *out)
	}
	src, err := bot.LoadKnowledge(strings.Split(*seeds, ","))
	if err != nil {
		log.Fatal(err)
	}
	entries, qs, err := generate(src, *n, *nq, *seed)
	if err != nil {
		log.Fatal(err)
	}
	if err := writeFile(*out, func(w *bufio.Writer) error {
		_, err := kbfile.Write(w, format, entries)
		return err
	}); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "%s: %d entries from %d seed entries\n", *out, *n, len(src))
	if *questions != "" {
		if err := writeFile(*questions, func(w *bufio.Writer) error {
			for _, q := range qs {
				w.WriteString(q)
				w.WriteByte('\n')
			}
			return nil
		}); err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "%s: %d questions\n", *questions, *nq)
	}
}

// generate makes n entries and nq questions from the seed entries.
func generate(src []bot.Entry, n, nq int, seed uint64) ([]knowledge.Entry, []string, error) {
	g := newGen(src, seed)
	if len(g.questions) == 0 {
		return nil, nil, fmt.Errorf("the seed files hold no questions")
	}
	entries := make([]knowledge.Entry, n)
	for i := range entries {
		entries[i].Entry = g.entry(fmt.Sprintf("syn%06d", i))
	}
	qs := make([]string, nq)
	for i := range qs {
		qs[i] = g.question()
	}
	return entries, qs, nil
}

func writeFile(path string, write func(*bufio.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := write(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// gen draws perturbed questions from the seed's.
type gen struct {
	rng       *rand.Rand
	questions [][]string // every seed question, cut into words
	from      []int      // seed entry of each question
	src       []bot.Entry
}

func newGen(src []bot.Entry, seed uint64) *gen {
	g := &gen{rng: rand.New(rand.NewPCG(seed, 42)), src: src}
	for i, e := range src {
		for _, q := range append([]string{e.Question}, e.Similar...) {
			if w := cut(q); len(w) > 0 {
				g.questions = append(g.questions, w)
				g.from = append(g.from, i)
			}
		}
	}
	return g
}

// entry is a synthetic entry: its standard question and answer come from
// one seed question's entry, its similar questions from any.
func (g *gen) entry(id string) bot.Entry {
	k := g.rng.IntN(len(g.questions))
	s := g.src[g.from[k]]
	e := bot.Entry{ID: id, Question: g.perturb(g.questions[k]), Answer: s.Answer, Category: s.Category}
	for j := g.rng.IntN(5); j > 0; j-- {
		e.Similar = append(e.Similar, g.question())
	}
	return e
}

func (g *gen) question() string {
	return g.perturb(g.questions[g.rng.IntN(len(g.questions))])
}

// perturb applies up to two of: swap two words, drop a word, insert a word
// borrowed from another question.
func (g *gen) perturb(words []string) string {
	w := slices.Clone(words)
	for k := g.rng.IntN(3); k > 0 && len(w) > 1; k-- {
		switch g.rng.IntN(3) {
		case 0:
			i, j := g.rng.IntN(len(w)), g.rng.IntN(len(w))
			w[i], w[j] = w[j], w[i]
		case 1:
			i := g.rng.IntN(len(w))
			w = slices.Delete(w, i, i+1)
		default:
			other := g.questions[g.rng.IntN(len(g.questions))]
			w = slices.Insert(w, g.rng.IntN(len(w)+1), other[g.rng.IntN(len(other))])
		}
	}
	return join(w)
}

// join puts words back together, with a space between two that are not
// Han (so "VPN" and "wifi" stay apart).
func join(words []string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 && !han(words[i-1]) && !han(w) {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	return b.String()
}

func han(w string) bool {
	for _, r := range w {
		return unicode.Is(unicode.Han, r)
	}
	return false
}

// cut splits a question into word-like pieces: runs of letters and digits
// that are not Han (VPN, wifi, 95516) and Han characters two at a time.
// Punctuation and spaces are left out, so that no perturbed question is
// punctuation alone.
func cut(s string) []string {
	var words []string
	rs := []rune(s)
	for i := 0; i < len(rs); {
		r := rs[i]
		j := i + 1
		switch {
		case unicode.Is(unicode.Han, r):
			if j < len(rs) && unicode.Is(unicode.Han, rs[j]) {
				j++
			}
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			for j < len(rs) && !unicode.Is(unicode.Han, rs[j]) && (unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j])) {
				j++
			}
		default:
			i = j
			continue
		}
		words = append(words, string(rs[i:j]))
		i = j
	}
	return words
}
