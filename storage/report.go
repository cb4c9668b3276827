package storage

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/dingdesk/dingdesk/report"
)

// BotTurnRow is one question the bot handled and what it did: "answer"
// (EntryID answered), "clarify" (a 您是不是想问 list) or "none" (无答案).
// The engine writes one per bot-state question in the transaction that
// answers it (HandoffTx.AddBotTurns); the reports read them.
type BotTurnRow struct {
	ID        int64     `gorm:"primaryKey;autoIncrement"`
	UserKey   string    `gorm:"size:191;not null"`
	Outcome   string    `gorm:"size:16;not null"`
	EntryID   string    `gorm:"size:191;not null;default:''"`
	Score     float64   `gorm:"not null;default:0"`
	CreatedAt time.Time `gorm:"not null;index:ix_bt_created"`
}

func (BotTurnRow) TableName() string { return "bot_turns" }

// SessionRatingRow is the satisfaction survey of one human session: the
// prompt sent when it ended, then the user's rating (Score 1–5) or the
// prompt's quiet end (ClosedAt: another message, or the rating timeout).
type SessionRatingRow struct {
	SessionID  int64     `gorm:"primaryKey;autoIncrement:false"`
	UserKey    string    `gorm:"size:191;not null;index:ix_sr_user"`
	GroupName  string    `gorm:"size:128;not null;default:''"`
	AgentID    string    `gorm:"size:128;not null;default:'';index:ix_sr_agent"`
	PromptedAt time.Time `gorm:"not null;index:ix_sr_prompted"`
	Score      int       `gorm:"not null;default:0"` // 0 until rated
	RatedAt    *time.Time
	ClosedAt   *time.Time
}

func (SessionRatingRow) TableName() string { return "session_ratings" }

// AddBotTurns records bot turns (the engine, in its transaction).
func (t *HandoffTx) AddBotTurns(rows []BotTurnRow) error {
	if len(rows) == 0 {
		return nil
	}
	return t.G.Create(&rows).Error
}

// PromptRating records that the user of a session that just ended was
// asked for a rating; a second prompt for the same session is a no-op.
func (t *HandoffTx) PromptRating(row SessionRatingRow) error {
	return t.G.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error
}

// PendingRating is the user's open rating prompt sent at or after since
// (the rating timeout ago); nil when none.
func (t *HandoffTx) PendingRating(userKey string, since time.Time) (*SessionRatingRow, error) {
	var rows []SessionRatingRow
	err := t.G.Where("user_key = ? AND score = 0 AND closed_at IS NULL AND prompted_at >= ?", userKey, since).
		Order("prompted_at desc").Limit(1).Find(&rows).Error
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return &rows[0], nil
}

// RateSession stores score (1–5) on the session's open prompt; false when
// there is none (already rated or closed).
func (t *HandoffTx) RateSession(sessionID int64, score int, now time.Time) (bool, error) {
	res := t.G.Model(&SessionRatingRow{}).Where("session_id = ? AND score = 0 AND closed_at IS NULL", sessionID).
		Updates(map[string]any{"score": score, "rated_at": now})
	return res.RowsAffected == 1, res.Error
}

// ClosePrompt ends a session's open prompt without a rating.
func (t *HandoffTx) ClosePrompt(sessionID int64, now time.Time) error {
	return t.G.Model(&SessionRatingRow{}).Where("session_id = ? AND score = 0 AND closed_at IS NULL", sessionID).
		Update("closed_at", now).Error
}

// ReportStore implements report.Store.
type ReportStore struct{ db *DB }

var _ report.Store = (*ReportStore)(nil)

// NewReportStore wraps db.
func NewReportStore(db *DB) *ReportStore { return &ReportStore{db: db} }

// reportBatch is how many sessions are completed (first reply, counts,
// rating) per round of queries.
const reportBatch = 500

// Sessions reads the sessions created in [from, to) in batches, each
// completed with its first agent reply, message counts and rating.
// (handoff_sessions has no created_at index yet: this scans the table; see
// the README's report section.)
func (s *ReportStore) Sessions(ctx context.Context, from, to time.Time, fn func(report.Session) error) error {
	g := s.db.Gorm.WithContext(ctx)
	var lastID int64
	for {
		var rows []HandoffSessionRow
		err := g.Where("created_at >= ? AND created_at < ? AND id > ?", from.UTC(), to.UTC(), lastID).
			Order("id").Limit(reportBatch).Find(&rows).Error
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		lastID = rows[len(rows)-1].ID
		out, err := s.complete(g, rows)
		if err != nil {
			return err
		}
		for _, r := range out {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(rows) < reportBatch {
			return nil
		}
	}
}

func (s *ReportStore) complete(g *gorm.DB, rows []HandoffSessionRow) ([]report.Session, error) {
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	var counts []struct {
		SessionID  int64
		SenderKind string
		N          int
		FirstID    int64
	}
	err := g.Model(&HandoffMessageRow{}).Select("session_id, sender_kind, COUNT(*) AS n, MIN(id) AS first_id").
		Where("session_id IN ? AND sender_kind IN ?", ids, []string{SenderAgent, SenderUser}).
		Group("session_id, sender_kind").Scan(&counts).Error
	if err != nil {
		return nil, err
	}
	type msgs struct {
		user, agent int
		first       time.Time
	}
	byID := make(map[int64]*msgs, len(rows))
	var firstIDs []int64
	firstOf := map[int64]int64{} // first agent line id → session
	for _, c := range counts {
		m := byID[c.SessionID]
		if m == nil {
			m = &msgs{}
			byID[c.SessionID] = m
		}
		if c.SenderKind == SenderAgent {
			m.agent = c.N
			firstIDs = append(firstIDs, c.FirstID)
			firstOf[c.FirstID] = c.SessionID
		} else {
			m.user = c.N
		}
	}
	if len(firstIDs) > 0 {
		var firsts []HandoffMessageRow
		if err := g.Select("id, created_at").Where("id IN ?", firstIDs).Find(&firsts).Error; err != nil {
			return nil, err
		}
		for _, f := range firsts {
			byID[firstOf[f.ID]].first = f.CreatedAt.UTC()
		}
	}
	var ratings []SessionRatingRow
	if err := g.Where("session_id IN ?", ids).Find(&ratings).Error; err != nil {
		return nil, err
	}
	rated := make(map[int64]*SessionRatingRow, len(ratings))
	for i := range ratings {
		rated[ratings[i].SessionID] = &ratings[i]
	}
	out := make([]report.Session, len(rows))
	for i, r := range rows {
		rs := report.Session{ID: r.ID, UserKey: r.UserKey, UserID: r.UserID, Nick: r.Nick, Group: r.GroupName,
			Agent: r.AgentID, AgentName: r.AgentName, Reason: r.Reason, EndReason: r.EndReason, CreatedAt: r.CreatedAt.UTC(),
			AssignedAt: deref(r.AssignedAt), EndedAt: deref(r.EndedAt)}
		if m := byID[r.ID]; m != nil {
			rs.UserMessages, rs.AgentReplies, rs.FirstReplyAt = m.user, m.agent, m.first
		}
		if rt := rated[r.ID]; rt != nil {
			rs.Prompted, rs.Score = true, rt.Score
		}
		out[i] = rs
	}
	return out, nil
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// Turns streams the bot turns of [from, to).
func (s *ReportStore) Turns(ctx context.Context, from, to time.Time, fn func(report.Turn) error) error {
	rows, err := s.db.Gorm.WithContext(ctx).Model(&BotTurnRow{}).Select("user_key, outcome, created_at").
		Where("created_at >= ? AND created_at < ?", from.UTC(), to.UTC()).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	// Collect first: SQLite has one connection, and fn may not query while
	// the cursor holds it; turns are small.
	var turns []report.Turn
	for rows.Next() {
		var t report.Turn
		if err := rows.Scan(&t.UserKey, &t.Outcome, &t.At); err != nil {
			return err
		}
		t.At = t.At.UTC()
		turns = append(turns, t)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	for _, t := range turns {
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}
