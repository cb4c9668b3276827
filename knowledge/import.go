package knowledge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ImportRow is one entry read from an import file (Excel), with its row
// number there.
type ImportRow struct {
	Row      int
	ID       string // optional: updates that entry (or creates one with this id)
	Question string
	Similar  []string
	Answer   string
	Category string
	// Handoff and Disabled are nil when the file has no such column: an
	// update keeps the entry's value, a new entry gets false.
	Handoff  *bool
	Disabled *bool
}

// RowError is a problem of one import row.
type RowError struct {
	Row   int
	Field string // question, similar, answer, category, id, handoff, disabled; "" for the whole row
	Msg   string // Chinese, shown to admins
}

func (e RowError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("第 %d 行：%s", e.Row, e.Msg)
	}
	return fmt.Sprintf("第 %d 行 %s：%s", e.Row, fieldName(e.Field), e.Msg)
}

func fieldName(f string) string {
	switch f {
	case "id":
		return "编号"
	case "question":
		return "问题"
	case "similar":
		return "相似问题"
	case "answer":
		return "答案"
	case "category":
		return "类目"
	case "handoff":
		return "转人工"
	case "disabled":
		return "状态"
	}
	return f
}

// PlanAction is what an import does with a row.
type PlanAction string

const (
	PlanCreate    PlanAction = "create"
	PlanUpdate    PlanAction = "update"
	PlanUnchanged PlanAction = "unchanged"
)

// PlanItem is one valid row of an import and what applying it does.
type PlanItem struct {
	Row      int
	Action   PlanAction
	ID       string
	Question string
	// Changed names the fields an update changes.
	Changed []string
	draft   Draft
	disable *bool
}

// Plan is the preview of an import (a dry run): what each valid row does
// and what is wrong with the others. Nothing is written until ApplyImport.
type Plan struct {
	// Revision is the knowledge revision the plan was made at; applying it
	// later fails with ErrConflict when the knowledge changed meanwhile.
	Revision int64
	Items    []PlanItem
	Errors   []RowError
	Creates  int
	Updates  int
	Same     int
}

// PlanImport checks rows against the current knowledge and one another and
// says what importing them would do. A row is matched to an entry by its
// id, else by its standard question (normalised); otherwise it is new.
func (m *Manager) PlanImport(ctx context.Context, rows []ImportRow) (*Plan, error) {
	s, err := m.merged(ctx)
	if err != nil {
		return nil, err
	}
	p := &Plan{Revision: s.Revision}
	owners := s.questionOwners()
	entries := make(map[string]Entry, len(s.Entries))
	byQuestion := map[string]string{}
	for _, e := range s.Entries {
		entries[e.ID] = e
		if n := Key(e.Question); n != "" {
			if _, dup := byQuestion[n]; !dup {
				byQuestion[n] = e.ID
			}
		}
	}
	seenID := map[string]int{}       // id → row
	seenQuestion := map[string]int{} // normalised standard question → row
	for _, r := range rows {
		d := clean(Draft{ID: r.ID, Question: r.Question, Similar: r.Similar, Answer: r.Answer, Category: r.Category})
		nq := Key(d.Question)
		if first, dup := seenQuestion[nq]; dup && nq != "" {
			p.Errors = append(p.Errors, RowError{r.Row, "question", fmt.Sprintf("与第 %d 行的问题重复", first)})
			continue
		}
		if first, dup := seenID[d.ID]; dup && d.ID != "" {
			p.Errors = append(p.Errors, RowError{r.Row, "id", fmt.Sprintf("编号 %s 与第 %d 行重复", d.ID, first)})
			continue
		}
		var old *Entry
		switch {
		case d.ID != "":
			if e, ok := entries[d.ID]; ok {
				old = &e
			} else if rec, ok := s.records[d.ID]; ok && rec.Deleted {
				if _, inFile := s.files[d.ID]; inFile {
					p.Errors = append(p.Errors, RowError{r.Row, "id", fmt.Sprintf("编号 %s 的条目已删除，请先在控制台恢复", d.ID)})
					continue
				}
			}
		default:
			if id, ok := byQuestion[nq]; ok {
				e := entries[id]
				old, d.ID = &e, id
			}
		}
		action := PlanCreate
		if old != nil {
			action = PlanUpdate
			if r.Handoff == nil {
				d.Handoff = old.Handoff
			}
		} else {
			if d.ID == "" {
				d.ID = NewID()
			}
		}
		if r.Handoff != nil {
			d.Handoff = *r.Handoff
		}
		if err := validateDraft(d, owners, d.ID); err != nil {
			for _, fe := range err.(*ValidationError).Problems {
				p.Errors = append(p.Errors, RowError{r.Row, fe.Field, fe.Msg})
			}
			continue
		}
		if d.ID != "" {
			seenID[d.ID] = r.Row
		}
		seenQuestion[nq] = r.Row
		it := PlanItem{Row: r.Row, Action: action, ID: d.ID, Question: d.Question, draft: d, disable: r.Disabled}
		if old != nil {
			it.Changed = changedFields(*old, d, r.Disabled)
			if len(it.Changed) == 0 {
				it.Action = PlanUnchanged
			}
			dropOwner(owners, old.ID, old.Question, old.Similar)
		}
		addOwner(owners, d.ID, d.Question, d.Similar)
		switch it.Action {
		case PlanCreate:
			p.Creates++
		case PlanUpdate:
			p.Updates++
		default:
			p.Same++
		}
		p.Items = append(p.Items, it)
	}
	return p, nil
}

func changedFields(old Entry, d Draft, disabled *bool) []string {
	var out []string
	if old.Question != d.Question {
		out = append(out, "question")
	}
	if !slices.Equal(old.Similar, d.Similar) && !(len(old.Similar) == 0 && len(d.Similar) == 0) {
		out = append(out, "similar")
	}
	if old.Answer != d.Answer {
		out = append(out, "answer")
	}
	if old.Category != d.Category {
		out = append(out, "category")
	}
	if old.Handoff != d.Handoff {
		out = append(out, "handoff")
	}
	if disabled != nil && *disabled != old.Disabled {
		out = append(out, "disabled")
	}
	return out
}

// ApplyImport writes a plan's creates and updates in one transaction, if
// the knowledge is still at the plan's revision (else ErrConflict: preview
// again). Rows with errors are not part of the plan. It returns how many
// entries were written.
func (m *Manager) ApplyImport(ctx context.Context, actor string, p *Plan) (int, error) {
	s, err := m.merged(ctx)
	if err != nil {
		return 0, err
	}
	if s.Revision != p.Revision {
		return 0, ErrConflict
	}
	now := m.now().UTC()
	var muts []Mutation
	for _, it := range p.Items {
		if it.Action == PlanUnchanged {
			continue
		}
		d := it.draft
		mut := Mutation{Action: ActionImport, Actor: actor}
		rec, has := s.records[d.ID]
		switch {
		case has && !rec.Deleted:
			mut.IfVersion = rec.Version
		case has: // tombstone of a created entry: the id is reused
			mut.IfVersion = rec.Version
			rec = Record{CreatedBy: actor, CreatedAt: now}
		default:
			mut.IfAbsent = true
			rec = Record{CreatedBy: actor, CreatedAt: now}
			if f, inFile := s.files[d.ID]; inFile {
				rec.BaseHash = Hash(f)
			}
		}
		rec.Entry = d.entry()
		if it.disable != nil {
			rec.Disabled = *it.disable
		}
		rec.Deleted = false
		rec.UpdatedBy, rec.UpdatedAt = actor, now
		mut.Record = rec
		muts = append(muts, mut)
	}
	if len(muts) == 0 {
		return 0, nil
	}
	if err := m.apply(ctx, p.Revision, muts...); err != nil {
		return 0, err
	}
	return len(muts), nil
}

// AddErrors adds problems found outside the plan (reading the file) and
// keeps the errors in row order.
func (p *Plan) AddErrors(errs []RowError) {
	p.Errors = append(p.Errors, errs...)
	slices.SortStableFunc(p.Errors, func(a, b RowError) int { return a.Row - b.Row })
}

// Summary is the plan in one line for people ("新增 3 条，更新 1 条，未变 2 条，错误 1 行").
func (p *Plan) Summary() string {
	return fmt.Sprintf("新增 %d 条，更新 %d 条，未变 %d 条，错误 %d 行", p.Creates, p.Updates, p.Same, len(p.Errors))
}

// ErrorsText lists the row errors, one a line.
func (p *Plan) ErrorsText() string {
	var b strings.Builder
	for _, e := range p.Errors {
		b.WriteString(e.Error())
		b.WriteByte('\n')
	}
	return b.String()
}

// StagedTTL is how long a previewed import waits for its confirmation.
const StagedTTL = time.Hour

// Staged is a previewed import kept for confirmation, so the confirming
// request may reach any replica.
type Staged struct {
	Token    string
	Actor    string
	Rows     []ImportRow
	Problems []RowError // found while reading the file
	Revision int64      // the knowledge revision the admin previewed
	At       time.Time
}

// StagedStore keeps previewed imports.
type StagedStore interface {
	Stage(ctx context.Context, s Staged) error
	// Staged reads a staged import made at or after since; nil when none.
	Staged(ctx context.Context, token string, since time.Time) (*Staged, error)
	// Unstage drops it, and every staged import older than before.
	Unstage(ctx context.Context, token string, before time.Time) error
}

// ErrStagedGone: the previewed import expired, was applied already, or
// never existed; preview again.
var ErrStagedGone = errors.New("knowledge: the previewed import is gone; preview again")

// StageImport previews rows (problems: rows the file reader refused) and
// keeps them under the returned token for ConfirmImport.
func (m *Manager) StageImport(ctx context.Context, st StagedStore, actor string, rows []ImportRow, problems []RowError) (string, *Plan, error) {
	p, err := m.PlanImport(ctx, rows)
	if err != nil {
		return "", nil, err
	}
	p.AddErrors(problems)
	b := make([]byte, 16)
	rand.Read(b)
	token := hex.EncodeToString(b)
	if err := st.Stage(ctx, Staged{Token: token, Actor: actor, Rows: rows, Problems: problems, Revision: p.Revision, At: m.now().UTC()}); err != nil {
		return "", nil, err
	}
	return token, p, nil
}

// ConfirmImport applies a staged import: the same rows planned again,
// applied only if the knowledge is still at the previewed revision
// (ErrConflict otherwise: what the admin saw is no longer what would
// happen). It returns the plan applied and how many entries were written.
func (m *Manager) ConfirmImport(ctx context.Context, st StagedStore, actor, token string) (*Plan, int, error) {
	now := m.now().UTC()
	s, err := st.Staged(ctx, token, now.Add(-StagedTTL))
	if err != nil {
		return nil, 0, err
	}
	if s == nil {
		return nil, 0, ErrStagedGone
	}
	p, err := m.PlanImport(ctx, s.Rows)
	if err != nil {
		return nil, 0, err
	}
	if p.Revision != s.Revision {
		return p, 0, ErrConflict
	}
	n, err := m.ApplyImport(ctx, actor, p)
	if err != nil {
		return p, 0, err
	}
	p.AddErrors(s.Problems)
	return p, n, st.Unstage(ctx, token, now.Add(-StagedTTL))
}
