package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/kbxlsx"
	"github.com/dingdesk/dingdesk/knowledge"
)

// TestKnowledgeEditLiveOnEveryReplica: two replicas share one database; an
// entry edited on one is answered with by the other within seconds, and an
// unanswered question added as a similar question in one call is answered
// next time.
func TestKnowledgeEditLiveOnEveryReplica(t *testing.T) {
	for _, driver := range gormstoretest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			fake := dingtalktest.NewServer()
			t.Cleanup(fake.Close)
			st := gormstoretest.NewStorage(t, driver)
			a := startService(t, serviceOpts{fake: fake, storage: &st})
			b := startService(t, serviceOpts{fake: fake, storage: &st})
			ctx := context.Background()

			if got := b.ask("u1", "年假有多少天").Text; !strings.Contains(got, "年假答案：满一年五天。") {
				t.Fatalf("before the edit: %q", got)
			}
			e, err := a.main.Knowledge.Get(ctx, "leave")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.main.Knowledge.Update(ctx, "admin", "leave", e.Version, knowledge.Draft{
				Question: e.Question, Similar: e.Similar, Answer: "年假新答案：满一年五天，满十年十天。", Category: "HR"}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "replica b answering with the edited entry", func() bool {
				return strings.Contains(b.ask("u1", "年假有多少天").Text, "年假新答案")
			})

			// An unanswered question, then added as a similar question in one call.
			q := "休假天数怎么查"
			if got := b.ask("u2", q).Text; strings.Contains(got, "年假") {
				t.Fatalf("answered before it was added: %q", got)
			}
			var list []knowledge.Question
			eventually(t, "the question in the unanswered list", func() bool {
				list, err = a.main.Reviewer.Unanswered(ctx, knowledge.ListOptions{})
				return err == nil && len(list) == 1
			})
			if list[0].Question != q || list[0].Count != 1 {
				t.Fatalf("unanswered = %+v", list)
			}
			if _, err := a.main.Reviewer.AddAsSimilar(ctx, "admin", q, "leave"); err != nil {
				t.Fatal(err)
			}
			eventually(t, "replica b answering the added question", func() bool {
				return strings.Contains(b.ask("u2", q).Text, "年假新答案")
			})
			if list, _ = a.main.Reviewer.Unanswered(ctx, knowledge.ListOptions{}); len(list) != 0 {
				t.Fatalf("still listed: %+v", list)
			}
		})
	}
}

// TestKBImportExportCommands runs the real commands against a running
// service's database: the preview names the bad row and applies nothing
// until confirmed; the running service then answers with the import; an
// export reads back.
func TestKBImportExportCommands(t *testing.T) {
	s := startService(t, serviceOpts{})
	xlsx := filepath.Join(s.dir, "kb.xlsx")
	f := excelize.NewFile()
	for i, r := range [][]any{
		{"问题", "相似问题", "答案", "类目"},
		{"报销需要什么材料", "报销材料有哪些\n报销要准备什么", "报销答案：发票和审批单。", "财务"},
		{"发票抬头写什么", "", "", "财务"},
	} {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		f.SetSheetRow("Sheet1", cell, &r)
	}
	if err := f.SaveAs(xlsx); err != nil {
		t.Fatal(err)
	}

	run1 := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(args, strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	// Declined: nothing applied.
	code, out, errs := run1("n\n", "kb", "import", "-c", s.cfg, xlsx)
	if code != 1 || !strings.Contains(errs, "第 3 行 答案：答案不能为空") || !strings.Contains(out, "第 2 行：新增") || !strings.Contains(out, "未应用") {
		t.Fatalf("declined import: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if got := s.ask("u1", "报销要准备什么").Text; strings.Contains(got, "报销答案") {
		t.Fatalf("answered from a declined import: %q", got)
	}
	// Confirmed with --yes (after the file name).
	code, out, errs = run1("", "kb", "import", "-c", s.cfg, xlsx, "--yes", "--as", "admin1")
	if code != 1 || !strings.Contains(out, "已应用 1 条") {
		t.Fatalf("applied import: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	eventually(t, "the service answering with the imported entry", func() bool {
		return strings.Contains(s.ask("u1", "报销要准备什么").Text, "报销答案")
	})

	out2 := filepath.Join(s.dir, "out.xlsx")
	if code, out, errs := run1("", "kb", "export", "-c", s.cfg, out2); code != 0 || !strings.Contains(out, "8 knowledge entries") {
		t.Fatalf("export: code %d\n%s\n%s", code, out, errs)
	}
	r, err := os.Open(out2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rows, problems, err := kbxlsx.Read(r)
	if err != nil || len(problems) != 0 || len(rows) != 8 || rows[7].Question != "报销需要什么材料" || rows[7].Category != "财务" {
		t.Fatalf("export read back: %+v %v %v", rows, problems, err)
	}
	// As a knowledge file: what the bot serves, loadable as bot.knowledge,
	// and importing it back changes nothing.
	yamlOut := filepath.Join(s.dir, "merged.yaml")
	if code, out, errs := run1("", "kb", "export", "-c", s.cfg, yamlOut); code != 0 || !strings.Contains(out, "8 knowledge entries") {
		t.Fatalf("yaml export: %d %s %s", code, out, errs)
	}
	if code, out, errs := run1("", "kb", "import", "-c", s.cfg, yamlOut, "--yes"); code != 0 || !strings.Contains(out, "没有需要应用的更改") {
		t.Fatalf("yaml re-import: %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := run1("", "kb", "import", "-c", s.cfg); code != 2 || !strings.Contains(errs, "FILE.xlsx") {
		t.Fatalf("no file: %d %s", code, errs)
	}
	_ = time.Second
}
