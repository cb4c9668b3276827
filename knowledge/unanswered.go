package knowledge

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dingdesk/dingdesk/bot"
)

// Kinds of unanswered questions.
const (
	AskedNoAnswer = "none"    // the bot had no answer (无答案)
	AskedClarify  = "clarify" // the user left a "您是不是想问" list without picking
)

// Asked is one stored unanswered question.
type Asked struct {
	ID             int64
	UserKey        string
	ConversationID string
	Question       string
	Kind           string // AskedNoAnswer or AskedClarify
	// Candidates are the bot's best entries when it was asked.
	Candidates []bot.Candidate
	At         time.Time
}

// ReviewAction is what an admin did with an unanswered question.
type ReviewAction string

const (
	ReviewSimilar ReviewAction = "similar" // added as a similar question of EntryID
	ReviewCreate  ReviewAction = "create"  // a new entry EntryID was made for it
	ReviewIgnore  ReviewAction = "ignore"  // not worth an answer
)

// Review is an admin's decision on a question (by its normalised text).
type Review struct {
	Key      string // Key(question)
	Question string // as shown when decided
	Action   ReviewAction
	EntryID  string
	Actor    string
	At       time.Time
}

// SessionAnswer is an agent's first replies in a session, with the user's
// lines before them: the question an agent answered.
type SessionAnswer struct {
	SessionID int64
	UserKey   string
	Group     string
	Agent     string
	AgentName string
	// UserLines are the user's last text messages before the reply, oldest
	// first (the bot part before the hand-off included).
	UserLines []string
	UserAt    time.Time // of the last of them
	// Replies are the agent's first replies in the session (up to
	// three); Answer is the longest of them — the first is often a
	// greeting ("您好，请稍等") — as the draft, for the admin to edit.
	Replies  []string
	Answer   string
	AnswerAt time.Time // of the first reply
}

// ReviewStore reads what the engine stored about unanswered questions and
// keeps the admins' decisions.
type ReviewStore interface {
	// Unanswered lists unanswered questions asked at or after since, newest
	// first, at most limit.
	Unanswered(ctx context.Context, since time.Time, limit int) ([]Asked, error)
	// AgentAnswers lists the first agent reply of sessions created at or
	// after since, newest first, at most limit.
	AgentAnswers(ctx context.Context, since time.Time, limit int) ([]SessionAnswer, error)
	// Reviews lists the decisions made at or after since.
	Reviews(ctx context.Context, since time.Time) ([]Review, error)
	// AddReview records a decision that changes no entry (ignore).
	AddReview(ctx context.Context, r Review) error
}

// Reviewer is the 未解决问题 workflow: unanswered questions grouped, with
// the bot's candidates, turned into knowledge in one step.
type Reviewer struct {
	Manager *Manager
	Store   ReviewStore
	// Match is the live matcher (bot.(*Bot).KB().Match); nil shows the
	// candidates stored when the question was asked.
	Match func(q string) bot.Result
	// Window is how far back questions are read; 30 days when 0.
	Window time.Duration
	// NotAQuestion reports user lines that ask nothing (transfer or end
	// keywords, a number picked from a list), skipped when looking for the
	// question an agent answered. Lines shorter than 4 characters after
	// normalising are always skipped.
	NotAQuestion func(text string) bool
	Now          func() time.Time
}

// Question is one group of the 未解决问题 list.
type Question struct {
	Key      string
	Question string // the latest wording
	Count    int    // times asked since the last decision on it
	NoAnswer int    // of which without an answer
	Clarify  int    // of which a clarify list the user left
	FirstAt  time.Time
	LastAt   time.Time
	// Candidates are the bot's best entries for it now, best first.
	Candidates []bot.Candidate
	// Draft is an agent's answer to the same question in a session, when
	// one exists: a ready new entry.
	Draft *SessionAnswer
}

// ListOptions bound the lists.
type ListOptions struct {
	Limit int // groups returned; 100 when 0
	// Scan is how many stored rows are read; 5000 when 0.
	Scan int
}

func (o ListOptions) norm() ListOptions {
	if o.Limit <= 0 {
		o.Limit = 100
	}
	if o.Scan <= 0 {
		o.Scan = 5000
	}
	return o
}

func (r *Reviewer) since() time.Time {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	w := r.Window
	if w <= 0 {
		w = 30 * 24 * time.Hour
	}
	return now().Add(-w)
}

// decided maps keys to their latest decision time.
func (r *Reviewer) decided(ctx context.Context, since time.Time) (map[string]time.Time, error) {
	revs, err := r.Store.Reviews(ctx, since)
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(revs))
	for _, v := range revs {
		if v.At.After(out[v.Key]) {
			out[v.Key] = v.At
		}
	}
	return out, nil
}

// Unanswered groups the unanswered questions by normalised text, most
// recently asked first. A decision hides what was asked before it; the
// same question asked again later comes back, counted from then. Questions
// the live matcher now answers directly are left out, however they came to
// be answered.
func (r *Reviewer) Unanswered(ctx context.Context, o ListOptions) ([]Question, error) {
	o = o.norm()
	since := r.since()
	asked, err := r.Store.Unanswered(ctx, since, o.Scan)
	if err != nil {
		return nil, err
	}
	decided, err := r.decided(ctx, since)
	if err != nil {
		return nil, err
	}
	byKey := map[string]*Question{}
	var order []*Question
	stored := map[string][]bot.Candidate{}
	for _, a := range asked { // newest first
		k := Key(a.Question)
		if k == "" || !a.At.After(decided[k]) {
			continue
		}
		q := byKey[k]
		if q == nil {
			q = &Question{Key: k, Question: strings.TrimSpace(a.Question), LastAt: a.At}
			byKey[k] = q
			order = append(order, q)
			stored[k] = a.Candidates
		}
		q.Count++
		q.FirstAt = a.At
		if a.Kind == AskedClarify {
			q.Clarify++
		} else {
			q.NoAnswer++
		}
	}
	answers, err := r.agentAnswers(ctx, since, o.Scan)
	if err != nil {
		return nil, err
	}
	var out []Question
	for _, q := range order {
		if r.Match != nil {
			res := r.Match(q.Question)
			if res.Outcome == bot.OutcomeAnswer {
				// The knowledge answers it now (an edit, or another
				// replica asked before it rebuilt): nothing to do.
				continue
			}
			q.Candidates = bot.NearBest(res.Candidates, 3)
		} else {
			q.Candidates = bot.NearBest(stored[q.Key], 3)
		}
		if a, ok := answers[q.Key]; ok && a.AnswerAt.After(decided[q.Key]) {
			q.Draft = &a
		}
		out = append(out, *q)
		if len(out) == o.Limit {
			break
		}
	}
	return out, nil
}

// AgentAnswer is a question an agent answered in a session, offered as a
// draft entry.
type AgentAnswer struct {
	Key      string
	Question string
	SessionAnswer
	// Candidates are the bot's best entries for the question now: when one
	// fits, add the question to it instead.
	Candidates []bot.Candidate
}

// AgentAnswered lists questions agents answered in sessions, newest first,
// one per normalised question, leaving out decided ones.
func (r *Reviewer) AgentAnswered(ctx context.Context, o ListOptions) ([]AgentAnswer, error) {
	o = o.norm()
	since := r.since()
	decided, err := r.decided(ctx, since)
	if err != nil {
		return nil, err
	}
	list, err := r.Store.AgentAnswers(ctx, since, o.Scan)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []AgentAnswer
	for _, a := range list {
		q := r.questionOf(a)
		k := Key(q)
		if k == "" || seen[k] || !a.AnswerAt.After(decided[k]) {
			continue
		}
		seen[k] = true
		aa := AgentAnswer{Key: k, Question: q, SessionAnswer: a}
		if r.Match != nil {
			aa.Candidates = bot.NearBest(r.Match(q).Candidates, 3)
		}
		out = append(out, aa)
		if len(out) == o.Limit {
			break
		}
	}
	return out, nil
}

// agentAnswers indexes the latest agent answer per question key.
func (r *Reviewer) agentAnswers(ctx context.Context, since time.Time, scan int) (map[string]SessionAnswer, error) {
	list, err := r.Store.AgentAnswers(ctx, since, scan)
	if err != nil {
		return nil, err
	}
	out := map[string]SessionAnswer{}
	for _, a := range list { // newest first
		k := Key(r.questionOf(a))
		if _, ok := out[k]; k != "" && !ok {
			out[k] = a
		}
	}
	return out, nil
}

// questionOf picks the user's last line that asks something.
func (r *Reviewer) questionOf(a SessionAnswer) string {
	for i := len(a.UserLines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(a.UserLines[i])
		if utf8.RuneCountInString(Key(l)) < 4 || isNumber(l) {
			continue
		}
		if r.NotAQuestion != nil && r.NotAQuestion(l) {
			continue
		}
		return l
	}
	return ""
}

func isNumber(s string) bool {
	s = strings.TrimSpace(s)
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ErrEmptyQuestion: the question has no text to act on.
var ErrEmptyQuestion = errors.New("knowledge: empty question")

func (r *Reviewer) review(question string, a ReviewAction, entryID, actor string) (*Review, error) {
	k := Key(question)
	if k == "" {
		return nil, ErrEmptyQuestion
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	return &Review{Key: k, Question: strings.TrimSpace(question), Action: a, EntryID: entryID, Actor: actor, At: now().UTC()}, nil
}

// AddAsSimilar adds question as a similar question of entry id, and
// records the decision in the same transaction: the question leaves the
// list, and every replica answers it within seconds.
func (r *Reviewer) AddAsSimilar(ctx context.Context, actor, question, id string) (Entry, error) {
	rv, err := r.review(question, ReviewSimilar, id, actor)
	if err != nil {
		return Entry{}, err
	}
	e, err := r.Manager.addSimilar(ctx, actor, id, question, rv)
	if errors.Is(err, errUnchanged) {
		// The entry has the question already: only the decision is new.
		return e, r.Store.AddReview(ctx, *rv)
	}
	return e, err
}

// CreateEntry makes a new entry for question (d.Question defaults to it;
// otherwise the question becomes a similar question of d).
func (r *Reviewer) CreateEntry(ctx context.Context, actor, question string, d Draft) (Entry, error) {
	if strings.TrimSpace(d.Question) == "" {
		d.Question = question
	} else if Key(d.Question) != Key(question) {
		d.Similar = append(d.Similar, question)
	}
	d = clean(d)
	if d.ID == "" {
		d.ID = NewID()
	}
	rv, err := r.review(question, ReviewCreate, d.ID, actor)
	if err != nil {
		return Entry{}, err
	}
	return r.Manager.create(ctx, actor, d, rv)
}

// Ignore records that question needs no answer; it leaves the list until
// it is asked again.
func (r *Reviewer) Ignore(ctx context.Context, actor, question string) error {
	rv, err := r.review(question, ReviewIgnore, "", actor)
	if err != nil {
		return err
	}
	return r.Store.AddReview(ctx, *rv)
}
