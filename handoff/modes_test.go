package handoff_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/handoff/clocktest"
)

// A company that only wants the bot today runs bot_first with no skill
// group (钉小蜜's 人工技能组 is optional in 机器人优先): the bot answers, and
// whatever would hand off gets the no-agent text (issue 13 #7).
func TestBotFirstWithoutSkillGroups(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		const yaml = `
dingtalk: { mode: webhook, client_secret: test-secret }
routing: { mode: bot_first, no_answer_limit: 2 }
service_rules:
  - name: default
    hours: { mon-sun: ["00:00-24:00"] }
    no_agent_message: "现在没有人工客服。"
`
		// Parsed, not validated: the config side of this case is the
		// config package's.
		cfg, err := config.Parse([]byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		logs := &gormstoretest.Logs{}
		h := newHarnessWith(t, gormstoretest.Open(t, driver), cfg, clocktest.New(wed10))
		h.e = handoff.New(handoff.Deps{Config: h.store, Bot: h.bot, Clock: h.clock, Store: gormstore.NewHandoffStore(h.db, h.kick),
			Log: logs.Logger()})

		expectTexts(t, h.say("u1", "怎么退货"), "u1", "退货请在订单页")
		expectTexts(t, h.say("u1", "转人工"), "u1", "现在没有人工客服。")
		expectTexts(t, h.say("u1", "今天天气"), "u1", "抱歉")
		expectTexts(t, h.say("u1", "股票行情"), "u1", "现在没有人工客服。") // the no-answer limit
		expectTexts(t, h.say("u1", "我要投诉"), "u1", "非常抱歉给您带来不便", "现在没有人工客服。")
		if c := h.conv("u1"); c.State != handoff.StateBot || c.Misses != 0 {
			t.Fatalf("conversation = %+v, want with the bot, count reset", c)
		}
		if _, err := h.e.SetPresence(h.ctx, "a1", handoff.Online); !errors.Is(err, handoff.ErrNotAgent) {
			t.Fatalf("SetPresence without groups = %v", err)
		}
		if err := h.e.DrainQueues(h.ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := h.e.FireDue(h.ctx); err != nil {
			t.Fatal(err)
		}
		if l := logs.String(); strings.Contains(l, "level=ERROR") {
			t.Fatalf("a bot-only setup logged errors:\n%s", l)
		}
	})
}

// bot_only (仅机器人服务) has its own 无答案回复, without "输入“转人工”".
func TestBotOnlyNoAnswerText(t *testing.T) {
	yaml := strings.Replace(baseYAML, "mode: bot_first", "mode: bot_only", 1)
	h := newHarness(t, "sqlite", yaml)
	r := h.say("u1", "今天天气")
	expectTexts(t, r, "u1", config.Default().Routing.BotOnlyNoAnswerReply)
	if strings.Contains(r[0].Text, "转人工") {
		t.Fatalf("bot_only no-answer text offers a person: %q", r[0].Text)
	}
	// bot_first keeps bot.no_answer_reply.
	h = newHarness(t, "sqlite", baseYAML)
	expectTexts(t, h.say("u1", "今天天气"), "u1", "转人工")
}

// human_only has no bot to go back to: its closing texts do not say "可以
// 继续问我" or "再次输入“转人工”".
func TestHumanOnlyClosingText(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		yaml := strings.Replace(baseYAML, "mode: bot_first", "mode: human_only", 1)
		h := newHarness(t, driver, yaml)
		h.presence("a1", handoff.Online)
		h.say("u1", "你好")
		// The bot never answers here, but the agent gets its suggestions.
		if r := h.say("u1", "怎么退货"); len(to(r, "u1")) != 0 || len(to(r, "a1")) != 1 || !strings.Contains(r[0].Text, "推荐知识") {
			t.Fatalf("human_only relay = %q", texts(r))
		}
		want := config.DefaultServiceRule().HumanOnlyClosingMessage
		for _, end := range []func() []adapter.Reply{
			func() []adapter.Reply { return h.say("u1", "结束会话") },
			func() []adapter.Reply {
				if _, err := h.e.End(h.ctx, "a1", 0); err != nil {
					t.Fatal(err)
				}
				return h.sent()
			},
		} {
			h.sent()
			r := to(end(), "u1")
			// (the 满意度 prompt follows in the same message)
			if len(r) != 1 || !strings.HasPrefix(r[0].Text, want) || strings.Contains(r[0].Text, "继续问我") {
				t.Fatalf("closing = %q, want %q", texts(r), want)
			}
			h.say("u1", "还有个问题") // a new session
		}
		// bot_first keeps closing_message.
		h = newHarness(t, driver, baseYAML)
		h.presence("a1", handoff.Online)
		h.say("u1", "转人工")
		expectTexts(t, h.say("u1", "结束会话"), "u1", "可以继续问我")
	})
}

// An agent going offline alone hands the users back to the queue; they
// are told nobody is online, not that the agents are busy (issue 13 #9).
func TestOfflineAloneTellsNoAgent(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		h := newHarness(t, driver, queueConfig())
		h.presence("a1", handoff.Online)
		h.say("u1", "转人工")
		h.sent()
		res := h.presence("a1", handoff.Offline)
		if len(res.Moved) != 1 || res.Moved[0].To.Status != handoff.StatusQueued {
			t.Fatalf("moved = %+v", res.Moved)
		}
		r := to(h.sent(), "u1")
		noAgent := config.DefaultServiceRule().NoAgentMessage
		if len(r) != 1 || r[0].Text != noAgent {
			t.Fatalf("u1 told %q, want the no-agent text %q", texts(r), noAgent)
		}
		// Still queued, never dropped: the next agent online takes the user.
		expectState(t, h.conv("u1"), handoff.StateQueued)
		h.presence("a2", handoff.Online)
		expectTexts(t, h.sent(), "u1", "客服 小李 为您服务")
	})
}

// `推荐 N` sends from the list the agent saw, and that list is the one
// shown with the user's latest question (issue 13 #9).
func TestSuggestionsAreTheListTheAgentSaw(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		h := newHarness(t, driver, baseYAML)
		h.presence("a1", handoff.Online)
		h.say("u1", "怎么退货")
		notice := to(h.say("u1", "转人工"), "a1")
		if len(notice) != 1 || !strings.Contains(notice[0].Text, "推荐知识") || !strings.Contains(notice[0].Text, "怎么退货") {
			t.Fatalf("new-session notice = %q", texts(notice))
		}

		// A new question: its relay carries its own list, which 推荐 1 uses.
		relay := to(h.say("u1", "发票怎么开"), "a1")
		if len(relay) != 1 || !strings.Contains(relay[0].Text, "#1 用户u1：发票怎么开") || !strings.Contains(relay[0].Text, "1. 怎么开发票") {
			t.Fatalf("relay = %q", texts(relay))
		}
		if _, sug, err := h.e.SendSuggestion(h.ctx, "a1", 0, 1); err != nil || sug.EntryID != "invoice" {
			t.Fatalf("推荐 1 = %+v, %v; want the invoice entry shown with the latest question", sug, err)
		}
		expectTexts(t, h.sent(), "u1", "发票请在订单详情页申请。")

		// A question the bot cannot answer: no list with it, and no list
		// from before to send by mistake.
		relay = to(h.say("u1", "你们老板叫什么名字"), "a1")
		if len(relay) != 1 || strings.Contains(relay[0].Text, "推荐知识") {
			t.Fatalf("relay of an unanswerable question = %q", texts(relay))
		}
		if _, _, err := h.e.SendSuggestion(h.ctx, "a1", 0, 1); !errors.Is(err, handoff.ErrNoSuggestions) {
			t.Fatalf("推荐 1 after an unanswerable question = %v, want ErrNoSuggestions", err)
		}
		l, err := h.e.Suggest(h.ctx, "a1", 0)
		if err != nil || len(l.Items) != 0 || l.Question != "你们老板叫什么名字" {
			t.Fatalf("suggestions for an unanswerable question = %+v, %v; want none", l, err)
		}
		if len(h.sent()) != 0 {
			t.Fatal("something was sent")
		}

		// 推荐 lists for the latest question and makes that the list.
		h.say("u1", "多久发货")
		h.sent()
		l, err = h.e.Suggest(h.ctx, "a1", 0)
		if err != nil || len(l.Items) == 0 || l.Items[0].EntryID != "delivery" || l.ForMsg == "" {
			t.Fatalf("Suggest = %+v, %v", l, err)
		}
		if _, _, err := h.e.SendSuggestion(h.ctx, "a1", 0, len(l.Items)+1); handoff.ErrorCode(err) != handoff.CodeUnknownSuggestion {
			t.Fatalf("推荐 beyond the list = %v", err)
		}
		if _, sug, err := h.e.SendSuggestion(h.ctx, "a1", 0, 1); err != nil || sug.EntryID != "delivery" {
			t.Fatalf("推荐 1 = %+v, %v", sug, err)
		}
	})
}

// A refused transfer (nobody online in the target group) is rolled back
// without a logged failure (issue 13 #8).
func TestRefusedTransferLogsNoFailure(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		db, logs := gormstoretest.OpenLogged(t, driver)
		h := newHarnessOn(t, db, baseYAML, clocktest.New(wed10))
		h.presence("a1", handoff.Online)
		h.say("u1", "转人工")
		for range 3 {
			if _, err := h.e.Transfer(h.ctx, "a1", 0, "pre_sales", ""); !errors.Is(err, handoff.ErrNoAgentOnline) {
				t.Fatalf("Transfer = %v, want ErrNoAgentOnline", err)
			}
		}
		if c := h.conv("u1"); c.State != handoff.StateHuman || c.Session.Agent != "a1" {
			t.Fatalf("after a refused transfer: %+v", c)
		}
		if l := logs.String(); strings.Contains(l, "cannot rollback") || strings.Contains(l, "level=WARN") {
			t.Fatalf("a refused transfer logged:\n%s", l)
		}
	})
}

// An agent front end reads the transcript of its own sessions only.
func TestTranscript(t *testing.T) {
	h := newHarness(t, "sqlite", baseYAML)
	h.presence("a1", handoff.Online)
	h.say("u1", "怎么退货")
	h.say("u1", "转人工")
	if _, err := h.e.AgentReply(h.ctx, "a1", 0, "您好"); err != nil {
		t.Fatal(err)
	}
	s, lines, err := h.e.Transcript(h.ctx, "a1", 0)
	if err != nil || s.UserID != "u1" || len(lines) != 5 || lines[0].Text != "怎么退货" || lines[4].Sender != handoff.SenderAgent {
		t.Fatalf("transcript = %+v, %+v, %v", s, lines, err)
	}
	if _, _, err := h.e.Transcript(h.ctx, "a2", 1); !errors.Is(err, handoff.ErrUnknownSession) {
		t.Fatalf("another agent's transcript = %v", err)
	}
}

// The message that hands off carries its own question: human_only's first
// message, or the no_answer_limit-th miss. The new-session notice shows
// the suggestions from Handle's match of it, and 推荐 1 sends from them.
func TestHandoffNoticeSuggestsTheHandingOffQuestion(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		yaml := strings.Replace(baseYAML, "mode: bot_first", "mode: human_only", 1)
		h := newHarness(t, driver, yaml)
		h.presence("a1", handoff.Online)
		notice := to(h.say("u1", "发票怎么开"), "a1")
		if len(notice) != 1 || !strings.Contains(notice[0].Text, "推荐知识") || !strings.Contains(notice[0].Text, "1. 怎么开发票") {
			t.Fatalf("human_only new-session notice = %q", texts(notice))
		}
		if _, sug, err := h.e.SendSuggestion(h.ctx, "a1", 0, 1); err != nil || sug.EntryID != "invoice" {
			t.Fatalf("推荐 1 = %+v, %v; want the invoice entry the notice showed", sug, err)
		}
		// A question the bot cannot answer hands off with no list.
		notice = to(h.say("u2", "你们老板叫什么名字"), "a1")
		if len(notice) != 1 || strings.Contains(notice[0].Text, "推荐知识") {
			t.Fatalf("notice for an unanswerable question = %q", texts(notice))
		}
	})
}
