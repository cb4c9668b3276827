package gormstore

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/dingdesk/dingdesk/handoff"
	"gorm.io/gorm/clause"

	"github.com/dingdesk/dingdesk/web"
)

// The web workbench's tables (package web decides, this file stores), and
// its reads of the hand-off tables (through their row types, handoff.go).

// webEventRow is one change for browsers (SSE); the hand-off engine
// writes them (handoff_events.go). Its id is the event id a browser
// resumes from. (Databases from before the engine published its own
// events keep an unused, nullable source column.)
type webEventRow struct {
	ID        int64     `gorm:"primaryKey;autoIncrement"`
	Topic     string    `gorm:"size:191;not null"`
	Type      string    `gorm:"size:32;not null"`
	Data      string    `gorm:"size:1024;not null;default:''"`
	CreatedAt time.Time `gorm:"not null;index:ix_we_created"`
}

func (webEventRow) TableName() string { return "web_events" }

// webSessionRow is a logged-in browser; the cookie holds the token, the
// row only its SHA-256.
type webSessionRow struct {
	TokenHash string    `gorm:"primaryKey;size:64"`
	StaffID   string    `gorm:"size:128;not null;index:ix_ws_staff"`
	CSRF      string    `gorm:"size:64;not null"`
	CreatedAt time.Time `gorm:"not null"`
	SeenAt    time.Time `gorm:"not null"`
	ExpiresAt time.Time `gorm:"not null;index:ix_ws_expires"`
}

func (webSessionRow) TableName() string { return "web_sessions" }

// webLoginLinkRow is a one-time login link (dingdesk login-link).
type webLoginLinkRow struct {
	TokenHash string    `gorm:"primaryKey;size:64"`
	StaffID   string    `gorm:"size:128;not null"`
	CreatedAt time.Time `gorm:"not null"`
	ExpiresAt time.Time `gorm:"not null;index:ix_wl_expires"`
	UsedAt    *time.Time
}

func (webLoginLinkRow) TableName() string { return "web_login_links" }

// webCannedRow is an agent's own 常用语.
type webCannedRow struct {
	ID        int64     `gorm:"primaryKey;autoIncrement"`
	StaffID   string    `gorm:"size:128;not null;index:ix_wc_staff"`
	Category  string    `gorm:"size:64;not null;default:''"`
	Text      string    `gorm:"type:text"`
	Position  int       `gorm:"not null;default:0"`
	CreatedAt time.Time `gorm:"not null"`
}

func (webCannedRow) TableName() string { return "web_canned" }

// webReadRow is how far an agent has read a session in the workbench.
type webReadRow struct {
	StaffID       string `gorm:"primaryKey;size:128"`
	SessionID     int64  `gorm:"primaryKey;autoIncrement:false"`
	LastMessageID int64  `gorm:"not null;default:0"`
}

func (webReadRow) TableName() string { return "web_reads" }

func webModels() []any {
	return []any{&webEventRow{}, &webSessionRow{}, &webLoginLinkRow{}, &webCannedRow{}, &webReadRow{}}
}

// WebStore implements web.Store.
type WebStore struct{ db *DB }

var _ web.Store = (*WebStore)(nil)

// NewWebStore is the workbench's storage on db.
func NewWebStore(db *DB) *WebStore { return &WebStore{db: db} }

func (s *WebStore) g(ctx context.Context) *gorm.DB { return s.db.gorm.WithContext(ctx) }

func (s *WebStore) CreateWebSession(ctx context.Context, ws web.WebSession) error {
	return s.g(ctx).Create(&webSessionRow{TokenHash: ws.TokenHash, StaffID: ws.StaffID, CSRF: ws.CSRF,
		CreatedAt: ws.CreatedAt.UTC(), SeenAt: ws.SeenAt.UTC(), ExpiresAt: ws.ExpiresAt.UTC()}).Error
}

func (s *WebStore) WebSession(ctx context.Context, tokenHash string) (*web.WebSession, error) {
	var r webSessionRow
	err := s.g(ctx).Where("token_hash = ?", tokenHash).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &web.WebSession{TokenHash: r.TokenHash, StaffID: r.StaffID, CSRF: r.CSRF, CreatedAt: r.CreatedAt,
		SeenAt: r.SeenAt, ExpiresAt: r.ExpiresAt}, nil
}

func (s *WebStore) TouchWebSession(ctx context.Context, tokenHash string, seen, expires time.Time) error {
	return s.g(ctx).Model(&webSessionRow{}).Where("token_hash = ?", tokenHash).
		Updates(map[string]any{"seen_at": seen.UTC(), "expires_at": expires.UTC()}).Error
}

func (s *WebStore) DeleteWebSession(ctx context.Context, tokenHash string) error {
	return s.g(ctx).Where("token_hash = ?", tokenHash).Delete(&webSessionRow{}).Error
}

// PruneWebSessions deletes expired browser sessions and login links that
// expired a day ago (kept that long so a late click says "expired").
func (s *WebStore) PruneWebSessions(ctx context.Context, now time.Time) (int64, error) {
	r := s.g(ctx).Where("expires_at < ?", now.UTC()).Delete(&webSessionRow{})
	if r.Error != nil {
		return 0, r.Error
	}
	l := s.g(ctx).Where("expires_at < ?", now.UTC().Add(-24*time.Hour)).Delete(&webLoginLinkRow{})
	return r.RowsAffected + l.RowsAffected, l.Error
}

func (s *WebStore) CreateLoginLink(ctx context.Context, tokenHash, staffID string, now, expires time.Time) error {
	return s.g(ctx).Create(&webLoginLinkRow{TokenHash: tokenHash, StaffID: staffID, CreatedAt: now.UTC(), ExpiresAt: expires.UTC()}).Error
}

func (s *WebStore) CheckLoginLink(ctx context.Context, tokenHash string, now time.Time) (string, error) {
	var r webLoginLinkRow
	err := s.g(ctx).Where("token_hash = ?", tokenHash).Take(&r).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return "", web.ErrLinkUnknown
	case err != nil:
		return "", err
	case r.UsedAt != nil:
		return r.StaffID, web.ErrLinkUsed
	case !now.UTC().Before(r.ExpiresAt):
		return r.StaffID, web.ErrLinkExpired
	}
	return r.StaffID, nil
}

// RedeemLoginLink marks the link used with one conditional UPDATE, so two
// replicas (or two tabs) racing for it cannot both win.
func (s *WebStore) RedeemLoginLink(ctx context.Context, tokenHash string, now time.Time) (string, error) {
	res := s.g(ctx).Model(&webLoginLinkRow{}).
		Where("token_hash = ? AND used_at IS NULL AND expires_at > ?", tokenHash, now.UTC()).
		Update("used_at", now.UTC())
	if res.Error != nil {
		return "", res.Error
	}
	staff, err := s.CheckLoginLink(ctx, tokenHash, now)
	if res.RowsAffected == 1 {
		return staff, nil
	}
	if err == nil {
		err = web.ErrLinkUsed
	}
	return "", err
}

func eventOf(r webEventRow) web.Event {
	return web.Event{ID: r.ID, Topic: r.Topic, Type: r.Type, Data: r.Data, At: r.CreatedAt}
}

// AppendEvents stores events that do not come from the engine's
// transactions (tests standing in for another replica).
func (s *WebStore) AppendEvents(ctx context.Context, events []web.Event) error {
	if len(events) == 0 {
		return nil
	}
	rows := make([]webEventRow, len(events))
	for i, e := range events {
		at := e.At
		if at.IsZero() {
			at = time.Now()
		}
		rows[i] = webEventRow{Topic: e.Topic, Type: e.Type, Data: e.Data, CreatedAt: at.UTC().Truncate(time.Millisecond)}
	}
	return s.g(ctx).Create(&rows).Error
}

func (s *WebStore) EventsAfter(ctx context.Context, after int64, limit int) ([]web.Event, error) {
	var rows []webEventRow
	if err := s.g(ctx).Where("id > ?", after).Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]web.Event, len(rows))
	for i, r := range rows {
		out[i] = eventOf(r)
	}
	return out, nil
}

func (s *WebStore) EventsByID(ctx context.Context, ids []int64) ([]web.Event, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var rows []webEventRow
	if err := s.g(ctx).Where("id IN ?", ids).Order("id").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]web.Event, len(rows))
	for i, r := range rows {
		out[i] = eventOf(r)
	}
	return out, nil
}

func (s *WebStore) EventBounds(ctx context.Context) (int64, int64, error) {
	var b struct{ Lo, Hi *int64 }
	if err := s.g(ctx).Model(&webEventRow{}).Select("MIN(id) AS lo, MAX(id) AS hi").Scan(&b).Error; err != nil {
		return 0, 0, err
	}
	if b.Lo == nil || b.Hi == nil {
		return 0, 0, nil
	}
	return *b.Lo, *b.Hi, nil
}

func (s *WebStore) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	// Keep the newest row whatever its age: EventBounds must not fall below
	// the ids browsers hold as Last-Event-ID.
	var hi int64
	if _, h, err := s.EventBounds(ctx); err != nil {
		return 0, err
	} else {
		hi = h
	}
	r := s.g(ctx).Where("created_at < ? AND id < ?", before.UTC(), hi).Delete(&webEventRow{})
	return r.RowsAffected, r.Error
}

func webSessionOf(r *handoffSessionRow) web.Session {
	return web.Session{ID: r.ID, No: r.AgentNo, Status: r.State, UserKey: r.UserKey, ConversationID: r.ConversationID,
		ConversationType: r.ConversationType, ConversationTitle: r.ConversationTitle, UserID: r.UserID, Nick: r.Nick,
		Group: r.GroupName, Reason: r.Reason, Agent: r.AgentID, AgentName: r.AgentName, FromAgent: r.FromAgent,
		Note: r.TransferNote, QueuedAt: val(r.QueuedAt), AssignedAt: val(r.AssignedAt), EndedAt: val(r.EndedAt), EndReason: r.EndReason}
}

func (s *WebStore) sessions(q *gorm.DB) ([]web.Session, error) {
	var rows []handoffSessionRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]web.Session, len(rows))
	for i := range rows {
		out[i] = webSessionOf(&rows[i])
	}
	return out, nil
}

func (s *WebStore) sessionTable(ctx context.Context) *gorm.DB {
	return s.g(ctx).Model(&handoffSessionRow{})
}

func (s *WebStore) Session(ctx context.Context, id int64) (*web.Session, error) {
	ss, err := s.sessions(s.sessionTable(ctx).Where("id = ?", id).Limit(1))
	if err != nil || len(ss) == 0 {
		return nil, err
	}
	return &ss[0], nil
}

// ActiveSessions adds each session's newest line and unread count in two
// grouped queries (an agent may hold 100 sessions).
func (s *WebStore) ActiveSessions(ctx context.Context, staffID string) ([]web.Session, error) {
	ss, err := s.sessions(s.sessionTable(ctx).Where("agent_id = ? AND state = ?", staffID, string(handoff.StatusActive)))
	if err != nil || len(ss) == 0 {
		return ss, err
	}
	ids := make([]int64, len(ss))
	for i := range ss {
		ids[i] = ss[i].ID
	}
	var lasts []struct {
		SessionID int64
		LastID    int64
	}
	if err := s.g(ctx).Model(&handoffMessageRow{}).Select("session_id, MAX(id) AS last_id").
		Where("session_id IN ?", ids).Group("session_id").Scan(&lasts).Error; err != nil {
		return nil, err
	}
	lastIDs := make([]int64, len(lasts))
	for i, l := range lasts {
		lastIDs[i] = l.LastID
	}
	var msgs []handoffMessageRow
	if len(lastIDs) > 0 {
		if err := s.g(ctx).Where("id IN ?", lastIDs).Find(&msgs).Error; err != nil {
			return nil, err
		}
	}
	bySession := map[int64]handoffMessageRow{}
	for _, m := range msgs {
		bySession[m.SessionID] = m
	}
	var unread []struct {
		SessionID int64
		N         int
	}
	if err := s.g(ctx).Table("handoff_messages AS m").
		Joins("LEFT JOIN web_reads AS r ON r.session_id = m.session_id AND r.staff_id = ?", staffID).
		Select("m.session_id, COUNT(*) AS n").
		Where("m.session_id IN ? AND m.sender_kind = ? AND m.id > COALESCE(r.last_message_id, 0)", ids, string(handoff.SenderUser)).
		Group("m.session_id").Scan(&unread).Error; err != nil {
		return nil, err
	}
	counts := map[int64]int{}
	for _, u := range unread {
		counts[u.SessionID] = u.N
	}
	for i := range ss {
		if m, ok := bySession[ss[i].ID]; ok {
			ss[i].LastAt, ss[i].LastText = m.CreatedAt, m.Text
		} else {
			ss[i].LastAt = ss[i].AssignedAt
		}
		ss[i].Unread = counts[ss[i].ID]
	}
	sort.SliceStable(ss, func(i, j int) bool {
		if !ss[i].LastAt.Equal(ss[j].LastAt) {
			return ss[i].LastAt.After(ss[j].LastAt)
		}
		return ss[i].ID > ss[j].ID
	})
	return ss, nil
}

func (s *WebStore) QueuedSessions(ctx context.Context, groups []string) ([]web.Session, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	return s.sessions(s.sessionTable(ctx).Where("group_name IN ? AND state = ?", groups, string(handoff.StatusQueued)).Order("queued_at, id").Limit(200))
}

func (s *WebStore) EndedSessions(ctx context.Context, staffID string, since time.Time, query string, limit int) ([]web.Session, error) {
	q := s.sessionTable(ctx).Where("agent_id = ? AND state = ? AND ended_at >= ?", staffID, string(handoff.StatusEnded), since.UTC())
	if query = strings.TrimSpace(query); query != "" {
		like := likeEscape(query) // transcript.go
		q = q.Where("(nick LIKE ? ESCAPE '!' OR user_id LIKE ? ESCAPE '!' OR conversation_title LIKE ? ESCAPE '!')", like, like, like)
	}
	list, err := s.sessions(q.Order("ended_at DESC, id DESC").Limit(limit))
	if err != nil {
		return nil, err
	}
	return list, addRatings(s.g(ctx), list) // report.go
}

func (s *WebStore) UserSessions(ctx context.Context, userKey string) ([]web.Session, error) {
	return s.sessions(s.sessionTable(ctx).Where("user_key = ?", userKey).Order("id DESC").Limit(100))
}

func (s *WebStore) Transcript(ctx context.Context, userKey string, beforeID int64, limit int) ([]web.Message, error) {
	q := s.g(ctx).Where("user_key = ?", userKey)
	if beforeID > 0 {
		q = q.Where("id < ?", beforeID)
	}
	var rows []handoffMessageRow
	if err := q.Order("id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]web.Message, len(rows))
	for i, r := range rows {
		out[len(rows)-1-i] = web.Message{ID: r.ID, SessionID: r.SessionID, Direction: r.Direction, SenderKind: r.SenderKind,
			SenderID: r.SenderID, SenderName: r.SenderName, Kind: r.Kind, Text: r.Text, At: r.CreatedAt}
	}
	return out, nil
}

// MarkRead moves the agent's read mark forward (never back).
func (s *WebStore) MarkRead(ctx context.Context, staffID string, sessionID, messageID int64) error {
	return s.g(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&webReadRow{}).Where("staff_id = ? AND session_id = ? AND last_message_id < ?", staffID, sessionID, messageID).
			Update("last_message_id", messageID)
		if res.Error != nil || res.RowsAffected > 0 {
			return res.Error
		}
		return tx.Clauses(clause.OnConflict{DoNothing: true}).
			Create(&webReadRow{StaffID: staffID, SessionID: sessionID, LastMessageID: messageID}).Error
	})
}

func (s *WebStore) AgentLoads(ctx context.Context, staffIDs []string) (map[string]web.AgentLoad, error) {
	rows, err := agentLoads(s.g(ctx), staffIDs) // monitor.go
	if err != nil {
		return nil, err
	}
	out := make(map[string]web.AgentLoad, len(rows))
	for _, r := range rows {
		out[r.StaffID] = web.AgentLoad{Presence: web.Presence(r.Presence), OpenChats: r.OpenChats}
	}
	return out, nil
}

func (s *WebStore) CannedReplies(ctx context.Context, staffID string) ([]web.Canned, error) {
	var rows []webCannedRow
	if err := s.g(ctx).Where("staff_id = ?", staffID).Order("position, id").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]web.Canned, len(rows))
	for i, r := range rows {
		out[i] = web.Canned{ID: r.ID, Category: r.Category, Text: r.Text, Position: r.Position}
	}
	return out, nil
}

func (s *WebStore) AddCanned(ctx context.Context, staffID, category, text string, now time.Time) (web.Canned, error) {
	var row webCannedRow
	err := s.g(ctx).Transaction(func(tx *gorm.DB) error {
		var maxPos *int
		if err := tx.Model(&webCannedRow{}).Select("MAX(position)").Where("staff_id = ?", staffID).Scan(&maxPos).Error; err != nil {
			return err
		}
		pos := 1
		if maxPos != nil {
			pos = *maxPos + 1
		}
		row = webCannedRow{StaffID: staffID, Category: category, Text: text, Position: pos, CreatedAt: now.UTC()}
		return tx.Create(&row).Error
	})
	return web.Canned{ID: row.ID, Category: row.Category, Text: row.Text, Position: row.Position}, err
}

func (s *WebStore) UpdateCanned(ctx context.Context, staffID string, id int64, category, text string) error {
	res := s.g(ctx).Model(&webCannedRow{}).Where("id = ? AND staff_id = ?", id, staffID).
		Updates(map[string]any{"category": category, "text": text})
	if res.Error == nil && res.RowsAffected == 0 {
		// Unchanged values also affect 0 rows on MySQL: tell them apart.
		var n int64
		if err := s.g(ctx).Model(&webCannedRow{}).Where("id = ? AND staff_id = ?", id, staffID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return web.ErrNotFound
		}
	}
	return res.Error
}

func (s *WebStore) DeleteCanned(ctx context.Context, staffID string, id int64) error {
	res := s.g(ctx).Where("id = ? AND staff_id = ?", id, staffID).Delete(&webCannedRow{})
	if res.Error == nil && res.RowsAffected == 0 {
		return web.ErrNotFound
	}
	return res.Error
}

func (s *WebStore) MoveCanned(ctx context.Context, staffID string, id int64, delta int) error {
	return s.g(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []webCannedRow
		if err := tx.Where("staff_id = ?", staffID).Order("position, id").Find(&rows).Error; err != nil {
			return err
		}
		i := -1
		for k, r := range rows {
			if r.ID == id {
				i = k
			}
		}
		if i < 0 {
			return web.ErrNotFound
		}
		j := i + delta
		if j < 0 || j >= len(rows) {
			return nil
		}
		rows[i], rows[j] = rows[j], rows[i]
		// Renumber all: positions stay dense whatever the history.
		for k := range rows {
			if rows[k].Position != k+1 {
				if err := tx.Model(&webCannedRow{}).Where("id = ?", rows[k].ID).Update("position", k+1).Error; err != nil {
					return err
				}
			}
		}
		return nil
	})
}
