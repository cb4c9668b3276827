package bot

import (
	"slices"
	"unicode/utf8"

	"github.com/go-ego/gse"

	"github.com/dingdesk/dingdesk/bot/textnorm"
)

// Term kinds. A question is represented by three kinds of terms: gse words,
// character unigrams and character bigrams. A "character" (unit) is one Han
// character or one run of ASCII letters and digits such as "vpn" or "2024".
// Words carry meaning; characters make matching robust to segmentation
// differences, typos and unknown words.
const (
	kindWord uint8 = iota
	kindUni
	kindBi
	numKinds
)

// term is one feature occurrence: a 64-bit FNV-1a hash of its kind and text.
type term struct {
	h    uint64
	kind uint8
}

// tfTerm is a distinct term with its count in one text.
type tfTerm struct {
	h    uint64
	kind uint8
	tf   float32
}

// analyzer turns text into terms. It is immutable after construction and
// safe for concurrent use; per-call buffers live in a scratch.
type analyzer struct {
	seg  *gse.Segmenter
	stop map[string]struct{}
	syn  *synonyms
}

// scratch holds reusable buffers of one analysis.
type scratch struct {
	norm  []byte
	syn   []byte
	terms []term
	agg   []tfTerm
}

func newAnalyzer(stopWords []string, groups [][]string) *analyzer {
	a := &analyzer{seg: segmenter(), stop: make(map[string]struct{}, len(stopWords))}
	a.syn = newSynonyms(append(slices.Clip(builtinVariants), groups...))
	for _, w := range stopWords {
		w = textnorm.Normalize(w)
		if w == "" {
			continue
		}
		a.stop[w] = struct{}{}
		// A stop word that a synonym group rewrites must be known in its
		// canonical form too.
		a.stop[string(a.syn.rewrite(nil, []byte(w)))] = struct{}{}
	}
	return a
}

// builtinVariants are spelling variants and colloquial forms of general
// (not domain) words, rewritten like synonyms before the configured groups.
// Only groups that mean the same in any context are listed.
var builtinVariants = [][]string{
	{"怎么", "怎样", "如何", "咋", "怎么办", "咋办", "怎么弄", "咋弄", "怎么操作", "如何操作", "怎么处理", "如何处理"},
	{"为什么", "为何", "为啥", "咋回事", "怎么回事", "什么原因", "啥原因"},
	{"什么", "啥"},
	{"可以", "能不能", "能否", "可不可以", "可否", "行不行"},
	{"多久", "多长时间", "多少时间"},
	{"哪里", "哪儿", "在哪", "在哪里", "什么地方"},
	{"无法", "没法", "没办法", "没有办法"},
	{"收不到", "没收到", "没有收到", "接收不到"},
	{"登录", "登陆", "登入"},
	{"账户", "帐户"},
	{"账号", "帐号"},
	{"到账", "到帐"},
	{"忘记", "忘了"},
}

// normalize is the text the segmenter sees: normalised and with synonyms
// rewritten to their canonical words.
func (a *analyzer) normalize(s string, sc *scratch) []byte {
	sc.norm = textnorm.AppendNormalized(sc.norm[:0], s)
	sc.syn = a.syn.rewrite(sc.syn[:0], sc.norm)
	return sc.syn
}

// analyze fills sc.terms with the terms of s and returns them.
func (a *analyzer) analyze(s string, sc *scratch) []term {
	text := a.normalize(s, sc)
	sc.terms = sc.terms[:0]
	for start := 0; start < len(text); {
		end := start
		for end < len(text) && text[end] != ' ' {
			end++
		}
		a.chunk(text[start:end], sc)
		start = end + 1
	}
	return sc.terms
}

// chunk segments one space-free run of normalised text. Stop words are
// dropped and no bigram spans one.
func (a *analyzer) chunk(chunk []byte, sc *scratch) {
	var prev []byte // previous unit, for bigrams
	for _, sg := range a.seg.Segment(chunk) {
		w := chunk[sg.Start():sg.End()]
		if _, stop := a.stop[string(w)]; stop {
			prev = nil
			continue
		}
		sc.terms = append(sc.terms, term{hashTerm(kindWord, w, nil), kindWord})
		for len(w) > 0 {
			n := unitLen(w)
			u := w[:n]
			w = w[n:]
			sc.terms = append(sc.terms, term{hashTerm(kindUni, u, nil), kindUni})
			if prev != nil {
				sc.terms = append(sc.terms, term{hashTerm(kindBi, prev, u), kindBi})
			}
			prev = u
		}
	}
}

// terms analyses s and returns its distinct terms with counts, sorted by
// hash, in sc.agg.
func (a *analyzer) terms(s string, sc *scratch) []tfTerm {
	return aggregate(a.analyze(s, sc), sc)
}

// unitLen is the byte length of the first unit of w: a run of ASCII
// letters and digits, or one rune.
func unitLen(w []byte) int {
	if isAlnum(w[0]) {
		n := 1
		for n < len(w) && isAlnum(w[n]) {
			n++
		}
		return n
	}
	_, n := utf8.DecodeRune(w)
	return n
}

func isAlnum(b byte) bool { return 'a' <= b && b <= 'z' || '0' <= b && b <= '9' }

// aggregate sorts terms by hash and merges duplicates into sc.agg.
func aggregate(terms []term, sc *scratch) []tfTerm {
	slices.SortFunc(terms, func(x, y term) int {
		switch {
		case x.h < y.h:
			return -1
		case x.h > y.h:
			return 1
		}
		return 0
	})
	sc.agg = sc.agg[:0]
	for i, t := range terms {
		if i > 0 && t.h == terms[i-1].h {
			sc.agg[len(sc.agg)-1].tf++
			continue
		}
		sc.agg = append(sc.agg, tfTerm{t.h, t.kind, 1})
	}
	return sc.agg
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashTerm is 64-bit FNV-1a over kind, a and b (b may be nil).
func hashTerm(kind uint8, a, b []byte) uint64 {
	h := uint64(fnvOffset)
	h ^= uint64(kind)
	h *= fnvPrime
	for _, c := range a {
		h ^= uint64(c)
		h *= fnvPrime
	}
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// synonyms rewrites every variant of a group to the group's first word,
// leftmost-longest, on normalised text.
type synonyms struct {
	canon  map[string]string // normalised variant → normalised canonical word
	first  map[rune]bool     // first runes of variants
	maxLen int               // longest variant in bytes
}

func newSynonyms(groups [][]string) *synonyms {
	s := &synonyms{canon: map[string]string{}, first: map[rune]bool{}}
	for _, g := range groups {
		var canon string
		for _, w := range g {
			w = textnorm.Normalize(w)
			if w == "" {
				continue
			}
			if canon == "" {
				canon = w
				if c, ok := s.canon[w]; ok {
					canon = c // the group extends an earlier one
				}
				continue
			}
			if _, dup := s.canon[w]; dup || w == canon {
				continue // an earlier group wins
			}
			s.canon[w] = canon
			r, _ := utf8.DecodeRuneInString(w)
			s.first[r] = true
			s.maxLen = max(s.maxLen, len(w))
		}
	}
	return s
}

// rewrite appends text with variants replaced to dst. A variant is never
// matched inside a run of letters or digits (so "ip" does not rewrite part
// of "vip").
func (s *synonyms) rewrite(dst, text []byte) []byte {
	if len(s.canon) == 0 {
		return append(dst, text...)
	}
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRune(text[i:])
		if s.first[r] && (i == 0 || !isAlnum(text[i-1]) || !isAlnum(text[i])) {
			if end, c := s.match(text, i); end > 0 {
				dst = append(dst, c...)
				i = end
				continue
			}
		}
		dst = append(dst, text[i:i+n]...)
		i += n
	}
	return dst
}

// match finds the longest variant starting at text[i] and returns its end
// and canonical word, or 0.
func (s *synonyms) match(text []byte, i int) (int, string) {
	for l := min(s.maxLen, len(text)-i); l > 0; l-- {
		end := i + l
		if end < len(text) && !utf8.RuneStart(text[end]) {
			continue
		}
		if end < len(text) && isAlnum(text[end-1]) && isAlnum(text[end]) {
			continue // would cut a letter/digit run
		}
		if c, ok := s.canon[string(text[i:end])]; ok {
			return end, c
		}
	}
	return 0, ""
}
