package handoff

import (
	"context"
	"encoding/json"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/storage"
)

// op is one engine transaction: the decisions write rows through tx and
// collect their outbound messages, transcript lines and unanswered
// questions here; flush writes them in three statements at the end.
type op struct {
	e   *Engine
	tx  *storage.HandoffTx
	cfg *config.Config
	now time.Time

	replies    []adapter.Reply
	lines      []line
	unanswered []storage.HandoffUnansweredRow
	hits       []string // knowledge entries answered, for bot.Hit after commit
	agents     map[string]*storage.HandoffAgentRow
	// departed records, per group, the queue_seq of sessions that left
	// the queue, for the moved notices.
	departed map[string][]int64
	// freed lists agents whose capacity was given back, for the pulls
	// of their other groups after commit.
	freed []string
	// assigned lists the sessions this op assigned.
	assigned []Session
	// frontSeq hands out queue_seq values reserved at the front of a
	// group's queue (several sessions of an agent going offline keep
	// their order there).
	frontSeq map[string]int64
}

type line struct {
	row   storage.HandoffMessageRow
	reply int // index into replies, -1 for inbound lines
}

func (e *Engine) newOp(tx *storage.HandoffTx, cfg *config.Config, now time.Time) *op {
	return &op{e: e, tx: tx, cfg: cfg, now: now}
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

func peerOfConv(c *storage.HandoffConversationRow) peer {
	p := peer{userKey: c.UserKey, convID: c.ConversationID, convType: adapter.ConversationType(c.ConversationType),
		userID: c.UserID, nick: c.Nick, webhook: c.Webhook}
	if c.WebhookExpiry != nil {
		p.expiry = *c.WebhookExpiry
	}
	return p
}

// say sends text to the user and writes it to the transcript.
func (o *op) say(p peer, sessionID int64, senderKind, senderID, senderName, text string) {
	if text == "" {
		return
	}
	o.replies = append(o.replies, adapter.Reply{
		ConversationID: p.convID, ConversationType: p.convType, UserID: p.userID,
		Format: adapter.Text, Text: text, SessionWebhook: p.webhook, SessionWebhookExpiry: p.expiry,
	})
	o.lines = append(o.lines, line{reply: len(o.replies) - 1, row: storage.HandoffMessageRow{
		UserKey: p.userKey, SessionID: sessionID, Direction: storage.DirOut, SenderKind: senderKind,
		SenderID: senderID, SenderName: senderName, Kind: string(adapter.KindText), Text: text, CreatedAt: o.now,
	}})
}

// system sends a service text (queue, assignment, closing) to the user.
func (o *op) system(p peer, sessionID int64, text string) {
	o.say(p, sessionID, storage.SenderSystem, "", "", text)
}

// botSays sends a bot answer to the user.
func (o *op) botSays(p peer, text string) { o.say(p, 0, storage.SenderBot, "", "", text) }

// inbound records the user's message in the transcript.
func (o *op) inbound(p peer, sessionID int64, msgID string, kind adapter.Kind, text string) {
	o.lines = append(o.lines, line{reply: -1, row: storage.HandoffMessageRow{
		UserKey: p.userKey, SessionID: sessionID, Direction: storage.DirIn, SenderKind: storage.SenderUser,
		SenderID: p.userID, SenderName: p.nick, Kind: string(kind), Text: text, MsgID: msgID, CreatedAt: o.now,
	}})
}

// agent reads an agent row once per op; nil when the agent has none.
func (o *op) agent(staffID string) (*storage.HandoffAgentRow, error) {
	if a, ok := o.agents[staffID]; ok {
		return a, nil
	}
	a, err := o.tx.Agent(staffID)
	if err != nil {
		return nil, err
	}
	if o.agents == nil {
		o.agents = map[string]*storage.HandoffAgentRow{}
	}
	o.agents[staffID] = a
	return a, nil
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

func agentReply(staffID string, a *storage.HandoffAgentRow, text string) adapter.Reply {
	r := adapter.Reply{ConversationType: adapter.Private, UserID: staffID, Format: adapter.Text, Text: text}
	if a != nil {
		r.ConversationID = a.ChatID
		r.SessionWebhook = a.Webhook
		if a.WebhookExpiry != nil {
			r.SessionWebhookExpiry = *a.WebhookExpiry
		}
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
func (o *op) flush() ([]storage.OutboxItem, error) {
	if err := o.movedNotices(); err != nil {
		return nil, err
	}
	items, err := o.tx.Enqueue(o.now, o.replies...)
	if err != nil {
		return nil, err
	}
	if len(o.lines) > 0 {
		rows := make([]storage.HandoffMessageRow, len(o.lines))
		for i, l := range o.lines {
			rows[i] = l.row
			if l.reply >= 0 {
				rows[i].OutboxID = items[l.reply].ID
			}
		}
		if err := o.tx.AddMessages(rows); err != nil {
			return nil, err
		}
	}
	if err := o.tx.AddUnanswered(o.unanswered); err != nil {
		return nil, err
	}
	return items, nil
}

// pending are this op's transcript lines of a user not yet written.
func (o *op) pending(userKey string) []storage.HandoffMessageRow {
	var out []storage.HandoffMessageRow
	for _, l := range o.lines {
		if l.row.UserKey == userKey {
			out = append(out, l.row)
		}
	}
	return out
}

func encodePicks(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	b, _ := json.Marshal(ids)
	return string(b)
}

func decodePicks(s string) []string {
	if s == "" {
		return nil
	}
	var ids []string
	if json.Unmarshal([]byte(s), &ids) != nil {
		return nil
	}
	return ids
}

func timePtr(t time.Time) *time.Time { return &t }

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// transact runs fn with a new op in one hand-off transaction, writes what
// the op collected (outbox, transcript, unanswered questions) in that same
// transaction and, once it has committed, hands the replies to the sender
// and counts the op's knowledge-base hits. It returns the op for work after
// the commit (pullFreed). fn may run more than once (deadlock retries).
func (e *Engine) transact(ctx context.Context, cfg *config.Config, now time.Time, fn func(o *op) error) (*op, error) {
	var sent []storage.OutboxItem
	var o *op
	start := time.Now()
	err := e.db.Handoff(ctx, func(tx *storage.HandoffTx) error {
		o = e.newOp(tx, cfg, now)
		if err := fn(o); err != nil {
			return err
		}
		var err error
		sent, err = o.flush()
		return err
	})
	e.obs.Transacted(ctx, time.Since(start), err, sent)
	if err != nil {
		return nil, err
	}
	if len(sent) > 0 && e.kick != nil {
		e.kick(sent)
	}
	if e.bot != nil {
		for _, id := range o.hits {
			e.bot.Hit(id)
		}
	}
	return o, nil
}
