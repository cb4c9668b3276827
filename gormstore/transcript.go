package gormstore

import (
	"context"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/transcript"
)

// TranscriptStore implements transcript.Store over the hand-off tables.
type TranscriptStore struct{ db *DB }

var _ transcript.Store = (*TranscriptStore)(nil)

// NewTranscriptStore wraps db.
func NewTranscriptStore(db *DB) *TranscriptStore { return &TranscriptStore{db: db} }

// likeEscape makes s a LIKE pattern matching s anywhere, with '!' as the
// escape character (the same on SQLite and MySQL, where a backslash would
// need escaping twice).
func likeEscape(s string) string {
	r := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")
	return "%" + r.Replace(s) + "%"
}

// Search runs q against handoff_sessions, the text through an EXISTS on
// handoff_messages by session.
func (s *TranscriptStore) Search(ctx context.Context, q transcript.Query) ([]transcript.Session, error) {
	g := s.db.gorm.WithContext(ctx).Model(&handoffSessionRow{})
	if q.User != "" {
		g = g.Where("(user_id = ? OR user_key = ? OR nick LIKE ? ESCAPE '!')", q.User, q.User, likeEscape(q.User))
	}
	if q.Agent != "" {
		g = g.Where("(agent_id = ? OR agent_name = ?)", q.Agent, q.Agent)
	}
	if q.Group != "" {
		g = g.Where("group_name = ?", q.Group)
	}
	if !q.From.IsZero() {
		g = g.Where("created_at >= ?", q.From.UTC())
	}
	if !q.To.IsZero() {
		g = g.Where("created_at < ?", q.To.UTC())
	}
	if q.BeforeID > 0 {
		g = g.Where("id < ?", q.BeforeID)
	}
	if q.Text != "" {
		g = g.Where("EXISTS (SELECT 1 FROM handoff_messages m WHERE m.session_id = handoff_sessions.id AND m.text LIKE ? ESCAPE '!')", likeEscape(q.Text))
	}
	var rows []handoffSessionRow
	if err := g.Order("id desc").Limit(q.Limit).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]transcript.Session, len(rows))
	ids := make([]int64, len(rows))
	for i := range rows {
		out[i] = sessionOf(&rows[i])
		ids[i] = rows[i].ID
	}
	if q.Text != "" && len(ids) > 0 {
		var firsts []struct {
			SessionID int64
			FirstID   int64
		}
		err := s.db.gorm.WithContext(ctx).Model(&handoffMessageRow{}).Select("session_id, MIN(id) AS first_id").
			Where("session_id IN ? AND text LIKE ? ESCAPE '!'", ids, likeEscape(q.Text)).Group("session_id").Scan(&firsts).Error
		if err != nil {
			return nil, err
		}
		lineIDs := make([]int64, len(firsts))
		for i, f := range firsts {
			lineIDs[i] = f.FirstID
		}
		var lines []handoffMessageRow
		if len(lineIDs) > 0 {
			if err := s.db.gorm.WithContext(ctx).Select("id, session_id, text").Where("id IN ?", lineIDs).Find(&lines).Error; err != nil {
				return nil, err
			}
		}
		snippet := map[int64]string{}
		for _, l := range lines {
			snippet[l.SessionID] = l.Text
		}
		for i := range out {
			out[i].Snippet = snippet[out[i].ID]
		}
	}
	return out, nil
}

func sessionOf(r *handoffSessionRow) transcript.Session {
	return transcript.Session{ID: r.ID, UserKey: r.UserKey, UserID: r.UserID, Nick: r.Nick, ConversationID: r.ConversationID,
		ConversationTitle: r.ConversationTitle, Group: r.GroupName, Agent: r.AgentID, AgentName: r.AgentName, State: r.State,
		Reason: r.Reason, EndReason: r.EndReason, CreatedAt: r.CreatedAt.UTC(), AssignedAt: val(r.AssignedAt).UTC(), EndedAt: val(r.EndedAt).UTC()}
}

// Session reads one session; nil when missing.
func (s *TranscriptStore) Session(ctx context.Context, id int64) (*transcript.Session, error) {
	var rows []handoffSessionRow
	if err := s.db.gorm.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&rows).Error; err != nil || len(rows) == 0 {
		return nil, err
	}
	out := sessionOf(&rows[0])
	return &out, nil
}

// PreviousEnd is when the user's last session before id ended.
func (s *TranscriptStore) PreviousEnd(ctx context.Context, userKey string, id int64) (time.Time, error) {
	var rows []handoffSessionRow
	err := s.db.gorm.WithContext(ctx).Select("id, ended_at").Where("user_key = ? AND id < ?", userKey, id).
		Order("id desc").Limit(1).Find(&rows).Error
	if err != nil || len(rows) == 0 {
		return time.Time{}, err
	}
	return val(rows[0].EndedAt).UTC(), nil
}

// Lines reads session id's lines and the user's bot lines in [since, until]
// through ix_hm_user.
func (s *TranscriptStore) Lines(ctx context.Context, userKey string, id int64, since, until time.Time) ([]transcript.Line, error) {
	var rows []handoffMessageRow
	err := s.db.gorm.WithContext(ctx).Where("user_key = ? AND (session_id = ? OR (session_id = 0 AND created_at >= ? AND created_at <= ?))",
		userKey, id, since.UTC(), until.UTC()).Order("id").Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]transcript.Line, len(rows))
	for i, r := range rows {
		out[i] = transcript.Line{ID: r.ID, SessionID: r.SessionID, Direction: r.Direction, SenderKind: r.SenderKind,
			SenderID: r.SenderID, SenderName: r.SenderName, Kind: r.Kind, Text: r.Text, At: r.CreatedAt.UTC()}
	}
	return out, nil
}
