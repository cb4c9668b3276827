package handoff

import (
	"slices"
	"strings"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/bot/textnorm"
	"github.com/dingdesk/dingdesk/config"
)

// The hand-off decision for a user who is with the bot, as a pure function
// of the message and the conversation: decide reads no database and no
// clock, so it is table-tested on its own (decide_test.go); op.botTurn
// applies its result in the transaction.

// intent is what a user message asks for, decided before the transaction.
type intent struct {
	text     string // trimmed text, "" for non-text kinds
	norm     string // normalised text
	end      bool   // an end keyword (equal after normalisation)
	transfer bool   // contains a transfer keyword
	hot      bool   // the hot-questions command
	pick     int    // 1..9: a number that may pick from the last list
}

// classify reads keywords. End keywords must be the whole message ("怎么
// 结束会话" is a question); transfer keywords may be part of it ("我要转人工",
// "请帮我转人工客服"): a user who mentions them wants a person.
func classify(kw *keywords, msg adapter.Message) intent {
	var in intent
	if msg.Kind != adapter.KindText && msg.Kind != "" {
		return in
	}
	in.text = strings.TrimSpace(msg.Text)
	in.norm = textnorm.Normalize(in.text)
	if in.norm == "" {
		return in
	}
	in.end = slices.Contains(kw.end, in.norm)
	in.transfer = slices.ContainsFunc(kw.transfer, func(k string) bool { return strings.Contains(in.norm, k) })
	in.hot = kw.hot != "" && in.norm == kw.hot
	if len(in.norm) == 1 && in.norm[0] >= '1' && in.norm[0] <= '9' {
		in.pick = int(in.norm[0] - '0')
	}
	return in
}

// needsMatch reports whether a message may need the knowledge base's
// match: the bot's answer in the bot state, or the agent's suggestions
// while with a person (so in human_only too). Handle matches it before the
// transaction, which then only reads the result.
func needsMatch(in intent) bool {
	return in.text != "" && !in.end && !in.transfer && !in.hot && in.pick == 0
}

// keywords are a config snapshot's keywords, normalised once per snapshot
// rather than once per message.
type keywords struct {
	cfg           *config.Config
	end, transfer []string
	hot           string
}

func newKeywords(cfg *config.Config) *keywords {
	norm := func(words []string) []string {
		var out []string
		for _, w := range words {
			if n := textnorm.Normalize(w); n != "" {
				out = append(out, n)
			}
		}
		return out
	}
	return &keywords{cfg: cfg, end: norm(cfg.Routing.EndKeywords), transfer: norm(cfg.Routing.TransferKeywords),
		hot: textnorm.Normalize(cfg.Bot.HotCommand)}
}

// turn is what decide knows about a message to the bot.
type turn struct {
	in     intent
	mode   Mode
	misses int // unanswered questions in a row so far
	limit  int // routing.no_answer_limit
	// picked is the entry the user's number picks from the list offered
	// last; nil when the message picks nothing.
	picked *bot.Entry
	// hot are the hot questions, asked for only when in.hot.
	hot []*bot.Entry
	// match is the matcher's result for in.text (called at most once).
	match        func() *bot.Result
	clarifyCount int
}

// action is what the bot does with a message.
type action int

const (
	actEndInBot    action = iota + 1 // end keyword with no session: routing.end_in_bot_reply
	actHandoff                       // hand off now, for reason
	actUnsupported                   // not text: bot.unsupported_reply
	actNoHuman                       // transfer keyword in bot_only: routing.no_human_reply
	actOffer                         // a numbered list: offer (hot or clarify)
	actAnswer                        // answer entry; then hand off when handoff is set
	actNoAnswer                      // 无答案回复 (by mode), or hand off when handoff is set
)

// decision is decide's result.
type decision struct {
	act     action
	handoff bool   // hand off (after answering, or instead of the no-answer reply)
	reason  Reason // why, when handing off
	entry   *bot.Entry
	hot     bool // the offer is the hot list (else a clarify list)
	offer   []bot.Candidate
	// misses is the no-answer count after the message (a hand-off
	// attempt resets it, whatever its outcome).
	misses int
	// result is the matcher's result when the message was matched.
	result *bot.Result
}

// decide is the bot-state decision of PRODUCT.md §3:
//   - an end keyword gets a harmless reply; human_only hands every
//     message off; other kinds than text get the unsupported reply;
//   - a transfer keyword hands off (bot_only: the no-human reply);
//   - the hot command offers the hot list; a number picks from the list
//     offered last;
//   - otherwise the matcher decides: a direct answer resets the no-answer
//     count (an entry with handoff: true then hands off in bot_first); a
//     clarify list leaves it; no answer counts, and in bot_first the
//     no_answer_limit-th miss in a row hands off instead of the no-answer
//     reply.
func decide(t turn) decision {
	d := decision{misses: t.misses}
	handoff := func(r Reason) decision {
		d.act, d.handoff, d.reason, d.misses = actHandoff, true, r, 0
		return d
	}
	in := t.in
	switch {
	case in.end:
		d.act = actEndInBot
		return d
	case t.mode == HumanOnly:
		return handoff(ReasonHumanOnly)
	case in.norm == "":
		d.act = actUnsupported
		return d
	case in.transfer:
		if t.mode == BotOnly {
			d.act = actNoHuman
			return d
		}
		return handoff(ReasonKeyword)
	case in.hot && len(t.hot) > 0:
		d.act, d.hot = actOffer, true
		for _, h := range t.hot {
			d.offer = append(d.offer, bot.Candidate{ID: h.ID, Question: h.Question})
		}
		return d
	case in.pick > 0 && t.picked != nil:
		return d.answer(t.picked, t.mode)
	}
	r := &bot.Result{Outcome: bot.OutcomeNone}
	if t.match != nil {
		r = t.match()
	}
	d.result = r
	switch r.Outcome {
	case bot.OutcomeAnswer:
		if r.Best != nil {
			return d.answer(r.Best, t.mode)
		}
	case bot.OutcomeClarify:
		// Neither an answer nor a miss: the count stays.
		if cs := bot.NearBest(r.Candidates, max(t.clarifyCount, 1)); len(cs) > 0 {
			d.act, d.offer = actOffer, cs
			return d
		}
	}
	d.act = actNoAnswer
	d.misses++
	if t.mode == BotFirst && d.misses >= t.limit {
		// The hand-off's own text (assigned, queued, off hours, no agent)
		// replaces the no-answer reply.
		d.handoff, d.reason, d.misses = true, ReasonNoAnswer, 0
	}
	return d
}

func (d decision) answer(e *bot.Entry, mode Mode) decision {
	d.act, d.entry, d.misses = actAnswer, e, 0
	if e.Handoff && mode == BotFirst {
		d.handoff, d.reason = true, ReasonKBHandoff
	}
	return d
}
