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
)

// Bot is what the engine needs of the knowledge-base bot (*bot.Bot).
type Bot interface {
	KB() *bot.KnowledgeBase
	Hot(n int) []*bot.Entry
	Hit(id string)
}

// Deps are the engine's collaborators.
type Deps struct {
	Config *config.Store
	// Bot answers in the bot state; nil answers nothing (every question is
	// unanswered).
	Bot Bot
	// Store keeps the engine's records (gormstore.HandoffStore).
	Store Store
	Clock Clock // default SystemClock
	// Log is the engine's scoped logger (the wiring adds
	// component=handoff); nil uses slog.Default.
	Log *slog.Logger
	// TimerInterval is how often RunTimers scans for due timeouts. Default
	// 1s.
	TimerInterval time.Duration
	// Observer is told the timings of matches and transactions. Optional.
	Observer Observer
}

// Engine is the hand-off engine. It keeps no conversation state in memory:
// everything lives in the Store, so several engines (replicas) can share
// one MySQL database and a restart loses nothing.
type Engine struct {
	cfg      *config.Store
	bot      Bot
	st       Store
	clock    Clock
	log      *slog.Logger
	interval time.Duration
	obs      Observer

	kw atomic.Pointer[keywords] // of the latest config snapshot seen

	mu         sync.Mutex
	ensuredFor *config.Config // the snapshot whose groups have lock records
	schedFor   *config.Config
	scheds     map[string]*schedule.Schedule
}

// New builds an engine.
func New(d Deps) *Engine {
	e := &Engine{cfg: d.Config, bot: d.Bot, st: d.Store, clock: d.Clock, log: d.Log,
		interval: d.TimerInterval, obs: d.Observer}
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
// skill groups have lock records.
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
		return nil, fmt.Errorf("create skill group records: %w", err)
	}
	e.mu.Lock()
	e.ensuredFor = cfg
	e.mu.Unlock()
	return cfg, nil
}

// rule is the service rule of a group; a group or rule no longer in the
// config (a reload removed it), or no group at all, falls back to the
// default texts.
func rule(cfg *config.Config, group string) *config.ServiceRule {
	if r, ok := cfg.RuleOf(group); ok {
		return r
	}
	if len(cfg.ServiceRules) > 0 && group == "" {
		return &cfg.ServiceRules[0]
	}
	r := config.DefaultServiceRule()
	return &r
}

// route is a conversation's typed mode and skill group.
func route(cfg *config.Config, conversationID string) (Mode, string) {
	mode, group := cfg.Route(conversationID)
	return Mode(mode), group
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

// keywordsOf returns cfg's normalised keywords. It takes no lock: two
// messages racing after a reload may both build them, which is harmless.
func (e *Engine) keywordsOf(cfg *config.Config) *keywords {
	if kw := e.kw.Load(); kw != nil && kw.cfg == cfg {
		return kw
	}
	kw := newKeywords(cfg)
	e.kw.Store(kw)
	return kw
}

// Handle handles one inbound user message in one transaction: it locks the
// user's conversation, decides, updates state, stores the transcript and
// every outbound message, marks the inbound message handled and commits;
// the store then sends the replies. A message some other run already
// handled is a no-op.
func (e *Engine) Handle(ctx context.Context, msg adapter.Message) error {
	cfg, err := e.begin(ctx)
	if err != nil {
		return err
	}
	now := e.now()
	in := classify(e.keywordsOf(cfg), msg)
	mode, group := route(cfg, msg.ConversationID)

	// Matching is pure: the bot's answer (or the agent's suggestions) is
	// matched here, outside the transaction, when the message may need it;
	// a hand-off of this message's question shows the agent suggestions
	// from the same match. (A new-session notice for another question —
	// a transfer keyword's remaining words, a user pulled from the queue —
	// still matches inside the transaction: see suggestionsFor.)
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
	if needsMatch(in) {
		matchOnce()
	}

	o, err := e.transactFor(ctx, cfg, now, msg.UserKey(), func(o *op) error {
		o.msgID, o.msgText, o.match = msg.ID, in.text, matchOnce
		tx := o.tx
		conv, err := tx.LockConversation(msg.UserKey())
		if err != nil {
			return err
		}
		isNew := conv == nil
		if isNew {
			conv = &Conversation{UserKey: msg.UserKey(), CreatedAt: now}
		}
		lastChange := conv.ChangedAt
		refresh(conv, msg, now)
		if conv.SessionID != 0 {
			err = o.sessionTurn(conv, msg, in, mode, group, matchOnce)
		} else {
			var rated bool
			if !isNew {
				rated, err = o.ratingTurn(conv, msg, in, lastChange) // 满意度: satisfaction.go
			}
			if err == nil && !rated {
				err = o.botTurn(conv, msg, in, mode, group, matchOnce)
			}
		}
		if err != nil {
			return err
		}
		if err := saveConv(tx, conv, isNew, now); err != nil {
			return err
		}
		return tx.MarkHandled(msg.ID, now)
	})
	if errors.Is(err, ErrAlreadyHandled) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("handle message %s: %w", msg.ID, err)
	}
	e.pullFreed(ctx, o)
	return nil
}

// refresh copies what the message tells about the user and the chat.
func refresh(c *Conversation, msg adapter.Message, now time.Time) {
	c.ConversationID = msg.ConversationID
	c.ConversationType = msg.ConversationType
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
		c.Webhook, c.WebhookExpiry = msg.SessionWebhook, time.Time{}
		if !msg.SessionWebhookExpiry.IsZero() {
			c.WebhookExpiry = msg.SessionWebhookExpiry.UTC()
		}
	}
	c.ChangedAt = now
}

// offer sends a numbered list of questions and remembers their entries, so
// the user's next message "1"…"9" picks one.
func (o *op) offer(conv *Conversation, p peer, prompt string, cs []bot.Candidate) {
	ids := make([]string, len(cs))
	qs := make([]string, len(cs))
	for i, c := range cs {
		ids[i], qs[i] = c.ID, c.Question
	}
	o.botSays(p, numbered(prompt, qs))
	conv.Picks = ids
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

// asked remembers the user's question, and which message asked it.
func asked(conv *Conversation, q, msgID string) {
	conv.LastQuestion, conv.LastQuestionMsg = q, msgID
}

// botTurn answers a user who is with the bot: it applies decide.
func (o *op) botTurn(conv *Conversation, msg adapter.Message, in intent, mode Mode, group string, match func() *bot.Result) error {
	p := peerOfConv(conv)
	cfg := o.cfg
	picks := conv.Picks
	conv.Picks = nil // a numbered list is valid for the next message only
	// What a clarify list offered last answered (clarifyLeft).
	listFor, listMsg := conv.LastQuestion, conv.LastQuestionMsg
	o.inbound(p, 0, msg.ID, msg.Kind, msg.Text)
	if q := questionOf(cfg, in); q != "" {
		asked(conv, q, msg.ID)
	}
	t := turn{in: in, mode: mode, misses: conv.Misses, limit: cfg.Routing.NoAnswerLimit,
		match: match, clarifyCount: cfg.Bot.ClarifyCount}
	if o.e.bot != nil {
		if in.hot {
			t.hot = o.e.bot.Hot(cfg.Bot.HotCount)
		}
		if in.pick > 0 && in.pick <= len(picks) {
			if en, ok := o.e.bot.KB().Entry(picks[in.pick-1]); ok {
				t.picked = en
			}
		}
	}
	if len(picks) > 0 && t.picked == nil {
		if err := o.clarifyLeft(conv, picks, listFor, listMsg); err != nil {
			return err
		}
	}
	d := decide(t)
	conv.Misses = d.misses
	if err := o.recordBotTurn(conv, t, d); err != nil {
		return err
	}
	switch d.act {
	case actEndInBot:
		o.botSays(p, cfg.Routing.EndInBotReply)
	case actUnsupported:
		o.botSays(p, cfg.Bot.UnsupportedReply)
	case actNoHuman:
		o.botSays(p, cfg.Routing.NoHumanReply)
	case actOffer:
		prompt := cfg.Bot.ClarifyPrompt
		if d.hot {
			prompt = cfg.Bot.HotPrompt
		}
		o.offer(conv, p, prompt, d.offer)
	case actAnswer:
		if d.entry == t.picked {
			asked(conv, d.entry.Question, msg.ID) // "2" asks the picked entry's question
		}
		o.botSays(p, d.entry.Answer)
		o.hits = append(o.hits, d.entry.ID)
	case actNoAnswer:
		o.unanswered = append(o.unanswered, Unanswered{UserKey: conv.UserKey, ConversationID: conv.ConversationID,
			Question: in.text, Candidates: topCandidates(d.result), CreatedAt: o.now})
		if !d.handoff {
			text := cfg.Bot.NoAnswerReply
			if mode == BotOnly && cfg.Routing.BotOnlyNoAnswerReply != "" {
				text = cfg.Routing.BotOnlyNoAnswerReply
			}
			o.botSays(p, text)
		}
	}
	if d.handoff {
		return o.handoff(conv, group, d.reason)
	}
	return nil
}

// sessionTurn handles a message of a user who is queued or with a person:
// the bot stays silent.
func (o *op) sessionTurn(conv *Conversation, msg adapter.Message, in intent, mode Mode, group string, match func() *bot.Result) error {
	p := peerOfConv(conv)
	conv.Picks = nil
	if in.end {
		// Lock order: conversation, group, session.
		if err := o.tx.LockGroups(conv.Group); err != nil {
			return err
		}
	}
	s, err := o.tx.LockSession(conv.SessionID)
	if err != nil {
		return err
	}
	if s == nil || s.Status == StatusEnded {
		// Cannot happen while every ending clears the conversation; heal.
		o.e.log.Warn("conversation pointed at a closed session", "user_key", conv.UserKey, "session", conv.SessionID)
		conv.SessionID, conv.Group = 0, ""
		return o.botTurn(conv, msg, in, mode, group, match)
	}
	o.touch(s)
	o.inbound(p, s.ID, msg.ID, msg.Kind, msg.Text)
	if in.end {
		if s.Status == StatusQueued {
			return o.end(conv, s, EndQueueLeft, true)
		}
		return o.end(conv, s, EndUser, true)
	}
	if in.text != "" {
		asked(conv, in.text, msg.ID)
	}
	if s.Status == StatusQueued {
		// A reminder of the position, at most once a minute.
		if s.ToldAt.IsZero() || o.now.Sub(s.ToldAt) >= time.Minute {
			pos, err := o.tx.QueuePosition(s.Group, s.QueueSeq)
			if err != nil {
				return err
			}
			o.system(p, s.ID, fill(rule(o.cfg, s.Group).QueueMovedMessage, pos, ""))
			s.ToldAt = o.now
			return o.tx.SaveSession(s)
		}
		return nil
	}
	// With a person: relay, with the suggestions for this message, and
	// push the idle timer forward. The relayed list replaces the one the
	// agent saw before (none when this text has none), so `推荐 N` always
	// picks from the list shown with the user's latest question.
	text := o.relayText(s, msg)
	var sug []Suggestion
	if in.text != "" && !in.hot && in.pick == 0 && o.e.bot != nil {
		sug = o.e.suggestionsFrom(o.cfg, match(), 3)
		text += o.relaySuggestions(sug)
	}
	if err := o.tell(s.Agent, text); err != nil {
		return err
	}
	if in.text == "" { // a picture or a file asks nothing new: the list stays
		return o.tx.SetSessionDue(s.ID, o.idleDue(s.Group))
	}
	s.Due, s.Suggested = o.idleDue(s.Group), listOf(msg.ID, sug)
	return o.tx.SaveSession(s)
}

func numbered(prompt string, items []string) string {
	var b strings.Builder
	b.WriteString(prompt)
	for i, q := range items {
		fmt.Fprintf(&b, "\n%d. %s", i+1, q)
	}
	return b.String()
}

// idleDue is when an active session of group times out, zero when off.
func (o *op) idleDue(group string) time.Time {
	if d := rule(o.cfg, group).CustomerIdleTimeout; d > 0 {
		return o.now.Add(d)
	}
	return time.Time{}
}

// queueDue is when a queued session of group times out, zero when off.
func (o *op) queueDue(group string) time.Time {
	if d := rule(o.cfg, group).QueueTimeout; d > 0 {
		return o.now.Add(d)
	}
	return time.Time{}
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
