package gormstore

import (
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/web"
)

// The engine's events (handoff.Event) are stored in the workbench's event
// table (web_events) in the engine's own transaction: an event is there
// exactly when its change committed, and every replica's workbench tails
// the table (web.Hub). Agent events go to the agent's topic, queue events
// to the group's.

// webEventTypes are the workbench's names of the engine's event types.
var webEventTypes = map[handoff.EventType]string{
	handoff.EventSession:  web.EventSession,
	handoff.EventLine:     web.EventMessage,
	handoff.EventQueue:    web.EventQueue,
	handoff.EventPresence: web.EventPresence,
}

// Publish writes the engine's events (handoff.Tx.Publish).
func (t *handoffTx) Publish(events ...handoff.Event) error {
	if len(events) == 0 {
		return nil
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	rows := make([]webEventRow, 0, len(events))
	for _, e := range events {
		topic := web.AgentTopic(e.Agent)
		if e.Type == handoff.EventQueue {
			topic = web.GroupTopic(e.Group)
		} else if e.Agent == "" {
			continue // concerns nobody
		}
		typ, ok := webEventTypes[e.Type]
		if !ok {
			return fmt.Errorf("publish: unknown event type %q", e.Type)
		}
		rows = append(rows, webEventRow{Topic: topic, Type: typ, Data: e.Data(), CreatedAt: now})
	}
	if len(rows) == 0 {
		return nil
	}
	if t.run != nil {
		t.own.events = append(t.own.events, rows...)
		return nil
	}
	return t.g.Create(&rows).Error
}

// SetPresence upserts the agent's presence inside the transaction
// (handoff.Tx.SetPresence).
func (t *handoffTx) SetPresence(staffID string, p handoff.Presence, now time.Time) error {
	return setPresence(t.q(), staffID, p, now)
}

// setPresence upserts an agent's presence: the row of an agent not seen
// before, or the presence columns of a known one.
func setPresence(g *gorm.DB, staffID string, p handoff.Presence, now time.Time) error {
	row := handoffAgentRow{StaffID: staffID, Presence: string(p), PresenceAt: now.UTC()}
	return g.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "staff_id"}},
		DoUpdates: clause.Assignments(map[string]any{"presence": string(p), "presence_at": now.UTC()}),
	}).Create(&row).Error
}
