package dingtalk

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dingdesk/dingdesk/adapter"
)

// callbackPayload is the bot message DingTalk delivers, both as the body of
// an HTTP callback and as the data string of a stream CALLBACK frame: one
// JSON schema, two transports. It is decoded here rather than through the
// SDK's BotCallbackDataModel so both modes see every field (robotCode,
// content) and tolerate the type drift seen in the wild (createAt as a
// string).
//
// Docs: https://open.dingtalk.com/document/isvapp/receive-message
type callbackPayload struct {
	MsgType string `json:"msgtype"`
	Text    struct {
		Content string `json:"content"`
	} `json:"text"`
	// Content is the non-text payload: picture, file, video, audio,
	// richText, unknownMsgType. Decoded by kind in toMessage.
	Content           json.RawMessage `json:"content"`
	MsgID             string          `json:"msgId"`
	CreateAt          flexInt         `json:"createAt"`
	ConversationType  flexString      `json:"conversationType"`
	ConversationID    string          `json:"conversationId"`
	ConversationTitle string          `json:"conversationTitle"`
	SenderID          string          `json:"senderId"`
	SenderStaffID     string          `json:"senderStaffId"`
	SenderNick        string          `json:"senderNick"`
	SenderCorpID      string          `json:"senderCorpId"`
	ChatbotUserID     string          `json:"chatbotUserId"`
	ChatbotCorpID     string          `json:"chatbotCorpId"`
	RobotCode         string          `json:"robotCode"`
	IsAdmin           bool            `json:"isAdmin"`
	IsInAtList        bool            `json:"isInAtList"`
	AtUsers           []struct {
		DingtalkID string `json:"dingtalkId"`
		StaffID    string `json:"staffId"`
	} `json:"atUsers"`
	SessionWebhook            string  `json:"sessionWebhook"`
	SessionWebhookExpiredTime flexInt `json:"sessionWebhookExpiredTime"`
}

// decodePayload parses one callback body.
func decodePayload(data []byte) (callbackPayload, error) {
	var raw callbackPayload
	err := json.Unmarshal(data, &raw)
	return raw, err
}

// picturePlaceholder stands for a picture inside a richText message.
const picturePlaceholder = "[图片]"

// toMessage is the one normalisation path for stream and webhook messages.
func toMessage(raw callbackPayload) adapter.Message {
	m := adapter.Message{
		ID:                raw.MsgID,
		ConversationID:    raw.ConversationID,
		ConversationType:  adapter.ConversationType(raw.ConversationType),
		ConversationTitle: raw.ConversationTitle,
		SenderID:          raw.SenderStaffID,
		SenderStaffID:     raw.SenderStaffID,
		SenderDingTalkID:  raw.SenderID,
		SenderNick:        raw.SenderNick,
		SenderCorpID:      raw.SenderCorpID,
		AtBot:             raw.IsInAtList,
		RawType:           raw.MsgType,
		SessionWebhook:    raw.SessionWebhook,
		RobotCode:         raw.RobotCode,
	}
	if m.SenderID == "" {
		// Users outside the bot's organisation have no staffId.
		m.SenderID = raw.SenderID
	}
	for _, u := range raw.AtUsers {
		if u.StaffID == "" && u.DingtalkID == raw.ChatbotUserID {
			continue // the bot itself
		}
		if u.StaffID != "" {
			m.AtUserIDs = append(m.AtUserIDs, u.StaffID)
		} else if u.DingtalkID != "" {
			m.AtUserIDs = append(m.AtUserIDs, u.DingtalkID)
		}
	}
	if raw.SessionWebhookExpiredTime > 0 {
		m.SessionWebhookExpiry = time.UnixMilli(int64(raw.SessionWebhookExpiredTime)).UTC()
	}
	if raw.CreateAt > 0 {
		m.CreatedAt = time.UnixMilli(int64(raw.CreateAt)).UTC()
	}
	m.Kind, m.Text = kindAndText(raw)
	return m
}

func kindAndText(raw callbackPayload) (adapter.Kind, string) {
	switch raw.MsgType {
	case "text":
		// In groups DingTalk strips the @bot mention and leaves a space.
		return adapter.KindText, strings.TrimSpace(raw.Text.Content)
	case "":
		// Very old outgoing robots only sent text and some omit msgtype.
		if t := strings.TrimSpace(raw.Text.Content); t != "" {
			return adapter.KindText, t
		}
		return adapter.KindUnknown, ""
	case "richText":
		return richText(raw.Content)
	case "audio":
		var c struct {
			Recognition string `json:"recognition"`
		}
		_ = json.Unmarshal(raw.Content, &c)
		if t := strings.TrimSpace(c.Recognition); t != "" {
			return adapter.KindText, t
		}
		return adapter.KindAudio, ""
	case "picture":
		return adapter.KindPicture, ""
	case "file":
		return adapter.KindFile, ""
	case "video":
		return adapter.KindVideo, ""
	default: // unknownMsgType and anything DingTalk adds later
		return adapter.KindUnknown, ""
	}
}

// richText flattens {"richText":[{"text":…},{"type":"picture",…},…]}: text
// parts joined by newlines, pictures noted as [图片]. A richText without any
// text is a picture message.
func richText(content json.RawMessage) (adapter.Kind, string) {
	var c struct {
		RichText []struct {
			Text         *string `json:"text"`
			Type         string  `json:"type"`
			DownloadCode string  `json:"downloadCode"`
		} `json:"richText"`
	}
	if err := json.Unmarshal(content, &c); err != nil {
		return adapter.KindUnknown, ""
	}
	var parts []string
	hasText, hasPicture := false, false
	for _, item := range c.RichText {
		switch {
		case item.Text != nil && (item.Type == "" || item.Type == "text"):
			if t := strings.TrimSpace(*item.Text); t != "" {
				parts = append(parts, t)
				hasText = true
			}
		case item.Type == "picture" || item.DownloadCode != "":
			parts = append(parts, picturePlaceholder)
			hasPicture = true
		}
	}
	switch {
	case hasText:
		return adapter.KindText, strings.Join(parts, "\n")
	case hasPicture:
		return adapter.KindPicture, ""
	default:
		return adapter.KindUnknown, ""
	}
}

// flexInt is a millisecond timestamp sent as a JSON number (documented)
// or a string (the ODT table says String). null, "" and garbage are 0.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if s, ok := plainString(b); ok {
		b = []byte(strings.TrimSpace(s))
	} else if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(s))
	}
	s := string(b)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*f = flexInt(n)
		return nil
	}
	if x, err := strconv.ParseFloat(s, 64); err == nil {
		*f = flexInt(x)
		return nil
	}
	*f = 0 // tolerate: a bad timestamp must not lose the message
	return nil
}

// flexString is a string field that some senders write as a number
// (conversationType 1 instead of "1").
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if s, ok := plainString(b); ok {
		*f = flexString(s)
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	if string(b) == "null" {
		*f = ""
		return nil
	}
	*f = flexString(b)
	return nil
}

// plainString is the value of the JSON string literal b when it has no
// escapes and is valid UTF-8, as json.Unmarshal would decode it, without
// a nested decoder (the flex types' common case: "1", "1700000000000").
// b is a valid JSON value: the outer decoder checked the whole document.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	in := b[1 : len(b)-1]
	if bytes.IndexByte(in, '\\') >= 0 || !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}
