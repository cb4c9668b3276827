package handoff

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/storage"
)

// The agent side, for the desk command layer (agents' 1:1 chat with the
// bot). Every method takes the agent's staffId; no selects a session by the
// agent's number, 0 meaning the agent's current session (the last one
// assigned, replied to with #N, or chosen with SetCurrent).
//
//	SetPresence(ctx, staffID, Online|Busy|Offline) (PresenceResult, error)
//	Sessions(ctx, staffID) (AgentView, error)
//	AgentReply(ctx, staffID, no, text) (Session, error)
//	SetCurrent(ctx, staffID, no) (Session, error)
//	End(ctx, staffID, no) (Session, error)
//	Transfer(ctx, staffID, no, group) (Move, error)
//	Suggestions(ctx, staffID, no) (Session, string, []Suggestion, error)
//	SendToAgent(ctx, staffID, text) error
//	NoteAgentChat(ctx, msg) error
//
// Errors the desk shows the agent as they are (their texts are Chinese):
// ErrNotAgent, ErrUnknownSession and ErrSessionEnded (wrapped with "#N"),
// ErrNoCurrentSession, ErrUnknownGroup, ErrGroupClosed, ErrNoAgentOnline,
// ErrNoQuestion, ErrEmptyText; match them with errors.Is. Other errors are
// internal (storage) and worth a retry.
//
// Removed members: a member a config reload removed keeps their open
// sessions until they end (the user ends, idles out, or the member ends or
// transfers them, which these methods still allow); they get no new ones
// and cannot go online or busy.

// SetPresence sets an agent's presence. Going online pulls queued users of
// the agent's groups in; going offline hands every open session to another
// online member with capacity, or back to the front of its group's queue,
// never dropping one; busy keeps the sessions and takes no new ones.
func (e *Engine) SetPresence(ctx context.Context, staffID string, p Presence) (PresenceResult, error) {
	res := PresenceResult{Presence: p}
	cfg, err := e.begin(ctx)
	if err != nil {
		return res, err
	}
	switch p {
	case Online, Busy, Offline:
	default:
		return res, fmt.Errorf("unknown presence %q", p)
	}
	if !cfg.IsAgent(staffID) {
		a, err := e.st.Agent(ctx, staffID)
		if err != nil {
			return res, err
		}
		if p != Offline || a == nil {
			return res, ErrNotAgent
		}
	}
	if err := e.st.SetPresence(ctx, staffID, string(p), e.now()); err != nil {
		return res, err
	}
	switch p {
	case Online:
		// A busy agent going online frees nothing but takes new sessions:
		// pull the queues of all the agent's groups.
		for _, g := range cfg.GroupsOf(staffID) {
			got, err := e.drainGroup(ctx, g)
			if err != nil {
				return res, err
			}
			res.Assigned = append(res.Assigned, got...)
		}
	case Offline:
		// After the presence commit no assignment to the agent can succeed
		// (Assign checks presence under the row lock), so this list is
		// complete.
		open, err := e.st.ActiveSessions(ctx, staffID)
		if err != nil {
			return res, err
		}
		if len(open) > 0 {
			res.Moved, err = e.moveAway(ctx, staffID, open)
			if err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// moveAway hands the sessions of an agent who went offline on, in one
// transaction: conversations locked in key order, then their groups, then
// each session. Sessions still queued go to the front of their group's
// queue in the order they were assigned.
func (e *Engine) moveAway(ctx context.Context, staffID string, open []storage.HandoffSessionRow) ([]Move, error) {
	cfg := e.cfg.Current()
	now := e.now()
	slices.SortFunc(open, func(a, b storage.HandoffSessionRow) int { return a.AgentNo - b.AgentNo })
	var keys, groups []string
	count := map[string]int{}
	for _, s := range open {
		keys = append(keys, s.UserKey)
		groups = append(groups, s.GroupName)
		count[s.GroupName]++
	}
	keys, groups = sortedUnique(keys...), sortedUnique(groups...)
	var moves []Move
	_, err := e.transact(ctx, cfg, now, func(o *op) error {
		tx := o.tx
		moves = nil
		convs := map[string]*storage.HandoffConversationRow{}
		for _, k := range keys {
			c, err := tx.LockConversation(k)
			if err != nil {
				return err
			}
			if c != nil {
				convs[k] = c
			}
		}
		grows, err := tx.LockGroups(groups...)
		if err != nil {
			return err
		}
		o.frontSeq = map[string]int64{}
		for g, n := range count {
			if o.frontSeq[g], err = tx.ReserveFront(grows[g], n); err != nil {
				return err
			}
		}
		for _, s := range open {
			conv := convs[s.UserKey]
			cur, err := tx.LockSession(s.ID)
			if err != nil {
				return err
			}
			if conv == nil || cur == nil || cur.State != storage.SessionActive || cur.AgentID != staffID || conv.SessionID != cur.ID {
				continue // ended meanwhile
			}
			if err := o.end(conv, cur, EndAgentOffline, false); err != nil {
				return err
			}
			ns := newSession(conv, cur.GroupName, ReasonTransfer)
			ns.FromSessionID, ns.FromAgent = cur.ID, staffID
			pos, err := o.place(conv, ns, grows[cur.GroupName], true, staffID)
			if err != nil {
				return err
			}
			conv.SessionID, conv.GroupName = ns.ID, ns.GroupName
			to := o.session(ns)
			to.Position = pos
			moves = append(moves, Move{From: o.session(cur), To: to})
		}
		for _, k := range keys {
			if c := convs[k]; c != nil {
				if err := saveConv(tx, c, false, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return moves, nil
}

// Sessions lists the agent's open sessions and their groups' queues.
func (e *Engine) Sessions(ctx context.Context, staffID string) (AgentView, error) {
	cfg := e.cfg.Current()
	v := AgentView{StaffID: staffID, Name: (&op{cfg: cfg}).agentName(staffID), Presence: Offline}
	a, err := e.st.Agent(ctx, staffID)
	if err != nil {
		return v, err
	}
	if a == nil && !cfg.IsAgent(staffID) {
		return v, ErrNotAgent
	}
	if a != nil {
		v.Presence, v.Current = Presence(a.Presence), a.CurrentNo
	}
	rows, err := e.st.ActiveSessions(ctx, staffID)
	if err != nil {
		return v, err
	}
	for i := range rows {
		v.Sessions = append(v.Sessions, sessionOf(cfg, &rows[i]))
	}
	groups := cfg.GroupsOf(staffID)
	lens, err := e.st.QueueLengths(ctx, groups)
	if err != nil {
		return v, err
	}
	for _, name := range groups {
		g, _ := cfg.Group(name)
		v.Queues = append(v.Queues, GroupQueue{Group: name, Display: g.DisplayName, Length: lens[name]})
	}
	return v, nil
}

// resolve finds the agent's open session numbered no (0: current).
func (e *Engine) resolve(ctx context.Context, staffID string, no int) (*storage.HandoffSessionRow, error) {
	if no == 0 {
		a, err := e.st.Agent(ctx, staffID)
		if err != nil {
			return nil, err
		}
		if a == nil || a.CurrentNo == 0 {
			return nil, ErrNoCurrentSession
		}
		no = a.CurrentNo
	}
	s, err := e.st.AgentSession(ctx, staffID, no)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("#%d：%w", no, ErrUnknownSession)
	}
	if s.State != storage.SessionActive {
		return nil, fmt.Errorf("#%d：%w", no, ErrSessionEnded)
	}
	return s, nil
}

// beginOn is begin for an operation on the agent's session no (0:
// current), resolved before any lock is taken.
func (e *Engine) beginOn(ctx context.Context, staffID string, no int) (*config.Config, *storage.HandoffSessionRow, error) {
	cfg, err := e.begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	s, err := e.resolve(ctx, staffID, no)
	return cfg, s, err
}

// ownSession locks session id again, inside the op's transaction, and
// checks it is still staffID's active session (#no in messages).
func ownSession(tx *storage.HandoffTx, id int64, staffID string, no int) (*storage.HandoffSessionRow, error) {
	cur, err := tx.LockSession(id)
	if err != nil {
		return nil, err
	}
	if cur == nil || cur.State != storage.SessionActive || cur.AgentID != staffID {
		return nil, fmt.Errorf("#%d：%w", no, ErrSessionEnded)
	}
	return cur, nil
}

// AgentReply relays an agent's text to the user of session no (0:
// current): in a private chat through the user's latest sessionWebhook
// while valid, else the OpenAPI 1:1 send; in a group into the group,
// @-mentioning the user. When the assignment text did not name the agent,
// the first reply starts with "客服 <name> 为您服务". A reply to #N makes N
// current; every reply pushes the session's idle timeout forward.
func (e *Engine) AgentReply(ctx context.Context, staffID string, no int, text string) (Session, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return Session{}, ErrEmptyText
	}
	cfg, s, err := e.beginOn(ctx, staffID, no)
	if err != nil {
		return Session{}, err
	}
	now := e.now()
	var out Session
	_, err = e.transact(ctx, cfg, now, func(o *op) error {
		tx := o.tx
		cur, err := ownSession(tx, s.ID, staffID, s.AgentNo)
		if err != nil {
			return err
		}
		conv, err := tx.Conversation(cur.UserKey)
		if err != nil {
			return err
		}
		p := peer{userKey: cur.UserKey, convID: cur.ConversationID, convType: adapter.ConversationType(cur.ConversationType), userID: cur.UserID, nick: cur.Nick}
		if conv != nil {
			p = peerOfConv(conv)
		}
		msg := text
		if !cur.Greeted {
			msg = "客服 " + cur.AgentName + " 为您服务\n" + text
			cur.Greeted = true
		}
		cur.DueAt = o.idleDue(cur.GroupName)
		if err := tx.SaveSession(cur); err != nil {
			return err
		}
		o.say(p, cur.ID, storage.SenderAgent, staffID, cur.AgentName, msg)
		if no != 0 {
			if err := tx.SetCurrent(staffID, no); err != nil {
				return err
			}
		}
		out = o.session(cur)
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	return out, nil
}

// SetCurrent makes session no the one the agent's plain text goes to.
func (e *Engine) SetCurrent(ctx context.Context, staffID string, no int) (Session, error) {
	s, err := e.resolve(ctx, staffID, no)
	if err != nil {
		return Session{}, err
	}
	err = e.db.Handoff(ctx, func(tx *storage.HandoffTx) error { return tx.SetCurrent(staffID, s.AgentNo) })
	return sessionOf(e.cfg.Current(), s), err
}

// End ends session no (0: current) for the agent: the user gets the
// closing text, the agent's capacity pulls the next queued user in. The
// agent gets no notice: the desk answers with the returned session.
func (e *Engine) End(ctx context.Context, staffID string, no int) (Session, error) {
	cfg, s, err := e.beginOn(ctx, staffID, no)
	if err != nil {
		return Session{}, err
	}
	now := e.now()
	var o *op
	var out Session
	o, err = e.transact(ctx, cfg, now, func(o *op) error {
		tx := o.tx
		conv, err := tx.LockConversation(s.UserKey)
		if err != nil {
			return err
		}
		if _, err := tx.LockGroups(s.GroupName); err != nil {
			return err
		}
		cur, err := ownSession(tx, s.ID, staffID, s.AgentNo)
		if err != nil {
			return err
		}
		isNew := conv == nil
		if isNew {
			conv = placeholderConv(cur)
		}
		if err := o.end(conv, cur, EndAgent, false); err != nil {
			return err
		}
		if err := saveConv(tx, conv, isNew, now); err != nil {
			return err
		}
		out = o.session(cur)
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	e.pullFreed(ctx, o)
	return out, nil
}

// Transfer moves session no (0: current) to skill group: to its least
// loaded free member other than the agent, else to the back of its queue.
// The group must be open (service hours) and have another member online;
// otherwise the agent keeps the session and gets ErrGroupClosed or
// ErrNoAgentOnline. The user is told the new agent or the queue position;
// the new agent gets a 【转接会话】 notice. The result's From is the ended
// session, To the new one (active, or queued with its Position).
func (e *Engine) Transfer(ctx context.Context, staffID string, no int, group string) (Move, error) {
	cfg, err := e.begin(ctx)
	if err != nil {
		return Move{}, err
	}
	g, ok := cfg.Group(group)
	if !ok {
		return Move{}, fmt.Errorf("%s：%w", group, ErrUnknownGroup)
	}
	s, err := e.resolve(ctx, staffID, no)
	if err != nil {
		return Move{}, err
	}
	now := e.now()
	// Service hours need no database: check them before taking locks.
	if !e.open(cfg, rule(cfg, group), now) {
		return Move{}, ErrGroupClosed
	}
	var o *op
	var mv Move
	o, err = e.transact(ctx, cfg, now, func(o *op) error {
		tx := o.tx
		conv, err := tx.LockConversation(s.UserKey)
		if err != nil {
			return err
		}
		grows, err := tx.LockGroups(sortedUnique(s.GroupName, group)...)
		if err != nil {
			return err
		}
		cur, err := ownSession(tx, s.ID, staffID, s.AgentNo)
		if err != nil {
			return err
		}
		if n, err := o.onlineMembers(g, staffID); err != nil {
			return err
		} else if n == 0 {
			return ErrNoAgentOnline
		}
		isNew := conv == nil
		if isNew {
			conv = placeholderConv(cur)
		}
		if err := o.end(conv, cur, EndTransferred, false); err != nil {
			return err
		}
		ns := newSession(conv, group, ReasonTransfer)
		ns.FromSessionID, ns.FromAgent = cur.ID, staffID
		pos, err := o.place(conv, ns, grows[group], false, staffID)
		if err != nil {
			return err
		}
		conv.SessionID, conv.GroupName = ns.ID, group
		if cur.GroupName != group {
			// The agent's freed capacity serves the old group's queue.
			if _, err := o.drain(cur.GroupName); err != nil {
				return err
			}
		}
		if err := saveConv(tx, conv, isNew, now); err != nil {
			return err
		}
		mv = Move{From: o.session(cur), To: o.session(ns)}
		mv.To.Position = pos
		return nil
	})
	if err != nil {
		return Move{}, err
	}
	e.pullFreed(ctx, o)
	return mv, nil
}

// Suggestions are the knowledge base's best entries (推荐知识, at most 3)
// for the last question of session no's user (0: current), with that
// question. The desk sends suggestion N's Answer with AgentReply.
func (e *Engine) Suggestions(ctx context.Context, staffID string, no int) (Session, string, []Suggestion, error) {
	s, err := e.resolve(ctx, staffID, no)
	if err != nil {
		return Session{}, "", nil, err
	}
	conv, err := e.st.Conversation(ctx, s.UserKey)
	if err != nil {
		return Session{}, "", nil, err
	}
	out := sessionOf(e.cfg.Current(), s)
	if conv == nil || strings.TrimSpace(conv.LastQuestion) == "" {
		return out, "", nil, ErrNoQuestion
	}
	return out, conv.LastQuestion, e.suggestions(conv.LastQuestion, 3), nil
}

// SendToAgent sends a plain notice to an agent's 1:1 chat with the bot
// (through the outbox, like every message).
func (e *Engine) SendToAgent(ctx context.Context, staffID, text string) error {
	cfg := e.cfg.Current()
	_, err := e.transact(ctx, cfg, e.now(), func(o *op) error { return o.tell(staffID, text) })
	return err
}

// NoteAgentChat remembers an agent's private conversation with the bot and
// its sessionWebhook, from one of the agent's messages, so notices reach
// the agent through it. The desk calls it for every agent message.
func (e *Engine) NoteAgentChat(ctx context.Context, msg adapter.Message) error {
	if msg.ConversationType != adapter.Private {
		return nil
	}
	staffID := msg.SenderStaffID
	if staffID == "" {
		staffID = msg.SenderID
	}
	var exp *time.Time
	if msg.SessionWebhook != "" && !msg.SessionWebhookExpiry.IsZero() {
		exp = timePtr(msg.SessionWebhookExpiry.UTC())
	}
	return e.st.NoteAgentChat(ctx, staffID, msg.ConversationID, msg.SessionWebhook, exp, e.now())
}

// Conversation reports a user's state (key: adapter.Message.UserKey).
func (e *Engine) Conversation(ctx context.Context, userKey string) (Conversation, error) {
	c := Conversation{UserKey: userKey, State: StateBot}
	conv, err := e.st.Conversation(ctx, userKey)
	if err != nil || conv == nil {
		return c, err
	}
	c.Misses = conv.Misses
	if conv.SessionID == 0 {
		return c, nil
	}
	s, err := e.st.Session(ctx, conv.SessionID)
	if err != nil || s == nil {
		return c, err
	}
	cfg := e.cfg.Current()
	ss := sessionOf(cfg, s)
	switch s.State {
	case storage.SessionQueued:
		c.State = StateQueued
		pos, err := e.st.QueuePosition(ctx, s.GroupName, s.QueueSeq)
		if err != nil {
			return c, err
		}
		ss.Position = pos
	case storage.SessionActive:
		c.State = StateHuman
	}
	c.Session = &ss
	return c, nil
}

// placeholderConv stands in for a conversation row that does not exist
// (cannot happen while sessions are only opened from conversations).
func placeholderConv(s *storage.HandoffSessionRow) *storage.HandoffConversationRow {
	return &storage.HandoffConversationRow{UserKey: s.UserKey, ConversationID: s.ConversationID,
		ConversationType: s.ConversationType, ConversationTitle: s.ConversationTitle, UserID: s.UserID,
		Nick: s.Nick, SessionID: s.ID, GroupName: s.GroupName, CreatedAt: s.CreatedAt}
}

// saveConv writes a conversation back, creating it when it was a
// placeholder.
func saveConv(tx *storage.HandoffTx, c *storage.HandoffConversationRow, isNew bool, now time.Time) error {
	c.ChangedAt = now
	if isNew {
		c.CreatedAt = now
		return tx.CreateConversation(c)
	}
	return tx.SaveConversation(c)
}
