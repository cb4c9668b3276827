package handoff_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
)

// rating is the stored survey of the user's latest rated-or-prompted
// session: its score and whether it was closed without one.
func (h *harness) rating(user string) (prompted bool, score int, closed bool) {
	h.t.Helper()
	var closedAt *time.Time
	err := h.db.QueryRow(h.ctx, "SELECT score, closed_at FROM session_ratings WHERE user_key = ? ORDER BY session_id DESC LIMIT 1",
		h.conv(user).UserKey).Scan(&score, &closedAt)
	if err != nil {
		if strings.Contains(err.Error(), "no rows") {
			return false, 0, false
		}
		h.t.Fatal(err)
	}
	return true, score, closedAt != nil
}

func (h *harness) count(query string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.db.QueryRow(h.ctx, query, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// 满意度: a human session that ends asks for a rating; "5" is stored and
// thanked, never answered as a question.
func TestSatisfactionRating(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		h := newHarness(t, driver, baseYAML)
		h.presence("a1", handoff.Online)
		h.say("u1", "转人工")
		expectTexts(t, h.say("u1", "结束会话"), "u1", "本次人工服务已结束，感谢您的咨询！如有其他问题，可以继续问我。\n\n请您对本次人工服务做出评价，回复数字即可：\n5. 非常满意")
		if p, _, _ := h.rating("u1"); !p {
			t.Fatal("no prompt recorded")
		}
		expectTexts(t, h.say("u1", "5"), "u1", "感谢您的评价")
		if _, score, _ := h.rating("u1"); score != 5 {
			t.Fatalf("score = %d, want 5", score)
		}
		// Rated once: a second "5" is a message to the bot.
		if r := h.say("u1", "5"); len(r) != 1 || strings.Contains(r[0].Text, "感谢您的评价") {
			t.Fatalf("second 5 = %q", texts(r))
		}
		if _, score, _ := h.rating("u1"); score != 5 {
			t.Fatalf("score = %d after a second 5", score)
		}
		if n := h.count("SELECT COUNT(*) FROM handoff_messages WHERE text = '5' AND session_id > 0"); n != 1 {
			t.Fatalf("%d rating lines on the session, want 1", n)
		}

		// The agent ends it, the user replies with a label.
		h.say("u1", "转人工")
		if _, err := h.e.End(h.ctx, "a1", 0); err != nil {
			t.Fatal(err)
		}
		h.sent()
		expectTexts(t, h.say("u1", "非常不满意"), "u1", "感谢您的评价")
		if _, score, _ := h.rating("u1"); score != 1 {
			t.Fatalf("label score = %d, want 1", score)
		}
	})
}

// Any other message ends the prompt quietly and is handled as usual; so
// does the timeout.
func TestSatisfactionPromptEndsQuietly(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		h := newHarness(t, driver, baseYAML)
		h.presence("a1", handoff.Online)
		h.say("u1", "转人工")
		h.say("u1", "结束会话")
		expectTexts(t, h.say("u1", "怎么退货"), "u1", "退货请在订单页点击申请退货。")
		if p, score, closed := h.rating("u1"); !p || score != 0 || !closed {
			t.Fatalf("after a question: prompted %v score %d closed %v", p, score, closed)
		}
		if r := h.say("u1", "4"); len(r) != 1 || strings.Contains(r[0].Text, "感谢") {
			t.Fatalf("4 after the prompt ended = %q", texts(r))
		}
		if _, score, _ := h.rating("u1"); score != 0 {
			t.Fatalf("score = %d, want none", score)
		}

		h.say("u1", "转人工")
		h.say("u1", "结束会话")
		h.clock.Advance(11 * time.Minute)
		if r := h.say("u1", "5"); len(r) != 1 || strings.Contains(r[0].Text, "感谢") {
			t.Fatalf("5 after the timeout = %q", texts(r))
		}
		if _, score, _ := h.rating("u1"); score != 0 {
			t.Fatalf("score = %d after the timeout", score)
		}
	})
}

// A rule can turn the survey off; a queue wait that ends asks nothing.
func TestSatisfactionOffAndQueue(t *testing.T) {
	off := strings.Replace(baseYAML, `hours: { mon-sun: ["00:00-24:00"] }`, `hours: { mon-sun: ["00:00-24:00"] }
    satisfaction: { enabled: false }`, 1)
	h := newHarness(t, "sqlite", off)
	h.presence("a1", handoff.Online)
	h.say("u1", "转人工")
	if r := to(h.say("u1", "结束会话"), "u1"); len(r) != 1 || strings.Contains(r[0].Text, "评价") {
		t.Fatalf("survey off: %q", texts(r))
	}
	h = newHarness(t, "sqlite", baseYAML)
	h.say("u2", "转人工") // nobody online: no session to rate
	h.presence("a1", handoff.Online)
	h.presence("a1", handoff.Offline)
	if p, _, _ := h.rating("u2"); p {
		t.Fatal("prompted without a served session")
	}
}

// The bot's outcomes are recorded per question; a user who leaves a
// clarify list without picking leaves its question unanswered (clarify).
func TestBotTurnsAndClarifyLeft(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		h := newHarness(t, driver, baseYAML)
		h.say("u1", "怎么退货") // answer
		h.say("u1", "退")    // clarify
		h.say("u1", "2")    // a pick: not a question
		h.say("u1", "退")    // clarify
		h.say("u1", "今天天气") // none; and leaves the list
		h.say("u1", "常见问题") // the hot list: not a question
		for outcome, want := range map[string]int{"answer": 1, "clarify": 2, "none": 1} {
			if n := h.count("SELECT COUNT(*) FROM bot_turns WHERE outcome = ?", outcome); n != want {
				t.Errorf("%s turns = %d, want %d", outcome, n, want)
			}
		}
		if n := h.count("SELECT COUNT(*) FROM handoff_unanswered WHERE kind = 'clarify' AND question = '退'"); n != 1 {
			t.Errorf("clarify-left rows = %d, want 1", n)
		}
		if n := h.count("SELECT COUNT(*) FROM handoff_unanswered WHERE kind = 'none' AND question = '今天天气'"); n != 1 {
			t.Errorf("no-answer rows = %d, want 1", n)
		}
	})
}
