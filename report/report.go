// Package report computes the service reports admins judge the service by:
// per day or week, per skill group and agent — conversations, how much the
// bot answered, clarify and no-answer rates, hand-offs by reason, queue
// wait, first response and handling times, sessions per agent and
// satisfaction — from what the engine stores, plus CSV and table output.
//
// Definitions (each a column of the CSV):
//   - A conversation is a user on a day with a bot question or a
//     hand-off session; the bot's share is the conversations of the day
//     that had no hand-off session.
//   - Bot questions are the engine's bot turns (storage bot_turns): answer,
//     clarify ("您是不是想问") or none (无答案); rates are shares of them.
//   - Hand-offs are sessions opened from the bot, by reason; transfers
//     (an agent's 转接, or an agent going offline) open sessions too and
//     are counted apart.
//   - Queue wait: created → assigned, for sessions an agent took (0 when
//     nobody queued); abandoned sessions ended in the queue.
//   - First response: assigned → the agent's first message to the user.
//   - Handling time: assigned → ended.
//   - Satisfaction: prompts sent when a human session ended, ratings 1–5
//     given; the response rate is ratings / prompts.
//
// Everything is attributed to the local day (Options.Location) the session
// was created or the question asked.
package report

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// Session is one hand-off session as the reports need it.
type Session struct {
	ID        int64
	UserKey   string
	UserID    string
	Nick      string
	Group     string
	Agent     string // staffId; "" when no agent took it
	AgentName string
	Reason    string // handoff reason: no_answer, keyword, kb_handoff, human_only, transfer
	EndReason string
	CreatedAt time.Time
	// AssignedAt, EndedAt, FirstReplyAt are zero when it did not happen.
	AssignedAt   time.Time
	EndedAt      time.Time
	FirstReplyAt time.Time
	UserMessages int
	AgentReplies int
	// Prompted: the user was asked for a rating; Score is 1–5 when given,
	// else 0.
	Prompted bool
	Score    int
}

// Turn is one question the bot handled.
type Turn struct {
	UserKey string
	Outcome string // answer, clarify, none
	At      time.Time
}

// Bot outcomes as stored.
const (
	OutcomeAnswer  = "answer"
	OutcomeClarify = "clarify"
	OutcomeNone    = "none"
)

// ReasonTransfer is the reason of sessions a transfer opened.
const ReasonTransfer = "transfer"

// Store reads what the engine recorded in [from, to).
type Store interface {
	// Sessions calls fn for each session created in [from, to), in id order.
	Sessions(ctx context.Context, from, to time.Time, fn func(Session) error) error
	// Turns calls fn for each bot turn in [from, to).
	Turns(ctx context.Context, from, to time.Time, fn func(Turn) error) error
}

// Period is how rows are split in time.
type Period string

const (
	None  Period = ""     // the whole range in one
	Day   Period = "day"  // 2026-12-06
	Week  Period = "week" // ISO week, 2026-W49
	Month Period = "month"
)

// Options choose a report's rows.
type Options struct {
	// From and To are local dates, both included.
	From, To time.Time
	Location *time.Location // Asia/Shanghai when nil
	Period   Period
	ByGroup  bool
	ByAgent  bool
}

// Key identifies a row. Empty Group/Agent is "all" (the split was not
// asked for); UnassignedAgent marks sessions no agent took.
type Key struct {
	Period string
	Group  string
	Agent  string
}

// UnassignedAgent is the Agent key of sessions that never reached an agent.
const UnassignedAgent = "-"

// Stat summarises durations.
type Stat struct {
	N    int
	Mean time.Duration
	P90  time.Duration
	vals []time.Duration
}

func (s *Stat) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	s.vals = append(s.vals, d)
}

func (s *Stat) finish() {
	s.N = len(s.vals)
	if s.N == 0 {
		return
	}
	slices.Sort(s.vals)
	var sum time.Duration
	for _, v := range s.vals {
		sum += v
	}
	s.Mean = sum / time.Duration(s.N)
	// Nearest rank: the smallest value with at least 90 % at or below it.
	rank := (s.N*90 + 99) / 100
	s.P90 = s.vals[rank-1]
	s.vals = nil
}

// Satisfaction summarises ratings.
type Satisfaction struct {
	Prompted int
	Rated    int
	Sum      int
	Dist     [5]int // ratings 1…5
}

// ResponseRate is Rated / Prompted.
func (s Satisfaction) ResponseRate() float64 { return ratio(s.Rated, s.Prompted) }

// Mean is the mean rating (0 without ratings).
func (s Satisfaction) Mean() float64 { return ratio(s.Sum, s.Rated) }

// Metrics are one row's figures.
type Metrics struct {
	// Bot figures are filled on rows not split by group or agent (the bot
	// answers before any group is chosen).
	Conversations int
	BotOnly       int // conversations without a hand-off session
	Questions     int
	Answered      int
	Clarified     int
	NoAnswer      int

	Handoffs  int            // sessions opened from the bot
	ByReason  map[string]int // every session by reason (transfers included)
	Transfers int
	Sessions  int // all sessions
	Served    int // an agent took it
	Abandoned int // ended while queued
	Agents    int // distinct agents who served

	QueueWait     Stat
	FirstResponse Stat
	Handling      Stat
	Satisfaction  Satisfaction

	agents map[string]bool
}

// AnswerRate, ClarifyRate and NoAnswerRate are shares of the bot's
// questions; BotShare is the share of conversations the bot handled alone;
// SessionsPerAgent is Served / Agents.
func (m Metrics) AnswerRate() float64       { return ratio(m.Answered, m.Questions) }
func (m Metrics) ClarifyRate() float64      { return ratio(m.Clarified, m.Questions) }
func (m Metrics) NoAnswerRate() float64     { return ratio(m.NoAnswer, m.Questions) }
func (m Metrics) BotShare() float64         { return ratio(m.BotOnly, m.Conversations) }
func (m Metrics) SessionsPerAgent() float64 { return ratio(m.Served, m.Agents) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Row is one line of a report.
type Row struct {
	Key
	AgentName string
	Metrics
}

// Report is a computed report.
type Report struct {
	Options Options
	Rows    []Row
	// Total sums the whole range (not split).
	Total Row

	first, days int // the range as day numbers (Column)
}

// Build reads the range and computes the rows.
func Build(ctx context.Context, st Store, o Options) (*Report, error) {
	if o.Location == nil {
		loc, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			loc = time.FixedZone("CST", 8*3600)
		}
		o.Location = loc
	}
	if o.To.Before(o.From) {
		return nil, fmt.Errorf("report: --to %s is before --from %s", o.To.Format(time.DateOnly), o.From.Format(time.DateOnly))
	}
	from := time.Date(o.From.Year(), o.From.Month(), o.From.Day(), 0, 0, 0, 0, o.Location)
	to := time.Date(o.To.Year(), o.To.Month(), o.To.Day()+1, 0, 0, 0, 0, o.Location)
	b := &builder{o: o, rows: map[Key]*Row{}, total: &Row{}, convs: map[int64]uint8{}, users: map[string]int64{},
		first: dayNumber(from.Date()), days: dayNumber(to.Date()) - dayNumber(from.Date())}
	if err := st.Turns(ctx, from, to, func(t Turn) error { b.turn(t); return nil }); err != nil {
		return nil, err
	}
	if err := st.Sessions(ctx, from, to, func(s Session) error { b.session(s); return nil }); err != nil {
		return nil, err
	}
	return b.finish(), nil
}

// Conversation flags.
const (
	convSeen   = 1
	convHanded = 2 // had a hand-off session that day
)

// builder accumulates rows. Days are numbered (dayNumber) and users
// interned, so the per-turn work is two small-key map updates: a month of
// a busy service is hundreds of thousands of turns.
type builder struct {
	o     Options
	rows  map[Key]*Row
	total *Row
	first int // day number of From
	days  int // days in the range
	// byDay caches the period row (no split) of each day from first.
	byDay  []*Row
	users  map[string]int64
	convs  map[int64]uint8 // user id << 20 | day offset → flags
	labels []string        // period label by day offset
}

// dayNumber is a civil date's day count (any fixed origin will do).
func dayNumber(y int, m time.Month, d int) int {
	return int(time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Unix() / 86400)
}

// day is t's local day offset from the first day of the range.
func (b *builder) day(t time.Time) int { return dayNumber(t.In(b.o.Location).Date()) - b.first }

func (b *builder) date(off int) time.Time {
	return time.Unix(int64(b.first+off)*86400, 0).UTC()
}

// label is the period label of a day offset.
func (b *builder) label(off int) string {
	if off >= 0 && off < len(b.labels) && b.labels[off] != "" {
		return b.labels[off]
	}
	var l string
	t := b.date(off)
	switch b.o.Period {
	case Day:
		l = t.Format(time.DateOnly)
	case Week:
		y, w := t.ISOWeek()
		l = fmt.Sprintf("%d-W%02d", y, w)
	case Month:
		l = t.Format("2006-01")
	}
	if off >= 0 && off < 1<<16 {
		for len(b.labels) <= off {
			b.labels = append(b.labels, "")
		}
		b.labels[off] = l
	}
	return l
}

func (b *builder) row(k Key) *Row {
	r := b.rows[k]
	if r == nil {
		r = &Row{Key: k}
		b.rows[k] = r
	}
	return r
}

// botRow is where bot figures go: the period's row with no split.
func (b *builder) botRow(off int) *Row {
	if off >= 0 && off < len(b.byDay) && b.byDay[off] != nil {
		return b.byDay[off]
	}
	r := b.row(Key{Period: b.label(off)})
	if off >= 0 && off < 1<<16 {
		for len(b.byDay) <= off {
			b.byDay = append(b.byDay, nil)
		}
		b.byDay[off] = r
	}
	return r
}

func (b *builder) conv(user string, off int) int64 {
	id, ok := b.users[user]
	if !ok {
		id = int64(len(b.users))
		b.users[user] = id
	}
	return id<<20 | int64(off&(1<<20-1))
}

func (b *builder) turn(t Turn) {
	off := b.day(t.At)
	for _, r := range [2]*Row{b.botRow(off), b.total} {
		r.Questions++
		switch t.Outcome {
		case OutcomeAnswer:
			r.Answered++
		case OutcomeClarify:
			r.Clarified++
		case OutcomeNone:
			r.NoAnswer++
		}
	}
	b.convs[b.conv(t.UserKey, off)] |= convSeen
}

func (b *builder) session(s Session) {
	off := b.day(s.CreatedAt)
	ck := b.conv(s.UserKey, off)
	b.convs[ck] |= convSeen
	if s.Reason != ReasonTransfer {
		b.convs[ck] |= convHanded
	}
	k := Key{Period: b.label(off)}
	if b.o.ByGroup {
		k.Group = s.Group
	}
	if b.o.ByAgent {
		k.Agent = s.Agent
		if k.Agent == "" {
			k.Agent = UnassignedAgent
		}
	}
	rows := []*Row{b.row(k), b.total}
	if k.Group != "" || k.Agent != "" {
		rows = append(rows, b.botRow(off)) // the period's total row too
	}
	for _, r := range rows {
		if s.AgentName != "" && r.Agent != "" {
			r.AgentName = s.AgentName
		}
		addSession(&r.Metrics, s)
	}
}

func addSession(m *Metrics, s Session) {
	m.Sessions++
	if m.ByReason == nil {
		m.ByReason = map[string]int{}
	}
	m.ByReason[s.Reason]++
	if s.Reason == ReasonTransfer {
		m.Transfers++
	} else {
		m.Handoffs++
	}
	switch {
	case !s.AssignedAt.IsZero():
		m.Served++
		if m.agents == nil {
			m.agents = map[string]bool{}
		}
		m.agents[s.Agent] = true
		m.QueueWait.add(s.AssignedAt.Sub(s.CreatedAt))
		if !s.FirstReplyAt.IsZero() {
			m.FirstResponse.add(s.FirstReplyAt.Sub(s.AssignedAt))
		}
		if !s.EndedAt.IsZero() {
			m.Handling.add(s.EndedAt.Sub(s.AssignedAt))
		}
	case !s.EndedAt.IsZero():
		m.Abandoned++
	}
	if s.Prompted {
		m.Satisfaction.Prompted++
	}
	if s.Score >= 1 && s.Score <= 5 {
		m.Satisfaction.Rated++
		m.Satisfaction.Sum += s.Score
		m.Satisfaction.Dist[s.Score-1]++
	}
}

func (b *builder) finish() *Report {
	// Conversations and the bot's share, per period and in total.
	for ck, flags := range b.convs {
		off := int(ck & (1<<20 - 1))
		if off >= 1<<19 { // a negative offset, should a store return earlier rows
			off -= 1 << 20
		}
		for _, r := range [2]*Row{b.botRow(off), b.total} {
			r.Conversations++
			if flags&convHanded == 0 {
				r.BotOnly++
			}
		}
	}
	rep := &Report{Options: b.o, first: b.first, days: b.days}
	for _, r := range b.rows {
		r.finish()
		rep.Rows = append(rep.Rows, *r)
	}
	b.total.finish()
	rep.Total = *b.total
	slices.SortFunc(rep.Rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.Period, b.Period), cmp.Compare(a.Group, b.Group), cmp.Compare(a.Agent, b.Agent))
	})
	return rep
}

func (r *Row) finish() {
	r.Agents = len(r.agents)
	r.agents = nil
	r.QueueWait.finish()
	r.FirstResponse.finish()
	r.Handling.finish()
}

// Sessions lists the sessions of a range, for the per-session CSV, in id
// order.
func Sessions(ctx context.Context, st Store, from, to time.Time, loc *time.Location) ([]Session, error) {
	if loc == nil {
		loc = time.UTC
	}
	f := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, loc)
	t := time.Date(to.Year(), to.Month(), to.Day()+1, 0, 0, 0, 0, loc)
	var out []Session
	err := st.Sessions(ctx, f, t, func(s Session) error { out = append(out, s); return nil })
	return out, err
}

// Column is one figure over the report's periods, for a chart: every
// period of the range in order (those without data at 0) and fn of each
// period's row (not split by group or agent).
func (r *Report) Column(fn func(Metrics) float64) (labels []string, values []float64) {
	byLabel := map[string]Metrics{}
	for _, row := range r.Rows {
		if row.Group == "" && row.Agent == "" {
			byLabel[row.Period] = row.Metrics
		}
	}
	b := &builder{o: r.Options, first: r.first}
	for off := 0; off < r.days; off++ {
		l := b.label(off)
		if len(labels) > 0 && labels[len(labels)-1] == l {
			continue
		}
		labels = append(labels, l)
		values = append(values, fn(byLabel[l]))
	}
	return labels, values
}
