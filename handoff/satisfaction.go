package handoff

import (
	"fmt"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/bot/textnorm"
	"github.com/dingdesk/dingdesk/config"
)

// The satisfaction survey (满意度) and the bot's records for the reports.
//
// A human session that ends by the user, the agent or the idle timeout
// sends its user the rule's rating prompt and records it
// (Tx.PromptRating). The user's next message, while still with the bot and
// within the rule's timeout, is a rating when it is 1–5 or one of the
// labels: it is stored on that session, thanked, and never treated as a
// question. Anything else ends the prompt quietly and is handled as usual.

// ratedEnding reports whether a session ending asks for a rating: the user
// was served by a person and the conversation is not moving on to another
// session.
func ratedEnding(why EndReason) bool {
	return why == EndUser || why == EndAgent || why == EndIdle
}

// promptRating records the rule's rating prompt for the ended session s
// and returns its text ("" when the rule asks for none).
func (o *op) promptRating(s *Session, r *config.ServiceRule) (string, error) {
	sat := r.Satisfaction
	if !sat.Enabled || len(sat.Labels) == 0 || s.Agent == "" {
		return "", nil
	}
	if err := o.tx.PromptRating(s.ID, s.UserKey, s.Group, s.Agent, o.now); err != nil {
		return "", err
	}
	return ratingPrompt(sat), nil
}

// joinTexts puts two texts in one message, a blank line apart.
func joinTexts(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "\n\n" + b
}

// ratingPrompt is the prompt followed by the labels, best first
// ("5. 非常满意").
func ratingPrompt(sat config.Satisfaction) string {
	var b strings.Builder
	b.WriteString(sat.Prompt)
	for i := len(sat.Labels); i >= 1; i-- {
		fmt.Fprintf(&b, "\n%d. %s", i, sat.Labels[i-1])
	}
	return b.String()
}

// ratingOf reads a reply to the prompt: 1…len(labels) or a label; 0 when
// the message is not a rating.
func ratingOf(sat config.Satisfaction, in intent) int {
	if in.pick >= 1 && in.pick <= len(sat.Labels) {
		return in.pick
	}
	if in.norm == "" {
		return 0
	}
	for i, l := range sat.Labels {
		if textnorm.Normalize(l) == in.norm {
			return i + 1
		}
	}
	return 0
}

// longestRatingWait is the longest satisfaction timeout of cfg's rules.
func longestRatingWait(cfg *config.Config) time.Duration {
	var d time.Duration
	for _, r := range cfg.ServiceRules {
		if r.Satisfaction.Enabled {
			d = max(d, r.Satisfaction.Timeout)
		}
	}
	return d
}

// ratingTurn handles a message of a user with the bot who may have an open
// rating prompt; true when the message was the rating. lastChange is when
// the conversation last changed before this message: a prompt is sent with
// a change of the conversation and any later message ends it, so only a
// recent change can leave one open, and most messages need no query.
func (o *op) ratingTurn(conv *Conversation, msg adapter.Message, in intent, lastChange time.Time) (bool, error) {
	wait := longestRatingWait(o.cfg)
	if conv.LastAgent == "" || wait <= 0 || lastChange.Before(o.now.Add(-wait)) {
		return false, nil
	}
	id, ok, err := o.tx.PendingRating(conv.UserKey, o.now.Add(-wait))
	if err != nil || !ok {
		return false, err
	}
	s, err := o.tx.LockSession(id)
	if err != nil {
		return false, err
	}
	if s == nil {
		return false, o.tx.ClosePrompt(id, o.now)
	}
	sat := rule(o.cfg, s.Group).Satisfaction
	score := ratingOf(sat, in)
	if score == 0 || s.EndedAt.Before(o.now.Add(-sat.Timeout)) {
		return false, o.tx.ClosePrompt(id, o.now)
	}
	rated, err := o.tx.RateSession(id, score, o.now)
	if err != nil || !rated {
		return false, err
	}
	conv.Picks = nil
	p := peerOfConv(conv)
	o.inbound(p, s.ID, msg.ID, msg.Kind, msg.Text)
	o.system(p, s.ID, sat.Thanks)
	return true, nil
}

// recordBotTurn records what the bot did with a question, for the reports
// and the monitor: a direct answer, a clarify list or no answer. Picks from
// a list, the hot list, keywords and other kinds than text are not
// questions the matcher judged.
func (o *op) recordBotTurn(conv *Conversation, t turn, d decision) error {
	var outcome, entry string
	switch {
	case d.act == actAnswer && d.result != nil && d.entry != nil:
		outcome, entry = OutcomeAnswer, d.entry.ID
	case d.act == actOffer && !d.hot:
		outcome = UnansweredClarify
	case d.act == actNoAnswer && d.result != nil:
		outcome = UnansweredNone
	default:
		return nil
	}
	var score float64
	if len(d.result.Candidates) > 0 {
		score = d.result.Candidates[0].Score
	}
	return o.tx.AddBotTurn(conv.UserKey, outcome, entry, score, o.now)
}

// clarifyLeft records the question of a clarify list the user left by
// sending something other than a pick, as an unanswered question of kind
// UnansweredClarify with the offered entries. The list was a clarify list
// (not the hot list) when the user's last message is the one that asked
// question (the conversation's LastQuestion before this message): the hot
// command asks nothing.
func (o *op) clarifyLeft(conv *Conversation, picks []string, question, questionMsg string) error {
	if o.e.bot == nil || question == "" || questionMsg == "" {
		return nil
	}
	lines, err := o.tx.LastLines(conv.UserKey, 6)
	if err != nil {
		return err
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i].Direction != DirIn {
			continue
		}
		if lines[i].MsgID != questionMsg {
			return nil
		}
		break
	}
	kb := o.e.bot.KB()
	cands := make([]UnansweredCandidate, 0, len(picks))
	for _, id := range picks {
		if en, ok := kb.Entry(id); ok {
			cands = append(cands, UnansweredCandidate{ID: en.ID, Question: en.Question})
		}
	}
	o.unanswered = append(o.unanswered, Unanswered{UserKey: conv.UserKey, ConversationID: conv.ConversationID,
		Question: question, Candidates: cands, CreatedAt: o.now, Kind: UnansweredClarify})
	return nil
}
