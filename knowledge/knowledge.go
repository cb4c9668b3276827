// Package knowledge is the managed knowledge base (知识维护): what admins
// add, edit, disable and delete in the console, by Excel import or from
// unanswered questions, kept in the database so every replica serves the
// same answers, as an overlay over the knowledge files named in
// bot.knowledge.
//
// # Where managed knowledge lives
//
// The files stay what they are: deployed with the config, the format for
// bulk authoring, review in git, import and export. The database holds
// only what admins changed, one record per entry id:
//
//   - a record with a new id is an entry created in the console;
//   - a record with a file entry's id replaces that entry (an edit, a
//     disable, added similar questions); it remembers a hash of the file
//     entry it was based on, so the console can say when the file has
//     changed since ("文件已更新");
//   - a deleted record (a tombstone) hides a file entry of its id;
//   - reverting drops the record, and the file entry is back.
//
// The bot matches the merge: file entries with records applied, then new
// records, disabled and deleted ones left out. Every change bumps one
// revision counter in the same transaction; each replica polls it (Sync,
// every 2 s) and rebuilds its matcher when it moved, so an edit is live
// everywhere within seconds, and the replica that made it rebuilds at once.
// An overlay rather than a one-time import keeps file deployments working:
// a file entry nobody touched in the console follows its file, and two
// sources never silently fight over an entry (the record wins, visibly).
package knowledge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/bot/textnorm"
)

// Origin is where an entry comes from.
type Origin string

const (
	OriginFile    Origin = "file"    // a knowledge file, untouched in the console
	OriginEdited  Origin = "edited"  // a file entry with a managed record over it
	OriginManaged Origin = "managed" // created in the console (or imported)
)

// Entry is one knowledge entry as admins see it.
type Entry struct {
	// Entry is the content as the bot matches it; Source is the file
	// position ("file:line") of a file entry, empty for a created one.
	bot.Entry
	Disabled bool

	Origin Origin
	// FileChanged: the file entry under an edited record changed since the
	// record was made.
	FileChanged bool
	// Version is the revision that last changed the record (0 for file
	// entries); pass it back to Update to detect concurrent edits.
	Version   int64
	CreatedBy string
	CreatedAt time.Time
	UpdatedBy string
	UpdatedAt time.Time
	// Hits is how often the bot answered with the entry (all replicas,
	// up to their last flush).
	Hits int64
}

// Record is a managed entry as stored.
type Record struct {
	// Entry is the content; a record has no Source (empty).
	bot.Entry
	Disabled bool
	// Deleted marks a tombstone: the file entry of this id is hidden.
	Deleted bool
	// BaseHash is Hash of the file entry the record was made over ("" for
	// new entries).
	BaseHash  string
	Version   int64
	CreatedBy string
	CreatedAt time.Time
	UpdatedBy string
	UpdatedAt time.Time
}

// Action names a change in the history.
type Action string

const (
	ActionCreate     Action = "create"
	ActionUpdate     Action = "update"
	ActionDisable    Action = "disable"
	ActionEnable     Action = "enable"
	ActionDelete     Action = "delete"
	ActionRevert     Action = "revert"
	ActionAddSimilar Action = "add_similar"
	ActionImport     Action = "import"
)

// Mutation is one change Store.Apply writes.
type Mutation struct {
	// Record is written (inserted or replaced) unless Remove is set.
	Record Record
	// Remove drops the record of Record.ID (revert to the file).
	Remove bool
	// IfVersion, when > 0, requires the stored record's version to be it;
	// IfAbsent requires that no record exists. Otherwise ErrConflict.
	IfVersion int64
	IfAbsent  bool
	Action    Action
	Actor     string
	// Review, when set, is recorded in the same transaction (an unanswered
	// question resolved by this change).
	Review *Review
}

// Change is one line of an entry's history.
type Change struct {
	Revision int64
	EntryID  string
	Action   Action
	Actor    string
	At       time.Time
	// After is the record as written (nil for a revert).
	After *Record
}

// Store keeps the managed records. Implementations must apply a batch of
// mutations atomically and bump the revision once per batch.
type Store interface {
	// Revision is the counter every change bumps (0 before the first).
	Revision(ctx context.Context) (int64, error)
	// Records are all managed records and the revision they are at.
	Records(ctx context.Context) ([]Record, int64, error)
	// Apply writes muts in one transaction at time at, stamping each record
	// with the new revision, which it returns. ifRevision >= 0 requires the
	// current revision to be it (ErrConflict otherwise).
	Apply(ctx context.Context, ifRevision int64, at time.Time, muts []Mutation) (int64, error)
	// History is an entry's changes, newest first.
	History(ctx context.Context, entryID string, limit int) ([]Change, error)
	// Hits are the stored hit counts by entry id.
	Hits(ctx context.Context) (map[string]int64, error)
}

// Errors callers can test with errors.Is.
var (
	ErrNotFound = errors.New("knowledge: no such entry")
	// ErrConflict: the entry or the knowledge base changed since it was
	// read; read it again and retry.
	ErrConflict = errors.New("knowledge: changed by someone else meanwhile")
)

// FieldError is a problem with one field of an entry.
type FieldError struct {
	Field string // id, question, similar, answer, category
	Msg   string // Chinese, shown to admins
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// ValidationError lists what is wrong with an entry.
type ValidationError struct{ Problems []FieldError }

func (e *ValidationError) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.Error()
	}
	return "knowledge: invalid entry: " + strings.Join(s, "; ")
}

// Key is how questions compare: normalised (width, case, punctuation,
// traditional characters) with spaces dropped, so "VPN 无法连接" and
// "vpn无法连接" are one question.
func Key(q string) string { return strings.ReplaceAll(textnorm.Normalize(q), " ", "") }

// Hash fingerprints an entry's content (not its position), to notice that
// a file entry changed under a record made over it.
func Hash(e bot.Entry) string {
	h := sha256.New()
	for _, s := range append([]string{e.ID, e.Question, e.Answer, e.Category, fmt.Sprint(e.Handoff)}, e.Similar...) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// Merge applies the records over the file entries: file order first (an
// edited entry keeps its place), then created entries in creation order.
// Deleted entries are left out; disabled ones are kept, marked.
func Merge(files []bot.Entry, records []Record) []Entry {
	byID := make(map[string]*Record, len(records))
	for i := range records {
		byID[records[i].ID] = &records[i]
	}
	out := make([]Entry, 0, len(files)+len(records))
	inFiles := make(map[string]bool, len(files))
	for _, f := range files {
		inFiles[f.ID] = true
		r := byID[f.ID]
		if r == nil {
			out = append(out, Entry{Entry: f, Origin: OriginFile})
			continue
		}
		if r.Deleted {
			continue
		}
		e := fromRecord(r, OriginEdited)
		e.Source = f.Source
		// Changed since the record was made, and not into the record's own
		// content (an export folded back into the file).
		fh := Hash(f)
		e.FileChanged = r.BaseHash != "" && r.BaseHash != fh && fh != Hash(r.Entry)
		out = append(out, e)
	}
	created := make([]*Record, 0)
	for i := range records {
		if r := &records[i]; !inFiles[r.ID] && !r.Deleted {
			created = append(created, r)
		}
	}
	// Creation order, ids breaking ties, so every replica builds the same.
	sortRecords(created)
	for _, r := range created {
		out = append(out, fromRecord(r, OriginManaged))
	}
	return out
}

func fromRecord(r *Record, o Origin) Entry {
	return Entry{Entry: r.Entry, Disabled: r.Disabled, Origin: o, Version: r.Version,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedBy: r.UpdatedBy, UpdatedAt: r.UpdatedAt}
}

// Active are the entries the bot matches (not disabled), as bot entries.
func Active(entries []Entry) []bot.Entry {
	out := make([]bot.Entry, 0, len(entries))
	for _, e := range entries {
		if e.Disabled {
			continue
		}
		be := e.Entry
		if e.Origin != OriginFile {
			be.Source = "managed:" + e.ID
		}
		out = append(out, be)
	}
	return out
}
