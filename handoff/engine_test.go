package handoff_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/handoff/clocktest"
)

func TestBotTurns(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		h := newHarness(t, driver, baseYAML)

		r := h.say("u1", "怎么退货")
		expectTexts(t, r, "u1", "退货请在订单页")
		if r[0].SessionWebhook == "" || r[0].ConversationID != "cid-u1" || r[0].ConversationType != adapter.Private {
			t.Fatalf("reply not addressed to the message's chat: %+v", r[0])
		}

		// The hot list is numbered; a number picks from it, once.
		r = h.say("u1", "常见问题")
		expectTexts(t, r, "u1", "大家都在问：\n1. ")
		hot := h.bot.Hot(5)
		r = h.say("u1", "2")
		expectTexts(t, r, "u1", hot[1].Answer)
		r = h.say("u1", "2") // the list was for one message only: "2" is a question now
		expectTexts(t, r, "u1", "抱歉，这个问题我还不会")
		if c := h.conv("u1"); c.Misses != 1 {
			t.Fatalf("misses = %d, want 1", c.Misses)
		}

		// Pictures get the polite reply and count as nothing.
		m := h.msg("cid-u1", "u1", "")
		m.Kind = adapter.KindPicture
		expectTexts(t, h.send(m), "u1", "只能识别文字")
		// The end keyword with nobody serving.
		expectTexts(t, h.say("u1", "结束会话"), "u1", "当前没有进行中的人工会话")
		if c := h.conv("u1"); c.Misses != 1 || c.State != handoff.StateBot {
			t.Fatalf("conversation = %+v, want bot with 1 miss", c)
		}

		st := gormstore.NewHandoffStore(h.db, nil)
		un, err := st.Unanswered(h.ctx, 10)
		if err != nil || len(un) != 1 || un[0].Question != "2" || un[0].ConversationID != "cid-u1" {
			t.Fatalf("unanswered = %+v, %v", un, err)
		}
		lines, err := st.Messages(h.ctx, "cid-u1|u1")
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != 12 { // 6 in, 6 out
			t.Fatalf("transcript has %d lines, want 12", len(lines))
		}
		if l := lines[0]; l.Direction != handoff.DirIn || l.Text != "怎么退货" || l.SenderID != "u1" || l.MsgID == "" {
			t.Fatalf("first line = %+v", l)
		}
		if l := lines[1]; l.Direction != handoff.DirOut || l.Sender != handoff.SenderBot || l.OutboxID == 0 {
			t.Fatalf("second line = %+v", l)
		}
		if l := lines[8]; l.Kind != adapter.KindPicture {
			t.Fatalf("picture line = %+v", l)
		}
	})
}

func TestClarifyPick(t *testing.T) {
	h := newHarness(t, "sqlite", baseYAML)
	if res := h.bot.KB().Match("退"); res.Outcome != bot.OutcomeClarify {
		t.Fatalf("the knowledge base answers %q with %s, want clarify (test data out of date)", "退", res.Outcome)
	}
	h.say("u1", "今天天气") // one miss
	expectTexts(t, h.say("u1", "退"), "u1", "您是不是想问：\n1. 怎么退货\n2. 怎么退款")
	if c := h.conv("u1"); c.Misses != 1 {
		t.Fatalf("misses = %d after a clarify, want 1 (neither answer nor miss)", c.Misses)
	}
	expectTexts(t, h.say("u1", "2"), "u1", "退款将在3个工作日内原路退回")
	if c := h.conv("u1"); c.Misses != 0 {
		t.Fatalf("misses = %d after a pick", c.Misses)
	}
}

// routeCase sends msgs from one user with some agents online and checks
// where the conversation ends up.
type routeCase struct {
	name   string
	yaml   string // default baseYAML
	online []string
	conv   string // default cid-u1
	msgs   []string
	state  handoff.State
	reason handoff.Reason
	agent  string
	misses int
	// last are substrings of the user's replies to the last message.
	last []string
}

func TestRouting(t *testing.T) {
	limit3 := strings.Replace(baseYAML, "no_answer_limit: 2", "no_answer_limit: 3", 1)
	botOnly := strings.Replace(baseYAML, "mode: bot_first", "mode: bot_only", 1)
	humanOnly := strings.Replace(baseYAML, "mode: bot_first", "mode: human_only", 1)
	overrides := strings.Replace(baseYAML, "skill_group: after_sales", `skill_group: after_sales
  overrides:
    - { conversation_id: cid-vip, mode: human_only, skill_group: pre_sales }
    - { conversation_id: cid-quiet, mode: bot_only }
    - { conversation_id: cid-pre, skill_group: pre_sales }`, 1)
	cases := []routeCase{
		{name: "bot_first limit 2: two misses hand off", online: []string{"a1"}, msgs: []string{"今天天气", "股票行情"},
			state: handoff.StateHuman, reason: handoff.ReasonNoAnswer, agent: "a1", last: []string{"客服 小王 为您服务"}},
		{name: "bot_first limit 2: one miss stays", online: []string{"a1"}, msgs: []string{"今天天气"},
			state: handoff.StateBot, misses: 1, last: []string{"抱歉"}},
		{name: "bot_first limit 3: two misses stay", yaml: limit3, online: []string{"a1"}, msgs: []string{"今天天气", "股票行情"},
			state: handoff.StateBot, misses: 2, last: []string{"抱歉"}},
		{name: "bot_first limit 3: three misses hand off", yaml: limit3, online: []string{"a1"}, msgs: []string{"今天天气", "股票行情", "彩票号码"},
			state: handoff.StateHuman, reason: handoff.ReasonNoAnswer, agent: "a1", last: []string{"客服 小王"}},
		{name: "a clarify is no miss: miss, clarify, miss hands off at 2", online: []string{"a1"}, msgs: []string{"今天天气", "退", "股票行情"},
			state: handoff.StateHuman, reason: handoff.ReasonNoAnswer, agent: "a1", last: []string{"客服 小王"}},
		{name: "a clarify is no answer: miss, clarify, pick-less miss", online: []string{"a1"}, msgs: []string{"退", "今天天气"},
			state: handoff.StateBot, misses: 1, last: []string{"抱歉"}},
		{name: "an answer resets the count", online: []string{"a1"}, msgs: []string{"今天天气", "怎么退货", "股票行情"},
			state: handoff.StateBot, misses: 1, last: []string{"抱歉"}},
		{name: "transfer keyword", online: []string{"a1"}, msgs: []string{"转人工"},
			state: handoff.StateHuman, reason: handoff.ReasonKeyword, agent: "a1", last: []string{"客服 小王"}},
		{name: "transfer keyword inside a sentence", online: []string{"a1"}, msgs: []string{"麻烦帮我转人工客服，谢谢！"},
			state: handoff.StateHuman, reason: handoff.ReasonKeyword, agent: "a1", last: []string{"客服 小王"}},
		{name: "end keyword must be the whole message", online: []string{"a1"}, msgs: []string{"怎么结束会话呢"},
			state: handoff.StateBot, misses: 1, last: []string{"抱歉"}},
		{name: "kb handoff entry answers then hands off", online: []string{"a1"}, msgs: []string{"我要投诉"},
			state: handoff.StateHuman, reason: handoff.ReasonKBHandoff, agent: "a1", last: []string{"非常抱歉给您带来不便", "客服 小王"}},
		{name: "bot_only: transfer keyword gets the no-human text", yaml: botOnly, online: []string{"a1"}, msgs: []string{"转人工"},
			state: handoff.StateBot, last: []string{"暂未开放人工服务"}},
		{name: "bot_only: misses never hand off", yaml: botOnly, online: []string{"a1"}, msgs: []string{"今天天气", "股票行情", "彩票号码"},
			state: handoff.StateBot, misses: 3, last: []string{"抱歉"}},
		{name: "bot_only: kb handoff entry only answers", yaml: botOnly, online: []string{"a1"}, msgs: []string{"我要投诉"},
			state: handoff.StateBot, last: []string{"非常抱歉给您带来不便"}},
		{name: "human_only: the first message hands off", yaml: humanOnly, online: []string{"a1"}, msgs: []string{"怎么退货"},
			state: handoff.StateHuman, reason: handoff.ReasonHumanOnly, agent: "a1", last: []string{"客服 小王"}},
		{name: "human_only: a picture hands off too", yaml: humanOnly, online: []string{"a2"}, msgs: []string{"<picture>"},
			state: handoff.StateHuman, reason: handoff.ReasonHumanOnly, agent: "a2", last: []string{"客服 小李"}},
		{name: "override: human_only to another group", yaml: overrides, online: []string{"a1", "b1"}, conv: "cid-vip", msgs: []string{"你好"},
			state: handoff.StateHuman, reason: handoff.ReasonHumanOnly, agent: "b1", last: []string{"客服 小张"}},
		{name: "override: bot_only conversation", yaml: overrides, online: []string{"a1"}, conv: "cid-quiet", msgs: []string{"转人工"},
			state: handoff.StateBot, last: []string{"暂未开放人工服务"}},
		{name: "override: group only", yaml: overrides, online: []string{"a1", "b1"}, conv: "cid-pre", msgs: []string{"转人工"},
			state: handoff.StateHuman, reason: handoff.ReasonKeyword, agent: "b1", last: []string{"客服 小张"}},
		{name: "override does not touch other conversations", yaml: overrides, online: []string{"a1", "b1"}, msgs: []string{"转人工"},
			state: handoff.StateHuman, reason: handoff.ReasonKeyword, agent: "a1", last: []string{"客服 小王"}},
		{name: "no agent online", online: nil, msgs: []string{"转人工"},
			state: handoff.StateBot, last: []string{"暂时没有客服在线"}},
		{name: "busy agents are not online", online: []string{"busy:a1", "busy:a2"}, msgs: []string{"转人工"},
			state: handoff.StateBot, last: []string{"暂时没有客服在线"}},
		{name: "members of other groups do not count", online: []string{"b1"}, msgs: []string{"转人工"},
			state: handoff.StateBot, last: []string{"暂时没有客服在线"}},
	}
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		cfg := gormstoretest.NewStorage(t, driver)
		db := gormstoretest.OpenStorage(t, cfg)
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				yaml := c.yaml
				if yaml == "" {
					yaml = baseYAML
				}
				// One database per driver: each case has its own agents
				// (renamed) and users.
				yaml = renameAgents(yaml, i)
				h := newHarnessOn(t, db, yaml, clocktest.New(wed10))
				for _, a := range c.online {
					p := handoff.Online
					if b, ok := strings.CutPrefix(a, "busy:"); ok {
						a, p = b, handoff.Busy
					}
					h.presence(AgentName(a, i), p)
				}
				conv := c.conv
				if conv == "" {
					conv = "cid-u1"
				}
				conv = conv + suffix(i)
				var r []adapter.Reply
				for _, text := range c.msgs {
					m := h.msg(conv, "u1", text)
					if text == "<picture>" {
						m.Kind, m.Text = adapter.KindPicture, ""
					}
					r = h.send(m)
				}
				got := h.convKey(conv + "|u1")
				expectState(t, got, c.state)
				expectTexts(t, r, "u1", c.last...)
				if got.Misses != c.misses {
					t.Errorf("misses = %d, want %d", got.Misses, c.misses)
				}
				if c.state == handoff.StateHuman {
					s := got.Session
					if s.Reason != c.reason || s.Agent != AgentName(c.agent, i) || s.No != 1 {
						t.Fatalf("session = %+v, want reason %s agent %s #1", s, c.reason, c.agent)
					}
					notice := to(r, AgentName(c.agent, i))
					if len(notice) != 1 || !strings.HasPrefix(notice[0].Text, "【新会话 #1】用户u1 · 单聊 · 技能组 ") {
						t.Fatalf("agent notice = %q", texts(notice))
					}
				}
			})
		}
	})
}

func suffix(i int) string { return "-" + string(rune('a'+i/26)) + string(rune('a'+i%26)) }

func AgentName(a string, i int) string {
	if a == "" {
		return ""
	}
	return a + suffix(i)
}

// renameAgents gives the agents and overridden conversations of a config
// a per-case suffix.
func renameAgents(yaml string, i int) string {
	for _, a := range []string{"a1", "a2", "b1"} {
		yaml = strings.ReplaceAll(yaml, "staff_id: "+a+",", "staff_id: "+AgentName(a, i)+",")
	}
	for _, c := range []string{"cid-vip", "cid-quiet", "cid-pre"} {
		yaml = strings.ReplaceAll(yaml, "conversation_id: "+c+",", "conversation_id: "+c+suffix(i)+",")
	}
	return yaml
}

func TestServiceHours(t *testing.T) {
	const yaml = `
dingtalk: { mode: webhook, client_secret: test-secret }
routing: { skill_group: g }
service_rules:
  - name: day
    timezone: Asia/Shanghai
    hours: { mon-fri: ["09:00-12:00", "13:30-18:00"], sat: ["21:00-02:00"] }
    holidays: ["2026-10-01"]
    workdays: ["2026-09-27", "2026-09-26 10:00-12:00"]
  - name: ny
    timezone: America/New_York
    hours: { mon-fri: ["09:00-17:00"] }
skill_groups:
  - { name: g, rule: day, members: [{ staff_id: x1, max_chats: 100 }] }
  - { name: us, rule: ny, members: [{ staff_id: y1, max_chats: 100 }] }
`
	sh := func(s string) time.Time {
		t, err := time.ParseInLocation("2006-01-02 15:04", s, shanghai)
		if err != nil {
			panic(err)
		}
		return t
	}
	cases := []struct {
		name  string
		at    time.Time
		group string
		open  bool
	}{
		{"weekday morning", sh("2026-06-03 09:00"), "g", true},
		{"lunch break (split day)", sh("2026-06-03 12:30"), "g", false},
		{"afternoon", sh("2026-06-03 17:59"), "g", true},
		{"evening", sh("2026-06-03 18:00"), "g", false},
		{"sunday", sh("2026-06-07 10:00"), "g", false},
		{"overnight saturday 23:00", sh("2026-06-06 23:00"), "g", true},
		{"overnight after midnight", sh("2026-06-07 01:30"), "g", true},
		{"overnight ends", sh("2026-06-07 02:00"), "g", false},
		{"holiday on a thursday", sh("2026-10-01 10:00"), "g", false},
		{"调休 sunday with monday's hours", sh("2026-09-27 14:00"), "g", true},
		{"调休 saturday explicit range", sh("2026-09-26 11:00"), "g", true},
		{"调休 saturday outside its range", sh("2026-09-26 14:00"), "g", false},
		{"new york rule: 22:00 shanghai is 10:00 there", sh("2026-06-03 22:00"), "us", true},
		{"new york rule: 10:00 shanghai is 22:00 there", sh("2026-06-03 10:00"), "us", false},
	}
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db := gormstoretest.Open(t, driver)
		clock := clocktest.New(wed10)
		h := newHarnessOn(t, db, yaml, clock)
		h.presence("x1", handoff.Online)
		h.presence("y1", handoff.Online)
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				clock.Set(c.at)
				h.reload(strings.Replace(yaml, "skill_group: g", "skill_group: "+c.group, 1))
				user := "h" + suffix(i)
				r := h.say(user, "转人工")
				if c.open {
					expectState(t, h.conv(user), handoff.StateHuman)
				} else {
					expectState(t, h.conv(user), handoff.StateBot)
					expectTexts(t, r, user, "非工作时间")
				}
			})
		}
	})
}
