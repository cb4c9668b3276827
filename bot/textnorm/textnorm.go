// Package textnorm normalises Chinese (and mixed Latin) text for matching:
// Unicode NFKC (full-width letters, digits and punctuation become
// half-width), lower case, common traditional characters folded to
// simplified ones, and every run of punctuation, symbols and spaces turned
// into one space. What is left is Han characters, letters and digits.
package textnorm

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Normalize returns the matching form of s: NFKC, lower case, traditional
// characters folded to simplified (see ToSimplified), and punctuation,
// symbols and white space collapsed to single spaces, trimmed at both ends.
func Normalize(s string) string {
	return string(AppendNormalized(nil, s))
}

// AppendNormalized appends the normalised form of s (see Normalize) to dst
// and returns the extended buffer. It allocates only when dst is too small
// or s is not already in NFKC form.
func AppendNormalized(dst []byte, s string) []byte {
	start := len(dst)
	space := true // drop leading separators
	emit := func(r rune) {
		switch {
		case r < utf8.RuneSelf:
			switch {
			case 'A' <= r && r <= 'Z':
				r += 'a' - 'A'
			case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			default:
				r = ' '
			}
		case unicode.Is(unicode.Han, r):
			if t, ok := t2s[r]; ok {
				r = t
			}
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			r = unicode.ToLower(r)
		case unicode.IsMark(r):
			return // combining marks left over by NFKC (accents)
		default:
			r = ' '
		}
		if r == ' ' {
			if !space {
				dst = append(dst, ' ')
				space = true
			}
			return
		}
		dst = utf8.AppendRune(dst, r)
		space = false
	}
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf, r >= 0x4E00 && r <= 0x9FFF:
			// ASCII and CJK Unified Ideographs are NFKC-stable.
			emit(r)
		case r >= 0xFF01 && r <= 0xFF5E:
			emit(r - 0xFEE0) // full-width ASCII
		default:
			// Rare: other compatibility characters (ideographic space,
			// circled digits, ligatures, accents). One small allocation.
			var tmp [32]byte
			n := utf8.EncodeRune(tmp[:4], r)
			out := norm.NFKC.Append(tmp[4:4], tmp[:n]...)
			for _, r2 := range string(out) {
				emit(r2)
			}
		}
	}
	if len(dst) > start && dst[len(dst)-1] == ' ' {
		dst = dst[:len(dst)-1]
	}
	return dst
}

// ToSimplified folds the traditional characters of a built-in table of
// about 500 common ones to their simplified forms and leaves every other
// rune alone. The table is deliberately small (no phrase-level conversion,
// ambiguous characters such as 乾/著/隻 are left out): it is enough for a
// user who types in traditional script to reach simplified knowledge.
func ToSimplified(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if t, ok := t2s[r]; ok {
			r = t
		}
		b.WriteRune(r)
	}
	return b.String()
}

// IsHan reports whether r is a Han (CJK) character.
func IsHan(r rune) bool {
	return r >= 0x2E80 && unicode.Is(unicode.Han, r)
}
