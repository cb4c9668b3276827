package handoff

import (
	"testing"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
)

// The hand-off decision without a database: every row is one message to
// the bot and what the bot must do with it.
func TestDecide(t *testing.T) {
	kw := newKeywords(config.Default())
	text := func(s string) intent { return classify(kw, adapter.Message{Kind: adapter.KindText, Text: s}) }
	picture := classify(kw, adapter.Message{Kind: adapter.KindPicture})
	vpn := &bot.Entry{ID: "vpn", Question: "VPN 连不上", Answer: "重启 VPN"}
	complain := &bot.Entry{ID: "complain", Question: "我要投诉", Answer: "抱歉", Handoff: true}
	answer := func(e *bot.Entry) *bot.Result {
		return &bot.Result{Outcome: bot.OutcomeAnswer, Best: e, Candidates: []bot.Candidate{{ID: e.ID, Question: e.Question, Score: 0.9}}}
	}
	clarify := &bot.Result{Outcome: bot.OutcomeClarify, Candidates: []bot.Candidate{
		{ID: "a", Question: "A", Score: 0.5}, {ID: "b", Question: "B", Score: 0.3}, {ID: "c", Question: "C", Score: 0.1}}}
	none := &bot.Result{Outcome: bot.OutcomeNone, Candidates: []bot.Candidate{{ID: "x", Question: "X", Score: 0.05}}}
	hot := []*bot.Entry{vpn, complain}

	cases := map[string]struct {
		turn    turn
		result  *bot.Result // what the matcher says
		act     action
		handoff bool
		reason  Reason
		misses  int
		entry   *bot.Entry
		offer   int  // entries offered
		hot     bool // the offer is the hot list
		matched bool // the matcher was asked
	}{
		"end keyword with the bot":        {turn: turn{in: text("结束会话"), mode: BotFirst, misses: 2}, act: actEndInBot, misses: 2},
		"human_only hands off everything": {turn: turn{in: text("你好"), mode: HumanOnly, misses: 1}, act: actHandoff, handoff: true, reason: ReasonHumanOnly},
		"human_only: end keyword first":   {turn: turn{in: text("结束会话"), mode: HumanOnly}, act: actEndInBot},
		"picture":                         {turn: turn{in: picture, mode: BotFirst, misses: 1}, act: actUnsupported, misses: 1},
		"transfer keyword":                {turn: turn{in: text("我要转人工"), mode: BotFirst, misses: 2}, act: actHandoff, handoff: true, reason: ReasonKeyword},
		"transfer keyword in bot_only":    {turn: turn{in: text("转人工"), mode: BotOnly, misses: 2}, act: actNoHuman, misses: 2},
		"hot command":                     {turn: turn{in: text("常见问题"), mode: BotFirst, hot: hot}, act: actOffer, offer: 2, hot: true},
		"hot command, no hot questions":   {turn: turn{in: text("常见问题"), mode: BotFirst, limit: 3}, result: none, act: actNoAnswer, misses: 1, matched: true},
		"pick from the last list":         {turn: turn{in: text("1"), mode: BotFirst, misses: 2, picked: vpn}, act: actAnswer, entry: vpn},
		"a number with no list is a question": {turn: turn{in: text("1"), mode: BotFirst, limit: 3}, result: none,
			act: actNoAnswer, misses: 1, matched: true},
		"direct answer resets the count": {turn: turn{in: text("VPN 连不上"), mode: BotFirst, misses: 2, limit: 3}, result: answer(vpn),
			act: actAnswer, entry: vpn, matched: true},
		"handoff entry in bot_first": {turn: turn{in: text("投诉"), mode: BotFirst, limit: 3}, result: answer(complain),
			act: actAnswer, entry: complain, handoff: true, reason: ReasonKBHandoff, matched: true},
		"handoff entry in bot_only just answers": {turn: turn{in: text("投诉"), mode: BotOnly, limit: 3}, result: answer(complain),
			act: actAnswer, entry: complain, matched: true},
		"picked handoff entry hands off": {turn: turn{in: text("2"), mode: BotFirst, picked: complain}, act: actAnswer, entry: complain,
			handoff: true, reason: ReasonKBHandoff},
		"clarify keeps the count": {turn: turn{in: text("连接"), mode: BotFirst, misses: 2, limit: 3, clarifyCount: 3}, result: clarify,
			act: actOffer, offer: 2, misses: 2, matched: true}, // C scores under half the best
		"miss below the limit": {turn: turn{in: text("天气"), mode: BotFirst, misses: 1, limit: 3}, result: none,
			act: actNoAnswer, misses: 2, matched: true},
		"limit-th miss hands off": {turn: turn{in: text("天气"), mode: BotFirst, misses: 2, limit: 3}, result: none,
			act: actNoAnswer, handoff: true, reason: ReasonNoAnswer, matched: true},
		"limit 1 hands off at the first miss": {turn: turn{in: text("天气"), mode: BotFirst, limit: 1}, result: none,
			act: actNoAnswer, handoff: true, reason: ReasonNoAnswer, matched: true},
		"bot_only never hands off on misses": {turn: turn{in: text("天气"), mode: BotOnly, misses: 9, limit: 3}, result: none,
			act: actNoAnswer, misses: 10, matched: true},
		"clarify with nothing worth offering is a miss": {turn: turn{in: text("连接"), mode: BotFirst, limit: 3},
			result: &bot.Result{Outcome: bot.OutcomeClarify}, act: actNoAnswer, misses: 1, matched: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			matched := false
			tt := c.turn
			tt.match = func() *bot.Result {
				matched = true
				if c.result == nil {
					t.Fatal("matched a message that needs no match")
				}
				return c.result
			}
			d := decide(tt)
			if d.act != c.act || d.handoff != c.handoff || d.reason != c.reason || d.misses != c.misses || d.entry != c.entry ||
				len(d.offer) != c.offer || d.hot != c.hot || matched != c.matched {
				t.Fatalf("decide = %+v (matched %v)\nwant act %d handoff %v reason %q misses %d entry %v offer %d hot %v matched %v",
					d, matched, c.act, c.handoff, c.reason, c.misses, c.entry, c.offer, c.hot, c.matched)
			}
			if needsMatch(tt.in) && !c.matched && tt.mode != HumanOnly {
				t.Fatalf("Handle would match this message before the transaction, but decide does not use it")
			}
		})
	}
}

func TestClassify(t *testing.T) {
	kw := newKeywords(config.Default())
	cases := map[string]intent{
		"结束会话":      {text: "结束会话", end: true},
		"怎么结束会话":    {text: "怎么结束会话"}, // a question about ending
		"我要转人工":     {text: "我要转人工", transfer: true},
		"请帮我转 人工客服": {text: "请帮我转 人工客服", transfer: true},
		"常见问题":      {text: "常见问题", hot: true},
		" 2 ":       {text: "2", pick: 2},
		"12":        {text: "12"},
	}
	for in, want := range cases {
		got := classify(kw, adapter.Message{Kind: adapter.KindText, Text: in})
		got.norm = ""
		if got != want {
			t.Errorf("classify(%q) = %+v, want %+v", in, got, want)
		}
	}
}
