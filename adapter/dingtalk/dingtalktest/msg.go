package dingtalktest

import (
	"encoding/json"
	"fmt"
	"time"
)

// Conversation types, as DingTalk spells them.
const (
	Private = "1"
	Group   = "2"
)

// DefaultSessionTTL is the sessionWebhook lifetime seen in the official
// examples (sessionWebhookExpiredTime - createAt ≈ 5 400 000 ms).
const DefaultSessionTTL = 90 * time.Minute

// Msg describes one inbound user message. Zero fields get defaults, listed
// per field; Payload turns it into the callback JSON DingTalk would send.
type Msg struct {
	// MsgID is the payload's msgId. Default: random, unique ("msg…==").
	MsgID string
	// ConversationID defaults to "cid-private-<sender>" in private chats
	// (sender = SenderStaffID, else SenderID) and "cid-group-0" in groups.
	ConversationID string
	// ConversationType is Private "1" (default) or Group "2".
	ConversationType string
	// ConversationTitle is sent in groups only. Default "Test Group".
	ConversationTitle string
	// SenderStaffID is the userId in the org; "" models an external user
	// (DingTalk sends an empty senderStaffId then). No default.
	SenderStaffID string
	// SenderID defaults to "$:LWCP_v1:$" + random.
	SenderID string
	// SenderNick defaults to "Test User".
	SenderNick string
	// SenderCorpID defaults to the Server's CorpID when SenderStaffID is set.
	SenderCorpID string
	IsAdmin      bool
	// MsgType is "text" (default), "richText", "picture", "audio", "video",
	// "file", "unknownMsgType" or anything else.
	MsgType string
	// Text is text.content for text messages. In groups mentioning the bot
	// the fake prepends the space DingTalk leaves after stripping the
	// @mention (" 你好"). For audio and richText without Content it becomes
	// the recognition / the rich text's text.
	Text string
	// Content is marshalled as "content" for non-text types. Nil gets a
	// realistic default for the known types.
	Content any
	// NotAtBot marks a group message that does not @ the bot (isInAtList
	// false, no bot in atUsers, no leading space). DingTalk does not deliver
	// such messages, so this is only for testing the adapter's filter.
	// Ignored in private chats, whose payloads carry no isInAtList at all.
	NotAtBot bool
	// AtUsers are further mentions in a group, appended after the bot.
	AtUsers []AtUser
	// CreateAt defaults to now.
	CreateAt time.Time
	// SessionTTL defaults to DefaultSessionTTL (90 min);
	// sessionWebhookExpiredTime = CreateAt + SessionTTL, and the session
	// answers 300001 after that.
	SessionTTL time.Duration
	// Extra sets or overrides top-level payload keys after everything else
	// (a nil value deletes the key), e.g. {"robotCode": "normal"}.
	Extra map[string]any
}

// AtUser is one entry of atUsers.
type AtUser struct {
	DingtalkID string `json:"dingtalkId"`
	StaffID    string `json:"staffId,omitempty"`
}

// payload is the callback body, in the key order of the official examples.
type payload struct {
	ConversationID            string   `json:"conversationId"`
	AtUsers                   []AtUser `json:"atUsers,omitempty"`
	ChatbotCorpID             string   `json:"chatbotCorpId"`
	ChatbotUserID             string   `json:"chatbotUserId"`
	MsgID                     string   `json:"msgId"`
	SenderNick                string   `json:"senderNick"`
	IsAdmin                   bool     `json:"isAdmin"`
	SenderStaffID             string   `json:"senderStaffId"`
	SessionWebhookExpiredTime int64    `json:"sessionWebhookExpiredTime"`
	CreateAt                  int64    `json:"createAt"`
	SenderCorpID              string   `json:"senderCorpId,omitempty"`
	ConversationType          string   `json:"conversationType"`
	SenderID                  string   `json:"senderId"`
	ConversationTitle         string   `json:"conversationTitle,omitempty"`
	IsInAtList                *bool    `json:"isInAtList,omitempty"`
	SessionWebhook            string   `json:"sessionWebhook"`
	AIRobotSessionID          *string  `json:"ai_robot_sessionid,omitempty"`
	Text                      *struct {
		Content string `json:"content"`
	} `json:"text,omitempty"`
	RobotCode string `json:"robotCode"`
	MsgType   string `json:"msgtype"`
	Content   any    `json:"content,omitempty"`
}

// session is one sessionWebhook minted by Payload.
type session struct {
	conversationID string
	expires        time.Time
	expired        bool
}

// Payload builds the callback JSON for m (the body of an HTTP-mode callback
// and the data string of a stream CALLBACK frame) and registers a fresh
// sessionWebhook, s.URL+"/robot/sendBySession?session=<token>", valid until
// CreateAt+SessionTTL. It returns the payload's msgId.
func (s *Server) Payload(m Msg) (msgID string, body []byte) {
	p := s.buildPayload(m)
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("dingtalktest: marshal payload: %v", err))
	}
	if len(m.Extra) > 0 {
		var obj map[string]any
		if err := json.Unmarshal(b, &obj); err != nil {
			panic(fmt.Sprintf("dingtalktest: payload round trip: %v", err))
		}
		for k, v := range m.Extra {
			if v == nil {
				delete(obj, k)
			} else {
				obj[k] = v
			}
		}
		if b, err = json.Marshal(obj); err != nil {
			panic(fmt.Sprintf("dingtalktest: marshal payload extras: %v", err))
		}
	}
	return p.MsgID, b
}

// SessionFor returns the session token minted for the message with that
// msgId ("" if none), for ExpireSession.
func (s *Server) SessionFor(msgID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessionByMsg[msgID]
}

func (s *Server) buildPayload(m Msg) *payload {
	if m.MsgID == "" {
		m.MsgID = "msg" + randB64(16)
	}
	if m.ConversationType == "" {
		m.ConversationType = Private
	}
	if m.SenderID == "" {
		m.SenderID = "$:LWCP_v1:$" + randB64(24)
	}
	group := m.ConversationType == Group
	if m.ConversationID == "" {
		if group {
			m.ConversationID = "cid-group-0"
		} else {
			sender := m.SenderStaffID
			if sender == "" {
				sender = m.SenderID
			}
			m.ConversationID = "cid-private-" + sender
		}
	}
	if m.SenderNick == "" {
		m.SenderNick = "Test User"
	}
	if m.SenderCorpID == "" && m.SenderStaffID != "" {
		m.SenderCorpID = s.CorpID
	}
	if m.MsgType == "" {
		m.MsgType = "text"
	}
	if m.CreateAt.IsZero() {
		m.CreateAt = time.Now()
	}
	if m.SessionTTL <= 0 {
		m.SessionTTL = DefaultSessionTTL
	}
	expires := m.CreateAt.Add(m.SessionTTL)

	token := randHex(16)
	s.mu.Lock()
	s.sessions[token] = &session{conversationID: m.ConversationID, expires: expires}
	s.sessionByMsg[m.MsgID] = token
	s.mu.Unlock()

	p := &payload{
		ConversationID:            m.ConversationID,
		ChatbotCorpID:             s.CorpID,
		ChatbotUserID:             s.BotUserID,
		MsgID:                     m.MsgID,
		SenderNick:                m.SenderNick,
		IsAdmin:                   m.IsAdmin,
		SenderStaffID:             m.SenderStaffID,
		SessionWebhookExpiredTime: expires.UnixMilli(),
		CreateAt:                  m.CreateAt.UnixMilli(),
		SenderCorpID:              m.SenderCorpID,
		ConversationType:          m.ConversationType,
		SenderID:                  m.SenderID,
		SessionWebhook:            s.URL + "/robot/sendBySession?session=" + token,
		RobotCode:                 s.ClientID,
		MsgType:                   m.MsgType,
	}
	atBot := false
	if group {
		atBot = !m.NotAtBot
		p.IsInAtList = &atBot
		p.ConversationTitle = m.ConversationTitle
		if p.ConversationTitle == "" {
			p.ConversationTitle = "Test Group"
		}
		if atBot {
			p.AtUsers = append(p.AtUsers, AtUser{DingtalkID: s.BotUserID})
		}
		p.AtUsers = append(p.AtUsers, m.AtUsers...)
	}
	if m.MsgType == "text" {
		text := m.Text
		if atBot {
			text = " " + text
		}
		p.Text = &struct {
			Content string `json:"content"`
		}{Content: text}
		return p
	}
	p.Content = m.Content
	if p.Content == nil {
		p.Content = defaultContent(m.MsgType, m.Text)
	}
	if m.MsgType == "unknownMsgType" {
		empty := ""
		p.AIRobotSessionID = &empty
	}
	return p
}

// defaultContent mirrors the shapes of the official examples (§2.1).
func defaultContent(msgType, text string) any {
	code := func() string { return randB64(18) }
	switch msgType {
	case "picture":
		return map[string]string{"pictureDownloadCode": code(), "downloadCode": code()}
	case "video":
		return map[string]string{"duration": "5", "videoType": "mp4", "downloadCode": code()}
	case "audio":
		return map[string]string{"downloadCode": code(), "recognition": text}
	case "file":
		return map[string]string{"spaceId": "223573", "fileName": "foobar.zip", "downloadCode": code(), "fileId": "117848"}
	case "richText":
		if text == "" {
			text = "rich text"
		}
		return map[string]any{"richText": []map[string]string{
			{"text": text},
			{"type": "picture", "pictureDownloadCode": code(), "downloadCode": code()},
		}}
	case "unknownMsgType":
		return map[string]string{"unknownMsgType": "用户发送了一条消息，机器人暂不支持接收。"}
	}
	return nil
}
