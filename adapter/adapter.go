// Package adapter holds the platform-neutral message types and the small
// interfaces the engine uses to talk to a chat platform. It imports no SDK:
// only adapter/dingtalk knows DingTalk's names.
package adapter

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ConversationType tells a 1:1 chat from a group. The values are DingTalk's
// own ("1", "2") so stored rows stay readable next to raw payloads.
type ConversationType string

const (
	Private ConversationType = "1"
	Group   ConversationType = "2"
)

// Kind is what an inbound message carries.
type Kind string

const (
	KindText    Kind = "text"    // text, richText flattened, audio recognition
	KindPicture Kind = "picture" // recorded, answered politely
	KindFile    Kind = "file"    // recorded, answered politely
	KindVideo   Kind = "video"   // recorded, answered politely
	KindAudio   Kind = "audio"   // audio without a recognition text
	KindUnknown Kind = "unknown" // unknownMsgType or a msgtype we do not know
)

// Message is one inbound user message, normalised from stream or webhook.
type Message struct {
	ID                string // DingTalk msgId: the idempotency key
	ConversationID    string
	ConversationType  ConversationType
	ConversationTitle string // groups only
	// SenderID is who wrote: the staffId, or DingTalk's senderId for users
	// outside the org (their staffId is empty).
	SenderID         string
	SenderStaffID    string
	SenderDingTalkID string
	SenderNick       string
	SenderCorpID     string
	AtBot            bool     // isInAtList
	AtUserIDs        []string // staffIds (or dingtalkIds) in atUsers
	Kind             Kind
	RawType          string // the platform's msgtype, kept for transcripts
	Text             string // trimmed; empty for pictures, files, video
	// SessionWebhook answers this conversation until SessionWebhookExpiry.
	SessionWebhook       string
	SessionWebhookExpiry time.Time
	CreatedAt            time.Time
	RobotCode            string
}

// UserKey identifies one user's conversation with the bot: a private chat is
// one user; in a group each user has their own.
func (m Message) UserKey() string { return m.ConversationID + "|" + m.SenderID }

// Format is how a reply is rendered.
type Format string

const (
	Text     Format = "text"
	Markdown Format = "markdown"
)

// Reply is one outbound message to a user, in a private chat or in a group.
type Reply struct {
	ConversationID   string
	ConversationType ConversationType
	// UserID is the recipient's staffId (private) or the user to @-mention
	// (group).
	UserID string
	Format Format
	Title  string // markdown title, shown in the chat list
	Text   string
	// SessionWebhook, when set and not past its expiry, is tried first.
	SessionWebhook       string
	SessionWebhookExpiry time.Time
}

// Handler accepts one inbound message. It must return only once the message
// is durably stored (or known to be a duplicate): the adapter acknowledges
// the platform after it returns nil and asks for redelivery on an error.
type Handler func(ctx context.Context, msg Message) error

// Sender delivers one reply. An error wrapped with Permanent will not succeed
// on retry; any other error may.
type Sender interface {
	Send(ctx context.Context, r Reply) error
}

// Adapter is a chat platform connection.
type Adapter interface {
	Sender
	// Start begins receiving and calls h for every message. It returns once
	// receiving is set up; receiving goes on until Close.
	Start(ctx context.Context, h Handler) error
	// Ready reports whether the platform connection is up (for /readyz).
	Ready() error
	Close() error
}

// PermanentError marks a send failure that retrying cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return fmt.Sprintf("permanent: %v", e.Err) }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so IsPermanent reports true.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or an error it wraps, is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
