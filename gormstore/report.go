package gormstore

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/report"
	"github.com/dingdesk/dingdesk/web"
)

// botTurnRow is one question the bot handled and what it did: "answer"
// (EntryID answered), "clarify" (a 您是不是想问 list) or "none" (无答案).
// The engine writes one per bot-state question in the transaction that
// answers it (handoffTx.AddBotTurn); the reports read them.
type botTurnRow struct {
	ID        int64     `gorm:"primaryKey;autoIncrement"`
	UserKey   string    `gorm:"size:191;not null"`
	Outcome   string    `gorm:"size:16;not null"`
	EntryID   string    `gorm:"size:191;not null;default:''"`
	Score     float64   `gorm:"not null;default:0"`
	CreatedAt time.Time `gorm:"not null;index:ix_bt_created"`
}

func (botTurnRow) TableName() string { return "bot_turns" }

// sessionRatingRow is the satisfaction survey of one human session: the
// prompt sent when it ended, then the user's rating (Score 1–5) or the
// prompt's quiet end (ClosedAt: another message, or the rating timeout).
type sessionRatingRow struct {
	SessionID  int64     `gorm:"primaryKey;autoIncrement:false"`
	UserKey    string    `gorm:"size:191;not null;index:ix_sr_user"`
	GroupName  string    `gorm:"size:128;not null;default:''"`
	AgentID    string    `gorm:"size:128;not null;default:'';index:ix_sr_agent"`
	PromptedAt time.Time `gorm:"not null;index:ix_sr_prompted"`
	Score      int       `gorm:"not null;default:0"` // 0 until rated
	RatedAt    *time.Time
	ClosedAt   *time.Time
}

func (sessionRatingRow) TableName() string { return "session_ratings" }

// The engine's calls for the reports, on its transaction. They take plain
// values so handoff.Tx can list them as they are (the engine does not
// know these rows):
//
//	AddBotTurn(userKey, outcome, entryID string, score float64, at time.Time) error
//	PromptRating(sessionID int64, userKey, group, agent string, at time.Time) error
//	PendingRating(userKey string, since time.Time) (sessionID int64, ok bool, err error)
//	RateSession(sessionID int64, score int, at time.Time) (bool, error)
//	ClosePrompt(sessionID int64, at time.Time) error

// botTurnColumns are the columns of bot_turns AddBotTurn writes.
var botTurnColumns = []string{"user_key", "outcome", "entry_id", "score", "created_at"}

// AddBotTurn records one bot-state question and its outcome ("answer",
// "clarify", "none"), with the answered entry and the best score. Every
// question the bot answers writes one, so it is a hot-path statement
// (hotpath.go), prepared on MySQL; it cannot share a multi-row insert with
// the transcript lines (another table).
func (t *handoffTx) AddBotTurn(userKey, outcome, entryID string, score float64, at time.Time) error {
	if t.run != nil {
		t.own.botTurns = append(t.own.botTurns, []any{userKey, outcome, entryID, score, at.UTC()})
		return nil
	}
	_, err := t.db.sqlOn(t.g).exec(insertSQL("bot_turns", botTurnColumns, 1), userKey, outcome, entryID, score, at.UTC())
	return err
}

// PromptRating records that the user of a session that just ended was
// asked for a rating; a second prompt for the same session is a no-op.
func (t *handoffTx) PromptRating(sessionID int64, userKey, group, agent string, at time.Time) error {
	return t.q().Clauses(clause.OnConflict{DoNothing: true}).Create(&sessionRatingRow{SessionID: sessionID, UserKey: userKey,
		GroupName: group, AgentID: agent, PromptedAt: at.UTC()}).Error
}

// PendingRating is the session of the user's open rating prompt sent at or
// after since (the rating timeout ago: an older prompt has ended quietly).
func (t *handoffTx) PendingRating(userKey string, since time.Time) (int64, bool, error) {
	var rows []sessionRatingRow
	err := t.q().Where("user_key = ? AND score = 0 AND closed_at IS NULL AND prompted_at >= ?", userKey, since.UTC()).
		Order("prompted_at desc").Limit(1).Find(&rows).Error
	if err != nil || len(rows) == 0 {
		return 0, false, err
	}
	return rows[0].SessionID, true, nil
}

// RateSession stores score (1–5) on the session's open prompt; false when
// there is none (already rated or closed).
func (t *handoffTx) RateSession(sessionID int64, score int, at time.Time) (bool, error) {
	res := t.q().Model(&sessionRatingRow{}).Where("session_id = ? AND score = 0 AND closed_at IS NULL", sessionID).
		Updates(map[string]any{"score": score, "rated_at": at.UTC()})
	return res.RowsAffected == 1, res.Error
}

// ClosePrompt ends a session's open prompt without a rating.
func (t *handoffTx) ClosePrompt(sessionID int64, at time.Time) error {
	return t.q().Model(&sessionRatingRow{}).Where("session_id = ? AND score = 0 AND closed_at IS NULL", sessionID).
		Update("closed_at", at.UTC()).Error
}

// addRatings fills in the 满意度 of sessions (the workbench's 已结束 list):
// one query for the page.
func addRatings(g *gorm.DB, list []web.Session) error {
	if len(list) == 0 {
		return nil
	}
	ids := make([]int64, len(list))
	for i, s := range list {
		ids[i] = s.ID
	}
	var rows []sessionRatingRow
	if err := g.Select("session_id, score").Where("session_id IN ? AND score > 0", ids).Find(&rows).Error; err != nil {
		return err
	}
	score := make(map[int64]int, len(rows))
	for _, r := range rows {
		score[r.SessionID] = r.Score
	}
	for i := range list {
		list[i].Rating = score[list[i].ID]
	}
	return nil
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
// (ix_hs_created serves the range.)
func (s *ReportStore) Sessions(ctx context.Context, from, to time.Time, fn func(report.Session) error) error {
	g := s.db.gorm.WithContext(ctx)
	var lastID int64
	for {
		var rows []handoffSessionRow
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

func (s *ReportStore) complete(g *gorm.DB, rows []handoffSessionRow) ([]report.Session, error) {
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
	err := g.Model(&handoffMessageRow{}).Select("session_id, sender_kind, COUNT(*) AS n, MIN(id) AS first_id").
		Where("session_id IN ? AND sender_kind IN ?", ids, []string{string(handoff.SenderAgent), string(handoff.SenderUser)}).
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
		if c.SenderKind == string(handoff.SenderAgent) {
			m.agent = c.N
			firstIDs = append(firstIDs, c.FirstID)
			firstOf[c.FirstID] = c.SessionID
		} else {
			m.user = c.N
		}
	}
	if len(firstIDs) > 0 {
		var firsts []handoffMessageRow
		if err := g.Select("id, created_at").Where("id IN ?", firstIDs).Find(&firsts).Error; err != nil {
			return nil, err
		}
		for _, f := range firsts {
			byID[firstOf[f.ID]].first = f.CreatedAt.UTC()
		}
	}
	var ratings []sessionRatingRow
	if err := g.Where("session_id IN ?", ids).Find(&ratings).Error; err != nil {
		return nil, err
	}
	rated := make(map[int64]*sessionRatingRow, len(ratings))
	for i := range ratings {
		rated[ratings[i].SessionID] = &ratings[i]
	}
	out := make([]report.Session, len(rows))
	for i, r := range rows {
		rs := report.Session{ID: r.ID, UserKey: r.UserKey, UserID: r.UserID, Nick: r.Nick, Group: r.GroupName,
			Agent: r.AgentID, AgentName: r.AgentName, Reason: r.Reason, EndReason: r.EndReason, CreatedAt: r.CreatedAt.UTC(),
			AssignedAt: val(r.AssignedAt).UTC(), EndedAt: val(r.EndedAt).UTC()}
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

// Turns streams the bot turns of [from, to).
func (s *ReportStore) Turns(ctx context.Context, from, to time.Time, fn func(report.Turn) error) error {
	rows, err := s.db.gorm.WithContext(ctx).Model(&botTurnRow{}).Select("user_key, outcome, created_at").
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
