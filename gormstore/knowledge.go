package gormstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/knowledge"
)

// kbEntryRow is a managed knowledge record (package knowledge explains the
// overlay): an entry created in the console, or one that replaces, disables
// or (Deleted) hides the file entry of the same id.
type kbEntryRow struct {
	EntryID   string `gorm:"primaryKey;size:191"`
	Question  string `gorm:"type:text"`
	Similar   string // JSON array (longtext on MySQL: no size cap worth hitting)
	Answer    string
	Category  string `gorm:"size:128;not null;default:''"`
	Handoff   bool   `gorm:"not null;default:false"`
	Disabled  bool   `gorm:"not null;default:false"`
	Deleted   bool   `gorm:"not null;default:false"`
	BaseHash  string `gorm:"size:64;not null;default:''"`
	Version   int64  `gorm:"not null;default:0"` // the revision that last wrote it
	CreatedBy string `gorm:"size:128;not null;default:''"`
	UpdatedBy string `gorm:"size:128;not null;default:''"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (kbEntryRow) TableName() string { return "kb_entries" }

// kbMetaRow holds the knowledge revision (one row, id 1). Every change
// bumps it under its row lock, which also serialises writers; replicas
// poll it to know when to rebuild their matcher.
type kbMetaRow struct {
	ID       int   `gorm:"primaryKey;autoIncrement:false"`
	Revision int64 `gorm:"not null;default:0"`
}

func (kbMetaRow) TableName() string { return "kb_meta" }

// kbChangeRow is one line of the knowledge history: who changed which
// entry how, and when.
type kbChangeRow struct {
	ID        int64     `gorm:"primaryKey;autoIncrement"`
	Revision  int64     `gorm:"not null;index:ix_kbc_rev"`
	EntryID   string    `gorm:"size:191;not null;index:ix_kbc_entry"`
	Action    string    `gorm:"size:16;not null"`
	Actor     string    `gorm:"size:128;not null;default:''"`
	After     string    // the record written, JSON; empty for a revert
	CreatedAt time.Time `gorm:"not null"`
}

func (kbChangeRow) TableName() string { return "kb_changes" }

// kbReviewRow is an admin's decision on an unanswered question, keyed by
// the question's normalised text (KeyHash indexes it; the text can be long).
type kbReviewRow struct {
	ID        int64     `gorm:"primaryKey;autoIncrement"`
	KeyHash   string    `gorm:"size:64;not null;index:ix_kbr_key"`
	KeyText   string    `gorm:"type:text"`
	Question  string    `gorm:"type:text"`
	Action    string    `gorm:"size:16;not null"`
	EntryID   string    `gorm:"size:191;not null;default:''"`
	Actor     string    `gorm:"size:128;not null;default:''"`
	CreatedAt time.Time `gorm:"not null;index:ix_kbr_created"`
}

func (kbReviewRow) TableName() string { return "kb_reviews" }

// KnowledgeStore implements knowledge.Store and knowledge.ReviewStore.
type KnowledgeStore struct {
	db     *DB
	metaOK atomic.Bool // the kb_meta row exists
}

var (
	_ knowledge.Store       = (*KnowledgeStore)(nil)
	_ knowledge.ReviewStore = (*KnowledgeStore)(nil)
)

// NewKnowledgeStore wraps db.
func NewKnowledgeStore(db *DB) *KnowledgeStore { return &KnowledgeStore{db: db} }

var errKBConflict = knowledge.ErrConflict

// Revision reads the counter (0 before the first change).
func (s *KnowledgeStore) Revision(ctx context.Context) (int64, error) {
	var rows []kbMetaRow
	if err := s.db.gorm.WithContext(ctx).Where("id = 1").Limit(1).Find(&rows).Error; err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return 0, nil
	}
	return rows[0].Revision, nil
}

// Records reads every record and the revision, in one transaction so they
// agree.
func (s *KnowledgeStore) Records(ctx context.Context) ([]knowledge.Record, int64, error) {
	var (
		rows []kbEntryRow
		meta []kbMetaRow
	)
	err := s.db.transaction(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("id = 1").Limit(1).Find(&meta).Error; err != nil {
			return err
		}
		return tx.Order("entry_id").Find(&rows).Error
	})
	if err != nil {
		return nil, 0, err
	}
	out := make([]knowledge.Record, len(rows))
	for i := range rows {
		out[i] = recordOf(&rows[i])
	}
	var rev int64
	if len(meta) > 0 {
		rev = meta[0].Revision
	}
	return out, rev, nil
}

func recordOf(r *kbEntryRow) knowledge.Record {
	var sim []string
	if r.Similar != "" {
		_ = json.Unmarshal([]byte(r.Similar), &sim)
	}
	return knowledge.Record{Entry: bot.Entry{ID: r.EntryID, Question: r.Question, Similar: sim, Answer: r.Answer, Category: r.Category,
		Handoff: r.Handoff}, Disabled: r.Disabled, Deleted: r.Deleted, BaseHash: r.BaseHash, Version: r.Version,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.UTC(), UpdatedBy: r.UpdatedBy, UpdatedAt: r.UpdatedAt.UTC()}
}

func rowOf(r *knowledge.Record) kbEntryRow {
	sim := r.Similar
	if sim == nil {
		sim = []string{}
	}
	b, _ := json.Marshal(sim)
	return kbEntryRow{EntryID: r.ID, Question: r.Question, Similar: string(b), Answer: r.Answer, Category: r.Category,
		Handoff: r.Handoff, Disabled: r.Disabled, Deleted: r.Deleted, BaseHash: r.BaseHash, Version: r.Version,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedBy: r.UpdatedBy, UpdatedAt: r.UpdatedAt}
}

// Apply writes muts in one transaction under the revision row's lock.
func (s *KnowledgeStore) Apply(ctx context.Context, ifRevision int64, at time.Time, muts []knowledge.Mutation) (int64, error) {
	if err := s.ensureMeta(ctx); err != nil {
		return 0, err
	}
	var rev int64
	err := s.db.retryTx(ctx, func(tx *gorm.DB) error {
		var meta kbMetaRow
		if err := s.db.forUpdate(tx).Where("id = 1").Take(&meta).Error; err != nil {
			return err
		}
		if ifRevision >= 0 && meta.Revision != ifRevision {
			return errKBConflict
		}
		rev = meta.Revision + 1
		for i := range muts {
			if err := s.applyOne(tx, &muts[i], rev, at); err != nil {
				return err
			}
		}
		return tx.Model(&kbMetaRow{}).Where("id = 1").Update("revision", rev).Error
	})
	if err != nil {
		return 0, err
	}
	return rev, nil
}

func (s *KnowledgeStore) applyOne(tx *gorm.DB, m *knowledge.Mutation, rev int64, at time.Time) error {
	var cur []kbEntryRow
	if err := s.db.forUpdate(tx).Where("entry_id = ?", m.Record.ID).Limit(1).Find(&cur).Error; err != nil {
		return err
	}
	switch {
	case m.IfAbsent && len(cur) > 0,
		m.IfVersion > 0 && (len(cur) == 0 || cur[0].Version != m.IfVersion):
		return errKBConflict
	}
	change := kbChangeRow{Revision: rev, EntryID: m.Record.ID, Action: string(m.Action), Actor: m.Actor, CreatedAt: at}
	if m.Remove {
		if err := tx.Where("entry_id = ?", m.Record.ID).Delete(&kbEntryRow{}).Error; err != nil {
			return err
		}
	} else {
		rec := m.Record
		rec.Version = rev
		row := rowOf(&rec)
		var err error
		if len(cur) == 0 {
			err = tx.Create(&row).Error
		} else {
			err = tx.Model(&kbEntryRow{}).Where("entry_id = ?", row.EntryID).Select("*").Omit("entry_id").Updates(&row).Error
		}
		if err != nil {
			return err
		}
		b, _ := json.Marshal(rec)
		change.After = string(b)
	}
	if err := tx.Create(&change).Error; err != nil {
		return err
	}
	if m.Review != nil {
		r := reviewRow(*m.Review)
		return tx.Create(&r).Error
	}
	return nil
}

func (s *KnowledgeStore) ensureMeta(ctx context.Context) error {
	if s.metaOK.Load() {
		return nil
	}
	// Outside the transaction: an insert-or-ignore followed by a locking
	// read in one transaction can deadlock two writers on MySQL.
	err := s.db.gorm.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&kbMetaRow{ID: 1}).Error
	if err == nil {
		s.metaOK.Store(true)
	}
	return err
}

// History lists an entry's changes, newest first.
func (s *KnowledgeStore) History(ctx context.Context, entryID string, limit int) ([]knowledge.Change, error) {
	if limit <= 0 {
		limit = 50
	}
	var rows []kbChangeRow
	if err := s.db.gorm.WithContext(ctx).Where("entry_id = ?", entryID).Order("id desc").Limit(limit).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]knowledge.Change, len(rows))
	for i, r := range rows {
		out[i] = knowledge.Change{Revision: r.Revision, EntryID: r.EntryID, Action: knowledge.Action(r.Action), Actor: r.Actor, At: r.CreatedAt.UTC()}
		if r.After != "" {
			var rec knowledge.Record
			if json.Unmarshal([]byte(r.After), &rec) == nil {
				out[i].After = &rec
			}
		}
	}
	return out, nil
}

// Hits reads the stored hit counts (HitStore.Load).
func (s *KnowledgeStore) Hits(ctx context.Context) (map[string]int64, error) {
	return NewHitStore(s.db).Load(ctx)
}

func keyHash(k string) string {
	h := sha256.Sum256([]byte(k))
	return hex.EncodeToString(h[:])
}

func reviewRow(r knowledge.Review) kbReviewRow {
	return kbReviewRow{KeyHash: keyHash(r.Key), KeyText: r.Key, Question: r.Question, Action: string(r.Action),
		EntryID: r.EntryID, Actor: r.Actor, CreatedAt: r.At}
}

// AddReview records a decision.
func (s *KnowledgeStore) AddReview(ctx context.Context, r knowledge.Review) error {
	row := reviewRow(r)
	return s.db.gorm.WithContext(ctx).Create(&row).Error
}

// Reviews lists the decisions made at or after since.
func (s *KnowledgeStore) Reviews(ctx context.Context, since time.Time) ([]knowledge.Review, error) {
	var rows []kbReviewRow
	if err := s.db.gorm.WithContext(ctx).Where("created_at >= ?", since).Order("id").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]knowledge.Review, len(rows))
	for i, r := range rows {
		out[i] = knowledge.Review{Key: r.KeyText, Question: r.Question, Action: knowledge.ReviewAction(r.Action),
			EntryID: r.EntryID, Actor: r.Actor, At: r.CreatedAt.UTC()}
	}
	return out, nil
}

// Unanswered lists handoff_unanswered rows asked at or after since, newest
// first; Kind tells a clarify list the user left from a question without an
// answer.
func (s *KnowledgeStore) Unanswered(ctx context.Context, since time.Time, limit int) ([]knowledge.Asked, error) {
	var rows []handoffUnansweredRow
	err := s.db.gorm.WithContext(ctx).Where("created_at >= ?", since).Order("id desc").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]knowledge.Asked, len(rows))
	for i, r := range rows {
		kind := r.Kind // the column's default is "none", knowledge.AskedNoAnswer
		var cs []bot.Candidate
		if r.Candidates != "" {
			_ = json.Unmarshal([]byte(r.Candidates), &cs)
		}
		out[i] = knowledge.Asked{ID: r.ID, UserKey: r.UserKey, ConversationID: r.ConversationID, Question: r.Question,
			Kind: kind, Candidates: cs, At: r.CreatedAt.UTC()}
	}
	return out, nil
}

// maxAgentAnswers bounds AgentAnswers: each answer reads the user's lines
// before it with one indexed query.
const maxAgentAnswers = 300

// AgentAnswers lists the first agent replies (up to three) of the latest
// sessions created at or after since, with up to five of the user's text
// lines before the first (within an hour).
func (s *KnowledgeStore) AgentAnswers(ctx context.Context, since time.Time, limit int) ([]knowledge.SessionAnswer, error) {
	limit = min(max(limit, 1), maxAgentAnswers)
	g := s.db.gorm.WithContext(ctx)
	var firsts []struct {
		SessionID int64
		FirstID   int64
	}
	err := g.Model(&handoffMessageRow{}).Select("session_id, MIN(id) AS first_id").
		Where("sender_kind = ? AND session_id > 0 AND created_at >= ?", string(handoff.SenderAgent), since).
		Group("session_id").Order("first_id desc").Limit(limit).Scan(&firsts).Error
	if err != nil || len(firsts) == 0 {
		return nil, err
	}
	ids := make([]int64, len(firsts))
	sids := make([]int64, len(firsts))
	for i, f := range firsts {
		ids[i], sids[i] = f.FirstID, f.SessionID
	}
	var replies []handoffMessageRow
	if err := g.Where("id IN ?", ids).Find(&replies).Error; err != nil {
		return nil, err
	}
	byID := make(map[int64]*handoffMessageRow, len(replies))
	for i := range replies {
		byID[replies[i].ID] = &replies[i]
	}
	var sessions []handoffSessionRow
	if err := g.Select("id, group_name, agent_id, agent_name").Where("id IN ?", sids).Find(&sessions).Error; err != nil {
		return nil, err
	}
	bySession := make(map[int64]*handoffSessionRow, len(sessions))
	for i := range sessions {
		bySession[sessions[i].ID] = &sessions[i]
	}
	// The first replies of each session (the first is often a greeting).
	var replyRows []handoffMessageRow
	if err := g.Select("id, session_id, text").Where("session_id IN ? AND sender_kind = ?", sids, string(handoff.SenderAgent)).
		Order("id").Find(&replyRows).Error; err != nil {
		return nil, err
	}
	firstReplies := map[int64][]string{}
	for _, r := range replyRows {
		if len(firstReplies[r.SessionID]) < 3 {
			firstReplies[r.SessionID] = append(firstReplies[r.SessionID], r.Text)
		}
	}
	// The users' text lines in the hour before each first reply, in one
	// query (through ix_hm_user), partitioned below.
	keys := make([]string, 0, len(replies))
	oldest := time.Now()
	for _, r := range replies {
		keys = append(keys, r.UserKey)
		if t := r.CreatedAt.Add(-time.Hour); t.Before(oldest) {
			oldest = t
		}
	}
	var userRows []handoffMessageRow
	if err := g.Select("id, user_key, text, created_at").Where("user_key IN ? AND direction = ? AND kind = ? AND created_at >= ?",
		keys, string(handoff.DirIn), "text", oldest).Order("id").Find(&userRows).Error; err != nil {
		return nil, err
	}
	byUser := map[string][]handoffMessageRow{}
	for _, r := range userRows {
		byUser[r.UserKey] = append(byUser[r.UserKey], r)
	}
	out := make([]knowledge.SessionAnswer, 0, len(firsts))
	for _, f := range firsts {
		rep := byID[f.FirstID]
		if rep == nil {
			continue
		}
		// The last five before the reply, within the hour; newest first.
		var lines []handoffMessageRow
		all := byUser[rep.UserKey]
		for i := len(all) - 1; i >= 0 && len(lines) < 5; i-- {
			if l := all[i]; l.ID < rep.ID && !l.CreatedAt.Before(rep.CreatedAt.Add(-time.Hour)) {
				lines = append(lines, l)
			}
		}
		a := knowledge.SessionAnswer{SessionID: f.SessionID, UserKey: rep.UserKey, Agent: rep.SenderID,
			AgentName: rep.SenderName, Replies: firstReplies[f.SessionID], Answer: rep.Text, AnswerAt: rep.CreatedAt.UTC()}
		for _, r := range a.Replies {
			if utf8.RuneCountInString(r) > utf8.RuneCountInString(a.Answer) {
				a.Answer = r
			}
		}
		if sess := bySession[f.SessionID]; sess != nil {
			a.Group = sess.GroupName
			if a.AgentName == "" {
				a.AgentName = sess.AgentName
			}
		}
		for i := len(lines) - 1; i >= 0; i-- {
			a.UserLines = append(a.UserLines, lines[i].Text)
		}
		if len(lines) > 0 {
			a.UserAt = lines[0].CreatedAt.UTC()
		}
		out = append(out, a)
	}
	return out, nil
}

// kbImportRow is a previewed Excel import waiting for its confirmation
// (knowledge.Staged), so any replica can apply it.
type kbImportRow struct {
	Token     string    `gorm:"primaryKey;size:64"`
	Actor     string    `gorm:"size:128;not null;default:''"`
	Rows      string    // JSON []knowledge.ImportRow
	Problems  string    // JSON []knowledge.RowError
	Revision  int64     `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null;index:ix_kbi_created"`
}

func (kbImportRow) TableName() string { return "kb_imports" }

var _ knowledge.StagedStore = (*KnowledgeStore)(nil)

// Stage keeps a previewed import.
func (s *KnowledgeStore) Stage(ctx context.Context, st knowledge.Staged) error {
	rows, err := json.Marshal(st.Rows)
	if err != nil {
		return err
	}
	problems, err := json.Marshal(st.Problems)
	if err != nil {
		return err
	}
	return s.db.gorm.WithContext(ctx).Create(&kbImportRow{Token: st.Token, Actor: st.Actor, Rows: string(rows),
		Problems: string(problems), Revision: st.Revision, CreatedAt: st.At}).Error
}

// Staged reads a staged import made at or after since; nil when none.
func (s *KnowledgeStore) Staged(ctx context.Context, token string, since time.Time) (*knowledge.Staged, error) {
	var rows []kbImportRow
	if err := s.db.gorm.WithContext(ctx).Where("token = ? AND created_at >= ?", token, since).Limit(1).Find(&rows).Error; err != nil || len(rows) == 0 {
		return nil, err
	}
	r := rows[0]
	st := &knowledge.Staged{Token: r.Token, Actor: r.Actor, Revision: r.Revision, At: r.CreatedAt.UTC()}
	if err := json.Unmarshal([]byte(r.Rows), &st.Rows); err != nil {
		return nil, err
	}
	if r.Problems != "" {
		if err := json.Unmarshal([]byte(r.Problems), &st.Problems); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// Unstage drops a staged import and those older than before.
func (s *KnowledgeStore) Unstage(ctx context.Context, token string, before time.Time) error {
	return s.db.gorm.WithContext(ctx).Where("token = ? OR created_at < ?", token, before).Delete(&kbImportRow{}).Error
}
