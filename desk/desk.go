// Package desk is the agents' desk inside DingTalk: an agent's 1:1 chat
// with the bot carries commands (上线, 列表, #12, 结束, 转接, 搜索, 常用语,
// 推荐, 帮助 — the words are configurable under desk.*) and replies to
// users. It parses and answers, with the texts of desk.texts; every effect
// is an operation of the hand-off engine (the same a web front end calls),
// so state and the inbox's bookkeeping stay behind the engine.
package desk

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/bot/textnorm"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/handoff"
)

// Engine is what the desk needs of the hand-off engine (*handoff.Engine).
type Engine interface {
	NoteAgentChat(ctx context.Context, msg adapter.Message) error
	FinishAgentMessage(ctx context.Context, msg adapter.Message, answer string) error
	SetPresence(ctx context.Context, staffID string, p handoff.Presence) (handoff.PresenceResult, error)
	Sessions(ctx context.Context, staffID string) (handoff.AgentView, error)
	AgentReply(ctx context.Context, staffID string, no int, text string) (handoff.Session, error)
	SetCurrent(ctx context.Context, staffID string, no int) (handoff.Session, error)
	End(ctx context.Context, staffID string, no int) (handoff.Session, error)
	Transfer(ctx context.Context, staffID string, no int, group, note string) (handoff.Move, error)
	TransferToAgent(ctx context.Context, staffID string, no int, toStaffID, note string) (handoff.Move, error)
	Suggest(ctx context.Context, staffID string, no int) (handoff.Suggestions, error)
	SendSuggestion(ctx context.Context, staffID string, no, n int) (handoff.Session, handoff.Suggestion, error)
}

// Knowledge is what the desk's search needs of the bot (*bot.Bot).
type Knowledge interface{ KB() *bot.KnowledgeBase }

var _ Engine = (*handoff.Engine)(nil)

// Desk handles agents' messages.
type Desk struct {
	engine Engine
	config *config.Store
	kb     Knowledge
}

// New builds the desk.
func New(e Engine, cfg *config.Store, kb Knowledge) *Desk {
	return &Desk{engine: e, config: cfg, kb: kb}
}

// usageError is a malformed command; its text is shown as it is.
type usageError struct{ text string }

func (u *usageError) Error() string { return "desk usage: " + u.text }

func usage(text string) error { return &usageError{text} }

// Handle runs one agent message. The command runs first and its answer
// goes out with the message marked handled afterwards (FinishAgentMessage):
// a crash in between repeats the command on restart rather than losing an
// agent's reply to a user.
func (d *Desk) Handle(ctx context.Context, msg adapter.Message) error {
	if err := d.engine.NoteAgentChat(ctx, msg); err != nil {
		return err
	}
	cfg := d.config.Current()
	reply, err := d.run(ctx, cfg, msg)
	if err != nil {
		text, ok := errorText(cfg, err)
		if !ok {
			return err // internal: the pipeline retries the message
		}
		reply = handoff.Expand(cfg.Desk.Texts.Error, "error", text)
	}
	return d.engine.FinishAgentMessage(ctx, msg, reply)
}

// errorText maps an error to the agent's text: once, here, for this
// transport. ok is false for internal errors.
func errorText(cfg *config.Config, err error) (string, bool) {
	var u *usageError
	if errors.As(err, &u) {
		return u.text, true
	}
	var he *handoff.Error
	if !errors.As(err, &he) {
		return "", false
	}
	return RefusalText(cfg, &cfg.Desk.Texts, he), true
}

// RefusalText is the agent's text for the engine's refusal he: the text t
// has for its code (err_internal for a code it has none for), its
// placeholders filled. This desk passes desk.texts; the web workbench, a
// copy with the codes it words differently replaced (web.texts), so both
// front ends map codes to texts here.
func RefusalText(cfg *config.Config, t *config.DeskTexts, he *handoff.Error) string {
	no := "编号"
	if he.Session != 0 {
		no = strconv.Itoa(he.Session)
	}
	group := he.Group
	if g, ok := cfg.Group(he.Group); ok {
		group = g.DisplayName
	}
	agent := handoff.AgentName(cfg, he.Agent)
	text := map[handoff.Code]string{
		handoff.CodeNotAgent:          t.ErrNotAgent,
		handoff.CodeUnknownSession:    t.ErrUnknownSession,
		handoff.CodeSessionEnded:      t.ErrSessionEnded,
		handoff.CodeNoCurrentSession:  t.ErrNoCurrentSession,
		handoff.CodeUnknownGroup:      t.ErrUnknownGroup,
		handoff.CodeGroupClosed:       t.ErrGroupClosed,
		handoff.CodeNoAgentOnline:     t.ErrNoAgentOnline,
		handoff.CodeNoQuestion:        t.ErrNoQuestion,
		handoff.CodeNoSuggestions:     t.ErrNoSuggestions,
		handoff.CodeUnknownSuggestion: t.ErrUnknownSuggestion,
		handoff.CodeEmptyText:         t.ErrEmptyText,
		handoff.CodeUnknownAgent:      t.ErrUnknownAgent,
		handoff.CodeAgentOffline:      t.ErrAgentOffline,
		handoff.CodeAgentFull:         t.ErrAgentFull,
		handoff.CodeSelfTransfer:      t.ErrSelfTransfer,
		handoff.CodeNoteTooLong:       t.ErrNoteTooLong,
	}[he.Code]
	if text == "" {
		text = t.ErrInternal
	}
	return handoff.Expand(text, "no", no, "group", group, "agent", agent, "max", strconv.Itoa(handoff.MaxNote),
		"groups", groupNames(cfg), "n", strconv.Itoa(he.N),
		"count", strconv.Itoa(he.Count), "suggest", cfg.Desk.Suggest, "list", cfg.Desk.List)
}

// run executes the command in msg and returns the text for the agent ("":
// nothing to say, e.g. a relayed reply).
func (d *Desk) run(ctx context.Context, cfg *config.Config, msg adapter.Message) (string, error) {
	w, t := cfg.Desk, &cfg.Desk.Texts
	me := msg.SenderStaffID
	if msg.Kind != adapter.KindText {
		return handoff.Expand(t.TextOnly, "help", w.Help), nil
	}
	text := strings.TrimSpace(msg.Text)
	cmd, rest := splitWord(text)
	switch {
	case text == w.Online:
		return d.presence(ctx, cfg, me, handoff.Online)
	case text == w.Offline:
		return d.presence(ctx, cfg, me, handoff.Offline)
	case text == w.Busy:
		return d.presence(ctx, cfg, me, handoff.Busy)
	case text == w.List:
		return d.list(ctx, cfg, me)
	case text == w.Help:
		return help(cfg), nil
	case cmd == w.End:
		no, _, err := sessionArg(rest, true)
		if err != nil {
			return "", usage(handoff.Expand(t.UsageEnd, "end", w.End))
		}
		s, err := d.engine.End(ctx, me, no)
		if err != nil {
			return "", err
		}
		return handoff.Expand(t.Ended, "no", strconv.Itoa(s.No), "user", s.UserNick), nil
	case cmd == w.Transfer:
		// 转接 [#N] 技能组或客服 [附言]: the target is one word, the rest
		// of the line is the transfer note.
		no, args, err := sessionArg(rest, false)
		target, note := splitWord(args)
		if err != nil || target == "" {
			return "", usage(handoff.Expand(t.UsageTransfer, "transfer", w.Transfer, "groups", groupNames(cfg)))
		}
		var mv handoff.Move
		if group, agent := resolveTarget(cfg, target); agent != "" {
			mv, err = d.engine.TransferToAgent(ctx, me, no, agent, note)
		} else {
			mv, err = d.engine.Transfer(ctx, me, no, group, note)
		}
		if err != nil {
			return "", err
		}
		vars := []string{"no", strconv.Itoa(mv.From.No), "user", mv.From.UserNick, "group", mv.To.GroupDisplay,
			"agent", mv.To.AgentName, "position", strconv.Itoa(mv.To.Position)}
		if mv.To.Status == handoff.StatusQueued {
			return handoff.Expand(t.TransferredQueued, vars...), nil
		}
		return handoff.Expand(t.TransferredTo, vars...), nil
	case cmd == w.Search:
		if rest == "" {
			return "", usage(handoff.Expand(t.UsageSearch, "search", w.Search))
		}
		return d.search(cfg, rest), nil
	case cmd == w.Canned:
		if rest == "" {
			return cannedList(cfg), nil
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 || n > len(cfg.CannedReplies) {
			return "", usage(handoff.Expand(t.CannedUnknown, "n", rest, "count", strconv.Itoa(len(cfg.CannedReplies)), "canned", w.Canned))
		}
		return d.relay(ctx, me, 0, cfg.CannedReplies[n-1].Text)
	case cmd == w.Suggest:
		if rest == "" {
			l, err := d.engine.Suggest(ctx, me, 0)
			if err != nil {
				return "", err
			}
			if len(l.Items) == 0 {
				return "", &handoff.Error{Code: handoff.CodeNoSuggestions, Session: l.Session.No}
			}
			return handoff.SuggestionText(cfg, l), nil
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 {
			return "", usage(handoff.Expand(t.UsageSuggest, "suggest", w.Suggest))
		}
		_, _, err = d.engine.SendSuggestion(ctx, me, 0, n)
		return "", err
	case strings.HasPrefix(text, "#") || strings.HasPrefix(text, "＃"):
		no, body, err := sessionArg(text, false)
		if err != nil {
			return "", usage(t.UsageSessionNo)
		}
		if body == "" {
			s, err := d.engine.SetCurrent(ctx, me, no)
			if err != nil {
				return "", err
			}
			return handoff.Expand(t.Current, "no", strconv.Itoa(s.No), "user", s.UserNick, "group", s.GroupDisplay), nil
		}
		// #N always relays as written: the way to send anything, also
		// a text that looks like a command.
		return d.relay(ctx, me, no, body)
	case looksLikeCommand(cfg, text):
		return d.commandHint(ctx, cfg, me, text)
	default:
		return d.relay(ctx, me, 0, text)
	}
}

// looksLikeCommand reports plain text an agent more likely meant as a
// command than as a message to the user, which the desk then does not
// relay (see commandHint):
//   - a user-side keyword: an end or transfer keyword or the hot-questions
//     command (an agent typing "结束会话" or "常见问题" tries a command);
//   - a desk command word with at most two more characters or a number
//     glued on ("结束会话", "上线了", "推荐1", "转接hr").
//
// Longer texts are replies, also when they start with a command word
// ("推荐您先重启一下电脑").
func looksLikeCommand(cfg *config.Config, text string) bool {
	norm := textnorm.Normalize(text)
	for _, words := range [][]string{cfg.Routing.EndKeywords, cfg.Routing.TransferKeywords, {cfg.Bot.HotCommand}} {
		for _, k := range words {
			if k != "" && norm == textnorm.Normalize(k) {
				return true
			}
		}
	}
	w := cfg.Desk
	for _, c := range []string{w.Online, w.Offline, w.Busy, w.List, w.End, w.Transfer, w.Search, w.Canned, w.Suggest, w.Help} {
		rest, ok := strings.CutPrefix(text, c)
		if c == "" || !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		if len([]rune(rest)) <= 2 || isNumberArg(rest) {
			return true
		}
	}
	return false
}

// isNumberArg is "12" or "#12…".
func isNumberArg(s string) bool {
	if strings.HasPrefix(s, "#") || strings.HasPrefix(s, "＃") {
		return true
	}
	_, err := strconv.Atoi(s)
	return err == nil
}

// commandHint answers text that looks like a command with how to send it
// to the user if that was meant, and the help command.
func (d *Desk) commandHint(ctx context.Context, cfg *config.Config, me, text string) (string, error) {
	no := "编号"
	if v, err := d.engine.Sessions(ctx, me); err == nil && v.Current != 0 {
		no = strconv.Itoa(v.Current)
	} else if err != nil && handoff.ErrorCode(err) == "" {
		return "", err
	}
	return handoff.Expand(cfg.Desk.Texts.LooksLikeCommand, "text", text, "no", no, "help", cfg.Desk.Help), nil
}

// relay sends text to the user of session no (0: current).
func (d *Desk) relay(ctx context.Context, me string, no int, text string) (string, error) {
	_, err := d.engine.AgentReply(ctx, me, no, text)
	return "", err
}

func (d *Desk) presence(ctx context.Context, cfg *config.Config, me string, p handoff.Presence) (string, error) {
	res, err := d.engine.SetPresence(ctx, me, p)
	if err != nil {
		return "", err
	}
	t := &cfg.Desk.Texts
	var b strings.Builder
	switch p {
	case handoff.Online:
		b.WriteString(t.Online)
		if n := countMine(res.Assigned, me); n > 0 {
			b.WriteString(handoff.Expand(t.PulledIn, "count", strconv.Itoa(n)))
		}
	case handoff.Busy:
		b.WriteString(t.Busy)
	case handoff.Offline:
		b.WriteString(t.Offline)
		if len(res.Moved) > 0 {
			b.WriteString(handoff.Expand(t.HandedOn, "count", strconv.Itoa(len(res.Moved))))
			for _, mv := range res.Moved {
				text := t.HandedToAgent
				if mv.To.Status == handoff.StatusQueued {
					text = t.HandedToQueue
				}
				b.WriteString("\n" + handoff.Expand(text, "no", strconv.Itoa(mv.From.No), "user", mv.From.UserNick,
					"agent", mv.To.AgentName, "group", mv.To.GroupDisplay, "position", strconv.Itoa(mv.To.Position)))
			}
		}
	}
	return b.String(), nil
}

func countMine(ss []handoff.Session, me string) int {
	n := 0
	for _, s := range ss {
		if s.Agent == me {
			n++
		}
	}
	return n
}

func (d *Desk) list(ctx context.Context, cfg *config.Config, me string) (string, error) {
	v, err := d.engine.Sessions(ctx, me)
	if err != nil {
		return "", err
	}
	t := &cfg.Desk.Texts
	var b strings.Builder
	b.WriteString(handoff.Expand(t.Status, "presence", presenceName(t, v.Presence)))
	if len(v.Sessions) == 0 {
		b.WriteString("\n" + t.NoSessions)
	}
	for _, s := range v.Sessions {
		chat := t.PrivateChat
		if s.ConversationType == adapter.Group {
			chat = s.ConversationTitle
		}
		mark := ""
		if s.No == v.Current {
			mark = t.CurrentMark
		}
		b.WriteString("\n" + handoff.Expand(t.SessionLine, "no", strconv.Itoa(s.No), "user", s.UserNick,
			"chat", chat, "group", s.GroupDisplay, "current", mark))
	}
	for _, q := range v.Queues {
		b.WriteString("\n" + handoff.Expand(t.QueueLine, "group", q.Display, "count", strconv.Itoa(q.Length)))
	}
	return b.String(), nil
}

func presenceName(t *config.DeskTexts, p handoff.Presence) string {
	switch p {
	case handoff.Online:
		return t.PresenceOnline
	case handoff.Busy:
		return t.PresenceBusy
	default:
		return t.PresenceOffline
	}
}

// search lists the best knowledge matches with their answers.
func (d *Desk) search(cfg *config.Config, words string) string {
	t := &cfg.Desk.Texts
	found := d.kb.KB().Search(words, 3)
	if len(found) == 0 {
		return handoff.Expand(t.SearchNone, "words", words)
	}
	var b strings.Builder
	b.WriteString(handoff.Expand(t.SearchHead, "words", words))
	for i, e := range found {
		b.WriteString("\n" + strconv.Itoa(i+1) + ". " + e.Question + "\n   " + e.Answer)
	}
	return b.String()
}

func cannedList(cfg *config.Config) string {
	t := &cfg.Desk.Texts
	if len(cfg.CannedReplies) == 0 {
		return t.CannedNone
	}
	var b strings.Builder
	b.WriteString(handoff.Expand(t.CannedHead, "canned", cfg.Desk.Canned))
	last := "\x00"
	for i, c := range cfg.CannedReplies {
		if c.Category != last {
			cat := c.Category
			if cat == "" {
				cat = t.CannedOther
			}
			b.WriteString("\n【" + cat + "】")
			last = c.Category
		}
		b.WriteString("\n" + strconv.Itoa(i+1) + ". " + c.Text)
	}
	return b.String()
}

func help(cfg *config.Config) string {
	w := cfg.Desk
	return handoff.Expand(w.Texts.Help, "online", w.Online, "offline", w.Offline, "busy", w.Busy, "list", w.List,
		"end", w.End, "transfer", w.Transfer, "search", w.Search, "suggest", w.Suggest, "canned", w.Canned,
		"groups", groupNames(cfg))
}

func groupNames(cfg *config.Config) string {
	names := make([]string, len(cfg.SkillGroups))
	for i, g := range cfg.SkillGroups {
		names[i] = g.Name
		if g.DisplayName != g.Name {
			names[i] += "=" + g.DisplayName
		}
	}
	return strings.Join(names, "、")
}

// resolveTarget reads a transfer target: a group's name or display name
// (groups first), else a member's name or staffId (agent set); an unknown
// word is taken as a group, which the engine refuses by name.
func resolveTarget(cfg *config.Config, s string) (group, agent string) {
	for _, g := range cfg.SkillGroups {
		if g.Name == s || g.DisplayName == s {
			return g.Name, ""
		}
	}
	for _, g := range cfg.SkillGroups {
		for _, m := range g.Members {
			if m.StaffID == s || m.Name == s {
				return "", m.StaffID
			}
		}
	}
	return s, ""
}

// splitWord cuts the first word (up to a space) off text.
func splitWord(text string) (string, string) {
	w, rest, _ := strings.Cut(text, " ")
	return w, strings.TrimSpace(rest)
}

var errBadSessionArg = errors.New("bad session argument")

// sessionArg reads an optional leading "#N" and what follows. With
// optional, an empty s means the current session (0).
func sessionArg(s string, optional bool) (no int, rest string, err error) {
	s = strings.TrimSpace(s)
	if s == "" && optional {
		return 0, "", nil
	}
	if !strings.HasPrefix(s, "#") && !strings.HasPrefix(s, "＃") {
		if optional {
			return 0, "", errBadSessionArg
		}
		return 0, s, nil // 转接 技能组: the current session
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "#"), "＃")
	digits := 0
	for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
		digits++
	}
	if digits == 0 {
		return 0, "", errBadSessionArg
	}
	no, err = strconv.Atoi(s[:digits])
	if err != nil || no < 1 {
		return 0, "", errBadSessionArg
	}
	return no, strings.TrimSpace(s[digits:]), nil
}
