package handoff

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
)

// handoff hands a user who is with the bot to a person of group, in the
// order of PRODUCT.md §3: with no skill group configured (a bot-only
// setup in bot_first, 人工技能组 left empty) the user gets the no-agent
// text; outside the group's service hours the off-hours text and stays
// with the bot; with no member online, the no-agent text; otherwise the
// session is assigned, or queued when every online member is at max_chats
// (or others already wait). The no-answer count restarts at every
// attempt, so a user who stays with the bot gets routing.no_answer_limit
// fresh tries before the next attempt.
func (o *op) handoff(conv *Conversation, group string, reason Reason) error {
	conv.Misses = 0
	p := peerOfConv(conv)
	r := rule(o.cfg, group)
	g, ok := o.cfg.Group(group)
	if !ok {
		if group != "" {
			o.e.log.Error("hand-off to a skill group not in the config", "group", group)
		}
		o.system(p, 0, r.NoAgentMessage)
		return nil
	}
	if !o.e.open(o.cfg, r, o.now) {
		o.system(p, 0, r.OffHoursMessage)
		return nil
	}
	if err := o.tx.LockGroups(group); err != nil {
		return err
	}
	online, err := o.onlineMembers(g, "")
	if err != nil {
		return err
	}
	if online == 0 {
		o.system(p, 0, r.NoAgentMessage)
		return nil
	}
	s := newSession(conv, g.Name, reason)
	if _, err := o.place(conv, s, false, ""); err != nil {
		return err
	}
	conv.SessionID, conv.Group = s.ID, s.Group
	return nil
}

func newSession(conv *Conversation, group string, reason Reason) *Session {
	return &Session{
		UserKey: conv.UserKey, ConversationID: conv.ConversationID, ConversationType: conv.ConversationType,
		ConversationTitle: conv.ConversationTitle, UserID: conv.UserID, UserNick: conv.Nick,
		Group: group, Reason: reason,
	}
}

// onlineMembers counts a group's members who are online (busy ones do not
// count: they take no new sessions), leaving out exclude.
func (o *op) onlineMembers(g *config.SkillGroup, exclude string) (int, error) {
	agents, err := o.tx.Agents(members(g))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range agents {
		if a.Presence == Online && a.StaffID != exclude {
			n++
		}
	}
	return n, nil
}

// place assigns the new session s (not yet stored) or queues it, with the
// group locked, and returns its queue position (0 when assigned). At the
// back (front=false) the queue is drained first and s is assigned only
// when nobody waits, so nobody is overtaken; at the front (an agent went
// offline) s is served before anyone who waits. A user handed back while
// no member but exclude is online (an agent going offline alone) is told
// the no-agent text, not that the agents are busy.
func (o *op) place(conv *Conversation, s *Session, front bool, exclude string) (int, error) {
	g, _ := o.cfg.Group(s.Group)
	empty := true
	if !front {
		var err error
		if empty, err = o.drain(s.Group); err != nil {
			return 0, err
		}
	}
	if empty && g != nil {
		a, m, err := o.pick(g, conv.LastAgent, exclude)
		if err != nil {
			return 0, err
		}
		if a != nil {
			return 0, o.activate(conv, s, a, m, true)
		}
	}
	var seq int64
	var err error
	switch next, reserved := o.frontSeq[s.Group]; {
	case front && reserved: // keys reserved for this op's hand-ons, in order
		seq = next
		o.frontSeq[s.Group] = next + 1
	case front:
		seq, err = o.tx.QueueFront(s.Group, 1)
	default:
		seq, err = o.tx.QueueBack(s.Group)
	}
	if err != nil {
		return 0, err
	}
	s.Status, s.QueueSeq, s.QueuedAt, s.Due, s.CreatedAt = StatusQueued, seq, o.now, o.queueDue(s.Group), o.now
	s.ToldAt = o.now
	if err := o.tx.CreateSession(s); err != nil {
		return 0, err
	}
	o.publish(Event{Type: EventQueue, Group: s.Group})
	pos, err := o.tx.QueuePosition(s.Group, seq)
	if err != nil {
		return 0, err
	}
	r := rule(o.cfg, s.Group)
	text := fill(r.QueueMessage, pos, "")
	// Only a hand-on (front) can find nobody online: a hand-off and a
	// transfer checked that before.
	if front && g != nil {
		if online, err := o.onlineMembers(g, exclude); err != nil {
			return 0, err
		} else if online == 0 {
			text = r.NoAgentMessage
		}
	}
	o.system(peerOfConv(conv), s.ID, text)
	return pos, nil
}

// pick takes capacity from the best online member of g who has some:
// prefer (the user's previous agent) when free, else the least loaded,
// ties to the one whose last assignment is oldest (idle longest). The
// conditional update of Tx.Assign is what guarantees max_chats; the reads
// here only order the candidates, and a candidate that filled up meanwhile
// is skipped.
func (o *op) pick(g *config.SkillGroup, prefer, exclude string) (*Agent, *config.Member, error) {
	agents, err := o.tx.Agents(members(g))
	if err != nil {
		return nil, nil, err
	}
	type cand struct {
		a *Agent
		m *config.Member
	}
	var cands []cand
	for i := range agents {
		a := &agents[i]
		if a.Presence != Online || a.StaffID == exclude {
			continue
		}
		m, ok := o.cfg.Member(g.Name, a.StaffID)
		if !ok || a.OpenChats >= m.MaxChats {
			continue
		}
		cands = append(cands, cand{a, m})
	}
	slices.SortFunc(cands, func(x, y cand) int {
		if px, py := x.a.StaffID == prefer, y.a.StaffID == prefer; px != py {
			if px {
				return -1
			}
			return 1
		}
		if x.a.OpenChats != y.a.OpenChats {
			return x.a.OpenChats - y.a.OpenChats
		}
		if c := x.a.LastAssignedAt.Compare(y.a.LastAssignedAt); c != 0 {
			return c
		}
		return strings.Compare(x.a.StaffID, y.a.StaffID)
	})
	for _, c := range cands {
		a, ok, err := o.tx.Assign(c.a.StaffID, c.m.MaxChats, o.now)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			o.keepAgent(a.StaffID, a)
			return a, c.m, nil
		}
	}
	return nil, nil, nil
}

// activate gives session s (new when isNew, else a locked queued one) to
// agent a, who already took the capacity (pick), and tells both sides.
func (o *op) activate(conv *Conversation, s *Session, a *Agent, m *config.Member, isNew bool) error {
	r := rule(o.cfg, s.Group)
	s.Status, s.Agent, s.No, s.AgentName = StatusActive, a.StaffID, a.NextNo, m.Name
	s.AssignedAt, s.Due = o.now, o.idleDue(s.Group)
	// The first agent message names the agent unless this text did.
	s.Greeted = strings.Contains(r.AssignedMessage, "{agent}")
	notice := o.newSessionNotice(conv, s) // sets s.Suggested: the list the agent sees
	var err error
	if isNew {
		s.CreatedAt = o.now
		err = o.tx.CreateSession(s)
	} else {
		err = o.tx.SaveSession(s)
	}
	if err != nil {
		return err
	}
	o.touch(s)
	o.publish(Event{Type: EventSession, Agent: a.StaffID, SessionID: s.ID})
	if !isNew {
		o.publish(Event{Type: EventQueue, Group: s.Group})
	}
	o.system(peerOfConv(conv), s.ID, fill(r.AssignedMessage, 0, m.Name))
	o.assigned = append(o.assigned, o.view(s))
	return o.tell(a.StaffID, notice)
}

// drain assigns the group's queued sessions, head first, while an online
// member has capacity. The group must be locked. It reports whether the
// queue is now empty.
func (o *op) drain(group string) (bool, error) {
	g, ok := o.cfg.Group(group)
	for {
		head, err := o.tx.QueueHead(group)
		if err != nil {
			return false, err
		}
		if head == nil {
			return true, nil
		}
		if !ok {
			return false, nil // the group left the config: its queue only times out
		}
		// The user's conversation is not locked here (lock order): a
		// queued user's conversation is only read, the session carries
		// the state.
		conv, err := o.tx.Conversation(head.UserKey)
		if err != nil {
			return false, err
		}
		if conv == nil {
			conv = placeholderConv(head)
		}
		a, m, err := o.pick(g, conv.LastAgent, "")
		if err != nil || a == nil {
			return false, err
		}
		seq := head.QueueSeq
		if err := o.activate(conv, head, a, m, false); err != nil {
			return false, err
		}
		o.depart(group, seq)
	}
}

// movedNotices tells the users still queued behind those who left the
// queue in this op their new position: every step while at position 10 or
// better, every tenth position further back (a long queue would otherwise
// cost O(n²) messages while it drains).
func (o *op) movedNotices() error {
	for group, seqs := range o.departed {
		first := slices.Min(seqs)
		queue, err := o.tx.Queue(group)
		if err != nil {
			return err
		}
		var keys []string
		var tell []int
		for i, s := range queue {
			pos := i + 1
			if !s.Due.IsZero() && !s.Due.After(o.now) {
				continue // times out now: no news for them
			}
			if s.QueueSeq > first && (pos <= 10 || pos%10 == 0) {
				keys = append(keys, s.UserKey)
				tell = append(tell, i)
			}
		}
		if len(tell) == 0 {
			continue
		}
		convs, err := o.tx.Conversations(keys)
		if err != nil {
			return err
		}
		text := rule(o.cfg, group).QueueMovedMessage
		for _, i := range tell {
			s := &queue[i]
			p := peerOfSession(s)
			if c, ok := convs[s.UserKey]; ok {
				p = peerOfConv(c)
			}
			o.system(p, s.ID, fill(text, i+1, ""))
		}
	}
	o.departed = nil
	return nil
}

// closingText is the user's text for an ending. A human_only conversation
// has no bot to go back to: its user and agent endings and idle timeouts
// say so (service_rules[].human_only_closing_message).
func (o *op) closingText(conv *Conversation, r *config.ServiceRule, why EndReason) string {
	humanOnly := func(text string) string {
		if mode, _ := route(o.cfg, conv.ConversationID); mode == HumanOnly && r.HumanOnlyClosingMessage != "" {
			return r.HumanOnlyClosingMessage
		}
		return text
	}
	switch why {
	case EndUser, EndAgent:
		return humanOnly(r.ClosingMessage)
	case EndIdle:
		return humanOnly(r.IdleClosingMessage)
	case EndQueueLeft:
		return r.QueueLeftMessage
	case EndQueueTimeout:
		return r.QueueTimeoutMessage
	}
	return "" // continued in another session: its own texts follow
}

// end closes session s (locked, with its group locked) for why: the user
// gets the closing text that fits, the agent's capacity comes back and the
// group's queue moves. conv is the user's locked conversation.
func (o *op) end(conv *Conversation, s *Session, why EndReason, notifyAgent bool) error {
	r := rule(o.cfg, s.Group)
	prev := s.Status
	o.touch(s)
	if prev == StatusQueued {
		o.publish(Event{Type: EventQueue, Group: s.Group})
	} else {
		o.publish(Event{Type: EventSession, Agent: s.Agent, SessionID: s.ID})
	}
	s.Status, s.EndedAt, s.EndReason, s.Due = StatusEnded, o.now, why, time.Time{}
	if err := o.tx.SaveSession(s); err != nil {
		return err
	}
	if conv.SessionID == s.ID {
		conv.SessionID, conv.Group, conv.Misses, conv.Picks = 0, "", 0, nil
	}
	closing := o.closingText(conv, r, why)
	if prev == StatusActive && ratedEnding(why) {
		prompt, err := o.promptRating(s, r) // 满意度, in the same message
		if err != nil {
			return err
		}
		closing = joinTexts(closing, prompt)
	}
	o.system(peerOfConv(conv), s.ID, closing)
	switch prev {
	case StatusQueued:
		o.depart(s.Group, s.QueueSeq)
	case StatusActive:
		conv.LastAgent = s.Agent
		if err := o.tx.Release(s.Agent, s.No); err != nil {
			return err
		}
		if notifyAgent {
			if err := o.tell(s.Agent, o.endNotice(s, why)); err != nil {
				return err
			}
		}
		o.freed = append(o.freed, s.Agent)
		if why != EndTransferred && why != EndAgentOffline {
			if _, err := o.drain(s.Group); err != nil {
				return err
			}
		}
	}
	return nil
}

// pullFreed drains, after commit, the other skill groups of agents whose
// capacity an op gave back (the op itself drained the session's group).
// Each group is its own transaction: taking more group locks inside the op
// would break the lock order. Should this fail or the process die first,
// the next hand-off to the group or RunTimers' periodic pass drains it.
func (e *Engine) pullFreed(ctx context.Context, o *op) {
	if o == nil || len(o.freed) == 0 {
		return
	}
	var groups []string
	for _, a := range o.freed {
		groups = append(groups, o.cfg.GroupsOf(a)...)
	}
	for _, g := range sortedUnique(groups...) {
		if _, err := e.drainGroup(ctx, g); err != nil {
			e.log.Warn("queue pull failed", "group", g, "err", err)
		}
	}
}

// drainGroup assigns a group's queued users while members have capacity,
// in its own transaction. It returns the sessions it assigned.
func (e *Engine) drainGroup(ctx context.Context, group string) ([]Session, error) {
	cfg, err := e.begin(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := cfg.Group(group); !ok {
		return nil, nil
	}
	o, err := e.transact(ctx, cfg, e.now(), func(o *op) error {
		if err := o.tx.LockGroups(group); err != nil {
			return err
		}
		_, err := o.drain(group)
		return err
	})
	if err != nil {
		return nil, err
	}
	return o.assigned, nil
}

// view is a session as the engine's callers get it.
func (o *op) view(s *Session) Session { return viewOf(o.cfg, s) }

func viewOf(cfg *config.Config, s *Session) Session {
	out := *s
	out.GroupDisplay = s.Group
	if g, ok := cfg.Group(s.Group); ok {
		out.GroupDisplay = g.DisplayName
	}
	return out
}

// suggestions are the knowledge base's best entries for question (see
// suggestionsFrom).
func (e *Engine) suggestions(cfg *config.Config, question string, n int) []Suggestion {
	if e.bot == nil || strings.TrimSpace(question) == "" {
		return nil
	}
	r := e.bot.KB().Match(question)
	return e.suggestionsFrom(cfg, &r, n)
}

// suggestionsFor are the suggestions for the user's last question: from
// the match Handle already made when the message it handles asked it,
// else matched now.
func (o *op) suggestionsFor(conv *Conversation) []Suggestion {
	if o.match != nil && conv.LastQuestionMsg == o.msgID && conv.LastQuestion == o.msgText {
		return o.e.suggestionsFrom(o.cfg, o.match(), 3)
	}
	return o.e.suggestions(o.cfg, conv.LastQuestion, 3)
}

// suggestionsFrom are the best entries of a match: the matched entry, then
// close candidates (bot.NearBest). Only entries the bot itself would at least
// offer count (score at or above bot.clarify_threshold): for a question
// the bot cannot answer, an agent gets no suggestions rather than
// unrelated entries.
func (e *Engine) suggestionsFrom(cfg *config.Config, r *bot.Result, n int) []Suggestion {
	if e.bot == nil || r == nil || r.Outcome == bot.OutcomeNone {
		return nil
	}
	kb := e.bot.KB()
	var out []Suggestion
	seen := map[string]bool{}
	add := func(en *bot.Entry) {
		if en == nil || seen[en.ID] || len(out) >= n {
			return
		}
		seen[en.ID] = true
		out = append(out, Suggestion{N: len(out) + 1, EntryID: en.ID, Question: en.Question, Answer: en.Answer})
	}
	add(r.Best)
	for _, c := range bot.NearBest(r.Candidates, n) {
		if c.Score < cfg.Bot.ClarifyThreshold {
			break
		}
		if en, ok := kb.Entry(c.ID); ok {
			add(en)
		}
	}
	return out
}

// suggestionsOf turns a stored list back into suggestions; entries a
// knowledge reload removed are left out.
func (e *Engine) suggestionsOf(l SuggestionList) []Suggestion {
	if e.bot == nil {
		return nil
	}
	kb := e.bot.KB()
	var out []Suggestion
	for i, id := range l.Entries {
		if en, ok := kb.Entry(id); ok {
			out = append(out, Suggestion{N: i + 1, EntryID: en.ID, Question: en.Question, Answer: en.Answer})
		}
	}
	return out
}

func listOf(forMsg string, sug []Suggestion) SuggestionList {
	l := SuggestionList{ForMsg: forMsg}
	for _, s := range sug {
		l.Entries = append(l.Entries, s.EntryID)
	}
	return l
}
