// Package desk is the agents' desk inside DingTalk: an agent's 1:1 chat
// with the bot carries commands (上线, 列表, #12, 结束, 转接, 搜索, 常用语,
// 推荐, 帮助 — the words are configurable under desk.*) and replies to
// users. It parses and answers; every effect goes through the hand-off
// engine, so state stays in storage and replicas agree.
package desk

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/storage"
	"gorm.io/gorm"
)

// Desk handles agents' messages.
type Desk struct {
	engine *handoff.Engine
	config *config.Store
	bot    *bot.Bot
	db     *storage.DB
	now    func() time.Time
}

// New builds the desk.
func New(e *handoff.Engine, cfg *config.Store, b *bot.Bot, db *storage.DB, now func() time.Time) *Desk {
	if now == nil {
		now = time.Now
	}
	return &Desk{engine: e, config: cfg, bot: b, db: db, now: now}
}

// agentErrors are shown to the agent as they are; other errors are internal
// and make the pipeline retry the message.
var agentErrors = []error{
	handoff.ErrNotAgent, handoff.ErrUnknownSession, handoff.ErrSessionEnded, handoff.ErrNoCurrentSession,
	handoff.ErrUnknownGroup, handoff.ErrGroupClosed, handoff.ErrNoAgentOnline, handoff.ErrNoQuestion,
	handoff.ErrEmptyText, errUsage,
}

var errUsage = errors.New("usage")

// Handle runs one agent message. The command runs first and the message is
// marked handled afterwards: a crash in between repeats the command on
// restart rather than losing an agent's reply to a user.
func (d *Desk) Handle(ctx context.Context, msg adapter.Message) error {
	if err := d.engine.NoteAgentChat(ctx, msg); err != nil {
		return err
	}
	reply, err := d.run(ctx, msg)
	if err != nil {
		for _, known := range agentErrors {
			if errors.Is(err, known) {
				reply, err = "⚠️ "+strings.TrimPrefix(err.Error(), "usage: "), nil
				break
			}
		}
	}
	if err != nil {
		return err
	}
	if reply != "" {
		if err := d.engine.SendToAgent(ctx, msg.SenderStaffID, reply); err != nil {
			return err
		}
	}
	return d.db.Tx(ctx, func(tx *gorm.DB) error { return storage.MarkHandled(tx, msg.ID, d.now()) })
}

func usage(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// run executes the command in msg and returns the text for the agent ("":
// nothing to say, e.g. a relayed reply).
func (d *Desk) run(ctx context.Context, msg adapter.Message) (string, error) {
	cfg := d.config.Current()
	w := cfg.Desk
	me := msg.SenderStaffID
	if msg.Kind != adapter.KindText {
		return "客服台只支持文字：请用文字回复用户或输入“" + w.Help + "”查看命令。", nil
	}
	text := strings.TrimSpace(msg.Text)
	cmd, rest := splitWord(text)
	switch {
	case text == w.Online:
		return d.presence(ctx, me, handoff.Online)
	case text == w.Offline:
		return d.presence(ctx, me, handoff.Offline)
	case text == w.Busy:
		return d.presence(ctx, me, handoff.Busy)
	case text == w.List:
		return d.list(ctx, me)
	case text == w.Help:
		return help(cfg), nil
	case cmd == w.End:
		no, _, err := sessionArg(rest, true)
		if err != nil {
			return "", usage("用法：%s 或 %s #编号", w.End, w.End)
		}
		s, err := d.engine.End(ctx, me, no)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("已结束会话 #%d（%s）。", s.No, s.UserNick), nil
	case cmd == w.Transfer:
		no, group, err := sessionArg(rest, false)
		if err != nil || group == "" {
			return "", usage("用法：%s #编号 技能组（可用：%s）", w.Transfer, groupNames(cfg))
		}
		mv, err := d.engine.Transfer(ctx, me, no, resolveGroup(cfg, group))
		if err != nil {
			return "", err
		}
		if mv.To.Status == handoff.StatusQueued {
			return fmt.Sprintf("会话 #%d（%s）已转到%s，排队第 %d 位。", mv.From.No, mv.From.UserNick, mv.To.GroupDisplay, mv.To.Position), nil
		}
		return fmt.Sprintf("会话 #%d（%s）已转接给%s的 %s。", mv.From.No, mv.From.UserNick, mv.To.GroupDisplay, mv.To.AgentName), nil
	case cmd == w.Search:
		if rest == "" {
			return "", usage("用法：%s 关键词", w.Search)
		}
		return d.search(rest), nil
	case cmd == w.Canned:
		if rest == "" {
			return cannedList(cfg), nil
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 || n > len(cfg.CannedReplies) {
			return "", usage("没有常用语 %s（共 %d 条，输入“%s”查看）", rest, len(cfg.CannedReplies), w.Canned)
		}
		return d.relay(ctx, me, 0, cfg.CannedReplies[n-1].Text)
	case cmd == w.Suggest:
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 {
			return "", usage("用法：%s 编号（见新会话通知里的推荐知识）", w.Suggest)
		}
		_, _, sugg, err := d.engine.Suggestions(ctx, me, 0)
		if err != nil {
			return "", err
		}
		if n > len(sugg) {
			return "", usage("没有推荐 %d（当前会话有 %d 条推荐）", n, len(sugg))
		}
		return d.relay(ctx, me, 0, sugg[n-1].Answer)
	case strings.HasPrefix(text, "#"):
		no, body, err := sessionArg(text, false)
		if err != nil {
			return "", usage("会话编号写作 #12")
		}
		if body == "" {
			s, err := d.engine.SetCurrent(ctx, me, no)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("当前会话：#%d %s（%s）。直接输入文字即可回复。", s.No, s.UserNick, s.GroupDisplay), nil
		}
		return d.relay(ctx, me, no, body)
	default:
		return d.relay(ctx, me, 0, text)
	}
}

// relay sends text to the user of session no (0: current).
func (d *Desk) relay(ctx context.Context, me string, no int, text string) (string, error) {
	_, err := d.engine.AgentReply(ctx, me, no, text)
	return "", err
}

func (d *Desk) presence(ctx context.Context, me string, p handoff.Presence) (string, error) {
	res, err := d.engine.SetPresence(ctx, me, p)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	switch p {
	case handoff.Online:
		b.WriteString("✅ 已上线，开始接待。")
		if n := countMine(res.Assigned, me); n > 0 {
			fmt.Fprintf(&b, "已为您接入 %d 位排队用户。", n)
		}
	case handoff.Busy:
		b.WriteString("⏸ 已设为忙碌：保留当前会话，不再接新会话。")
	case handoff.Offline:
		b.WriteString("已下线。")
		if len(res.Moved) > 0 {
			fmt.Fprintf(&b, "您的 %d 个会话已交接：", len(res.Moved))
			for _, mv := range res.Moved {
				if mv.To.Status == handoff.StatusQueued {
					fmt.Fprintf(&b, "\n#%d %s → %s 排队第 %d 位", mv.From.No, mv.From.UserNick, mv.To.GroupDisplay, mv.To.Position)
				} else {
					fmt.Fprintf(&b, "\n#%d %s → %s", mv.From.No, mv.From.UserNick, mv.To.AgentName)
				}
			}
		}
	}
	return b.String(), nil
}

func countMine(ss []handoff.Session, me string) int {
	n := 0
	for _, s := range ss {
		if s.Agent == me {
			n++
		}
	}
	return n
}

func (d *Desk) list(ctx context.Context, me string) (string, error) {
	v, err := d.engine.Sessions(ctx, me)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "状态：%s", presenceName(v.Presence))
	if len(v.Sessions) == 0 {
		b.WriteString("\n当前没有会话。")
	}
	for _, s := range v.Sessions {
		where := "单聊"
		if s.ConversationType == adapter.Group {
			where = s.ConversationTitle
		}
		mark := ""
		if s.No == v.Current {
			mark = "（当前）"
		}
		fmt.Fprintf(&b, "\n#%d %s · %s · %s%s", s.No, s.UserNick, where, s.GroupDisplay, mark)
	}
	for _, q := range v.Queues {
		fmt.Fprintf(&b, "\n排队：%s %d 人", q.Display, q.Length)
	}
	return b.String(), nil
}

func presenceName(p handoff.Presence) string {
	switch p {
	case handoff.Online:
		return "在线"
	case handoff.Busy:
		return "忙碌"
	default:
		return "离线"
	}
}

// search lists the best knowledge matches with their answers.
func (d *Desk) search(words string) string {
	kb := d.bot.KB()
	res := kb.Match(words)
	var b strings.Builder
	n := 0
	for _, c := range res.Candidates {
		e, ok := kb.Entry(c.ID)
		if !ok || c.Score <= 0 {
			continue
		}
		n++
		fmt.Fprintf(&b, "\n%d. %s\n   %s", n, e.Question, e.Answer)
		if n == 3 {
			break
		}
	}
	if n == 0 {
		return "知识库里没有找到“" + words + "”相关的内容。"
	}
	return "搜索“" + words + "”：" + b.String()
}

func cannedList(cfg *config.Config) string {
	if len(cfg.CannedReplies) == 0 {
		return "还没有配置常用语（canned_replies）。"
	}
	var b strings.Builder
	b.WriteString("常用语（输入“" + cfg.Desk.Canned + " 编号”发送给当前用户）：")
	last := "\x00"
	for i, c := range cfg.CannedReplies {
		if c.Category != last {
			cat := c.Category
			if cat == "" {
				cat = "其他"
			}
			fmt.Fprintf(&b, "\n【%s】", cat)
			last = c.Category
		}
		fmt.Fprintf(&b, "\n%d. %s", i+1, c.Text)
	}
	return b.String()
}

func help(cfg *config.Config) string {
	w := cfg.Desk
	return strings.Join([]string{
		"客服台命令：",
		w.Online + " / " + w.Offline + " / " + w.Busy + "：设置状态",
		w.List + "：我的会话和排队人数",
		"#编号：切换当前会话；#编号 内容：回复该会话",
		"直接输入文字：回复当前会话",
		w.End + " 或 " + w.End + " #编号：结束会话",
		w.Transfer + " #编号 技能组：转接（" + groupNames(cfg) + "）",
		w.Search + " 关键词：查知识库",
		w.Suggest + " 编号：把推荐知识发给当前用户",
		w.Canned + " / " + w.Canned + " 编号：查看 / 发送常用语",
	}, "\n")
}

func groupNames(cfg *config.Config) string {
	names := make([]string, len(cfg.SkillGroups))
	for i, g := range cfg.SkillGroups {
		names[i] = g.Name
		if g.DisplayName != g.Name {
			names[i] += "=" + g.DisplayName
		}
	}
	return strings.Join(names, "、")
}

// resolveGroup accepts a group's name or its display name.
func resolveGroup(cfg *config.Config, s string) string {
	for _, g := range cfg.SkillGroups {
		if g.Name == s || g.DisplayName == s {
			return g.Name
		}
	}
	return s
}

// splitWord cuts the first word (up to a space) off text.
func splitWord(text string) (string, string) {
	w, rest, _ := strings.Cut(text, " ")
	return w, strings.TrimSpace(rest)
}

// sessionArg reads an optional leading "#N" and what follows. With
// optional, an empty s means the current session (0).
func sessionArg(s string, optional bool) (no int, rest string, err error) {
	s = strings.TrimSpace(s)
	if s == "" && optional {
		return 0, "", nil
	}
	if !strings.HasPrefix(s, "#") && !strings.HasPrefix(s, "＃") {
		if optional {
			return 0, "", errUsage
		}
		return 0, s, nil // 转接 技能组: the current session
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "#"), "＃")
	digits := 0
	for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
		digits++
	}
	if digits == 0 {
		return 0, "", errUsage
	}
	no, err = strconv.Atoi(s[:digits])
	if err != nil || no < 1 {
		return 0, "", errUsage
	}
	return no, strings.TrimSpace(s[digits:]), nil
}
