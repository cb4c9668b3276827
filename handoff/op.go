package handoff

import (
	"context"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
)

// op is one engine transaction: the decisions write records through tx and
// collect their outbound messages, transcript lines and unanswered
// questions here; flush writes them at the end, in the same transaction.
type op struct {
	e   *Engine
	tx  Tx
	cfg *config.Config
	now time.Time

	replies    []adapter.Reply
	lines      []line
	unanswered []Unanswered
	hits       []string // knowledge entries answered, for Bot.Hit after commit
	agents     map[string]*Agent
	// departed records, per group, the queue keys of sessions that left
	// the queue, for the moved notices.
	departed map[string][]int64
	// freed lists agents whose capacity was given back, for the pulls
	// of their other groups after commit.
	freed []string
	// assigned lists the sessions this op assigned.
	assigned []Session
	// frontSeq hands out queue keys reserved at the front of a group's
	// queue (several sessions of an agent going offline keep their order
	// there).
	frontSeq map[string]int64
	// events are what front ends are told (events.go); served maps the
	// sessions this op touched to their agents, for the line events.
	events []Event
	served map[int64]string
	// msgID and msgText are the user message Handle is handling, match
	// its knowledge-base match (made once, outside the transaction when
	// the message may need it): the new-session notice's suggestions for
	// that message's question reuse it (suggestionsFor).
	msgID, msgText string
	match          func() *bot.Result
}

type line struct {
	Line
	reply int // index into replies, -1 for inbound lines
}

// peer is where messages to a user go.
type peer struct {
	userKey  string
	convID   string
	convType adapter.ConversationType
	userID   string
	nick     string
	webhook  string
	expiry   time.Time
}

func peerOfConv(c *Conversation) peer {
	return peer{userKey: c.UserKey, convID: c.ConversationID, convType: c.ConversationType,
		userID: c.UserID, nick: c.Nick, webhook: c.Webhook, expiry: c.WebhookExpiry}
}

// peerOfSession is where a session's user is when their conversation
// record is not at hand.
func peerOfSession(s *Session) peer {
	return peer{userKey: s.UserKey, convID: s.ConversationID, convType: s.ConversationType, userID: s.UserID, nick: s.UserNick}
}

// say sends text to the user and writes it to the transcript.
func (o *op) say(p peer, sessionID int64, sender SenderKind, senderID, senderName, text string) {
	if text == "" {
		return
	}
	o.replies = append(o.replies, adapter.Reply{
		ConversationID: p.convID, ConversationType: p.convType, UserID: p.userID,
		Format: adapter.Text, Text: text, SessionWebhook: p.webhook, SessionWebhookExpiry: p.expiry,
	})
	o.lines = append(o.lines, line{reply: len(o.replies) - 1, Line: Line{
		UserKey: p.userKey, SessionID: sessionID, Direction: DirOut, Sender: sender,
		SenderID: senderID, SenderName: senderName, Kind: adapter.KindText, Text: text, CreatedAt: o.now,
	}})
}

// system sends a service text (queue, assignment, closing) to the user.
func (o *op) system(p peer, sessionID int64, text string) {
	o.say(p, sessionID, SenderSystem, "", "", text)
}

// botSays sends a bot answer to the user.
func (o *op) botSays(p peer, text string) { o.say(p, 0, SenderBot, "", "", text) }

// inbound records the user's message in the transcript.
func (o *op) inbound(p peer, sessionID int64, msgID string, kind adapter.Kind, text string) {
	if kind == "" {
		kind = adapter.KindText
	}
	o.lines = append(o.lines, line{reply: -1, Line: Line{
		UserKey: p.userKey, SessionID: sessionID, Direction: DirIn, Sender: SenderUser,
		SenderID: p.userID, SenderName: p.nick, Kind: kind, Text: text, MsgID: msgID, CreatedAt: o.now,
	}})
}

// agent reads an agent once per op; nil when the agent has no record.
func (o *op) agent(staffID string) (*Agent, error) {
	if a, ok := o.agents[staffID]; ok {
		return a, nil
	}
	a, err := o.tx.Agent(staffID)
	if err != nil {
		return nil, err
	}
	o.keepAgent(staffID, a)
	return a, nil
}

func (o *op) keepAgent(staffID string, a *Agent) {
	if o.agents == nil {
		o.agents = map[string]*Agent{}
	}
	o.agents[staffID] = a
}

// tell sends a notice to an agent's 1:1 chat with the bot. Notices are not
// transcript lines (the transcript is the user's conversation); the outbox
// keeps them.
func (o *op) tell(staffID, text string) error {
	a, err := o.agent(staffID)
	if err != nil {
		return err
	}
	o.replies = append(o.replies, agentReply(staffID, a, text))
	return nil
}

func agentReply(staffID string, a *Agent, text string) adapter.Reply {
	r := adapter.Reply{ConversationType: adapter.Private, UserID: staffID, Format: adapter.Text, Text: text}
	if a != nil {
		r.ConversationID = a.Chat.ConversationID
		r.SessionWebhook = a.Chat.Webhook
		r.SessionWebhookExpiry = a.Chat.WebhookExpiry
	}
	return r
}

func (o *op) depart(group string, seq int64) {
	if o.departed == nil {
		o.departed = map[string][]int64{}
	}
	o.departed[group] = append(o.departed[group], seq)
}

// flush writes the collected messages: outbox, transcript (each outbound
// line with its outbox id) and unanswered questions.
func (o *op) flush() error {
	if err := o.movedNotices(); err != nil {
		return err
	}
	lines := make([]Line, len(o.lines))
	for i, l := range o.lines {
		lines[i] = l.Line
		lines[i].Reply = l.reply + 1
	}
	if err := o.tx.Record(o.now, o.replies, lines); err != nil {
		return err
	}
	if err := o.tx.AddUnanswered(o.unanswered); err != nil {
		return err
	}
	if ev := o.pendingEvents(); len(ev) > 0 {
		return o.tx.Publish(ev...)
	}
	return nil
}

// pending are this op's transcript lines of a user not yet written.
func (o *op) pending(userKey string) []Line {
	var out []Line
	for _, l := range o.lines {
		if l.UserKey == userKey {
			out = append(out, l.Line)
		}
	}
	return out
}

// transact runs fn with a new op in one store transaction and writes what
// the op collected (outbox, transcript, unanswered questions) in that same
// transaction; the store sends the replies once it has committed. Then it
// counts the op's knowledge-base hits and returns the op for work after
// the commit (pullFreed). fn may run more than once (deadlock retries).
func (e *Engine) transact(ctx context.Context, cfg *config.Config, now time.Time, fn func(o *op) error) (*op, error) {
	return e.transactFor(ctx, cfg, now, "", fn)
}

// transactFor is transact for an operation that starts by locking
// userKey's conversation (a user's message), which the store may then read
// ahead with others ("" for none).
func (e *Engine) transactFor(ctx context.Context, cfg *config.Config, now time.Time, userKey string, fn func(o *op) error) (*op, error) {
	var o *op
	start := time.Now()
	run := func(tx Tx) error {
		o = &op{e: e, tx: tx, cfg: cfg, now: now}
		if err := fn(o); err != nil {
			return err
		}
		return o.flush()
	}
	var err error
	if userKey != "" {
		err = e.st.TransactConversation(ctx, userKey, run)
	} else {
		err = e.st.Transact(ctx, run)
	}
	e.obs.Transacted(ctx, time.Since(start), err)
	if err != nil {
		return nil, err
	}
	if e.bot != nil {
		for _, id := range o.hits {
			e.bot.Hit(id)
		}
	}
	return o, nil
}

// topCandidates are the matcher's best three guesses, for admins.
func topCandidates(r *bot.Result) []UnansweredCandidate {
	out := make([]UnansweredCandidate, 0, 3)
	if r == nil {
		return out
	}
	for _, c := range r.Candidates {
		if len(out) == 3 {
			break
		}
		out = append(out, UnansweredCandidate{ID: c.ID, Question: c.Question, Score: c.Score})
	}
	return out
}

// Expand fills the {name} placeholders of a configured text with values,
// given as name, value pairs. Placeholders without a value stay.
func Expand(text string, pairs ...string) string {
	if !strings.Contains(text, "{") {
		return text
	}
	old := make([]string, 0, len(pairs))
	for i := 0; i+1 < len(pairs); i += 2 {
		old = append(old, "{"+pairs[i]+"}", pairs[i+1])
	}
	return strings.NewReplacer(old...).Replace(text)
}
