package bot

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dingdesk/dingdesk/config"
)

var sampleFiles = []string{"testdata/it.yaml", "testdata/hr.csv", "testdata/misc.jsonl"}

func mustLoadSample(tb testing.TB) []Entry {
	tb.Helper()
	entries, err := LoadKnowledge(sampleFiles)
	if err != nil {
		tb.Fatalf("LoadKnowledge: %v", err)
	}
	return entries
}

func mustSampleKB(tb testing.TB, opts Options) *KnowledgeBase {
	tb.Helper()
	kb, err := NewKnowledgeBase(mustLoadSample(tb), opts)
	if err != nil {
		tb.Fatalf("NewKnowledgeBase: %v", err)
	}
	kb.WaitTrained()
	return kb
}

func findEntry(tb testing.TB, entries []Entry, id string) Entry {
	tb.Helper()
	for _, e := range entries {
		if e.ID == id {
			return e
		}
	}
	tb.Fatalf("entry %q not loaded", id)
	return Entry{}
}

func TestLoadKnowledge(t *testing.T) {
	entries := mustLoadSample(t)
	if len(entries) != 20 {
		t.Fatalf("loaded %d entries, want 20", len(entries))
	}
	t.Run("YAML", func(t *testing.T) {
		e := findEntry(t, entries, "it-password")
		if e.Question != "电脑开机密码忘记了怎么办？" || len(e.Similar) != 3 || e.Category != "账号" || e.Handoff {
			t.Errorf("got %+v", e)
		}
		if e.Source != "testdata/it.yaml:16" {
			t.Errorf("Source = %q, want testdata/it.yaml:16", e.Source)
		}
		if !findEntry(t, entries, "it-human").Handoff || !findEntry(t, entries, "it-laptop").Handoff {
			t.Error("handoff: true / yes not read")
		}
		if got := findEntry(t, entries, "it-wifi").Similar; !slices.Equal(got, []string{"公司无线网络怎么连", "访客WiFi怎么申请"}) {
			t.Errorf("flow sequence similar = %q", got)
		}
	})
	t.Run("CSV", func(t *testing.T) {
		e := findEntry(t, entries, "hr-leave")
		want := []string{"年休假怎么申请", "请年假的流程", "年假还剩几天"}
		if !slices.Equal(e.Similar, want) {
			t.Errorf("Similar = %q, want %q (split on | and new line)", e.Similar, want)
		}
		if e.Source != "testdata/hr.csv:2" || e.Category != "假期" || e.Handoff {
			t.Errorf("got %+v", e)
		}
		if r := findEntry(t, entries, "hr-resign"); !r.Handoff || r.Source != "testdata/hr.csv:8" {
			t.Errorf("hr-resign = %+v (the quoted multi-line cell shifts lines)", r)
		}
	})
	t.Run("JSONL", func(t *testing.T) {
		e := findEntry(t, entries, "adm-badge")
		if e.Source != "testdata/misc.jsonl:3" || e.Category != "行政" || len(e.Similar) != 2 {
			t.Errorf("got %+v", e)
		}
		if e := findEntry(t, entries, "adm-express"); e.Category != "" || e.Handoff {
			t.Errorf("optional fields: got %+v", e)
		}
	})
	t.Run("order", func(t *testing.T) {
		if entries[0].ID != "it-vpn" || entries[10].ID != "hr-leave" || entries[19].ID != "adm-express" {
			t.Errorf("entries not in file order: %s %s %s", entries[0].ID, entries[10].ID, entries[19].ID)
		}
	})
}

func TestLoadKnowledgeErrors(t *testing.T) {
	cases := map[string]struct {
		files []string
		want  []string // each must appear in the error text
		valid int      // entries still returned
	}{
		"YAML": {
			files: []string{"testdata/bad.yaml"},
			want: []string{
				`testdata/bad.yaml:4: duplicate id "a1" (first defined at testdata/bad.yaml:1)`,
				`testdata/bad.yaml:7: empty id`,
				`testdata/bad.yaml:11: entry "a4": empty question`,
				`testdata/bad.yaml:16: entry "a5": bad handoff value "maybe"`,
				`testdata/bad.yaml:20: unknown key "simliar"`,
			},
			valid: 1,
		},
		"CSV": {
			files: []string{"testdata/bad.csv"},
			want: []string{
				`testdata/bad.csv:3: entry "c2": empty question`,
				`testdata/bad.csv:4: entry "c3": empty answer`,
				`testdata/bad.csv:5: entry "c4": bad handoff value "sometimes"`,
			},
			valid: 1,
		},
		"JSONL": {
			files: []string{"testdata/bad.jsonl"},
			want: []string{
				`testdata/bad.jsonl:2: unknown key "extra"`,
				`testdata/bad.jsonl:3: invalid JSON`,
				`testdata/bad.jsonl:4: duplicate id "j1" (first defined at testdata/bad.jsonl:1)`,
				`testdata/bad.jsonl:5: entry "j5": bad handoff value "perhaps"`,
			},
			valid: 1,
		},
		"duplicate across files": {
			files: []string{"testdata/it.yaml", "testdata/dup.jsonl"},
			want:  []string{`testdata/dup.jsonl:1: duplicate id "it-vpn" (first defined at testdata/it.yaml:3)`},
			valid: 10,
		},
		"missing file": {
			files: []string{"testdata/nope.yaml"},
			want:  []string{"testdata/nope.yaml: open testdata/nope.yaml"},
		},
		"unknown type": {
			files: []string{"testdata/README.txt"},
			want:  []string{"testdata/README.txt: "},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			entries, err := LoadKnowledge(c.files)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Errorf("error is not a *LoadError: %T", err)
			}
			if len(entries) != c.valid {
				t.Errorf("%d valid entries returned, want %d", len(entries), c.valid)
			}
		})
	}
}

func TestLoadKnowledgeShapes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	list := write("list.yml", "- {id: 1, question: 问题, answer: 答案, similar: 一个相似问}\n")
	bom := write("bom.csv", "\ufeffQuestion,ID,Answer\n问题二,2,答案二\n")
	empty := write("empty.yaml", "# nothing yet\n")
	entries, err := LoadKnowledge([]string{list, bom, empty})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].ID != "1" || !slices.Equal(entries[0].Similar, []string{"一个相似问"}) || entries[1].ID != "2" || entries[1].Question != "问题二" {
		t.Fatalf("got %+v", entries)
	}
	gbk := write("gbk.csv", "id,question,answer\n1,\xc4\xe3\xba\xc3,x\n")
	if _, err := LoadKnowledge([]string{gbk}); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("non-UTF-8 file: err = %v", err)
	}
	badYAML := write("bad.yaml", "- id: 1\n  question: [unclosed\n")
	if _, err := LoadKnowledge([]string{badYAML}); err == nil || !strings.Contains(err.Error(), "bad.yaml:") {
		t.Errorf("bad YAML: err = %v", err)
	}
	csvCols := write("cols.csv", "id,question,answer,colour\n")
	if _, err := LoadKnowledge([]string{csvCols}); err == nil || !strings.Contains(err.Error(), `cols.csv:1: unknown column "colour"`) {
		t.Errorf("unknown column: err = %v", err)
	}
}

func TestOptionsFrom(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "syn.txt"), []byte("# 同义词\n笔记本 手提电脑,笔电\n\nVPN、虚拟专网\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := config.Default().Bot
	c.Synonyms = [][]string{{"工牌", "工卡", "门禁卡"}}
	c.SynonymsFile = "syn.txt"
	opts, err := OptionsFrom(c, func(p string) string { return filepath.Join(dir, p) })
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"工牌", "工卡", "门禁卡"}, {"笔记本", "手提电脑", "笔电"}, {"VPN", "虚拟专网"}}
	if !slices.EqualFunc(opts.Synonyms, want, slices.Equal) {
		t.Errorf("Synonyms = %q, want %q", opts.Synonyms, want)
	}
	if opts.AnswerThreshold != c.AnswerThreshold || opts.ClarifyThreshold != c.ClarifyThreshold || opts.StopWords != nil {
		t.Errorf("got %+v", opts)
	}
	c.SynonymsFile = "missing.txt"
	if _, err := OptionsFrom(c, func(p string) string { return filepath.Join(dir, p) }); err == nil {
		t.Error("missing synonyms file: no error")
	}
	if err := os.WriteFile(filepath.Join(dir, "one.txt"), []byte("孤单\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.SynonymsFile = filepath.Join(dir, "one.txt")
	if _, err := OptionsFrom(c, nil); err == nil || !strings.Contains(err.Error(), "one.txt:1:") {
		t.Errorf("one-word group: err = %v", err)
	}
}

func TestDefaultThresholdsMirrorConfig(t *testing.T) {
	c := config.Default().Bot
	if c.AnswerThreshold != DefaultAnswerThreshold || c.ClarifyThreshold != DefaultClarifyThreshold {
		t.Errorf("config defaults %v/%v, bot defaults %v/%v", c.AnswerThreshold, c.ClarifyThreshold, DefaultAnswerThreshold, DefaultClarifyThreshold)
	}
}
