package handoff

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
)

// The agent side: the operations every agent front end calls (the desk in
// DingTalk today, a web workbench next), each in the engine's own
// transactions. Every method takes the agent's staffId; no selects a
// session by the agent's number, 0 meaning the agent's current session
// (the last one assigned, replied to with #N, or chosen with SetCurrent).
//
//	SetPresence(ctx, staffID, Online|Busy|Offline) (PresenceResult, error)
//	Sessions(ctx, staffID) (AgentView, error)
//	AgentReply(ctx, staffID, no, text) (Session, error)
//	SetCurrent(ctx, staffID, no) (Session, error)
//	End(ctx, staffID, no) (Session, error)
//	Transfer(ctx, staffID, no, group, note) (Move, error)
//	TransferToAgent(ctx, staffID, no, toStaffID, note) (Move, error)
//	Suggest(ctx, staffID, no) (Suggestions, error)
//	SendSuggestion(ctx, staffID, no, n) (Session, Suggestion, error)
//	Transcript(ctx, staffID, no) (Session, []Line, error)
//	NoteAgentChat(ctx, msg) error
//	FinishAgentMessage(ctx, msg, answer) error
//
// Errors meant for the agent are *Error values with a Code (ErrorCode);
// front ends map each code to a text once (desk.RefusalText). Other errors are
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
		return res, &Error{Code: CodeInvalid}
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
	// The presence and its events commit together; colleagues' online
	// counts change with it (EventQueue of each group).
	now := e.now()
	if _, err := e.transact(ctx, cfg, now, func(o *op) error {
		if err := o.tx.SetPresence(staffID, p, now); err != nil {
			return err
		}
		o.publish(Event{Type: EventPresence, Agent: staffID, Presence: p})
		for _, g := range cfg.GroupsOf(staffID) {
			o.publish(Event{Type: EventQueue, Group: g})
		}
		return nil
	}); err != nil {
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
		// (Assign checks presence under the lock), so this list is complete.
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
func (e *Engine) moveAway(ctx context.Context, staffID string, open []Session) ([]Move, error) {
	cfg := e.cfg.Current()
	now := e.now()
	slices.SortFunc(open, func(a, b Session) int { return a.No - b.No })
	var keys, groups []string
	count := map[string]int{}
	for _, s := range open {
		keys = append(keys, s.UserKey)
		groups = append(groups, s.Group)
		count[s.Group]++
	}
	keys, groups = sortedUnique(keys...), sortedUnique(groups...)
	var moves []Move
	_, err := e.transact(ctx, cfg, now, func(o *op) error {
		tx := o.tx
		moves = nil
		convs := map[string]*Conversation{}
		for _, k := range keys {
			c, err := tx.LockConversation(k)
			if err != nil {
				return err
			}
			if c != nil {
				convs[k] = c
			}
		}
		if err := tx.LockGroups(groups...); err != nil {
			return err
		}
		o.frontSeq = map[string]int64{}
		for g, n := range count {
			var err error
			if o.frontSeq[g], err = tx.QueueFront(g, n); err != nil {
				return err
			}
		}
		for _, s := range open {
			conv := convs[s.UserKey]
			cur, err := tx.LockSession(s.ID)
			if err != nil {
				return err
			}
			if conv == nil || cur == nil || cur.Status != StatusActive || cur.Agent != staffID || conv.SessionID != cur.ID {
				continue // ended meanwhile
			}
			if err := o.end(conv, cur, EndAgentOffline, false); err != nil {
				return err
			}
			ns := newSession(conv, cur.Group, ReasonTransfer)
			ns.FromSessionID, ns.FromAgent = cur.ID, staffID
			pos, err := o.place(conv, ns, true, staffID)
			if err != nil {
				return err
			}
			conv.SessionID, conv.Group = ns.ID, ns.Group
			to := o.view(ns)
			to.Position = pos
			moves = append(moves, Move{From: o.view(cur), To: to})
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
	v := AgentView{StaffID: staffID, Name: AgentName(cfg, staffID), Presence: Offline}
	a, err := e.st.Agent(ctx, staffID)
	if err != nil {
		return v, err
	}
	if a == nil && !cfg.IsAgent(staffID) {
		return v, ErrNotAgent
	}
	if a != nil {
		v.Presence, v.Current = a.Presence, a.CurrentNo
	}
	open, err := e.st.ActiveSessions(ctx, staffID)
	if err != nil {
		return v, err
	}
	for i := range open {
		v.Sessions = append(v.Sessions, viewOf(cfg, &open[i]))
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
func (e *Engine) resolve(ctx context.Context, staffID string, no int) (*Session, error) {
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
		return nil, sessionErr(CodeUnknownSession, no)
	}
	if s.Status != StatusActive {
		return nil, sessionErr(CodeSessionEnded, no)
	}
	return s, nil
}

// beginOn is begin for an operation on the agent's session no (0:
// current), resolved before any lock is taken.
func (e *Engine) beginOn(ctx context.Context, staffID string, no int) (*config.Config, *Session, error) {
	cfg, err := e.begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	s, err := e.resolve(ctx, staffID, no)
	return cfg, s, err
}

// ownSession locks session id again, inside the op's transaction, and
// checks it is still staffID's active session (#no in messages).
func ownSession(tx Tx, id int64, staffID string, no int) (*Session, error) {
	cur, err := tx.LockSession(id)
	if err != nil {
		return nil, err
	}
	if cur == nil || cur.Status != StatusActive || cur.Agent != staffID {
		return nil, sessionErr(CodeSessionEnded, no)
	}
	return cur, nil
}

// AgentReply relays an agent's text to the user of session no (0:
// current): in a private chat through the user's latest sessionWebhook
// while valid, else the OpenAPI 1:1 send; in a group into the group,
// @-mentioning the user. When the assignment text did not name the agent,
// the first reply starts with desk.texts.first_reply. A reply to #N makes
// N current; every reply pushes the session's idle timeout forward.
func (e *Engine) AgentReply(ctx context.Context, staffID string, no int, text string) (Session, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return Session{}, ErrEmptyText
	}
	cfg, s, err := e.beginOn(ctx, staffID, no)
	if err != nil {
		return Session{}, err
	}
	var out Session
	_, err = e.transact(ctx, cfg, e.now(), func(o *op) error {
		var err error
		out, err = o.reply(s.ID, staffID, no, s.No, text)
		return err
	})
	if err != nil {
		return Session{}, err
	}
	return out, nil
}

// reply sends an agent's text to the user of session id (#asNo), inside
// the op: see AgentReply.
func (o *op) reply(id int64, staffID string, no, asNo int, text string) (Session, error) {
	tx := o.tx
	cur, err := ownSession(tx, id, staffID, asNo)
	if err != nil {
		return Session{}, err
	}
	o.touch(cur)
	conv, err := tx.Conversation(cur.UserKey)
	if err != nil {
		return Session{}, err
	}
	p := peerOfSession(cur)
	if conv != nil {
		p = peerOfConv(conv)
	}
	msg := text
	if !cur.Greeted {
		msg = Expand(o.cfg.Desk.Texts.FirstReply, "agent", cur.AgentName) + "\n" + text
		cur.Greeted = true
	}
	cur.Due = o.idleDue(cur.Group)
	if err := tx.SaveSession(cur); err != nil {
		return Session{}, err
	}
	o.say(p, cur.ID, SenderAgent, staffID, cur.AgentName, msg)
	if no != 0 {
		if err := tx.SetCurrent(staffID, no); err != nil {
			return Session{}, err
		}
	}
	return o.view(cur), nil
}

// SetCurrent makes session no the one the agent's plain text goes to.
func (e *Engine) SetCurrent(ctx context.Context, staffID string, no int) (Session, error) {
	s, err := e.resolve(ctx, staffID, no)
	if err != nil {
		return Session{}, err
	}
	err = e.st.Transact(ctx, func(tx Tx) error { return tx.SetCurrent(staffID, s.No) })
	return viewOf(e.cfg.Current(), s), err
}

// End ends session no (0: current) for the agent: the user gets the
// closing text, the agent's capacity pulls the next queued user in. The
// agent gets no notice: the front end answers with the returned session.
func (e *Engine) End(ctx context.Context, staffID string, no int) (Session, error) {
	cfg, s, err := e.beginOn(ctx, staffID, no)
	if err != nil {
		return Session{}, err
	}
	now := e.now()
	var out Session
	o, err := e.transact(ctx, cfg, now, func(o *op) error {
		tx := o.tx
		conv, err := tx.LockConversation(s.UserKey)
		if err != nil {
			return err
		}
		if err := tx.LockGroups(s.Group); err != nil {
			return err
		}
		cur, err := ownSession(tx, s.ID, staffID, s.No)
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
		out = o.view(cur)
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
// the new agent gets a transferred-session notice. The result's From is
// the ended session, To the new one (active, or queued with its Position).
// note (转接附言, optional, at most MaxNote characters) goes with the
// session: whoever takes it reads it in the transferred-session notice.
func (e *Engine) Transfer(ctx context.Context, staffID string, no int, group, note string) (Move, error) {
	cfg, err := e.begin(ctx)
	if err != nil {
		return Move{}, err
	}
	if note, err = checkNote(note); err != nil {
		return Move{}, err
	}
	g, ok := cfg.Group(group)
	if !ok {
		return Move{}, groupErr(CodeUnknownGroup, group)
	}
	s, err := e.resolve(ctx, staffID, no)
	if err != nil {
		return Move{}, err
	}
	now := e.now()
	// Service hours need no database: check them before taking locks.
	if !e.open(cfg, rule(cfg, group), now) {
		return Move{}, groupErr(CodeGroupClosed, group)
	}
	return e.handOn(ctx, cfg, now, staffID, s, group, note, func(o *op, conv *Conversation, ns *Session) (int, error) {
		if n, err := o.onlineMembers(g, staffID); err != nil {
			return 0, err
		} else if n == 0 {
			return 0, groupErr(CodeNoAgentOnline, group)
		}
		// place drains group before it assigns or queues ns.
		return o.place(conv, ns, false, staffID)
	})
}

// TransferToAgent moves session no (0: current) to the named agent
// toStaffID, who must be a member of a skill group, online and under
// max_chats; otherwise the agent keeps the session and gets
// ErrUnknownAgent, ErrAgentOffline or ErrAgentFull (ErrSelfTransfer for
// oneself). The new session stays in the session's skill group when the
// target is one of its members, else it goes to the target's first group.
// The user is told the new agent (service rules' assigned_message), the
// target gets the transferred-session notice with the note, and the
// agent's freed capacity serves the old group's queue. Service hours do
// not apply: the target is online and chose to be.
func (e *Engine) TransferToAgent(ctx context.Context, staffID string, no int, toStaffID, note string) (Move, error) {
	cfg, err := e.begin(ctx)
	if err != nil {
		return Move{}, err
	}
	if note, err = checkNote(note); err != nil {
		return Move{}, err
	}
	toStaffID = strings.TrimSpace(toStaffID)
	if toStaffID == staffID {
		return Move{}, agentErr(CodeSelfTransfer, toStaffID)
	}
	if !cfg.IsAgent(toStaffID) {
		return Move{}, agentErr(CodeUnknownAgent, toStaffID)
	}
	s, err := e.resolve(ctx, staffID, no)
	if err != nil {
		return Move{}, err
	}
	group := s.Group
	if _, ok := cfg.Member(group, toStaffID); !ok {
		group = cfg.GroupsOf(toStaffID)[0]
	}
	m, _ := cfg.Member(group, toStaffID)
	return e.handOn(ctx, cfg, e.now(), staffID, s, group, note, func(o *op, conv *Conversation, ns *Session) (int, error) {
		// Assign decides under the agent's lock; a refusal rolls the whole
		// transaction back, so the agent keeps the session.
		a, ok, err := o.tx.Assign(toStaffID, m.MaxChats, o.now)
		if err != nil {
			return 0, err
		}
		if !ok {
			if cur, err := o.tx.Agent(toStaffID); err != nil {
				return 0, err
			} else if cur == nil || cur.Presence != Online {
				return 0, agentErr(CodeAgentOffline, toStaffID)
			}
			return 0, agentErr(CodeAgentFull, toStaffID)
		}
		o.keepAgent(a.StaffID, a)
		if err := o.activate(conv, ns, a, m, true); err != nil {
			return 0, err
		}
		// ns skipped group's queue: drain it as place would (in the
		// session's own group, the chat the transfer freed serves it).
		_, err = o.drain(group)
		return 0, err
	})
}

// handOn is a transfer's transaction: it locks the user's conversation,
// the session's group and group, checks s is still staffID's active
// session, ends it as transferred and continues the conversation in a new
// session of group carrying note, which place assigns or queues (its queue
// position, 0 when assigned) and after which group's queue must be
// drained. The agent's freed capacity then serves the old group's queue,
// when that is another group; after the commit, their other groups'. A
// refusal from place rolls everything back: the agent keeps the session.
func (e *Engine) handOn(ctx context.Context, cfg *config.Config, now time.Time, staffID string, s *Session, group, note string,
	place func(o *op, conv *Conversation, ns *Session) (int, error)) (Move, error) {
	var mv Move
	o, err := e.transact(ctx, cfg, now, func(o *op) error {
		tx := o.tx
		conv, err := tx.LockConversation(s.UserKey)
		if err != nil {
			return err
		}
		if err := tx.LockGroups(sortedUnique(s.Group, group)...); err != nil {
			return err
		}
		cur, err := ownSession(tx, s.ID, staffID, s.No)
		if err != nil {
			return err
		}
		isNew := conv == nil
		if isNew {
			conv = placeholderConv(cur)
		}
		if err := o.end(conv, cur, EndTransferred, false); err != nil {
			return err
		}
		ns := newSession(conv, group, ReasonTransfer)
		ns.FromSessionID, ns.FromAgent, ns.Note = cur.ID, staffID, note
		pos, err := place(o, conv, ns)
		if err != nil {
			return err
		}
		conv.SessionID, conv.Group = ns.ID, group
		if cur.Group != group {
			// Draining the same group again could hand ns straight back to
			// the agent who just freed a chat there.
			if _, err := o.drain(cur.Group); err != nil {
				return err
			}
		}
		if err := saveConv(tx, conv, isNew, now); err != nil {
			return err
		}
		mv = Move{From: o.view(cur), To: o.view(ns)}
		mv.To.Position = pos
		return nil
	})
	if err != nil {
		return Move{}, err
	}
	e.pullFreed(ctx, o)
	return mv, nil
}

// checkNote trims a transfer note and checks its length.
func checkNote(note string) (string, error) {
	note = strings.TrimSpace(note)
	if len([]rune(note)) > MaxNote {
		return "", ErrNoteTooLong
	}
	return note, nil
}

// Suggest shows the agent the knowledge base's best entries (推荐知识, at
// most 3) for the latest question of session no's user (0: current) and
// remembers them as the list the agent saw: SendSuggestion picks from it,
// never from a list computed later for a message the agent has not seen
// suggestions for. The new-session notice shows (and remembers) the first
// list.
func (e *Engine) Suggest(ctx context.Context, staffID string, no int) (Suggestions, error) {
	cfg, s, err := e.beginOn(ctx, staffID, no)
	if err != nil {
		return Suggestions{}, err
	}
	conv, err := e.st.Conversation(ctx, s.UserKey)
	if err != nil {
		return Suggestions{}, err
	}
	if conv == nil || strings.TrimSpace(conv.LastQuestion) == "" {
		return Suggestions{Session: viewOf(cfg, s)}, sessionErr(CodeNoQuestion, s.No)
	}
	// Matching is pure: outside the transaction.
	items := e.suggestions(cfg, conv.LastQuestion, 3)
	out := Suggestions{ForMsg: conv.LastQuestionMsg, Question: conv.LastQuestion, Items: items}
	_, err = e.transact(ctx, cfg, e.now(), func(o *op) error {
		cur, err := ownSession(o.tx, s.ID, staffID, s.No)
		if err != nil {
			return err
		}
		cur.Suggested = listOf(conv.LastQuestionMsg, items)
		out.Session = o.view(cur)
		return o.tx.SaveSession(cur)
	})
	if err != nil {
		return Suggestions{}, err
	}
	return out, nil
}

// SendSuggestion sends suggestion n of the list the agent was last shown
// for session no (0: current) to its user, as the agent's reply.
func (e *Engine) SendSuggestion(ctx context.Context, staffID string, no, n int) (Session, Suggestion, error) {
	cfg, s, err := e.beginOn(ctx, staffID, no)
	if err != nil {
		return Session{}, Suggestion{}, err
	}
	shown := e.suggestionsOf(s.Suggested)
	if len(s.Suggested.Entries) == 0 {
		return viewOf(cfg, s), Suggestion{}, sessionErr(CodeNoSuggestions, s.No)
	}
	i := slices.IndexFunc(shown, func(x Suggestion) bool { return x.N == n })
	if i < 0 {
		return viewOf(cfg, s), Suggestion{}, &Error{Code: CodeUnknownSuggestion, Session: s.No, N: n, Count: len(s.Suggested.Entries)}
	}
	var out Session
	_, err = e.transact(ctx, cfg, e.now(), func(o *op) error {
		var err error
		out, err = o.reply(s.ID, staffID, no, s.No, shown[i].Answer)
		return err
	})
	if err != nil {
		return Session{}, Suggestion{}, err
	}
	return out, shown[i], nil
}

// Transcript is the conversation of the user of the agent's session no (0:
// current), oldest first: every message in and out, also from before the
// session (the bot's answers, earlier sessions), for an agent front end.
func (e *Engine) Transcript(ctx context.Context, staffID string, no int) (Session, []Line, error) {
	s, err := e.resolve(ctx, staffID, no)
	if err != nil {
		return Session{}, nil, err
	}
	lines, err := e.st.Messages(ctx, s.UserKey)
	return viewOf(e.cfg.Current(), s), lines, err
}

// NoteAgentChat remembers an agent's private conversation with the bot and
// its sessionWebhook, from one of the agent's messages, so notices reach
// the agent through it. The desk calls it for every agent message.
func (e *Engine) NoteAgentChat(ctx context.Context, msg adapter.Message) error {
	if msg.ConversationType != adapter.Private {
		return nil
	}
	chat := AgentChat{ConversationID: msg.ConversationID, Webhook: msg.SessionWebhook}
	if msg.SessionWebhook != "" && !msg.SessionWebhookExpiry.IsZero() {
		chat.WebhookExpiry = msg.SessionWebhookExpiry.UTC()
	}
	return e.st.NoteAgentChat(ctx, agentOf(msg), chat, e.now())
}

// FinishAgentMessage ends the handling of an agent's message msg: in one
// transaction it sends answer (if any) to the agent's chat and marks msg
// handled. The operation msg asked for ran before, in its own
// transactions: a crash in between repeats the operation on restart rather
// than losing an agent's reply to a user. A message already finished is a
// no-op.
func (e *Engine) FinishAgentMessage(ctx context.Context, msg adapter.Message, answer string) error {
	cfg := e.cfg.Current()
	now := e.now()
	_, err := e.transact(ctx, cfg, now, func(o *op) error {
		if answer != "" {
			if err := o.tell(agentOf(msg), answer); err != nil {
				return err
			}
		}
		return o.tx.MarkHandled(msg.ID, now)
	})
	if errors.Is(err, ErrAlreadyHandled) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finish agent message %s: %w", msg.ID, err)
	}
	return nil
}

func agentOf(msg adapter.Message) string {
	if msg.SenderStaffID != "" {
		return msg.SenderStaffID
	}
	return msg.SenderID
}

// Conversation reports a user's state (key: adapter.Message.UserKey).
func (e *Engine) Conversation(ctx context.Context, userKey string) (ConversationState, error) {
	c := ConversationState{UserKey: userKey, State: StateBot}
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
	ss := viewOf(e.cfg.Current(), s)
	switch s.Status {
	case StatusQueued:
		c.State = StateQueued
		pos, err := e.st.QueuePosition(ctx, s.Group, s.QueueSeq)
		if err != nil {
			return c, err
		}
		ss.Position = pos
	case StatusActive:
		c.State = StateHuman
	}
	c.Session = &ss
	return c, nil
}

// placeholderConv stands in for a conversation that does not exist
// (cannot happen while sessions are only opened from conversations).
func placeholderConv(s *Session) *Conversation {
	return &Conversation{UserKey: s.UserKey, ConversationID: s.ConversationID,
		ConversationType: s.ConversationType, ConversationTitle: s.ConversationTitle, UserID: s.UserID,
		Nick: s.UserNick, SessionID: s.ID, Group: s.Group, CreatedAt: s.CreatedAt}
}

// saveConv writes a conversation back, creating it when it was a
// placeholder.
func saveConv(tx Tx, c *Conversation, isNew bool, now time.Time) error {
	c.ChangedAt = now
	if isNew {
		c.CreatedAt = now
		return tx.CreateConversation(c)
	}
	return tx.SaveConversation(c)
}
