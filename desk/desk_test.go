package desk

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/handoff"
)

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

func TestLooksLikeCommand(t *testing.T) {
	cfg := config.Default()
	cases := map[string]bool{
		"结束会话":         true, // a user's end keyword, or 结束 + 2
		"常见问题":         true, // the hot command
		"转人工":          true,
		"上线了":          true,
		"推荐1":          true,
		"推荐 #2":        true,
		"结束#12":        true,
		"帮助":           true,
		"推荐您先重启一下电脑":   false, // a reply that starts with a command word
		"帮助您查询一下订单状态":  false,
		"您好，请问有什么可以帮您": false,
		"好的":           false,
		"1":            false,
		"结束会话了吗？我这边还没处理完": false,
	}
	for text, want := range cases {
		if got := looksLikeCommand(cfg, text); got != want {
			t.Errorf("looksLikeCommand(%q) = %v, want %v", text, got, want)
		}
	}
}

// Every code of an agent operation has its text, filled in.
func TestErrorText(t *testing.T) {
	cfg := config.Default()
	cfg.SkillGroups = []config.SkillGroup{{Name: "hr", DisplayName: "人事"}}
	codes := []handoff.Code{handoff.CodeNotAgent, handoff.CodeUnknownSession, handoff.CodeSessionEnded,
		handoff.CodeNoCurrentSession, handoff.CodeUnknownGroup, handoff.CodeGroupClosed, handoff.CodeNoAgentOnline,
		handoff.CodeNoQuestion, handoff.CodeNoSuggestions, handoff.CodeUnknownSuggestion, handoff.CodeEmptyText}
	seen := map[string]handoff.Code{}
	for _, c := range codes {
		text, ok := errorText(cfg, fmt.Errorf("wrapped: %w", &handoff.Error{Code: c, Session: 12, Group: "hr", N: 4, Count: 3}))
		if !ok || text == "" || strings.Contains(text, "{") {
			t.Errorf("%s: %q, %v", c, text, ok)
		}
		if other, dup := seen[text]; dup {
			t.Errorf("%s and %s share the text %q", c, other, text)
		}
		seen[text] = c
	}
	if text, _ := errorText(cfg, &handoff.Error{Code: handoff.CodeNoAgentOnline, Group: "hr"}); !strings.Contains(text, "人事") {
		t.Errorf("no_agent_online names the group by its display name: %q", text)
	}
	if text, _ := errorText(cfg, &handoff.Error{Code: handoff.CodeSessionEnded, Session: 12}); !strings.Contains(text, "#12") {
		t.Errorf("session_ended names the session: %q", text)
	}
	if _, ok := errorText(cfg, errors.New("database is locked")); ok {
		t.Error("an internal error was given an agent text")
	}
}
