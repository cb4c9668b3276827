package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/transcript"
)

// TestReportCommand: a real hand-off through the webhook (two misses, the
// agent answers, the user ends), then `dingdesk report` shows the session,
// its first response and its handling time, as a table and as CSV.
func TestReportCommand(t *testing.T) {
	s := startService(t, serviceOpts{})
	s.toUser(s.say("agent1", "上线"), "agent1", "已上线")
	s.toUser(s.say("u1", unknownQ), "u1", "抱歉")
	m := s.say("u1", "土星有几个卫星呢")
	s.toUser(m, "agent1", "新会话")
	s.toUser(s.say("agent1", "您好，请稍等，我查一下。"), "u1", "我查一下")
	s.toUser(s.say("u1", "结束会话"), "u1", "已结束")

	// The session is found by the agent's words and opens with the bot part.
	found, err := transcript.Search(context.Background(), gormstore.NewTranscriptStore(s.main.DB), transcript.Query{Text: "我查一下", User: "u1"})
	if err != nil || len(found) != 1 || found[0].Agent != "agent1" {
		t.Fatalf("search = %+v, %v", found, err)
	}
	tr, err := transcript.Open(context.Background(), gormstore.NewTranscriptStore(s.main.DB), found[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, l := range tr.Lines {
		kinds = append(kinds, l.SenderKind+":"+l.Text)
	}
	all := strings.Join(kinds, "\n")
	if !strings.HasPrefix(all, "user:"+unknownQ) || !strings.Contains(all, "agent:您好，请稍等，我查一下。") || !strings.Contains(all, "user:结束会话") {
		t.Fatalf("transcript:\n%s", all)
	}

	today := time.Now().In(mustLoc(t, "Asia/Shanghai")).Format(time.DateOnly)
	runCmd := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(args, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := runCmd("report", "-c", s.cfg, "--from", today, "--to", today, "--by", "day,group,agent", "--format", "csv")
	if code != 0 {
		t.Fatalf("report: %d\n%s", code, errs)
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := map[string]int{}
	for i, h := range recs[0] {
		head[h] = i
	}
	var agentRow []string
	for _, r := range recs[1:] {
		if r[head["客服ID"]] == "agent1" {
			agentRow = r
		}
	}
	if agentRow == nil || agentRow[head["技能组"]] != "IT 服务台" || agentRow[head["人工会话"]] != "1" || agentRow[head["转人工_无答案"]] != "1" ||
		agentRow[head["首次响应均值秒"]] == "" || agentRow[head["处理时长均值秒"]] == "" || agentRow[0] != today {
		t.Fatalf("agent row = %v\nall:\n%s", agentRow, out)
	}

	code, out, errs = runCmd("report", "-c", s.cfg, "--from", today, "--to", today, "--sessions")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "no_answer") || !strings.Contains(out, "user_end") {
		t.Fatalf("sessions csv: %d %s\n%s", code, errs, out)
	}
	// -o writes the same file, and nothing but it, into the target folder.
	dir := t.TempDir()
	file := filepath.Join(dir, "sessions.csv")
	if code, stdout, errs := runCmd("report", "-c", s.cfg, "--from", today, "--to", today, "--sessions", "-o", file); code != 0 || stdout != "" {
		t.Fatalf("report -o: %d %q %s", code, stdout, errs)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != out {
		t.Fatalf("report -o wrote %q (%v), want %q", b, err, out)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Fatalf("report -o left %d files in its folder", len(left))
	}
	code, out, _ = runCmd("report", "-c", s.cfg, "--from", today, "--to", today, "--by", "agent")
	if code != 0 || !strings.Contains(out, "小王") || !strings.Contains(out, "total") {
		t.Fatalf("table:\n%s", out)
	}
	for _, bad := range [][]string{
		{"report", "-c", s.cfg, "--by", "hour"},
		{"report", "-c", s.cfg, "--from", "2026-13-01"},
		{"report", "-c", s.cfg, "--from", "2026-12-02", "--to", "2026-12-01"},
		{"report", "-c", s.cfg, "--format", "xml"},
	} {
		if code, _, errs := runCmd(bad...); code != 2 || errs == "" {
			t.Errorf("%v: code %d, stderr %q", bad, code, errs)
		}
	}
}
