package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/kbfile"
	"github.com/dingdesk/dingdesk/kbxlsx"
	"github.com/dingdesk/dingdesk/knowledge"
)

// kbXLSXUsage continues kbUsage (kb.go).
const kbXLSXUsage = `  dingdesk kb import [-c dingdesk.yaml] [--yes] [--as NAME] FILE.xlsx|FILE.yaml|FILE.csv|FILE.jsonl
        preview an import into the managed knowledge (what each row creates or updates,
        bad rows by number), then apply the good rows after confirming (or at once with --yes)
  dingdesk kb export [-c dingdesk.yaml] FILE.xlsx|FILE.yaml|FILE.csv|FILE.jsonl
        write the knowledge base (files and console edits) as Excel (disabled entries too,
        marked 停用) or as a knowledge file (active entries: what the bot serves)
`

// runKBXLSX runs "kb import" and "kb export": the managed knowledge base in
// the database (package knowledge) read and written as Excel.
func runKBXLSX(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := args[0]
	fs := flag.NewFlagSet("kb "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "dingdesk.yaml", "config file")
	yes := fs.Bool("yes", false, "apply without asking (import)")
	actor := fs.String("as", "", "who is recorded as having made the change (default cli:$USER)")
	// Flags may come before or after the file name.
	var files []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 {
		fmt.Fprintf(stderr, "kb %s needs one FILE (.xlsx, .yaml, .csv or .jsonl)\n\nUsage:\n%s", cmd, kbXLSXUsage)
		return 2
	}
	if cmd == "export" && (*yes || *actor != "") {
		fmt.Fprintf(stderr, "kb export takes no --yes or --as\n\nUsage:\n%s", kbXLSXUsage)
		return 2
	}
	cfg, ok := toolConfig(*path, stderr, "bot", "storage")
	if !ok {
		return 1
	}
	ctx := context.Background()
	db, ok := openToolDB(ctx, cfg, stderr)
	if !ok {
		return 1
	}
	defer db.Close()
	m := knowledge.NewManager(gormstore.NewKnowledgeStore(db), fileSource(cfg), nil)
	if cmd == "export" {
		return kbExport(ctx, m, files[0], stdout, stderr)
	}
	who := *actor
	if who == "" {
		who = "cli:" + os.Getenv("USER")
	}
	return kbImport(ctx, m, files[0], *yes, who, stdin, stdout, stderr)
}

// fileSource reads the configured knowledge files for the manager; a file
// with problems stops it, as it stops serve.
func fileSource(cfg *config.Config) knowledge.FileSource {
	return func() ([]bot.Entry, error) { return bot.LoadKnowledge(knowledgePaths(cfg)) }
}

// kbPreview plans the import of an .xlsx workbook or a knowledge file
// (.yaml, .csv, .jsonl).
func kbPreview(ctx context.Context, m *knowledge.Manager, file string) (*knowledge.Plan, error) {
	if _, isFile := kbfile.FormatOf(file); isFile {
		rows, problems, err := kbfile.Read(file)
		if err != nil {
			return nil, err
		}
		plan, err := m.PlanImport(ctx, rows)
		if err != nil {
			return nil, err
		}
		plan.AddErrors(problems)
		return plan, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return kbxlsx.Preview(ctx, m, f)
}

func kbImport(ctx context.Context, m *knowledge.Manager, file string, yes bool, actor string, stdin io.Reader, stdout, stderr io.Writer) int {
	plan, err := kbPreview(ctx, m, file)
	if err != nil {
		kbPrintErrors(stderr, fmt.Errorf("%s: %w", file, err))
		return 1
	}
	for _, it := range plan.Items {
		switch it.Action {
		case knowledge.PlanCreate:
			fmt.Fprintf(stdout, "第 %d 行：新增 %s “%s”\n", it.Row, it.ID, it.Question)
		case knowledge.PlanUpdate:
			fmt.Fprintf(stdout, "第 %d 行：更新 %s “%s”（%s）\n", it.Row, it.ID, it.Question, changedNames(it.Changed))
		}
	}
	for _, e := range plan.Errors {
		fmt.Fprintln(stderr, e.Error())
	}
	fmt.Fprintf(stdout, "%s: %s\n", file, plan.Summary())
	code := 0
	if len(plan.Errors) > 0 {
		code = 1 // good rows may still be applied; scripts learn that some were not
	}
	if plan.Creates+plan.Updates == 0 {
		fmt.Fprintln(stdout, "没有需要应用的更改。")
		return code
	}
	if !yes {
		fmt.Fprint(stdout, "应用以上更改？(y/N) ")
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes", "是":
		default:
			fmt.Fprintln(stdout, "未应用，知识库没有变化。")
			return code
		}
	}
	n, err := m.ApplyImport(ctx, actor, plan)
	if errors.Is(err, knowledge.ErrConflict) {
		fmt.Fprintln(stderr, "知识库在预览后被修改，未应用；请重新运行导入。")
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "apply: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "已应用 %d 条，运行中的服务将在数秒内生效。\n", n)
	return code
}

func changedNames(fields []string) string {
	names := map[string]string{"question": "问题", "similar": "相似问题", "answer": "答案", "category": "类目", "handoff": "转人工", "disabled": "状态"}
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = names[f]
	}
	return strings.Join(out, "、")
}

func kbExport(ctx context.Context, m *knowledge.Manager, file string, stdout, stderr io.Writer) int {
	entries, err := m.List(ctx, knowledge.Filter{Disabled: true})
	if err != nil {
		kbPrintErrors(stderr, err)
		return 1
	}
	n := len(entries)
	err = writeFileAtomic(file, func(w io.Writer) (err error) {
		if format, isFile := kbfile.FormatOf(file); isFile {
			n, err = kbfile.Write(w, format, entries)
			return err
		}
		return kbxlsx.Write(w, entries)
	})
	if err != nil {
		fmt.Fprintf(stderr, "write %s: %v\n", file, err)
		return 1
	}
	fmt.Fprintf(stdout, "%d knowledge entries written to %s\n", n, file)
	return 0
}

// writeFileAtomic writes a file next to path and renames it there, so a
// failed write (or a failed close: a full disk) never leaves a half-written
// file where a good one was, and is reported.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
