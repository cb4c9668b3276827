package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dingdesk/dingdesk/bot/embedtest"
)

// writeKBConfig writes a config whose knowledge files are the bot package's
// test files (absolute paths) plus extra ones relative to the config.
func writeKBConfig(t *testing.T, mode string, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for _, f := range []string{"it.yaml", "hr.csv", "misc.jsonl"} {
		abs, err := filepath.Abs(filepath.Join("..", "..", "bot", "testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, abs)
	}
	files = append(files, extra...)
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = `"` + f + `"`
	}
	cfg := "dingtalk:\n  mode: " + mode + "\nbot:\n  knowledge: [" + strings.Join(quoted, ", ") + "]\n  synonyms: [[工牌, 胸卡]]\n"
	p := filepath.Join(dir, "dingdesk.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runKBTest(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runKB(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestKBMatch(t *testing.T) {
	cfg := writeKBConfig(t, "webhook")
	code, out, errs := runKBTest(t, "VPN连不上怎么办？\n胸卡丢了\r\n今天天气怎么样\n\n", "match", "-c", cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d output lines, want 4 (one per input line):\n%s", len(lines), out)
	}
	want := []struct {
		query, outcome, best string
	}{
		{"VPN连不上怎么办？", "answer", "it-vpn"},
		{"胸卡丢了", "answer", "adm-badge"}, // via the config's synonyms
		{"今天天气怎么样", "none", ""},
		{"", "none", ""},
	}
	for i, line := range lines {
		var got struct {
			Query      string `json:"query"`
			Outcome    string `json:"outcome"`
			Candidates []struct {
				ID       string  `json:"id"`
				Question string  `json:"question"`
				Score    float64 `json:"score"`
			} `json:"candidates"`
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, line)
		}
		w := want[i]
		if got.Query != w.query || got.Outcome != w.outcome {
			t.Errorf("line %d: query %q outcome %q, want %q %q", i+1, got.Query, got.Outcome, w.query, w.outcome)
		}
		if len(got.Candidates) < 5 {
			t.Errorf("line %d: %d candidates, want at least 5", i+1, len(got.Candidates))
			continue
		}
		if w.best != "" && got.Candidates[0].ID != w.best {
			t.Errorf("line %d: best %s, want %s", i+1, got.Candidates[0].ID, w.best)
		}
		for j := 1; j < len(got.Candidates); j++ {
			if got.Candidates[j].Score > got.Candidates[j-1].Score {
				t.Errorf("line %d: candidates not best first", i+1)
			}
		}
		if got.Candidates[0].Question == "" {
			t.Errorf("line %d: candidate without question", i+1)
		}
	}
	if !strings.Contains(lines[0], `"question":"VPN连不上怎么办？"`) {
		t.Errorf("Chinese text escaped or question missing: %s", lines[0])
	}
}

func TestKBCheck(t *testing.T) {
	code, out, errs := runKBTest(t, "", "check", "-c", writeKBConfig(t, "webhook"))
	if code != 0 || !strings.Contains(out, "20 knowledge entries") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}

	bad, err := filepath.Abs(filepath.Join("..", "..", "bot", "testdata", "bad.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs = runKBTest(t, "", "check", "-c", writeKBConfig(t, "webhook", bad))
	if code == 0 {
		t.Fatalf("bad knowledge accepted: %s", out)
	}
	for _, want := range []string{"bad.yaml:4: duplicate id", "bad.yaml:7: empty id", "bad.yaml:16:", "bad.yaml:20: unknown key"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if n := strings.Count(errs, "bad.yaml:"); n != 6 { // 5 problems, one names the first definition too
		t.Errorf("%d problem lines, want 5 (one per problem):\n%s", n, errs)
	}

	code, _, errs = runKBTest(t, "", "check", "-c", writeKBConfig(t, "webhook", "missing.csv"))
	if code == 0 || !strings.Contains(errs, "missing.csv") {
		t.Errorf("missing file: exit %d, stderr %q", code, errs)
	}
}

func TestKBConfigProblems(t *testing.T) {
	// Stream mode without credentials: a warning, the tools still work.
	code, out, errs := runKBTest(t, "", "check", "-c", writeKBConfig(t, "stream"))
	if code != 0 || !strings.Contains(errs, "warning: dingtalk.client_id") || !strings.Contains(out, "OK") {
		t.Errorf("stream config: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// A bot problem is fatal.
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(p, []byte("dingtalk: {mode: webhook}\nbot: {answer_threshold: 0.2, clarify_threshold: 0.5}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runKBTest(t, "", "check", "-c", p); code == 0 {
		t.Errorf("bad thresholds accepted (stderr %q)", errs)
	}
	if code, _, errs := runKBTest(t, "", "match", "-c", filepath.Join(dir, "none.yaml")); code != 1 || !strings.Contains(errs, "none.yaml") {
		t.Errorf("missing config: exit %d, stderr %q", code, errs)
	}
	if code, _, _ := runKBTest(t, "", "frobnicate"); code != 2 {
		t.Errorf("unknown subcommand: exit %d", code)
	}
	if code, _, _ := runKBTest(t, ""); code != 2 {
		t.Errorf("no subcommand: exit %d", code)
	}
}

func writeQueries(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "queries.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKBEval(t *testing.T) {
	cfg := writeKBConfig(t, "webhook")
	qs := writeQueries(t,
		`{"query": "VPN连不上怎么办？", "expect_id": "it-vpn"}`,
		`{"query": "在家里连不上vpn", "expect_id": "it-vpn"}`,
		`{"query": "请问年休假的流程", "expect_id": "hr-leave"}`,
		`{"query": "工牌丢了", "expect_id": "adm-badge"}`,
		`{"query": "今天天气怎么样", "expect_id": null}`,
		`{"query": "量子纠缠是什么", "expect_id": ""}`,
	)
	code, out, errs := runKBTest(t, "", "eval", "-c", cfg, qs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"6 queries: 4 in domain, 2 out of domain",
		"thresholds answer 0.60, clarify 0.28",
		"top-1                      1.000",
		"OOD rejected               1.000",
		"falsely rejected           0.000",
		"threshold curve",
		"← clarify", "← answer",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kb eval output lacks %q:\n%s", want, out)
		}
	}
	// -json carries the same figures, curve included.
	code, out, errs = runKBTest(t, "", "eval", "-json", "-c", cfg, qs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var ev struct {
		ClarifyThreshold  float64
		InDomain, OOD     int
		Top1, OODRejected float64
		Curve             []struct{ Threshold, FalseRejected, OODRejected float64 }
	}
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if ev.InDomain != 4 || ev.OOD != 2 || ev.Top1 != 1 || ev.OODRejected != 1 || len(ev.Curve) < 10 || ev.Curve[0].Threshold != 0.1 {
		t.Errorf("json figures %+v", ev)
	}
	// A question answered wrongly counts against top-1 and shows in the
	// share of right answers.
	wrong := writeQueries(t, `{"query": "VPN连不上怎么办？", "expect_id": "hr-leave"}`)
	code, out, _ = runKBTest(t, "", "eval", "-c", cfg, wrong)
	if code != 0 || !strings.Contains(out, "top-1                      0.000") || !strings.Contains(out, "(0.000 of them right)") {
		t.Errorf("wrong answer: exit %d\n%s", code, out)
	}
}

func TestKBEvalBadInput(t *testing.T) {
	cfg := writeKBConfig(t, "webhook")
	for name, c := range map[string]struct {
		lines []string
		want  []string
	}{
		"unknown id": {[]string{`{"query": "VPN", "expect_id": "it-vpn"}`, `{"query": "年假", "expect_id": "no-such"}`}, []string{`query 2 ("年假"): expect_id "no-such" is not in the knowledge base`}},
		"bad lines":  {[]string{`{"query": "VPN", "expect": "it-vpn"}`, `not json`, `{"query": " ", "expect_id": null}`}, []string{"queries.jsonl:1:", "queries.jsonl:2:", "queries.jsonl:3: empty query"}},
		"empty file": {[]string{""}, []string{"no queries"}},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, errs := runKBTest(t, "", "eval", "-c", cfg, writeQueries(t, c.lines...))
			if code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, errs)
			}
			for _, w := range c.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
		})
	}
	if code, _, errs := runKBTest(t, "", "eval", "-c", cfg); code != 2 || !strings.Contains(errs, "needs one queries file") {
		t.Errorf("no file: exit %d %s", code, errs)
	}
	if code, _, errs := runKBTest(t, "", "eval", "-c", cfg, "/nonexistent/q.jsonl"); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: exit %d %s", code, errs)
	}
}

func TestKBEvalWithSemanticTier(t *testing.T) {
	srv := embedtest.New(32, map[string]string{"苹果支付": "applepay", "apple pay": "applepay", "添加": "bind", "绑定": "bind", "刷卡机": "pos", "pos机": "pos", "小票": "receipt", "凭条": "receipt"})
	defer srv.Close()
	dir := t.TempDir()
	kb := `[
{"id":"applepay","question":"Apple Pay怎么绑定银行卡？","similar":["Apple Pay支持哪些银行","Apple Pay绑卡失败"],"answer":"在钱包里添加。"},
{"id":"pos","question":"POS机消费没有小票怎么办？","similar":["POS机打印不出凭条"],"answer":"联系商户。"},
{"id":"lost","question":"银行卡丢了怎么挂失？","similar":["卡片遗失如何挂失"],"answer":"拨打95516。"},
{"id":"open","question":"怎么开通云闪付？","similar":["云闪付注册","下载云闪付"],"answer":"下载应用。"}
]`
	os.WriteFile(filepath.Join(dir, "kb.yaml"), []byte(kb), 0o644)
	qs := writeQueries(t,
		`{"query": "苹果支付怎么添加银行卡", "expect_id": "applepay"}`,
		`{"query": "刷卡机没给小票", "expect_id": "pos"}`,
		`{"query": "今天天气怎么样", "expect_id": null}`,
	)
	write := func(enabled bool) string {
		cfg := fmt.Sprintf("dingtalk:\n  mode: webhook\nbot:\n  knowledge: [kb.yaml]\n  semantic:\n    enabled: %v\n    base_url: %s\n    model: fake\n    cache_dir: emb\n", enabled, srv.BaseURL())
		p := filepath.Join(dir, fmt.Sprintf("semantic-%v.yaml", enabled))
		os.WriteFile(p, []byte(cfg), 0o644)
		return p
	}
	_, lexical, _ := runKBTest(t, "", "eval", "-json", "-c", write(false), qs)
	code, semantic, errs := runKBTest(t, "", "eval", "-json", "-c", write(true), qs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	type figures struct{ Top1, FalseRejected, Answered, OODRejected float64 }
	var l, s figures
	json.Unmarshal([]byte(lexical), &l)
	json.Unmarshal([]byte(semantic), &s)
	// Lexically the paraphrases share too little with their entries to be
	// answered; the embeddings bridge 苹果支付 ↔ Apple Pay and 刷卡机 ↔ POS机.
	t.Logf("semantic %+v, lexical %+v", s, l)
	if s.Top1 != 1 || s.Answered+1e-9 < l.Answered || s.FalseRejected >= l.FalseRejected && l.Answered == s.Answered || s.OODRejected != 1 {
		t.Errorf("semantic %+v, lexical %+v", s, l)
	}
	if _, err := os.Stat(filepath.Join(dir, "emb")); err != nil {
		t.Errorf("cache dir not made relative to the config: %v", err)
	}
	// A dead endpoint: the entries come from the cache, every query falls
	// back, and the figures are the lexical ones.
	srv.Close()
	code, dead, errs := runKBTest(t, "", "eval", "-json", "-c", write(true), qs)
	var d figures
	json.Unmarshal([]byte(dead), &d)
	if code != 0 || d != l || !strings.Contains(errs, "matching lexically") {
		t.Fatalf("dead endpoint: exit %d, %+v (lexical %+v), stderr %s", code, d, l, errs)
	}
}
