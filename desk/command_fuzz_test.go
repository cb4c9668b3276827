package desk

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzCommandArgs fuzzes what an agent types after a command word: the
// first-word split and the "#12 rest" session argument of 结束, 转接 and
// "#12 text". A session number is positive and written as typed; the rest
// is what follows it.
func FuzzCommandArgs(f *testing.F) {
	for _, s := range []string{"结束 #12", "转接 #3 hr", "#12 您好", "＃7", "#", "#0", "#99999999999999999999 x",
		"转接 人事服务", "推荐 2", "常用语 3", "  #5  多个  空格 ", "#１２"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, text string, optional bool) {
		cmd, rest := splitWord(text)
		if strings.Contains(cmd, " ") || rest != strings.TrimSpace(rest) {
			t.Fatalf("splitWord(%q) = %q, %q", text, cmd, rest)
		}
		if rest != "" && !strings.Contains(text, rest) {
			t.Fatalf("splitWord(%q): rest %q is not from the text", text, rest)
		}
		no, after, err := sessionArg(rest, optional)
		if err != nil {
			if no != 0 || after != "" {
				t.Fatalf("sessionArg(%q) failed with values %d %q", rest, no, after)
			}
			return
		}
		if no < 0 {
			t.Fatalf("sessionArg(%q) = negative session %d", rest, no)
		}
		s := strings.TrimSpace(rest)
		if no > 0 {
			digits := strings.TrimLeft(strings.TrimPrefix(strings.TrimPrefix(s, "#"), "＃"), "0")
			if !strings.HasPrefix(digits, strconv.Itoa(no)) {
				t.Fatalf("sessionArg(%q) = %d, not the number typed", rest, no)
			}
			if after != strings.TrimSpace(after) || !strings.HasSuffix(s, after) {
				t.Fatalf("sessionArg(%q): rest %q", rest, after)
			}
		} else if !optional && after != s {
			t.Fatalf("sessionArg(%q) without a number: rest %q, want the whole text", rest, after)
		}
	})
}
