package handoff

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/storage"
)

// handoff hands a user who is with the bot to a person of group, in the
// order of PRODUCT.md §3: outside the group's service hours the user gets
// the off-hours text and stays with the bot; with no member online, the
// no-agent text; otherwise the session is assigned, or queued when every
// online member is at max_chats (or others already wait). The no-answer
// count restarts at every attempt, so a user who stays with the bot gets
// routing.no_answer_limit fresh tries before the next attempt.
func (o *op) handoff(conv *storage.HandoffConversationRow, group string, reason Reason) error {
	conv.Misses = 0
	p := peerOfConv(conv)
	r := rule(o.cfg, group)
	g, ok := o.cfg.Group(group)
	if !ok {
		o.e.log.Error("hand-off to a skill group not in the config", "group", group)
		o.system(p, 0, r.NoAgentMessage)
		return nil
	}
	if !o.e.open(o.cfg, r, o.now) {
		o.system(p, 0, r.OffHoursMessage)
		return nil
	}
	grows, err := o.tx.LockGroups(group)
	if err != nil {
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
	if _, err := o.place(conv, s, grows[group], false, ""); err != nil {
		return err
	}
	conv.SessionID, conv.GroupName = s.ID, s.GroupName
	return nil
}

func newSession(conv *storage.HandoffConversationRow, group string, reason Reason) *storage.HandoffSessionRow {
	return &storage.HandoffSessionRow{
		UserKey: conv.UserKey, ConversationID: conv.ConversationID, ConversationType: conv.ConversationType,
		ConversationTitle: conv.ConversationTitle, UserID: conv.UserID, Nick: conv.Nick,
		GroupName: group, Reason: string(reason),
	}
}

// onlineMembers counts a group's members who are online (busy ones do not
// count: they take no new sessions), leaving out exclude.
func (o *op) onlineMembers(g *config.SkillGroup, exclude string) (int, error) {
	rows, err := o.tx.Agents(members(g))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range rows {
		if a.Presence == storage.PresenceOnline && a.StaffID != exclude {
			n++
		}
	}
	return n, nil
}

// place assigns the new session s (not yet stored) or queues it, with the
// group row locked, and returns its queue position (0 when assigned). At
// the back (front=false) the queue is drained first and s is assigned only
// when nobody waits, so nobody is overtaken; at the front (an agent went
// offline) s is served before anyone who waits.
func (o *op) place(conv *storage.HandoffConversationRow, s *storage.HandoffSessionRow, grow *storage.HandoffGroupRow, front bool, exclude string) (int, error) {
	g, _ := o.cfg.Group(s.GroupName)
	empty := true
	if !front {
		var err error
		if empty, err = o.drain(s.GroupName); err != nil {
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
	switch next, reserved := o.frontSeq[s.GroupName]; {
	case front && reserved: // keys reserved for this op's hand-ons, in order
		seq = next
		o.frontSeq[s.GroupName] = next + 1
	case front:
		seq, err = o.tx.ReserveFront(grow, 1)
	default:
		seq, err = o.tx.NextQueueSeq(grow)
	}
	if err != nil {
		return 0, err
	}
	s.State, s.QueueSeq, s.QueuedAt, s.DueAt, s.CreatedAt = storage.SessionQueued, seq, timePtr(o.now), o.queueDue(s.GroupName), o.now
	s.ToldAt = timePtr(o.now)
	if err := o.tx.CreateSession(s); err != nil {
		return 0, err
	}
	pos, err := o.tx.QueuePosition(s.GroupName, seq)
	if err != nil {
		return 0, err
	}
	o.system(peerOfConv(conv), s.ID, fill(rule(o.cfg, s.GroupName).QueueMessage, pos, ""))
	return pos, nil
}

// pick takes capacity from the best online member of g who has some:
// prefer (the user's previous agent) when free, else the least loaded,
// ties to the one whose last assignment is oldest (idle longest). The
// conditional update in storage.Assign is what guarantees max_chats; the
// reads here only order the candidates, and a candidate that filled up
// meanwhile is skipped.
func (o *op) pick(g *config.SkillGroup, prefer, exclude string) (*storage.HandoffAgentRow, *config.Member, error) {
	rows, err := o.tx.Agents(members(g))
	if err != nil {
		return nil, nil, err
	}
	type cand struct {
		a *storage.HandoffAgentRow
		m *config.Member
	}
	var cands []cand
	for i := range rows {
		a := &rows[i]
		if a.Presence != storage.PresenceOnline || a.StaffID == exclude {
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
		if c := deref(x.a.LastAssignedAt).Compare(deref(y.a.LastAssignedAt)); c != 0 {
			return c
		}
		return strings.Compare(x.a.StaffID, y.a.StaffID)
	})
	for _, c := range cands {
		row, ok, err := o.tx.Assign(c.a.StaffID, c.m.MaxChats, o.now)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			if o.agents == nil {
				o.agents = map[string]*storage.HandoffAgentRow{}
			}
			o.agents[row.StaffID] = row
			return row, c.m, nil
		}
	}
	return nil, nil, nil
}

// activate gives session s (new when isNew, else a locked queued row) to
// agent a, who already took the capacity (pick), and tells both sides.
func (o *op) activate(conv *storage.HandoffConversationRow, s *storage.HandoffSessionRow, a *storage.HandoffAgentRow, m *config.Member, isNew bool) error {
	r := rule(o.cfg, s.GroupName)
	s.State, s.AgentID, s.AgentNo, s.AgentName = storage.SessionActive, a.StaffID, a.NextNo, m.Name
	s.AssignedAt, s.DueAt = timePtr(o.now), o.idleDue(s.GroupName)
	// The first agent message names the agent unless this text did.
	s.Greeted = strings.Contains(r.AssignedMessage, "{agent}")
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
	o.system(peerOfConv(conv), s.ID, fill(r.AssignedMessage, 0, m.Name))
	o.assigned = append(o.assigned, o.session(s))
	return o.tell(a.StaffID, o.newSessionNotice(conv, s))
}

// drain assigns the group's queued sessions, head first, while an online
// member has capacity. The group row must be locked. It reports whether
// the queue is now empty.
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
		// The user's conversation row is not locked here (lock order):
		// a queued user's row is only read, the session row carries the
		// state.
		conv, err := o.tx.Conversation(head.UserKey)
		if err != nil {
			return false, err
		}
		if conv == nil {
			conv = &storage.HandoffConversationRow{UserKey: head.UserKey, ConversationID: head.ConversationID,
				ConversationType: head.ConversationType, UserID: head.UserID, Nick: head.Nick}
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
			if s.DueAt != nil && !s.DueAt.After(o.now) {
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
			s := queue[i]
			p := peer{userKey: s.UserKey, convID: s.ConversationID, convType: adapter.ConversationType(s.ConversationType), userID: s.UserID, nick: s.Nick}
			if c, ok := convs[s.UserKey]; ok {
				p = peerOfConv(c)
			}
			o.system(p, s.ID, fill(text, i+1, ""))
		}
	}
	o.departed = nil
	return nil
}

// end closes session s (locked, with its group row locked) for why: the
// user gets the closing text that fits, the agent's capacity comes back
// and the group's queue moves. conv is the user's locked conversation.
func (o *op) end(conv *storage.HandoffConversationRow, s *storage.HandoffSessionRow, why EndReason, notifyAgent bool) error {
	r := rule(o.cfg, s.GroupName)
	prev := s.State
	s.State, s.EndedAt, s.EndReason, s.DueAt = storage.SessionEnded, timePtr(o.now), string(why), nil
	if err := o.tx.SaveSession(s); err != nil {
		return err
	}
	if conv.SessionID == s.ID {
		conv.SessionID, conv.GroupName, conv.Misses, conv.Picks = 0, "", 0, ""
	}
	p := peerOfConv(conv)
	switch why {
	case EndUser, EndAgent:
		o.system(p, s.ID, r.ClosingMessage)
	case EndIdle:
		o.system(p, s.ID, r.IdleClosingMessage)
	case EndQueueLeft:
		o.system(p, s.ID, r.QueueLeftMessage)
	case EndQueueTimeout:
		o.system(p, s.ID, r.QueueTimeoutMessage)
	}
	switch prev {
	case storage.SessionQueued:
		o.depart(s.GroupName, s.QueueSeq)
	case storage.SessionActive:
		conv.LastAgent = s.AgentID
		if err := o.tx.Release(s.AgentID, s.AgentNo); err != nil {
			return err
		}
		if notifyAgent {
			if err := o.tell(s.AgentID, endNotice(s, why)); err != nil {
				return err
			}
		}
		o.freed = append(o.freed, s.AgentID)
		if why != EndTransferred && why != EndAgentOffline {
			if _, err := o.drain(s.GroupName); err != nil {
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
	now := e.now()
	var o *op
	o, err = e.transact(ctx, cfg, now, func(o *op) error {
		tx := o.tx
		if _, err := tx.LockGroups(group); err != nil {
			return err
		}
		if _, err := o.drain(group); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return o.assigned, nil
}

// session converts a row to the domain type.
func (o *op) session(s *storage.HandoffSessionRow) Session { return sessionOf(o.cfg, s) }

func sessionOf(cfg *config.Config, s *storage.HandoffSessionRow) Session {
	out := Session{
		ID: s.ID, No: s.AgentNo, Status: Status(s.State), UserKey: s.UserKey, ConversationID: s.ConversationID,
		ConversationType: adapter.ConversationType(s.ConversationType), ConversationTitle: s.ConversationTitle,
		UserID: s.UserID, UserNick: s.Nick, Group: s.GroupName, GroupDisplay: s.GroupName, Reason: Reason(s.Reason),
		Agent: s.AgentID, AgentName: s.AgentName, FromAgent: s.FromAgent,
		QueuedAt: deref(s.QueuedAt), AssignedAt: deref(s.AssignedAt), EndedAt: deref(s.EndedAt), EndReason: EndReason(s.EndReason),
	}
	if g, ok := cfg.Group(s.GroupName); ok {
		out.GroupDisplay = g.DisplayName
	}
	return out
}

// suggestions are the knowledge base's best entries for question: the
// matched entry, then close candidates (see nearBest).
func (e *Engine) suggestions(question string, n int) []Suggestion {
	if e.bot == nil || strings.TrimSpace(question) == "" {
		return nil
	}
	kb := e.bot.KB()
	r := kb.Match(question)
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
	for _, c := range nearBest(r.Candidates, n) {
		if en, ok := kb.Entry(c.ID); ok {
			add(en)
		}
	}
	return out
}

func candidatesJSON(r *bot.Result) string {
	type cand struct {
		ID       string  `json:"id"`
		Question string  `json:"question"`
		Score    float64 `json:"score"`
	}
	cs := make([]cand, 0, 3)
	for _, c := range r.Candidates {
		if len(cs) == 3 {
			break
		}
		cs = append(cs, cand{c.ID, c.Question, c.Score})
	}
	b, _ := json.Marshal(cs)
	return string(b)
}
