package knowledge

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dingdesk/dingdesk/bot"
)

// Limits on what an admin may enter (the columns' sizes, and sanity).
const (
	MaxIDLen       = 128
	MaxQuestionLen = 500
	MaxAnswerLen   = 20000
	MaxCategoryLen = 64
	MaxSimilar     = 200
)

// FileSource reads the knowledge files as configured now.
type FileSource func() ([]bot.Entry, error)

// Manager is the knowledge base admins edit: the files merged with the
// managed records. Pages and the CLI call it; it is safe for concurrent
// use (the store serialises writers).
type Manager struct {
	store Store
	files FileSource
	now   func() time.Time
	// changed is called after every successful write, so the local matcher
	// rebuilds at once instead of at the next poll (Sync.Kick).
	changed func()
}

// NewManager returns a manager over store and the knowledge files. now may
// be nil (time.Now).
func NewManager(store Store, files FileSource, now func() time.Time) *Manager {
	if now == nil {
		now = time.Now
	}
	if files == nil {
		files = func() ([]bot.Entry, error) { return nil, nil }
	}
	return &Manager{store: store, files: files, now: now}
}

// OnChange sets a function called after each successful change.
func (m *Manager) OnChange(fn func()) { m.changed = fn }

// Snapshot is the merged knowledge base at one revision.
type Snapshot struct {
	Revision int64
	Entries  []Entry
	files    map[string]bot.Entry
	records  map[string]Record
}

// Snapshot reads the files and the records and merges them, with hit
// counts.
func (m *Manager) Snapshot(ctx context.Context) (*Snapshot, error) {
	s, err := m.merged(ctx)
	if err != nil {
		return nil, err
	}
	if hits, err := m.store.Hits(ctx); err == nil {
		for i := range s.Entries {
			s.Entries[i].Hits = hits[s.Entries[i].ID]
		}
	}
	return s, nil
}

// merged is Snapshot without the hit counts (the matcher does not need
// them: Sync rebuilds from it).
func (m *Manager) merged(ctx context.Context) (*Snapshot, error) {
	files, err := m.files()
	if err != nil {
		return nil, fmt.Errorf("knowledge files: %w", err)
	}
	records, rev, err := m.store.Records(ctx)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Revision: rev, Entries: Merge(files, records),
		files: make(map[string]bot.Entry, len(files)), records: make(map[string]Record, len(records))}
	for _, f := range files {
		s.files[f.ID] = f
	}
	for _, r := range records {
		s.records[r.ID] = r
	}
	return s, nil
}

// Entry finds an entry of the snapshot.
func (s *Snapshot) Entry(id string) (Entry, bool) {
	for _, e := range s.Entries {
		if e.ID == id {
			return e, true
		}
	}
	return Entry{}, false
}

// Filter selects entries for List.
type Filter struct {
	// Category, when not empty, is the only category shown ("-" for
	// entries without one).
	Category string
	// Text matches the id, questions, similar questions or answer
	// (normalised, so width and case do not matter).
	Text string
	// Disabled includes disabled entries; OnlyDisabled shows only them.
	Disabled, OnlyDisabled bool
	// Sort is "" (knowledge order), "hits" (most hit first) or "updated"
	// (latest change first).
	Sort string
}

// List returns the entries matching f.
func (m *Manager) List(ctx context.Context, f Filter) ([]Entry, error) {
	s, err := m.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	needle := Key(f.Text)
	var out []Entry
	for _, e := range s.Entries {
		switch {
		case f.OnlyDisabled && !e.Disabled, !f.Disabled && !f.OnlyDisabled && e.Disabled:
			continue
		case f.Category == "-" && e.Category != "", f.Category != "" && f.Category != "-" && e.Category != f.Category:
			continue
		case needle != "" && !entryContains(e, needle):
			continue
		}
		out = append(out, e)
	}
	switch f.Sort {
	case "hits":
		slices.SortStableFunc(out, func(a, b Entry) int { return cmp.Compare(b.Hits, a.Hits) })
	case "updated":
		slices.SortStableFunc(out, func(a, b Entry) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	}
	return out, nil
}

func entryContains(e Entry, needle string) bool {
	if strings.Contains(strings.ToLower(e.ID), needle) {
		return true
	}
	for _, s := range append([]string{e.Question, e.Answer}, e.Similar...) {
		if strings.Contains(Key(s), needle) {
			return true
		}
	}
	return false
}

// Category is one category with its entry count.
type Category struct {
	Name  string // "" for entries without one
	Count int
}

// Categories lists the categories of the entries (disabled ones included),
// by name.
func (m *Manager) Categories(ctx context.Context) ([]Category, error) {
	s, err := m.merged(ctx)
	if err != nil {
		return nil, err
	}
	n := map[string]int{}
	for _, e := range s.Entries {
		n[e.Category]++
	}
	out := make([]Category, 0, len(n))
	for name, c := range n {
		out = append(out, Category{name, c})
	}
	slices.SortFunc(out, func(a, b Category) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Get returns one entry.
func (m *Manager) Get(ctx context.Context, id string) (Entry, error) {
	s, err := m.Snapshot(ctx)
	if err != nil {
		return Entry{}, err
	}
	e, ok := s.Entry(id)
	if !ok {
		return Entry{}, ErrNotFound
	}
	return e, nil
}

// History is an entry's changes, newest first.
func (m *Manager) History(ctx context.Context, id string, limit int) ([]Change, error) {
	return m.store.History(ctx, id, limit)
}

// Draft is what an admin submits for an entry.
type Draft struct {
	ID       string // empty on Create: one is made up
	Question string
	Similar  []string
	Answer   string
	Category string
	Handoff  bool
}

// entry is the draft's content.
func (d Draft) entry() bot.Entry {
	return bot.Entry{ID: d.ID, Question: d.Question, Similar: d.Similar, Answer: d.Answer, Category: d.Category, Handoff: d.Handoff}
}

// Create adds a new entry. A question that is already another entry's
// question (after normalising) is refused.
func (m *Manager) Create(ctx context.Context, actor string, d Draft) (Entry, error) {
	return m.create(ctx, actor, d, nil)
}

func (m *Manager) create(ctx context.Context, actor string, d Draft, review *Review) (Entry, error) {
	s, err := m.merged(ctx)
	if err != nil {
		return Entry{}, err
	}
	d = clean(d)
	if d.ID == "" {
		d.ID = NewID()
	}
	if err := s.validate(d, ""); err != nil {
		return Entry{}, err
	}
	if _, inFile := s.files[d.ID]; inFile {
		return Entry{}, &ValidationError{[]FieldError{{"id", fmt.Sprintf("编号 %s 已被知识文件中的条目使用", d.ID)}}}
	}
	if r, ok := s.records[d.ID]; ok && !r.Deleted {
		return Entry{}, &ValidationError{[]FieldError{{"id", fmt.Sprintf("编号 %s 已存在", d.ID)}}}
	}
	now := m.now().UTC()
	rec := Record{Entry: d.entry(), CreatedBy: actor, CreatedAt: now, UpdatedBy: actor, UpdatedAt: now}
	mut := Mutation{Record: rec, Action: ActionCreate, Actor: actor, Review: review}
	if old, ok := s.records[d.ID]; ok { // a tombstone of a created entry: reuse the id
		mut.IfVersion = old.Version
	} else {
		mut.IfAbsent = true
	}
	if err := m.apply(ctx, -1, mut); err != nil {
		return Entry{}, err
	}
	return m.Get(ctx, d.ID)
}

// Update replaces an entry's content. version is the Entry.Version the
// admin edited (0 skips the check); a concurrent change gives ErrConflict.
func (m *Manager) Update(ctx context.Context, actor string, id string, version int64, d Draft) (Entry, error) {
	d = clean(d)
	d.ID = id
	return m.change(ctx, actor, id, version, ActionUpdate, nil, func(s *Snapshot, r *Record) error {
		if err := s.validate(d, id); err != nil {
			return err
		}
		r.Entry = d.entry()
		return nil
	})
}

// SetDisabled disables (the bot no longer uses it) or enables an entry.
func (m *Manager) SetDisabled(ctx context.Context, actor, id string, disabled bool) (Entry, error) {
	a := ActionEnable
	if disabled {
		a = ActionDisable
	}
	return m.change(ctx, actor, id, 0, a, nil, func(_ *Snapshot, r *Record) error {
		r.Disabled = disabled
		return nil
	})
}

// AddSimilar adds q to an entry's similar questions. Adding a question the
// entry already has is a no-op; one another entry has is refused.
func (m *Manager) AddSimilar(ctx context.Context, actor, id, q string) (Entry, error) {
	e, err := m.addSimilar(ctx, actor, id, q, nil)
	if errors.Is(err, errUnchanged) {
		err = nil
	}
	return e, err
}

func (m *Manager) addSimilar(ctx context.Context, actor, id, q string, review *Review) (Entry, error) {
	q = strings.TrimSpace(q)
	return m.change(ctx, actor, id, 0, ActionAddSimilar, review, func(s *Snapshot, r *Record) error {
		d := Draft{ID: id, Question: r.Question, Similar: append(slices.Clone(r.Similar), q), Answer: r.Answer,
			Category: r.Category, Handoff: r.Handoff}
		d = clean(d)
		if len(d.Similar) == len(r.Similar) {
			return errUnchanged // the entry has the question already
		}
		if err := s.validate(d, id); err != nil {
			return err
		}
		r.Similar = d.Similar
		return nil
	})
}

// errUnchanged: a change that changes nothing writes nothing (change
// returns the entry with it).
var errUnchanged = errors.New("knowledge: unchanged")

// Delete removes an entry: a created one for good, a file entry by a
// tombstone (Revert brings it back).
func (m *Manager) Delete(ctx context.Context, actor, id string) error {
	_, err := m.change(ctx, actor, id, 0, ActionDelete, nil, func(_ *Snapshot, r *Record) error {
		r.Deleted = true
		return nil
	})
	return err
}

// Revert drops the managed record over a file entry (or a tombstone of
// one), so the file's version serves again.
func (m *Manager) Revert(ctx context.Context, actor, id string) (Entry, error) {
	s, err := m.merged(ctx)
	if err != nil {
		return Entry{}, err
	}
	r, ok := s.records[id]
	if _, inFile := s.files[id]; !ok || !inFile {
		return Entry{}, ErrNotFound
	}
	if err := m.apply(ctx, -1, Mutation{Record: Record{Entry: bot.Entry{ID: id}}, Remove: true, IfVersion: r.Version,
		Action: ActionRevert, Actor: actor}); err != nil {
		return Entry{}, err
	}
	return m.Get(ctx, id)
}

// change edits the record of id (made from the file entry when there is
// none) with fn and writes it.
func (m *Manager) change(ctx context.Context, actor, id string, version int64, a Action, review *Review, fn func(*Snapshot, *Record) error) (Entry, error) {
	s, err := m.merged(ctx)
	if err != nil {
		return Entry{}, err
	}
	now := m.now().UTC()
	mut := Mutation{Action: a, Actor: actor, Review: review}
	r, ok := s.records[id]
	switch {
	case ok && !r.Deleted:
		if version > 0 && r.Version != version {
			return Entry{}, ErrConflict
		}
		mut.IfVersion = r.Version
	default:
		f, inFile := s.files[id]
		if !inFile || ok && r.Deleted {
			return Entry{}, ErrNotFound
		}
		if version > 0 {
			return Entry{}, ErrConflict // the admin edited a record that is gone
		}
		r = Record{Entry: f, BaseHash: Hash(f), CreatedBy: actor, CreatedAt: now}
		r.Similar, r.Source = slices.Clone(f.Similar), ""
		mut.IfAbsent = true
	}
	if err := fn(s, &r); errors.Is(err, errUnchanged) {
		e, gerr := m.Get(ctx, id)
		if gerr != nil {
			return e, gerr
		}
		return e, errUnchanged
	} else if err != nil {
		return Entry{}, err
	}
	r.UpdatedBy, r.UpdatedAt = actor, now
	mut.Record = r
	if err := m.apply(ctx, -1, mut); err != nil {
		return Entry{}, err
	}
	if r.Deleted {
		return Entry{}, nil
	}
	return m.Get(ctx, id)
}

func (m *Manager) apply(ctx context.Context, ifRevision int64, muts ...Mutation) error {
	if _, err := m.store.Apply(ctx, ifRevision, m.now().UTC(), muts); err != nil {
		return err
	}
	if m.changed != nil {
		m.changed()
	}
	return nil
}

// clean trims the fields and drops empty and repeated similar questions
// and those equal to the standard question.
func clean(d Draft) Draft {
	d.ID = strings.TrimSpace(d.ID)
	d.Question = strings.TrimSpace(d.Question)
	d.Answer = strings.TrimSpace(d.Answer)
	d.Category = strings.TrimSpace(d.Category)
	seen := map[string]bool{Key(d.Question): true}
	var sim []string
	for _, s := range d.Similar {
		s = strings.TrimSpace(s)
		n := Key(s)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		sim = append(sim, s)
	}
	d.Similar = sim
	return d
}

// validate checks d against the snapshot; self is the id d replaces ("" for
// a new entry), whose own questions do not count as taken.
func (s *Snapshot) validate(d Draft, self string) error {
	return validateDraft(d, s.questionOwners(), self)
}

// validateDraft checks d; owners maps normalised questions to the entry
// that has them, and a question owned by an entry other than self is
// refused.
func validateDraft(d Draft, owners map[string]string, self string) error {
	var p []FieldError
	switch {
	case d.ID == "":
		p = append(p, FieldError{"id", "编号不能为空"})
	case utf8.RuneCountInString(d.ID) > MaxIDLen || strings.ContainsAny(d.ID, " \t\r\n"):
		p = append(p, FieldError{"id", fmt.Sprintf("编号最长 %d 个字符，且不能含空白", MaxIDLen)})
	}
	switch {
	case d.Question == "":
		p = append(p, FieldError{"question", "问题不能为空"})
	case Key(d.Question) == "":
		p = append(p, FieldError{"question", "问题需要包含文字"})
	case utf8.RuneCountInString(d.Question) > MaxQuestionLen:
		p = append(p, FieldError{"question", fmt.Sprintf("问题最长 %d 个字", MaxQuestionLen)})
	}
	if d.Answer == "" {
		p = append(p, FieldError{"answer", "答案不能为空"})
	} else if utf8.RuneCountInString(d.Answer) > MaxAnswerLen {
		p = append(p, FieldError{"answer", fmt.Sprintf("答案最长 %d 个字", MaxAnswerLen)})
	}
	if utf8.RuneCountInString(d.Category) > MaxCategoryLen {
		p = append(p, FieldError{"category", fmt.Sprintf("类目最长 %d 个字", MaxCategoryLen)})
	}
	if len(d.Similar) > MaxSimilar {
		p = append(p, FieldError{"similar", fmt.Sprintf("相似问题最多 %d 个", MaxSimilar)})
	}
	for _, q := range d.Similar {
		if utf8.RuneCountInString(q) > MaxQuestionLen {
			p = append(p, FieldError{"similar", fmt.Sprintf("相似问题最长 %d 个字：%s", MaxQuestionLen, q)})
		}
	}
	for i, q := range append([]string{d.Question}, d.Similar...) {
		if other, ok := owners[Key(q)]; ok && other != self {
			field := "similar"
			if i == 0 {
				field = "question"
			}
			p = append(p, FieldError{field, fmt.Sprintf("“%s”已是条目 %s 的问题", q, other)})
		}
	}
	if len(p) > 0 {
		return &ValidationError{p}
	}
	return nil
}

// questionOwners maps every normalised question of the active entries to
// its entry id (the first one, should two share it).
func (s *Snapshot) questionOwners() map[string]string {
	out := map[string]string{}
	for _, e := range s.Entries {
		if !e.Disabled {
			addOwner(out, e.ID, e.Question, e.Similar)
		}
	}
	return out
}

func addOwner(owners map[string]string, id, q string, similar []string) {
	for _, x := range append([]string{q}, similar...) {
		if n := Key(x); n != "" {
			if _, dup := owners[n]; !dup {
				owners[n] = id
			}
		}
	}
}

func dropOwner(owners map[string]string, id, q string, similar []string) {
	for _, x := range append([]string{q}, similar...) {
		if n := Key(x); owners[n] == id {
			delete(owners, n)
		}
	}
}

// NewID makes up an id for an entry created in the console.
func NewID() string {
	b := make([]byte, 5)
	rand.Read(b)
	return "kb-" + hex.EncodeToString(b)
}

func sortRecords(rs []*Record) {
	slices.SortFunc(rs, func(a, b *Record) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
