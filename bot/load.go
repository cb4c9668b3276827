package bot

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Entry is one knowledge item: a standard question, its paraphrases and the
// answer.
type Entry struct {
	// ID is unique across all knowledge files.
	ID string
	// Question is the standard question (标准问题).
	Question string
	// Similar are paraphrases of Question (相似问题).
	Similar []string
	// Answer is text or markdown.
	Answer string
	// Category is an optional grouping for admins.
	Category string
	// Handoff means this topic goes to a person.
	Handoff bool
	// Source is where the entry was defined, "file:line".
	Source string
}

// LoadError is one problem of a knowledge file, with its position.
type LoadError struct {
	File string
	Line int // 1-based; 0 when the problem concerns the whole file
	Msg  string
}

func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// LoadKnowledge reads knowledge files: .yaml/.yml (a list of entries, or a
// mapping with an "entries" list), .csv (header row naming the columns id,
// question, similar, answer, category, handoff; similar questions separated
// by "|" or new lines) and .jsonl (one JSON object a line). All files use
// the same keys: id, question, similar, answer and the optional category and
// handoff; "subject" is accepted and ignored.
//
// Every problem of every file is reported, each a *LoadError carrying
// file:line, joined with errors.Join: unreadable or malformed files, unknown
// keys, an empty id, question or answer, a bad handoff value, and ids used
// twice (also across files). On error the returned entries are the valid
// ones, so a caller may still show what loaded.
func LoadKnowledge(paths []string) ([]Entry, error) {
	var (
		entries []Entry
		errs    []error
		seen    = map[string]string{} // id → source
	)
	for _, p := range paths {
		es, ferrs := loadFile(p)
		for _, e := range es {
			if first, dup := seen[e.ID]; dup {
				file, line := splitSource(e.Source)
				ferrs = append(ferrs, &LoadError{file, line, fmt.Sprintf("duplicate id %q (first defined at %s)", e.ID, first)})
				continue
			}
			seen[e.ID] = e.Source
			entries = append(entries, e)
		}
		// Report a file's problems in line order.
		slices.SortStableFunc(ferrs, func(a, b error) int {
			var la, lb *LoadError
			errors.As(a, &la)
			errors.As(b, &lb)
			if la == nil || lb == nil {
				return 0
			}
			return la.Line - lb.Line
		})
		errs = append(errs, ferrs...)
	}
	return entries, errors.Join(errs...)
}

func splitSource(src string) (string, int) {
	i := strings.LastIndexByte(src, ':')
	if i < 0 {
		return src, 0
	}
	n, _ := strconv.Atoi(src[i+1:])
	return src[:i], n
}

func loadFile(path string) ([]Entry, []error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{&LoadError{File: path, Msg: err.Error()}}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 BOM (Excel)
	if !utf8.Valid(data) {
		return nil, []error{&LoadError{File: path, Msg: "not valid UTF-8 (save the file as UTF-8)"}}
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return loadYAML(path, data)
	case ".csv":
		return loadCSV(path, data)
	case ".jsonl", ".ndjson":
		return loadJSONL(path, data)
	}
	return nil, []error{&LoadError{File: path, Msg: "unknown knowledge file type (want .yaml, .yml, .csv or .jsonl)"}}
}

// rawEntry is an entry as read, before validation.
type rawEntry struct {
	id, question, answer, category string
	similar                        []string
	handoff                        string // "" when absent
	line                           int
	// lines of individual fields, for precise messages (0: use line)
	idLine, questionLine, answerLine, handoffLine int
}

// finish validates r and turns it into an Entry.
func (r *rawEntry) finish(path string) (Entry, []error) {
	var errs []error
	at := func(l int) int {
		if l > 0 {
			return l
		}
		return r.line
	}
	bad := func(l int, format string, args ...any) {
		errs = append(errs, &LoadError{path, at(l), fmt.Sprintf(format, args...)})
	}
	e := Entry{
		ID:       strings.TrimSpace(r.id),
		Question: strings.TrimSpace(r.question),
		Answer:   strings.TrimSpace(r.answer),
		Category: strings.TrimSpace(r.category),
		Source:   fmt.Sprintf("%s:%d", path, r.line),
	}
	if e.ID == "" {
		bad(r.idLine, "empty id")
	}
	if e.Question == "" {
		bad(r.questionLine, "entry %q: empty question", e.ID)
	}
	if e.Answer == "" {
		bad(r.answerLine, "entry %q: empty answer", e.ID)
	}
	for _, s := range r.similar {
		if s = strings.TrimSpace(s); s != "" {
			e.Similar = append(e.Similar, s)
		}
	}
	if h := strings.TrimSpace(r.handoff); h != "" {
		v, ok := parseBool(h)
		if !ok {
			bad(r.handoffLine, "entry %q: bad handoff value %q (want true or false)", e.ID, h)
		}
		e.Handoff = v
	}
	return e, errs
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "y", "1", "是":
		return true, true
	case "false", "no", "n", "0", "否":
		return false, true
	}
	return false, false
}

// loadJSONL reads one JSON object a line; blank lines are skipped.
func loadJSONL(path string, data []byte) ([]Entry, []error) {
	var (
		entries []Entry
		errs    []error
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		r, err := decodeJSONEntry(text)
		if err != nil {
			errs = append(errs, &LoadError{path, line, err.Error()})
			continue
		}
		r.line = line
		e, ferrs := r.finish(path)
		if len(ferrs) > 0 {
			errs = append(errs, ferrs...)
			continue
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, &LoadError{File: path, Msg: err.Error()})
	}
	return entries, errs
}

func decodeJSONEntry(text []byte) (*rawEntry, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(text, &obj); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	r := &rawEntry{}
	var errs []string
	str := func(key string, dst *string) {
		if raw, ok := obj[key]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, dst); err != nil {
				errs = append(errs, fmt.Sprintf("%s must be a string", key))
			}
		}
	}
	for key, raw := range obj {
		switch key {
		case "id":
			// ids may be numbers in hand-written files
			var n json.Number
			if err := json.Unmarshal(raw, &n); err == nil {
				r.id = n.String()
			} else {
				str("id", &r.id)
			}
		case "question":
			str(key, &r.question)
		case "answer":
			str(key, &r.answer)
		case "category":
			str(key, &r.category)
		case "subject":
		case "similar":
			if string(raw) == "null" {
				continue
			}
			if err := json.Unmarshal(raw, &r.similar); err != nil {
				errs = append(errs, "similar must be a list of strings")
			}
		case "handoff":
			var b bool
			if err := json.Unmarshal(raw, &b); err == nil {
				r.handoff = strconv.FormatBool(b)
			} else if err := json.Unmarshal(raw, &r.handoff); err != nil || r.handoff == "" {
				r.handoff = string(raw)
			}
		default:
			errs = append(errs, fmt.Sprintf("unknown key %q", key))
		}
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return r, nil
}

// loadYAML reads a list of entries, or a mapping whose "entries" key holds
// the list.
func loadYAML(path string, data []byte) ([]Entry, []error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 0
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			line = yamlErrLine(err.Error())
		}
		return nil, []error{&LoadError{path, line, "invalid YAML: " + trimYAMLPrefix(err.Error())}}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind == yaml.MappingNode {
		var list *yaml.Node
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "entries" {
				list = root.Content[i+1]
			} else {
				return nil, []error{&LoadError{path, root.Content[i].Line, fmt.Sprintf("unknown key %q (want a list of entries, or entries: [...])", root.Content[i].Value)}}
			}
		}
		if list == nil {
			return nil, []error{&LoadError{path, root.Line, "missing key entries"}}
		}
		root = list
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.SequenceNode {
		return nil, []error{&LoadError{path, root.Line, "want a list of entries"}}
	}
	var (
		entries []Entry
		errs    []error
	)
	for _, item := range root.Content {
		if item.Kind != yaml.MappingNode {
			errs = append(errs, &LoadError{path, item.Line, "an entry must be a mapping with id, question, similar, answer"})
			continue
		}
		r := &rawEntry{line: item.Line}
		ok := true
		scalar := func(k, v *yaml.Node, dst *string) {
			if v.Kind != yaml.ScalarNode {
				errs = append(errs, &LoadError{path, v.Line, fmt.Sprintf("%s must be a string", k.Value)})
				ok = false
				return
			}
			if v.Tag != "!!null" {
				*dst = v.Value
			}
		}
		for i := 0; i+1 < len(item.Content); i += 2 {
			k, v := item.Content[i], item.Content[i+1]
			switch k.Value {
			case "id":
				scalar(k, v, &r.id)
				r.idLine = v.Line
			case "question":
				scalar(k, v, &r.question)
				r.questionLine = v.Line
			case "answer":
				scalar(k, v, &r.answer)
				r.answerLine = v.Line
			case "category":
				scalar(k, v, &r.category)
			case "subject":
			case "handoff":
				scalar(k, v, &r.handoff)
				r.handoffLine = v.Line
			case "similar":
				switch v.Kind {
				case yaml.SequenceNode:
					for _, s := range v.Content {
						if s.Kind != yaml.ScalarNode {
							errs = append(errs, &LoadError{path, s.Line, "similar must be a list of strings"})
							ok = false
							continue
						}
						r.similar = append(r.similar, s.Value)
					}
				case yaml.ScalarNode:
					if v.Tag != "!!null" {
						r.similar = append(r.similar, v.Value)
					}
				default:
					errs = append(errs, &LoadError{path, v.Line, "similar must be a list of strings"})
					ok = false
				}
			default:
				errs = append(errs, &LoadError{path, k.Line, fmt.Sprintf("unknown key %q", k.Value)})
				ok = false
			}
		}
		e, ferrs := r.finish(path)
		errs = append(errs, ferrs...)
		if ok && len(ferrs) == 0 {
			entries = append(entries, e)
		}
	}
	return entries, errs
}

// yamlErrLine extracts N from yaml.v3's "yaml: line N: ..." messages.
func yamlErrLine(msg string) int {
	msg = trimYAMLPrefix(msg)
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.IndexByte(rest, ':'); i > 0 {
			n, _ := strconv.Atoi(rest[:i])
			return n
		}
	}
	return 0
}

func trimYAMLPrefix(msg string) string { return strings.TrimPrefix(msg, "yaml: ") }

// csvColumns are the known CSV header names.
var csvColumns = []string{"id", "question", "similar", "answer", "category", "handoff", "subject"}

// loadCSV reads a header row and one entry per record.
func loadCSV(path string, data []byte) ([]Entry, []error) {
	rd := csv.NewReader(bytes.NewReader(data))
	rd.FieldsPerRecord = -1
	rd.LazyQuotes = false
	header, err := rd.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, []error{csvErr(path, err)}
	}
	col := map[string]int{}
	var errs []error
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(csvColumns, h) {
			errs = append(errs, &LoadError{path, 1, fmt.Sprintf("unknown column %q (want %s)", h, strings.Join(csvColumns[:6], ", "))})
			continue
		}
		if _, dup := col[h]; dup {
			errs = append(errs, &LoadError{path, 1, fmt.Sprintf("column %q appears twice", h)})
			continue
		}
		col[h] = i
	}
	for _, need := range []string{"id", "question", "answer"} {
		if _, ok := col[need]; !ok {
			errs = append(errs, &LoadError{path, 1, fmt.Sprintf("missing column %q", need)})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	var entries []Entry
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, csvErr(path, err))
			var pe *csv.ParseError
			if errors.As(err, &pe) && len(errs) < 1000 {
				continue // the reader resumes at the next record
			}
			break
		}
		line, _ := rd.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return rec[i]
			}
			return ""
		}
		fieldLine := func(name string) int {
			if i, ok := col[name]; ok && i < len(rec) {
				l, _ := rd.FieldPos(i)
				return l
			}
			return line
		}
		r := &rawEntry{
			id: get("id"), question: get("question"), answer: get("answer"),
			category: get("category"), handoff: get("handoff"), line: line,
			idLine: fieldLine("id"), questionLine: fieldLine("question"),
			answerLine: fieldLine("answer"), handoffLine: fieldLine("handoff"),
		}
		if s := get("similar"); strings.TrimSpace(s) != "" {
			r.similar = strings.FieldsFunc(s, func(c rune) bool { return c == '|' || c == '\n' || c == '\r' })
		}
		e, ferrs := r.finish(path)
		if len(ferrs) > 0 {
			errs = append(errs, ferrs...)
			continue
		}
		entries = append(entries, e)
	}
	return entries, errs
}

func csvErr(path string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &LoadError{path, pe.Line, "invalid CSV: " + pe.Err.Error()}
	}
	return &LoadError{File: path, Msg: "invalid CSV: " + err.Error()}
}
