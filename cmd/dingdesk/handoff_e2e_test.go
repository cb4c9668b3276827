package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
)

const unknownQ = "火星上的天气怎么样啊"

func TestHandoffTransferKeywordWithNobodyOnline(t *testing.T) {
	s := startService(t, serviceOpts{})
	m := s.say("u1", "转人工")
	s.toUser(m, "u1", "没有客服在线")
}

func TestHandoffAfterTwoUnansweredQuestions(t *testing.T) {
	s := startService(t, serviceOpts{})
	s.toUser(s.say("agent1", "上线"), "agent1", "已上线")
	s.toUser(s.say("u1", unknownQ), "u1", "抱歉")
	m := s.say("u1", "土星有几个卫星呢")
	s.toUser(m, "u1", "小王")                // assigned_message names the agent
	notice := s.toUser(m, "agent1", "新会话") // the agent's new-session notice
	if !strings.Contains(notice.Text, "用户u1") || !strings.Contains(notice.Text, "IT 服务台") {
		t.Fatalf("notice = %q, want the user's name and the group", notice.Text)
	}
}

func TestBotOnlyConversationNeverHandsOff(t *testing.T) {
	s := startService(t, serviceOpts{routing: defaultRouting + `  overrides: [ { conversation_id: "cidBotOnly==", mode: bot_only } ]
`})
	s.toUser(s.say("agent1", "上线"), "agent1", "已上线")
	ask := func(text string) dingtalktest.Sent {
		m := s.mark()
		s.post(dingtalktest.Msg{ConversationType: dingtalktest.Group, ConversationID: "cidBotOnly==", ConversationTitle: "公告群",
			SenderStaffID: "u5", SenderNick: "王五", Text: text})
		return s.waitFor(m, "in the bot-only group", func(x dingtalktest.Sent) bool { return isInGroup(x, "cidBotOnly==") })
	}
	if got := ask("转人工"); !strings.Contains(got.Text, "暂未开放人工服务") {
		t.Fatalf("transfer keyword in bot_only answered %q", got.Text)
	}
	for i := 0; i < 4; i++ {
		if got := ask(unknownQ); !strings.Contains(got.Text, "抱歉") {
			t.Fatalf("miss %d in bot_only answered %q", i+1, got.Text)
		}
	}
	for _, x := range s.fake.Sent() {
		if isTo(x, "agent1") && strings.Contains(x.Text, "新会话") {
			t.Fatal("a bot_only conversation was handed to an agent")
		}
	}
}

func TestHolidayGivesOffHoursText(t *testing.T) {
	today := time.Now().In(mustLoc(t, "Asia/Shanghai")).Format("2006-01-02")
	s := startService(t, serviceOpts{rules: `
service_rules:
  - name: always
    hours: { mon-sun: ["00:00-24:00"] }
    holidays: ["` + today + `"]
    off_hours_message: "今天放假，客服休息。"
`})
	s.toUser(s.say("agent1", "上线"), "agent1", "已上线")
	s.toUser(s.say("u1", "转人工"), "u1", "今天放假")
}

func TestConfigEditChangesTextsLive(t *testing.T) {
	s := startService(t, serviceOpts{})
	s.toUser(s.say("u1", "转人工"), "u1", "没有客服在线")
	kb := s.main.Bot.KB()
	cfg := serviceOpts{}.yaml(s.fake, s.main.Config.Current().Storage.DSN.Reveal())
	replaceFile(t, s.cfg, strings.Replace(cfg, `hours: { mon-sun: ["00:00-24:00"] }`,
		`hours: { mon-sun: ["00:00-24:00"] }
    no_agent_message: "客服暂时都不在，稍后再试。"`, 1))
	eventually(t, "the edit to apply", func() bool {
		return s.main.Config.Current().ServiceRules[0].NoAgentMessage == "客服暂时都不在，稍后再试。"
	})
	if s.main.Bot.KB() != kb {
		t.Fatal("an edit that does not touch the bot rebuilt the knowledge base")
	}
	s.toUser(s.say("u2", "转人工"), "u2", "客服暂时都不在")
}

func TestKnowledgeEditIsLive(t *testing.T) {
	s := startService(t, serviceOpts{})
	s.toUser(s.say("u1", "年假有多少天"), "u1", "年假答案")
	kb := strings.Replace(readFile(t, "testdata/kb.yaml"), "年假答案：满一年五天。", "年假答案二：满一年十天。", 1)
	replaceFile(t, s.dir+"/kb.yaml", kb)
	eventually(t, "the new answer", func() bool {
		m := s.say("u1", "年假有多少天")
		x := s.waitFor(m, "an answer", func(x dingtalktest.Sent) bool { return isTo(x, "u1") })
		return strings.Contains(x.Text, "年假答案二")
	})
}

func TestClarifyPickByNumber(t *testing.T) {
	// With a direct-answer threshold no match reaches, a good match is
	// offered as a numbered list instead.
	t.Setenv("DINGDESK_BOT_ANSWER_THRESHOLD", "0.999")
	s := startService(t, serviceOpts{})
	list := s.toUser(s.say("u1", "VPN 老是连不上"), "u1", "您是不是想问")
	if !strings.Contains(list.Text, "1. VPN 连不上怎么办") {
		t.Fatalf("clarify list = %q, want the VPN question first", list.Text)
	}
	s.toUser(s.say("u1", "1"), "u1", "VPN答案")
	// The number is valid for the next message only.
	got := s.toUser(s.say("u1", "1"), "u1", "")
	if strings.Contains(got.Text, "VPN答案") {
		t.Fatalf("a stale pick answered again: %q", got.Text)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
