// Package transcript finds hand-off sessions — by user, agent, skill
// group, date or the text of their messages — and opens a session's
// transcript: the bot part that led to the hand-off, then the session's
// own messages, in order.
package transcript

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"time"
)

// Query selects sessions; empty fields do not filter. Results are newest
// first.
type Query struct {
	// User matches the user's id (staffId or DingTalk id), the
	// conversation key, or part of the nick.
	User string
	// Agent matches the agent's staffId or name.
	Agent string
	Group string
	// From and To bound the session's creation time: [From, To).
	From, To time.Time
	// Text must occur in one of the session's messages.
	Text string
	// Limit caps the results: DefaultLimit when 0, at most MaxLimit.
	Limit int
	// BeforeID pages: only sessions with a smaller id (the last id of the
	// previous page).
	BeforeID int64
}

// Result limits.
const (
	DefaultLimit = 50
	MaxLimit     = 200
	// BotContext is how far before a session its transcript reaches back for
	// the user's talk with the bot (bounded by the previous session's end).
	BotContext = 30 * time.Minute
)

// Session is one hand-off session as found.
type Session struct {
	ID                int64
	UserKey           string
	UserID            string
	Nick              string
	ConversationID    string
	ConversationTitle string // groups only
	Group             string
	Agent             string
	AgentName         string
	State             string // queued, active, ended
	Reason            string
	EndReason         string
	CreatedAt         time.Time
	AssignedAt        time.Time // zero if no agent took it
	EndedAt           time.Time // zero while open
	// Snippet is the first message matching Query.Text.
	Snippet string
}

// Line is one message of a transcript.
type Line struct {
	ID         int64
	SessionID  int64  // 0: with the bot
	Direction  string // in, out
	SenderKind string // user, bot, agent, system
	SenderID   string
	SenderName string
	Kind       string
	Text       string
	At         time.Time
}

// Transcript is a session and its messages.
type Transcript struct {
	Session Session
	Lines   []Line
}

// Store runs the queries.
type Store interface {
	// Search returns sessions matching q (already normalised), newest first.
	Search(ctx context.Context, q Query) ([]Session, error)
	// Session reads one session; nil when missing.
	Session(ctx context.Context, id int64) (*Session, error)
	// PreviousEnd is when the user's last session before id ended (zero if
	// none).
	PreviousEnd(ctx context.Context, userKey string, id int64) (time.Time, error)
	// Lines are the user's lines of session id, plus their lines with the
	// bot (session 0) in [since, until], in order.
	Lines(ctx context.Context, userKey string, id int64, since, until time.Time) ([]Line, error)
}

// ErrNotFound: no such session.
var ErrNotFound = errors.New("transcript: no such session")

// Search finds sessions.
func Search(ctx context.Context, st Store, q Query) ([]Session, error) {
	q.User, q.Agent, q.Group, q.Text = strings.TrimSpace(q.User), strings.TrimSpace(q.Agent), strings.TrimSpace(q.Group), strings.TrimSpace(q.Text)
	switch {
	case q.Limit <= 0:
		q.Limit = DefaultLimit
	case q.Limit > MaxLimit:
		q.Limit = MaxLimit
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		return nil, errors.New("transcript: the end of the date range is not after its start")
	}
	return st.Search(ctx, q)
}

// Open reads a session's transcript: the user's talk with the bot in the
// BotContext before it (after their previous session ended), then the
// session.
func Open(ctx context.Context, st Store, id int64) (*Transcript, error) {
	s, err := st.Session(ctx, id)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, ErrNotFound
	}
	since := s.CreatedAt.Add(-BotContext)
	prev, err := st.PreviousEnd(ctx, s.UserKey, id)
	if err != nil {
		return nil, err
	}
	if prev.After(since) {
		since = prev
	}
	lines, err := st.Lines(ctx, s.UserKey, id, since, s.CreatedAt)
	if err != nil {
		return nil, err
	}
	return &Transcript{Session: *s, Lines: lines}, nil
}

// WriteCSV writes the transcript as CSV (UTF-8 with BOM for Excel): time
// in loc, who, and the text, one message a row.
func (t *Transcript) WriteCSV(w io.Writer, loc *time.Location) error {
	if loc == nil {
		loc = time.UTC
	}
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"时间", "会话", "方向", "发送方", "名称", "类型", "内容"}); err != nil {
		return err
	}
	for _, l := range t.Lines {
		phase := "机器人"
		if l.SessionID != 0 {
			phase = "人工"
		}
		if err := cw.Write([]string{l.At.In(loc).Format(time.DateTime), phase, l.Direction, senderLabel(l.SenderKind), l.SenderName, l.Kind, l.Text}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func senderLabel(kind string) string {
	switch kind {
	case "user":
		return "用户"
	case "bot":
		return "机器人"
	case "agent":
		return "客服"
	case "system":
		return "系统"
	}
	return kind
}
