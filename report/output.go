package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// Names turns keys into what people read: a skill group's display name.
// A nil map prints the keys.
type Names map[string]string

func (n Names) of(k string) string {
	if v, ok := n[k]; ok && v != "" {
		return v
	}
	return k
}

// Reasons in column order (handoff.Reason values).
var reasons = []string{"no_answer", "keyword", "kb_handoff", "human_only", ReasonTransfer}

// csvHeader is the per-row CSV header (one row per period × group × agent).
var csvHeader = []string{
	"日期", "技能组", "客服ID", "客服",
	"会话量", "机器人独立解决", "机器人解决占比",
	"机器人问题数", "直接回答", "澄清", "无答案", "回答率", "澄清率", "无答案率",
	"转人工", "转人工_无答案", "转人工_关键词", "转人工_知识条目", "转人工_仅人工", "转接",
	"人工会话", "已接入", "排队放弃", "服务客服数", "人均会话",
	"排队等待均值秒", "排队等待P90秒", "首次响应均值秒", "首次响应P90秒", "处理时长均值秒", "处理时长P90秒",
	"满意度邀评", "满意度评价数", "满意度参评率", "满意度均分",
	"1分", "2分", "3分", "4分", "5分",
}

// WriteCSV writes the rows (and a last 合计 row) as CSV with a UTF-8 BOM,
// so Excel opens the Chinese headers correctly.
func WriteCSV(w io.Writer, rep *Report, groups Names) error {
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	rows := append(append([]Row(nil), rep.Rows...), rep.Total)
	for i, r := range rows {
		period, group, agent := r.Period, groups.of(r.Group), r.Agent
		if i == len(rows)-1 {
			period, group, agent = "合计", "", ""
		}
		if group == "" && rep.Options.ByGroup && i < len(rows)-1 {
			group = "全部"
		}
		if err := cw.Write(csvRow(period, group, agent, r)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvRow(period, group, agent string, r Row) []string {
	m := r.Metrics
	name := r.AgentName
	if agent == UnassignedAgent {
		name = "未接入"
	}
	out := []string{period, group, agent, name}
	if r.Group == "" && r.Agent == "" {
		out = append(out, itoa(m.Conversations), itoa(m.BotOnly), pct(m.BotShare()),
			itoa(m.Questions), itoa(m.Answered), itoa(m.Clarified), itoa(m.NoAnswer),
			pct(m.AnswerRate()), pct(m.ClarifyRate()), pct(m.NoAnswerRate()))
	} else {
		// The bot answers before a group is chosen: its figures are on the
		// period's total row, not split.
		out = append(out, make([]string, 10)...)
	}
	out = append(out, itoa(m.Handoffs))
	for _, rs := range reasons {
		out = append(out, itoa(m.ByReason[rs]))
	}
	out = append(out, itoa(m.Sessions), itoa(m.Served), itoa(m.Abandoned), itoa(m.Agents), num(m.SessionsPerAgent()),
		secs(m.QueueWait.Mean, m.QueueWait.N), secs(m.QueueWait.P90, m.QueueWait.N),
		secs(m.FirstResponse.Mean, m.FirstResponse.N), secs(m.FirstResponse.P90, m.FirstResponse.N),
		secs(m.Handling.Mean, m.Handling.N), secs(m.Handling.P90, m.Handling.N),
		itoa(m.Satisfaction.Prompted), itoa(m.Satisfaction.Rated), pct(m.Satisfaction.ResponseRate()), num(m.Satisfaction.Mean()))
	for _, n := range m.Satisfaction.Dist {
		out = append(out, itoa(n))
	}
	return out
}

// sessionHeader is the per-session CSV header.
var sessionHeader = []string{"会话ID", "创建时间", "用户ID", "昵称", "技能组", "转人工原因", "客服ID", "客服",
	"接入时间", "结束时间", "结束原因", "排队等待秒", "首次响应秒", "处理时长秒", "用户消息数", "客服回复数", "满意度邀评", "满意度"}

// WriteSessionsCSV writes one row per session.
func WriteSessionsCSV(w io.Writer, sessions []Session, loc *time.Location, groups Names) error {
	if loc == nil {
		loc = time.UTC
	}
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(sessionHeader); err != nil {
		return err
	}
	at := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format(time.DateTime)
	}
	since := func(a, b time.Time) string {
		if a.IsZero() || b.IsZero() {
			return ""
		}
		return strconv.FormatFloat(max(b.Sub(a), 0).Seconds(), 'f', 0, 64)
	}
	for _, s := range sessions {
		wait := since(s.CreatedAt, s.AssignedAt)
		if s.AssignedAt.IsZero() {
			wait = since(s.CreatedAt, s.EndedAt) // waited, then left
		}
		score := ""
		if s.Score > 0 {
			score = itoa(s.Score)
		}
		prompted := "否"
		if s.Prompted {
			prompted = "是"
		}
		rec := []string{strconv.FormatInt(s.ID, 10), at(s.CreatedAt), s.UserID, s.Nick, groups.of(s.Group), s.Reason, s.Agent, s.AgentName,
			at(s.AssignedAt), at(s.EndedAt), s.EndReason, wait, since(s.AssignedAt, s.FirstReplyAt), since(s.AssignedAt, s.EndedAt),
			itoa(s.UserMessages), itoa(s.AgentReplies), prompted, score}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes the main figures as an aligned text table for a
// terminal.
func WriteTable(w io.Writer, rep *Report, groups Names) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "period\tgroup\tagent\tconv\tbot%\tquestions\tanswer%\tclarify%\tno-answer%\thandoffs\tsessions\tserved\twait(avg/p90)\tfirst-resp(avg/p90)\thandling(avg)\trating(n/avg)\t")
	rows := append(append([]Row(nil), rep.Rows...), rep.Total)
	for i, r := range rows {
		period, group, agent := r.Period, groups.of(r.Group), r.Agent
		if i == len(rows)-1 {
			period, group, agent = "total", "", ""
		}
		if r.AgentName != "" {
			agent = r.AgentName
		}
		m := r.Metrics
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s/%s\t%s/%s\t%s\t%d/%s\t\n",
			dash(period), dash(group), dash(agent), m.Conversations, pct(m.BotShare()), m.Questions,
			pct(m.AnswerRate()), pct(m.ClarifyRate()), pct(m.NoAnswerRate()), m.Handoffs, m.Sessions, m.Served,
			dur(m.QueueWait.Mean, m.QueueWait.N), dur(m.QueueWait.P90, m.QueueWait.N),
			dur(m.FirstResponse.Mean, m.FirstResponse.N), dur(m.FirstResponse.P90, m.FirstResponse.N),
			dur(m.Handling.Mean, m.Handling.N), m.Satisfaction.Rated, num(m.Satisfaction.Mean()))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }

func pct(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }

func num(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

func secs(d time.Duration, n int) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 0, 64)
}

func dur(d time.Duration, n int) string {
	if n == 0 {
		return "-"
	}
	return d.Round(time.Second).String()
}
