package handoff

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
)

// Texts for agents come from desk.texts (config.DeskTexts); texts for
// users from the service rules, routing and bot keys.

// fill puts the queue position and the agent's name into a service-rule
// text ({position}, {agent}).
func fill(text string, position int, agent string) string {
	if position > 0 {
		text = strings.ReplaceAll(text, "{position}", strconv.Itoa(position))
	}
	return strings.ReplaceAll(text, "{agent}", agent)
}

// kindLabel shows a non-text message to an agent.
func kindLabel(t *config.DeskTexts, k adapter.Kind) string {
	switch k {
	case adapter.KindPicture:
		return t.KindPicture
	case adapter.KindFile:
		return t.KindFile
	case adapter.KindVideo:
		return t.KindVideo
	case adapter.KindAudio:
		return t.KindAudio
	case adapter.KindText, "":
		return ""
	}
	return t.KindOther
}

func nick(n, userID string) string {
	if n != "" {
		return n
	}
	return userID
}

// relayText is a user message as the agent sees it: "#12 张三：…".
func (o *op) relayText(s *Session, msg adapter.Message) string {
	text := strings.TrimSpace(msg.Text)
	if l := kindLabel(&o.cfg.Desk.Texts, msg.Kind); l != "" {
		text = strings.TrimSpace(l + " " + text)
	}
	return Expand(o.cfg.Desk.Texts.Relay, "no", strconv.Itoa(s.No), "user", nick(s.UserNick, s.UserID), "text", text)
}

// relaySuggestions is the short list (questions only) a relayed message
// carries; "" when there is none.
func (o *op) relaySuggestions(sug []Suggestion) string {
	if len(sug) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n" + Expand(o.cfg.Desk.Texts.RelaySuggestions, "suggest", o.cfg.Desk.Suggest))
	for _, x := range sug {
		fmt.Fprintf(&b, "\n%d. %s", x.N, x.Question)
	}
	return b.String()
}

func reasonText(t *config.DeskTexts, cfg *config.Config, s *Session) string {
	switch s.Reason {
	case ReasonNoAnswer:
		return t.ReasonNoAnswer
	case ReasonKeyword:
		return t.ReasonKeyword
	case ReasonKBHandoff:
		return t.ReasonKBHandoff
	case ReasonHumanOnly:
		return t.ReasonHumanOnly
	case ReasonTransfer:
		return Expand(t.ReasonTransfer, "agent", AgentName(cfg, s.FromAgent))
	}
	return ""
}

// newSessionNotice tells an agent about session s, being assigned: who,
// where, which group, why, the recent transcript and the knowledge base's
// suggestions for the user's last question (推荐知识), which it remembers
// on s as the list the agent saw.
func (o *op) newSessionNotice(conv *Conversation, s *Session) string {
	t := &o.cfg.Desk.Texts
	var b strings.Builder
	chat := s.ConversationTitle
	if s.ConversationType != adapter.Group || chat == "" {
		chat = t.PrivateChat
	}
	display := s.Group
	if g, ok := o.cfg.Group(s.Group); ok {
		display = g.DisplayName
	}
	head := t.NewSession
	if s.Reason == ReasonTransfer {
		head = t.TransferredSession
	}
	no := strconv.Itoa(s.No)
	b.WriteString(Expand(head, "no", no, "user", nick(s.UserNick, s.UserID), "chat", chat, "group", display))
	if why := reasonText(t, o.cfg, s); why != "" {
		b.WriteString("\n" + Expand(t.Reason, "reason", why))
	}
	if s.Note != "" {
		b.WriteString("\n" + Expand(t.TransferNote, "note", s.Note, "agent", AgentName(o.cfg, s.FromAgent)))
	}
	if n := o.cfg.Desk.TranscriptLines; n > 0 {
		lines, err := o.tx.LastLines(s.UserKey, n)
		if err != nil {
			o.e.log.Warn("transcript for notice", "err", err)
		}
		lines = append(lines, o.pending(s.UserKey)...)
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		if len(lines) > 0 {
			b.WriteString("\n" + t.RecentMessages)
			for _, l := range lines {
				fmt.Fprintf(&b, "\n%s：%s", o.speaker(l, s), clip(lineText(t, l), 200))
			}
		}
	}
	sug := o.suggestionsFor(conv)
	s.Suggested = listOf(conv.LastQuestionMsg, sug)
	if len(sug) > 0 {
		b.WriteString("\n" + Expand(t.Suggestions, "suggest", o.cfg.Desk.Suggest))
		for _, x := range sug {
			fmt.Fprintf(&b, "\n%d. %s\n   %s", x.N, x.Question, clip(x.Answer, 120))
		}
	}
	b.WriteString("\n" + Expand(t.ReplyHint, "no", no))
	return b.String()
}

// SuggestionText shows a suggestion list to an agent (desk.texts.suggestions_for).
func SuggestionText(cfg *config.Config, l Suggestions) string {
	var b strings.Builder
	b.WriteString(Expand(cfg.Desk.Texts.SuggestionsFor, "no", strconv.Itoa(l.Session.No),
		"user", nick(l.Session.UserNick, l.Session.UserID), "question", clip(l.Question, 60), "suggest", cfg.Desk.Suggest))
	for _, x := range l.Items {
		fmt.Fprintf(&b, "\n%d. %s\n   %s", x.N, x.Question, clip(x.Answer, 120))
	}
	return b.String()
}

func lineText(t *config.DeskTexts, l Line) string {
	text := l.Text
	if lbl := kindLabel(t, l.Kind); lbl != "" && l.Direction == DirIn {
		text = strings.TrimSpace(lbl + " " + text)
	}
	return text
}

func (o *op) speaker(l Line, s *Session) string {
	t := &o.cfg.Desk.Texts
	switch l.Sender {
	case SenderUser:
		return nick(l.SenderName, s.UserID)
	case SenderAgent:
		return Expand(t.SpeakerAgent, "agent", l.SenderName)
	case SenderBot:
		return t.SpeakerBot
	}
	return t.SpeakerSystem
}

// AgentName is a member's display name from the config, or the staffId.
func AgentName(cfg *config.Config, staffID string) string {
	for _, g := range cfg.SkillGroups {
		if m, ok := cfg.Member(g.Name, staffID); ok {
			return m.Name
		}
	}
	return staffID
}

// endNotice tells an agent that a session ended without them.
func (o *op) endNotice(s *Session, why EndReason) string {
	t := &o.cfg.Desk.Texts
	text := t.EndedByUser
	if why == EndIdle {
		text = t.EndedIdle
	}
	return Expand(text, "no", strconv.Itoa(s.No), "user", nick(s.UserNick, s.UserID))
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
