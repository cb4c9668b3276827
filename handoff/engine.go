package handoff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/bot/textnorm"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/schedule"
	"github.com/dingdesk/dingdesk/storage"
)

// Deps are the engine's collaborators.
type Deps struct {
	Config *config.Store
	// Bot answers in the bot state; nil answers nothing (every question is
	// unanswered).
	Bot   *bot.Bot
	DB    *storage.DB
	Clock Clock // default SystemClock
	// Log is the engine's scoped logger (the wiring adds
	// component=handoff); nil uses slog.Default.
	Log *slog.Logger
	// Kick is called after every commit that enqueued replies, with the
	// rows just written, so they go out at once without being read back.
	// Optional.
	Kick func(sent []storage.OutboxItem)
	// TimerInterval is how often RunTimers scans for due timeouts. Default
	// 1s.
	TimerInterval time.Duration
	// Observer is told the timings of matches and transactions. Optional.
	Observer Observer
}

// Engine is the hand-off engine. It keeps no conversation state in memory:
// everything lives in the database, so several engines (replicas) can
// share one MySQL database and a restart loses nothing.
type Engine struct {
	cfg      *config.Store
	bot      *bot.Bot
	db       *storage.DB
	st       *storage.HandoffStore
	clock    Clock
	log      *slog.Logger
	kick     func([]storage.OutboxItem)
	interval time.Duration
	obs      Observer

	kw atomic.Pointer[keywords] // of the latest config snapshot seen

	mu         sync.Mutex
	ensuredFor *config.Config // the snapshot whose groups have lock rows
	schedFor   *config.Config
	scheds     map[string]*schedule.Schedule
}

// New builds an engine.
func New(d Deps) *Engine {
	e := &Engine{cfg: d.Config, bot: d.Bot, db: d.DB, st: storage.NewHandoffStore(d.DB),
		clock: d.Clock, log: d.Log, kick: d.Kick, interval: d.TimerInterval, obs: d.Observer}
	if e.obs == nil {
		e.obs = noObserver{}
	}
	if e.clock == nil {
		e.clock = SystemClock{}
	}
	if e.log == nil {
		e.log = slog.Default().With("component", "handoff")
	}
	if e.interval <= 0 {
		e.interval = time.Second
	}
	return e
}

// now is the clock's time in UTC at millisecond precision (what MySQL's
// datetime(3) keeps), so stored and computed times compare equal.
func (e *Engine) now() time.Time { return e.clock.Now().UTC().Truncate(time.Millisecond) }

// begin reads the config snapshot for one operation and makes sure its
// skill groups have lock rows.
func (e *Engine) begin(ctx context.Context) (*config.Config, error) {
	cfg := e.cfg.Current()
	e.mu.Lock()
	done := e.ensuredFor == cfg
	e.mu.Unlock()
	if done {
		return cfg, nil
	}
	names := make([]string, 0, len(cfg.SkillGroups))
	for _, g := range cfg.SkillGroups {
		names = append(names, g.Name)
	}
	if err := e.st.EnsureGroups(ctx, names...); err != nil {
		return nil, fmt.Errorf("create skill group rows: %w", err)
	}
	e.mu.Lock()
	e.ensuredFor = cfg
	e.mu.Unlock()
	return cfg, nil
}

// rule is the service rule of a group; a group or rule no longer in the
// config (a reload removed it) falls back to the default texts.
func rule(cfg *config.Config, group string) *config.ServiceRule {
	if r, ok := cfg.RuleOf(group); ok {
		return r
	}
	r := config.DefaultServiceRule()
	return &r
}

// open reports whether a rule's service hours include now.
func (e *Engine) open(cfg *config.Config, r *config.ServiceRule, now time.Time) bool {
	e.mu.Lock()
	if e.schedFor != cfg {
		e.schedFor, e.scheds = cfg, map[string]*schedule.Schedule{}
	}
	s, ok := e.scheds[r.Name]
	e.mu.Unlock()
	if !ok {
		var errs []schedule.FieldError
		s, errs = schedule.New(r.Timezone, r.Hours, r.Holidays, r.Workdays)
		if len(errs) > 0 {
			// Validate rejects such a config; be safe and stay open.
			e.log.Error("service rule does not parse", "rule", r.Name, "err", errs[0])
			return true
		}
		e.mu.Lock()
		if e.schedFor == cfg {
			e.scheds[r.Name] = s
		}
		e.mu.Unlock()
	}
	return s.Open(now)
}

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

// keywords are a config snapshot's keywords, normalised once per snapshot
// rather than once per message.
type keywords struct {
	cfg           *config.Config
	end, transfer []string
	hot           string
}

// keywordsOf returns cfg's normalised keywords. It takes no lock: two
// messages racing after a reload may both build them, which is harmless.
func (e *Engine) keywordsOf(cfg *config.Config) *keywords {
	if kw := e.kw.Load(); kw != nil && kw.cfg == cfg {
		return kw
	}
	norm := func(words []string) []string {
		var out []string
		for _, w := range words {
			if n := textnorm.Normalize(w); n != "" {
				out = append(out, n)
			}
		}
		return out
	}
	kw := &keywords{cfg: cfg, end: norm(cfg.Routing.EndKeywords), transfer: norm(cfg.Routing.TransferKeywords),
		hot: textnorm.Normalize(cfg.Bot.HotCommand)}
	e.kw.Store(kw)
	return kw
}

// Handle handles one inbound user message in one transaction: it locks the
// user's conversation row, decides, updates state, stores the transcript
// and every outbound message (outbox), marks the inbox row handled, commits
// and then kicks the outbox. A message some other run already handled is a
// no-op.
func (e *Engine) Handle(ctx context.Context, msg adapter.Message) error {
	cfg, err := e.begin(ctx)
	if err != nil {
		return err
	}
	now := e.now()
	in := classify(e.keywordsOf(cfg), msg)
	mode, group := cfg.Route(msg.ConversationID)

	// Matching is pure: the bot's answer is matched here, outside the
	// transaction, when the message may need it. (A hand-off's new-session
	// notice still matches the assigned user's last question for 推荐知识
	// inside the transaction — see notice.go; moving it out is future work.)
	var match *bot.Result
	matchOnce := func() *bot.Result {
		if match == nil {
			r := bot.Result{Outcome: bot.OutcomeNone}
			if e.bot != nil && in.norm != "" {
				start := time.Now()
				r = e.bot.KB().Match(in.text)
				e.obs.Matched(r.Outcome, time.Since(start))
			}
			match = &r
		}
		return match
	}
	if in.text != "" && !in.end && !in.transfer && !in.hot && in.pick == 0 && mode != "human_only" {
		matchOnce()
	}

	var o *op
	o, err = e.transact(ctx, cfg, now, func(o *op) error {
		tx := o.tx
		conv, err := tx.LockConversation(msg.UserKey())
		if err != nil {
			return err
		}
		isNew := conv == nil
		if isNew {
			conv = &storage.HandoffConversationRow{UserKey: msg.UserKey(), CreatedAt: now}
		}
		refresh(conv, msg, now)
		if conv.SessionID != 0 {
			err = o.sessionTurn(conv, msg, in, mode, group, matchOnce)
		} else {
			err = o.botTurn(conv, msg, in, mode, group, matchOnce)
		}
		if err != nil {
			return err
		}
		if err := saveConv(tx, conv, isNew, now); err != nil {
			return err
		}
		return tx.MarkHandled(msg.ID, now)
	})
	if errors.Is(err, storage.ErrAlreadyHandled) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("handle message %s: %w", msg.ID, err)
	}
	e.pullFreed(ctx, o)
	return nil
}

// refresh copies what the message tells about the user and the chat.
func refresh(c *storage.HandoffConversationRow, msg adapter.Message, now time.Time) {
	c.ConversationID = msg.ConversationID
	c.ConversationType = string(msg.ConversationType)
	if msg.ConversationTitle != "" {
		c.ConversationTitle = msg.ConversationTitle
	}
	c.UserID = msg.SenderID
	if msg.SenderStaffID != "" {
		c.StaffID = msg.SenderStaffID
	}
	if msg.SenderNick != "" {
		c.Nick = msg.SenderNick
	}
	if msg.SessionWebhook != "" {
		c.Webhook, c.WebhookExpiry = msg.SessionWebhook, nil
		if !msg.SessionWebhookExpiry.IsZero() {
			c.WebhookExpiry = timePtr(msg.SessionWebhookExpiry.UTC())
		}
	}
	c.ChangedAt = now
}

// offer sends a numbered list of questions and remembers their entries, so
// the user's next message "1"…"9" picks one.
func (o *op) offer(conv *storage.HandoffConversationRow, p peer, prompt string, ids, questions []string) {
	o.botSays(p, numbered(prompt, questions))
	conv.Picks = encodePicks(ids)
}

// questionOf is what a message asks, for the agent's suggestions (推荐知识):
// nothing for end keywords, the hot command or a number picked from a list;
// for a transfer message the words left once the keyword is taken out
// ("VPN 连不上，转人工" asks about the VPN; "我要转人工" asks nothing).
func questionOf(cfg *config.Config, in intent) string {
	if in.text == "" || in.end || in.hot || in.pick != 0 {
		return ""
	}
	if !in.transfer {
		return in.text
	}
	rest := in.text
	for _, k := range cfg.Routing.TransferKeywords {
		if k != "" {
			rest = strings.ReplaceAll(rest, k, " ")
		}
	}
	rest = strings.TrimSpace(rest)
	// Only a real question remains: more than filler like "我要" or "请帮我".
	if len([]rune(textnorm.Normalize(rest))) < 4 {
		return ""
	}
	return rest
}

// botTurn answers a user who is with the bot.
func (o *op) botTurn(conv *storage.HandoffConversationRow, msg adapter.Message, in intent, mode, group string, match func() *bot.Result) error {
	p := peerOfConv(conv)
	cfg := o.cfg
	picks := decodePicks(conv.Picks)
	conv.Picks = "" // a numbered list is valid for the next message only
	o.inbound(p, 0, msg.ID, msg.Kind, msg.Text)
	if q := questionOf(cfg, in); q != "" {
		conv.LastQuestion = q
	}
	switch {
	case in.end:
		o.botSays(p, cfg.Routing.EndInBotReply)
		return nil
	case mode == "human_only":
		return o.handoff(conv, group, ReasonHumanOnly)
	case in.norm == "":
		o.botSays(p, cfg.Bot.UnsupportedReply)
		return nil
	case in.transfer:
		if mode == "bot_only" {
			o.botSays(p, cfg.Routing.NoHumanReply)
			return nil
		}
		return o.handoff(conv, group, ReasonKeyword)
	case in.hot && o.e.bot != nil:
		if hot := o.e.bot.Hot(cfg.Bot.HotCount); len(hot) > 0 {
			ids := make([]string, len(hot))
			qs := make([]string, len(hot))
			for i, h := range hot {
				ids[i], qs[i] = h.ID, h.Question
			}
			o.offer(conv, p, cfg.Bot.HotPrompt, ids, qs)
			return nil
		}
	case in.pick > 0 && in.pick <= len(picks) && o.e.bot != nil:
		if entry, ok := o.e.bot.KB().Entry(picks[in.pick-1]); ok {
			conv.LastQuestion = entry.Question
			return o.answer(conv, p, entry, mode, group)
		}
	}
	r := match()
	switch r.Outcome {
	case bot.OutcomeAnswer:
		if r.Best != nil {
			return o.answer(conv, p, r.Best, mode, group)
		}
	case bot.OutcomeClarify:
		// Clarify is neither an answer nor a miss: the no-answer count
		// stays where it was until the user's next question.
		if cs := nearBest(r.Candidates, max(cfg.Bot.ClarifyCount, 1)); len(cs) > 0 {
			ids := make([]string, len(cs))
			qs := make([]string, len(cs))
			for i, c := range cs {
				ids[i], qs[i] = c.ID, c.Question
			}
			o.offer(conv, p, cfg.Bot.ClarifyPrompt, ids, qs)
			return nil
		}
	}
	// No answer.
	o.unanswered = append(o.unanswered, storage.HandoffUnansweredRow{
		UserKey: conv.UserKey, ConversationID: conv.ConversationID, Question: in.text,
		Candidates: candidatesJSON(r), CreatedAt: o.now,
	})
	conv.Misses++
	if mode == "bot_first" && conv.Misses >= cfg.Routing.NoAnswerLimit {
		// The hand-off's own text (assigned, queued, off hours, no agent)
		// replaces the no-answer reply.
		return o.handoff(conv, group, ReasonNoAnswer)
	}
	o.botSays(p, cfg.Bot.NoAnswerReply)
	return nil
}

// answer sends a knowledge entry's answer; an entry marked handoff: true
// then hands off in bot_first.
func (o *op) answer(conv *storage.HandoffConversationRow, p peer, entry *bot.Entry, mode, group string) error {
	conv.Misses = 0
	o.botSays(p, entry.Answer)
	o.hits = append(o.hits, entry.ID)
	if entry.Handoff && mode == "bot_first" {
		return o.handoff(conv, group, ReasonKBHandoff)
	}
	return nil
}

// sessionTurn handles a message of a user who is queued or with a person:
// the bot stays silent.
func (o *op) sessionTurn(conv *storage.HandoffConversationRow, msg adapter.Message, in intent, mode, group string, match func() *bot.Result) error {
	p := peerOfConv(conv)
	conv.Picks = ""
	if in.end {
		// Lock order: conversation, group, session.
		if _, err := o.tx.LockGroups(conv.GroupName); err != nil {
			return err
		}
	}
	s, err := o.tx.LockSession(conv.SessionID)
	if err != nil {
		return err
	}
	if s == nil || s.State == storage.SessionEnded {
		// Cannot happen while every ending clears the conversation; heal.
		o.e.log.Warn("conversation pointed at a closed session", "user_key", conv.UserKey, "session", conv.SessionID)
		conv.SessionID, conv.GroupName = 0, ""
		return o.botTurn(conv, msg, in, mode, group, match)
	}
	o.inbound(p, s.ID, msg.ID, msg.Kind, msg.Text)
	if in.end {
		if s.State == storage.SessionQueued {
			return o.end(conv, s, EndQueueLeft, true)
		}
		return o.end(conv, s, EndUser, true)
	}
	if in.text != "" {
		conv.LastQuestion = in.text
	}
	if s.State == storage.SessionQueued {
		// A reminder of the position, at most once a minute.
		if s.ToldAt == nil || o.now.Sub(*s.ToldAt) >= time.Minute {
			pos, err := o.tx.QueuePosition(s.GroupName, s.QueueSeq)
			if err != nil {
				return err
			}
			o.system(p, s.ID, fill(rule(o.cfg, s.GroupName).QueueMovedMessage, pos, ""))
			s.ToldAt = timePtr(o.now)
			return o.tx.SaveSession(s)
		}
		return nil
	}
	// With a person: relay, and push the idle timer forward.
	if err := o.tell(s.AgentID, relayText(s, msg)); err != nil {
		return err
	}
	return o.tx.SetSessionDue(s.ID, o.idleDue(s.GroupName))
}

// nearBest are the best candidates worth offering: at most n, each scoring at
// least half the best (a clarify list or 推荐知识 never offers unrelated
// entries, although the matcher ranks every entry).
func nearBest(cs []bot.Candidate, n int) []bot.Candidate {
	var out []bot.Candidate
	for _, c := range cs {
		if len(out) == n || c.Score <= 0 || c.Score < cs[0].Score/2 {
			break
		}
		out = append(out, c)
	}
	return out
}

func numbered(prompt string, items []string) string {
	var b strings.Builder
	b.WriteString(prompt)
	for i, q := range items {
		fmt.Fprintf(&b, "\n%d. %s", i+1, q)
	}
	return b.String()
}

// idleDue is when an active session of group times out, nil when off.
func (o *op) idleDue(group string) *time.Time {
	if d := rule(o.cfg, group).CustomerIdleTimeout; d > 0 {
		return timePtr(o.now.Add(d))
	}
	return nil
}

// queueDue is when a queued session of group times out, nil when off.
func (o *op) queueDue(group string) *time.Time {
	if d := rule(o.cfg, group).QueueTimeout; d > 0 {
		return timePtr(o.now.Add(d))
	}
	return nil
}

// members are a group's configured agents.
func members(g *config.SkillGroup) []string {
	ids := make([]string, len(g.Members))
	for i, m := range g.Members {
		ids[i] = m.StaffID
	}
	return ids
}

func sortedUnique(names ...string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}
