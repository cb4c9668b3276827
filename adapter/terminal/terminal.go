// Package terminal is a chat platform made of a terminal: messages typed
// in come in as users' or agents' messages, replies are printed. dingdesk
// chat uses it so admins can try the bot and the agent desk without
// DingTalk, on the real engine and gormstore.
package terminal

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
)

// Adapter prints every reply to out.
type Adapter struct {
	mu    sync.Mutex
	out   io.Writer
	h     adapter.Handler
	seq   atomic.Int64
	sent  atomic.Int64
	names map[string]string // staffID → display name, for printing
}

var _ adapter.Adapter = (*Adapter)(nil)

// New prints to out.
func New(out io.Writer) *Adapter { return &Adapter{out: out, names: map[string]string{}} }

// Start remembers the handler.
func (a *Adapter) Start(_ context.Context, h adapter.Handler) error {
	a.mu.Lock()
	a.h = h
	a.mu.Unlock()
	return nil
}

// Ready is always true.
func (a *Adapter) Ready() error { return nil }

// Close does nothing.
func (a *Adapter) Close() error { return nil }

// Sent counts replies printed so far.
func (a *Adapter) Sent() int64 { return a.sent.Load() }

// Send prints a reply with its recipient.
func (a *Adapter) Send(_ context.Context, r adapter.Reply) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	to := a.names[r.UserID]
	if to == "" {
		to = r.UserID
	}
	where := "私聊"
	if r.ConversationType == adapter.Group {
		where = "群 " + r.ConversationID + " @" + to
	}
	text := strings.ReplaceAll(strings.TrimRight(r.Text, "\n"), "\n", "\n    ")
	fmt.Fprintf(a.out, "  ⇐ 发给 %s（%s）：\n    %s\n", to, where, text)
	a.sent.Add(1)
	return nil
}

// Speaker is who types a line.
type Speaker struct {
	StaffID string
	Nick    string
	// GroupID, when set, puts the message in that group chat (@-ing the
	// bot); else it is the speaker's private chat with the bot.
	GroupID string
}

// Say delivers text from sp as an inbound message.
func (a *Adapter) Say(ctx context.Context, sp Speaker, text string) error {
	a.mu.Lock()
	h := a.h
	a.names[sp.StaffID] = sp.Nick
	a.mu.Unlock()
	if h == nil {
		return fmt.Errorf("terminal adapter not started")
	}
	now := time.Now()
	m := adapter.Message{
		ID:               "term-" + strconv.FormatInt(now.UnixNano(), 36) + "-" + strconv.FormatInt(a.seq.Add(1), 10),
		ConversationID:   "private-" + sp.StaffID,
		ConversationType: adapter.Private,
		SenderID:         sp.StaffID,
		SenderStaffID:    sp.StaffID,
		SenderNick:       sp.Nick,
		Kind:             adapter.KindText,
		RawType:          "text",
		Text:             strings.TrimSpace(text),
		CreatedAt:        now,
	}
	if sp.GroupID != "" {
		m.ConversationID, m.ConversationType, m.ConversationTitle, m.AtBot = sp.GroupID, adapter.Group, sp.GroupID, true
	}
	return h(ctx, m)
}
