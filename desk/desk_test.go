package desk

import "testing"

func TestSessionArg(t *testing.T) {
	cases := []struct {
		in       string
		optional bool
		no       int
		rest     string
		bad      bool
	}{
		{"#12", false, 12, "", false},
		{"#12 您好", false, 12, "您好", false},
		{"＃3 全角井号", false, 3, "全角井号", false},
		{"#12hr", false, 12, "hr", false},
		{"", true, 0, "", false},      // 结束: the current session
		{"hr", false, 0, "hr", false}, // 转接 hr: the current session
		{"#", false, 0, "", true},
		{"#0", false, 0, "", true},
		{"#abc", false, 0, "", true},
		{"abc", true, 0, "", true}, // 结束 abc
	}
	for _, c := range cases {
		no, rest, err := sessionArg(c.in, c.optional)
		if (err != nil) != c.bad || no != c.no || rest != c.rest {
			t.Errorf("sessionArg(%q, %v) = %d, %q, %v", c.in, c.optional, no, rest, err)
		}
	}
}
