// Package monitor is the live monitor's data: per skill group the agents
// online / busy / offline, active sessions, queue length and longest wait,
// and whether the group is inside its service hours now; per agent the
// load against max_chats and the sessions taken today; for the bot today's
// questions, answered / clarify / no-answer and hand-off rates. The page
// re-reads a Status every 2 s (an htmx poll of /admin/monitor/live);
// everything comes from the database, so every replica shows the same.
package monitor

import (
	"context"
	"slices"
	"time"

	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/schedule"
)

// AgentRow is an agent's stored presence and load.
type AgentRow struct {
	StaffID   string
	Presence  string // online, busy, offline
	OpenChats int
}

// GroupLoad is a skill group's sessions now.
type GroupLoad struct {
	Active int
	Queued int
	// OldestQueued is when the longest-waiting user joined the queue (zero
	// when nobody waits).
	OldestQueued time.Time
}

// BotCounts are the bot's turns since a time.
type BotCounts struct {
	Questions int
	Answered  int
	Clarified int
	NoAnswer  int
}

// Store reads the live state.
type Store interface {
	Agents(ctx context.Context, staffIDs []string) ([]AgentRow, error)
	GroupLoads(ctx context.Context, groups []string) (map[string]GroupLoad, error)
	// SessionsTaken counts sessions assigned at or after since, by agent.
	SessionsTaken(ctx context.Context, since time.Time) (map[string]int, error)
	// BotTurns counts bot turns at or after since.
	BotTurns(ctx context.Context, since time.Time) (BotCounts, error)
	// Handoffs counts sessions opened from the bot (not transfers) at or
	// after since.
	Handoffs(ctx context.Context, since time.Time) (int, error)
}

// Agent is one member's line of the monitor.
type Agent struct {
	StaffID       string
	Name          string
	Presence      string // online, busy, offline (never seen: offline)
	Open          int
	MaxChats      int
	SessionsToday int
}

// Group is one skill group's line.
type Group struct {
	Name        string
	DisplayName string
	OpenNow     bool // inside its service rule's hours
	Online      int
	Busy        int
	Offline     int
	Active      int
	Queued      int
	LongestWait time.Duration
	Agents      []Agent
}

// Bot is today's bot figures.
type Bot struct {
	BotCounts
	Handoffs int
}

// AnswerRate, ClarifyRate, NoAnswerRate are shares of the questions;
// HandoffRate is hand-offs per question.
func (b Bot) AnswerRate() float64   { return ratio(b.Answered, b.Questions) }
func (b Bot) ClarifyRate() float64  { return ratio(b.Clarified, b.Questions) }
func (b Bot) NoAnswerRate() float64 { return ratio(b.NoAnswer, b.Questions) }
func (b Bot) HandoffRate() float64  { return ratio(b.Handoffs, b.Questions) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Status is the monitor at one moment.
type Status struct {
	At     time.Time
	Groups []Group
	Bot    Bot
}

// Read builds the status for cfg's skill groups at now. "Today" starts at
// local midnight in loc (the first service rule's timezone when nil).
func Read(ctx context.Context, st Store, cfg *config.Config, now time.Time, loc *time.Location) (*Status, error) {
	if loc == nil {
		loc = time.UTC
		if len(cfg.ServiceRules) > 0 {
			if l, err := time.LoadLocation(cfg.ServiceRules[0].Timezone); err == nil {
				loc = l
			}
		}
	}
	local := now.In(loc)
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	var names, staff []string
	for _, g := range cfg.SkillGroups {
		names = append(names, g.Name)
		for _, m := range g.Members {
			staff = append(staff, m.StaffID)
		}
	}
	slices.Sort(staff)
	staff = slices.Compact(staff)
	agents, err := st.Agents(ctx, staff)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]AgentRow, len(agents))
	for _, a := range agents {
		byID[a.StaffID] = a
	}
	loads, err := st.GroupLoads(ctx, names)
	if err != nil {
		return nil, err
	}
	taken, err := st.SessionsTaken(ctx, midnight)
	if err != nil {
		return nil, err
	}
	out := &Status{At: now}
	for _, g := range cfg.SkillGroups {
		grp := Group{Name: g.Name, DisplayName: g.DisplayName, OpenNow: openNow(cfg, g, now)}
		if grp.DisplayName == "" {
			grp.DisplayName = g.Name
		}
		l := loads[g.Name]
		grp.Active, grp.Queued = l.Active, l.Queued
		if !l.OldestQueued.IsZero() {
			grp.LongestWait = max(now.Sub(l.OldestQueued), 0)
		}
		for _, m := range g.Members {
			a := byID[m.StaffID]
			p := a.Presence
			if p == "" {
				p = "offline"
			}
			switch p {
			case "online":
				grp.Online++
			case "busy":
				grp.Busy++
			default:
				grp.Offline++
			}
			name := m.Name
			if name == "" {
				name = m.StaffID
			}
			grp.Agents = append(grp.Agents, Agent{StaffID: m.StaffID, Name: name, Presence: p, Open: a.OpenChats,
				MaxChats: m.MaxChats, SessionsToday: taken[m.StaffID]})
		}
		out.Groups = append(out.Groups, grp)
	}
	if out.Bot.BotCounts, err = st.BotTurns(ctx, midnight); err != nil {
		return nil, err
	}
	if out.Bot.Handoffs, err = st.Handoffs(ctx, midnight); err != nil {
		return nil, err
	}
	return out, nil
}

// openNow: the group's service rule includes now (an unparsable rule,
// which Validate refuses, counts as open, as the engine does).
func openNow(cfg *config.Config, g config.SkillGroup, now time.Time) bool {
	r, ok := cfg.RuleOf(g.Name)
	if !ok {
		d := config.DefaultServiceRule()
		r = &d
	}
	s, errs := schedule.New(r.Timezone, r.Hours, r.Holidays, r.Workdays)
	if len(errs) > 0 {
		return true
	}
	return s.Open(now)
}
