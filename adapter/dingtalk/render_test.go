package dingtalk

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dingdesk/dingdesk/adapter"
)

func TestRenderBodies(t *testing.T) {
	private := destination{userID: "user001", robotCode: "robot"}
	group := destination{group: true, userID: "user002", conversationID: "cid==", robotCode: "robot"}
	cases := map[string]struct {
		reply   adapter.Reply
		dest    destination
		session string
		openAPI string
	}{
		"private text": {
			reply:   adapter.Reply{Text: "你好 <b>&"},
			dest:    private,
			session: `{"msgtype":"text","text":{"content":"你好 <b>&"}}`,
			openAPI: `{"robotCode":"robot","userIds":["user001"],"msgKey":"sampleText","msgParam":"{\"content\":\"你好 <b>&\"}"}`,
		},
		"private markdown": {
			reply:   adapter.Reply{Format: adapter.Markdown, Title: "标题", Text: "**粗体**"},
			dest:    private,
			session: `{"msgtype":"markdown","markdown":{"title":"标题","text":"**粗体**"}}`,
			openAPI: `{"robotCode":"robot","userIds":["user001"],"msgKey":"sampleMarkdown","msgParam":"{\"text\":\"**粗体**\",\"title\":\"标题\"}"}`,
		},
		"group text": {
			reply:   adapter.Reply{Text: "已为您转接"},
			dest:    group,
			session: `{"msgtype":"text","text":{"content":"已为您转接"},"at":{"atUserIds":["user002"],"isAtAll":false}}`,
			openAPI: `{"robotCode":"robot","openConversationId":"cid==","msgKey":"sampleText","msgParam":"{\"content\":\"@user002 已为您转接\"}"}`,
		},
		"group markdown, title from text": {
			reply:   adapter.Reply{Format: adapter.Markdown, Text: "# 报销流程\n1. 填单"},
			dest:    group,
			session: `{"msgtype":"markdown","markdown":{"title":"报销流程","text":"@user002\n\n# 报销流程\n1. 填单"},"at":{"atUserIds":["user002"],"isAtAll":false}}`,
			openAPI: `{"robotCode":"robot","openConversationId":"cid==","msgKey":"sampleMarkdown","msgParam":"{\"text\":\"@user002\\n\\n# 报销流程\\n1. 填单\",\"title\":\"报销流程\"}"}`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			parts, err := renderParts(tc.reply, tc.dest)
			if err != nil || len(parts) != 1 {
				t.Fatalf("parts %v, %v", parts, err)
			}
			// The bodies sent are the ones rendered while splitting.
			if s := parts[0].sessionBody; string(s) != tc.session {
				t.Errorf("session body\n got %s\nwant %s", s, tc.session)
			}
			if _, o, err := parts[0].apiRequest(tc.dest); err != nil || string(o) != tc.openAPI {
				t.Errorf("OpenAPI body\n got %s\nwant %s", o, tc.openAPI)
			}
		})
	}
}

func TestSplitText(t *testing.T) {
	t.Run("rune boundaries", func(t *testing.T) {
		s := strings.Repeat("汉字😀", 1000) // no separators at all
		chunks := splitText(s, 7)
		if strings.Join(chunks, "") != s {
			t.Fatal("content lost")
		}
		for _, c := range chunks {
			if !utf8.ValidString(c) || utf8.RuneCountInString(c) > 7 {
				t.Fatalf("bad chunk %q", c)
			}
		}
	})
	t.Run("prefers blank lines, then lines, then spaces", func(t *testing.T) {
		if got := splitText("aaaaaa\n\nbb\ncc dd", 10); strings.Join(got, "|") != "aaaaaa|bb\ncc dd" {
			t.Errorf("got %q", got)
		}
		if got := splitText("aaaa bbb\ncc dd", 10); strings.Join(got, "|") != "aaaa bbb|cc dd" {
			t.Errorf("got %q", got)
		}
		if got := splitText("aaaaaa bbbbbb", 10); strings.Join(got, "|") != "aaaaaa|bbbbbb" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("short text untouched", func(t *testing.T) {
		if got := splitText("短", 10); len(got) != 1 || got[0] != "短" {
			t.Errorf("got %q", got)
		}
	})
}

func TestRenderPartsLimits(t *testing.T) {
	group := destination{group: true, userID: "user002", conversationID: "cid", robotCode: "r"}
	t.Run("markdown keeps code fences balanced", func(t *testing.T) {
		text := "intro\n```go\n" + strings.Repeat("fmt.Println(\"x\")\n", 400) + "```\nend"
		parts, err := renderParts(adapter.Reply{Format: adapter.Markdown, Text: text}, group)
		if err != nil || len(parts) < 2 {
			t.Fatalf("%d parts, %v", len(parts), err)
		}
		for i, p := range parts {
			if n := strings.Count(p.text, "```"); n%2 != 0 {
				t.Errorf("part %d has %d fences", i, n)
			}
			if i > 0 && !strings.HasPrefix(p.text, "```go") && strings.Contains(p.text, "fmt.Println") {
				t.Errorf("part %d does not reopen the fence: %.30q", i, p.text)
			}
			if utf8.RuneCountInString(p.text) > maxPartRunes || p.title != "intro" {
				t.Errorf("part %d: %d runes, title %q", i, utf8.RuneCountInString(p.text), p.title)
			}
		}
	})
	t.Run("escaping-heavy text stays under 20000 bytes", func(t *testing.T) {
		text := strings.Repeat("\"\x01", 3000) // each rune costs up to 7 bytes once escaped twice
		parts, err := renderParts(adapter.Reply{Text: text}, group)
		if err != nil {
			t.Fatal(err)
		}
		var joined strings.Builder
		for _, p := range parts {
			s, _ := renderSession(p)
			_, body, _ := renderOpenAPI(p, group)
			o, _ := json.Marshal(body)
			if len(s) >= maxBodyBytes || len(o) >= maxBodyBytes {
				t.Errorf("body sizes %d, %d", len(s), len(o))
			}
			joined.WriteString(p.text)
		}
		if len(parts) < 2 || joined.String() != text {
			t.Errorf("%d parts; content kept: %v", len(parts), joined.String() == text)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if _, err := renderParts(adapter.Reply{Text: " \n"}, group); err == nil {
			t.Error("empty reply accepted")
		}
	})
}

func TestMarkdownTitle(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"给定标题", "# x"}:               "给定标题",
		{"", "## 报销流程\n正文"}:           "报销流程",
		{"", "**重要通知**"}:              "重要通知",
		{"", "```\ncode"}:             defaultTitle,
		{"", strings.Repeat("长", 40)}: strings.Repeat("长", maxTitleRunes) + "…",
	} {
		if got := markdownTitle(in[0], in[1]); got != want {
			t.Errorf("markdownTitle(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}
