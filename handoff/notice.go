package handoff

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/storage"
)

// fill puts the queue position and the agent's name into a service-rule
// text ({position}, {agent}).
func fill(text string, position int, agent string) string {
	if position > 0 {
		text = strings.ReplaceAll(text, "{position}", strconv.Itoa(position))
	}
	return strings.ReplaceAll(text, "{agent}", agent)
}

// kindLabel shows a non-text message to an agent.
func kindLabel(k adapter.Kind) string {
	switch k {
	case adapter.KindPicture:
		return "[图片]"
	case adapter.KindFile:
		return "[文件]"
	case adapter.KindVideo:
		return "[视频]"
	case adapter.KindAudio:
		return "[语音]"
	case adapter.KindText, "":
		return ""
	}
	return "[暂不支持的消息]"
}

func nick(n, userID string) string {
	if n != "" {
		return n
	}
	return userID
}

// relayText is a user message as the agent sees it: "#12 张三：…".
func relayText(s *storage.HandoffSessionRow, msg adapter.Message) string {
	text := strings.TrimSpace(msg.Text)
	if l := kindLabel(msg.Kind); l != "" {
		text = strings.TrimSpace(l + " " + text)
	}
	return fmt.Sprintf("#%d %s：%s", s.AgentNo, nick(s.Nick, s.UserID), text)
}

var reasonText = map[string]string{
	string(ReasonNoAnswer):  "机器人多次未能回答",
	string(ReasonKeyword):   "用户要求转人工",
	string(ReasonKBHandoff): "问题需要人工处理",
	string(ReasonHumanOnly): "人工服务会话",
	string(ReasonTransfer):  "转接",
}

// newSessionNotice tells an agent about a session just assigned: who, where,
// which group, the recent transcript and the knowledge base's suggestions
// for the user's last question (推荐知识).
func (o *op) newSessionNotice(conv *storage.HandoffConversationRow, s *storage.HandoffSessionRow) string {
	var b strings.Builder
	title := s.ConversationTitle
	if adapter.ConversationType(s.ConversationType) != adapter.Group || title == "" {
		title = "单聊"
	}
	display := s.GroupName
	if g, ok := o.cfg.Group(s.GroupName); ok {
		display = g.DisplayName
	}
	head := "新会话"
	if s.Reason == string(ReasonTransfer) {
		head = "转接会话"
	}
	fmt.Fprintf(&b, "【%s #%d】%s · %s · 技能组 %s", head, s.AgentNo, nick(s.Nick, s.UserID), title, display)
	why := reasonText[s.Reason]
	if s.Reason == string(ReasonTransfer) && s.FromAgent != "" {
		why = "由 " + o.agentName(s.FromAgent) + " 转接"
	}
	if why != "" {
		fmt.Fprintf(&b, "\n原因：%s", why)
	}
	if n := o.cfg.Desk.TranscriptLines; n > 0 {
		lines, err := o.tx.LastMessages(s.UserKey, n)
		if err != nil {
			o.e.log.Warn("transcript for notice", "err", err)
		}
		lines = append(lines, o.pending(s.UserKey)...)
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		if len(lines) > 0 {
			b.WriteString("\n—— 最近消息 ——")
			for _, l := range lines {
				fmt.Fprintf(&b, "\n%s：%s", o.speaker(l, s), clip(lineText(l), 200))
			}
		}
	}
	if sug := o.e.suggestions(conv.LastQuestion, 3); len(sug) > 0 {
		fmt.Fprintf(&b, "\n—— 推荐知识（发送“%s 编号”回复用户）——", o.cfg.Desk.Suggest)
		for _, x := range sug {
			fmt.Fprintf(&b, "\n%d. %s\n   %s", x.N, x.Question, clip(x.Answer, 120))
		}
	}
	fmt.Fprintf(&b, "\n回复“#%d 内容”或直接发送文字即可回复该用户。", s.AgentNo)
	return b.String()
}

func lineText(l storage.HandoffMessageRow) string {
	text := l.Text
	if lbl := kindLabel(adapter.Kind(l.Kind)); lbl != "" && l.Direction == storage.DirIn {
		text = strings.TrimSpace(lbl + " " + text)
	}
	return text
}

func (o *op) speaker(l storage.HandoffMessageRow, s *storage.HandoffSessionRow) string {
	switch l.SenderKind {
	case storage.SenderUser:
		return nick(l.SenderName, s.UserID)
	case storage.SenderAgent:
		return "客服 " + l.SenderName
	case storage.SenderBot:
		return "机器人"
	}
	return "系统"
}

// agentName is a member's display name from the config, or the staffId.
func (o *op) agentName(staffID string) string {
	for _, g := range o.cfg.SkillGroups {
		if m, ok := o.cfg.Member(g.Name, staffID); ok {
			return m.Name
		}
	}
	return staffID
}

var endText = map[EndReason]string{
	EndUser: "用户结束了会话",
	EndIdle: "用户长时间未回复，会话已自动结束",
}

// endNotice tells an agent that a session ended without them.
func endNotice(s *storage.HandoffSessionRow, why EndReason) string {
	t, ok := endText[why]
	if !ok {
		t = "会话已结束"
	}
	return fmt.Sprintf("【会话结束 #%d】%s：%s", s.AgentNo, nick(s.Nick, s.UserID), t)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
