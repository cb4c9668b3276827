// Package kbfile moves managed knowledge to and from the knowledge file
// formats bot.knowledge names (YAML, CSV, JSON Lines): export writes what
// bot.LoadKnowledge reads, so console edits can be folded back into the
// deployed files; import reads a knowledge file into import rows (its line
// numbers as row numbers) for the same preview and apply as Excel.
package kbfile

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/knowledge"
)

// Format is a knowledge file format.
type Format string

const (
	YAML  Format = "yaml"
	CSV   Format = "csv"
	JSONL Format = "jsonl"
)

// FormatOf picks the format from a file name; false when it is none of
// them.
func FormatOf(path string) (Format, bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return YAML, true
	case ".csv":
		return CSV, true
	case ".jsonl", ".ndjson":
		return JSONL, true
	}
	return "", false
}

// fileEntry is an entry in the files' field names and order.
type fileEntry struct {
	ID       string   `yaml:"id" json:"id"`
	Category string   `yaml:"category,omitempty" json:"category,omitempty"`
	Question string   `yaml:"question" json:"question"`
	Similar  []string `yaml:"similar,omitempty" json:"similar,omitempty"`
	Answer   string   `yaml:"answer" json:"answer"`
	Handoff  bool     `yaml:"handoff,omitempty" json:"handoff,omitempty"`
}

// Write writes the active entries (the files have no "disabled": a
// disabled entry is left out, as the bot leaves it out) in format f.
func Write(w io.Writer, f Format, entries []knowledge.Entry) (int, error) {
	var list []fileEntry
	for _, e := range entries {
		if !e.Disabled {
			list = append(list, fileEntry{ID: e.ID, Category: e.Category, Question: e.Question, Similar: e.Similar, Answer: e.Answer, Handoff: e.Handoff})
		}
	}
	switch f {
	case YAML:
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if len(list) == 0 {
			buf.WriteString("[]\n")
		} else if err := enc.Encode(list); err != nil {
			return 0, err
		}
		if err := enc.Close(); err != nil {
			return 0, err
		}
		_, err := w.Write(buf.Bytes())
		return len(list), err
	case JSONL:
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, e := range list {
			if err := enc.Encode(e); err != nil {
				return 0, err
			}
		}
		return len(list), nil
	case CSV:
		cw := csv.NewWriter(w)
		if err := cw.Write([]string{"id", "question", "similar", "answer", "category", "handoff"}); err != nil {
			return 0, err
		}
		for _, e := range list {
			// One similar question a line: the loader also splits on "|",
			// so a question containing one is only exact in YAML or JSONL.
			if err := cw.Write([]string{e.ID, e.Question, strings.Join(e.Similar, "\n"), e.Answer, e.Category, strconv.FormatBool(e.Handoff)}); err != nil {
				return 0, err
			}
		}
		cw.Flush()
		return len(list), cw.Error()
	}
	return 0, fmt.Errorf("kbfile: unknown format %q", f)
}

// Read loads a knowledge file (bot.LoadKnowledge: the same checks as for
// deployed files) into import rows numbered by their line; each problem
// becomes a row error at its line.
func Read(path string) ([]knowledge.ImportRow, []knowledge.RowError, error) {
	if _, ok := FormatOf(path); !ok {
		return nil, nil, fmt.Errorf("%s: 不支持的文件类型（支持 .xlsx、.yaml、.csv、.jsonl）", path)
	}
	entries, err := bot.LoadKnowledge([]string{path})
	var problems []knowledge.RowError
	if err != nil {
		var joined interface{ Unwrap() []error }
		errs := []error{err}
		if errors.As(err, &joined) {
			errs = joined.Unwrap()
		}
		for _, e := range errs {
			var le *bot.LoadError
			if !errors.As(e, &le) {
				return nil, nil, err
			}
			if le.Line == 0 {
				return nil, nil, fmt.Errorf("%s: %s", path, le.Msg) // the whole file is unusable
			}
			problems = append(problems, knowledge.RowError{Row: le.Line, Msg: le.Msg})
		}
	}
	rows := make([]knowledge.ImportRow, len(entries))
	for i, e := range entries {
		line := 0
		if j := strings.LastIndexByte(e.Source, ':'); j >= 0 {
			line, _ = strconv.Atoi(e.Source[j+1:])
		}
		h := e.Handoff
		rows[i] = knowledge.ImportRow{Row: line, ID: e.ID, Question: e.Question, Similar: e.Similar, Answer: e.Answer, Category: e.Category, Handoff: &h}
	}
	return rows, problems, nil
}
