package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"

	"github.com/dingdesk/dingdesk/bot"
)

const kbUsage = `Usage:
  dingdesk kb match [-c dingdesk.yaml]   match questions read from stdin, one per line;
                                         print one JSON line each: query, outcome, candidates
  dingdesk kb check [-c dingdesk.yaml]   validate the knowledge files (problems with file:line)
  dingdesk kb eval [-c dingdesk.yaml] [-json] QUERIES.jsonl
                                         measure matching on labelled questions, one
                                         {"query", "expect_id"} a line (expect_id null: out of
                                         domain): top-1, top-5, MRR, OOD rejection, false
                                         rejection and the threshold curve
` + kbXLSXUsage

// runKB is the "kb" subcommand: admin tools for the knowledge base.
func runKB(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, kbUsage)
		return 2
	}
	if args[0] == "import" || args[0] == "export" {
		return runKBXLSX(args, stdin, stdout, stderr)
	}
	fs := flag.NewFlagSet("kb "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "dingdesk.yaml", "config file")
	asJSON := fs.Bool("json", false, "kb eval: print the figures as one JSON object")
	switch args[0] {
	case "match", "check", "eval":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, kbUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown kb command %q\n\n%s", args[0], kbUsage)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var queries []bot.LabelledQuery
	if args[0] == "eval" {
		if fs.NArg() != 1 {
			fmt.Fprintf(stderr, "kb eval needs one queries file\n\n%s", kbUsage)
			return 2
		}
		var err error
		if queries, err = bot.LoadLabelledQueries(fs.Arg(0)); err != nil {
			kbPrintErrors(stderr, err)
			return 1
		}
		if len(queries) == 0 {
			fmt.Fprintf(stderr, "%s: no queries\n", fs.Arg(0))
			return 1
		}
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments %q\n\n%s", fs.Args(), kbUsage)
		return 2
	}
	cfg, ok := toolConfig(*path, stderr, "bot")
	if !ok {
		return 1
	}
	entries, opts, err := loadKnowledge(cfg)
	if err != nil {
		kbPrintErrors(stderr, err)
		return 1
	}
	// match and eval measure what the service would do, semantic tier
	// included; check never calls the embeddings endpoint.
	if args[0] != "check" {
		opts.Semantic = newSemantic(cfg, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	}
	kb, err := bot.NewKnowledgeBase(entries, opts)
	if err != nil {
		kbPrintErrors(stderr, err)
		return 1
	}
	if opts.Semantic != nil {
		kb.WaitSemantic()
		if !kb.SemanticReady() {
			fmt.Fprintln(stderr, "warning: the semantic tier is not ready (see above); matching lexically")
		}
	}
	switch args[0] {
	case "eval":
		return kbEval(kb, opts, queries, *asJSON, stdout, stderr)
	case "check":
		files := "files"
		if len(cfg.Bot.Knowledge) == 1 {
			files = "file"
		}
		fmt.Fprintf(stdout, "%d knowledge entries in %d %s: OK\n", kb.Len(), len(cfg.Bot.Knowledge), files)
		return 0
	}
	return kbMatch(kb, stdin, stdout, stderr)
}

// kbEval prints how the knowledge base does on labelled queries.
func kbEval(kb *bot.KnowledgeBase, opts bot.Options, qs []bot.LabelledQuery, asJSON bool, stdout, stderr io.Writer) int {
	ev, err := bot.Evaluate(kb, qs)
	if err != nil {
		kbPrintErrors(stderr, err)
		return 1
	}
	answer, clarify := opts.AnswerThreshold, opts.ClarifyThreshold
	if answer == 0 && clarify == 0 {
		answer, clarify = bot.DefaultAnswerThreshold, bot.DefaultClarifyThreshold
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			AnswerThreshold  float64 `json:"answer_threshold"`
			ClarifyThreshold float64 `json:"clarify_threshold"`
			bot.Evaluation
		}{answer, clarify, ev}); err != nil {
			fmt.Fprintf(stderr, "write: %v\n", err)
			return 1
		}
		return 0
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	fmt.Fprintf(w, "%d queries: %d in domain, %d out of domain; %d entries; thresholds answer %.2f, clarify %.2f\n\n",
		ev.InDomain+ev.OOD, ev.InDomain, ev.OOD, kb.Len(), answer, clarify)
	row := func(label string, v float64, note string) { fmt.Fprintf(w, "  %-26s %.3f  %s\n", label, v, note) }
	if ev.InDomain > 0 {
		row("top-1", ev.Top1, "in-domain questions whose entry comes first")
		row("top-5", ev.Top5, "… among the first five")
		row("MRR", ev.MRR, "mean reciprocal rank of the entry")
		row("answered", ev.Answered, fmt.Sprintf("in-domain questions answered directly (%.3f of them right)", ev.AnsweredRight))
		row("clarified", ev.Clarified, "in-domain questions offered 您是不是想问")
		row("falsely rejected", ev.FalseRejected, "in-domain questions given no answer")
	}
	if ev.OOD > 0 {
		row("OOD rejected", ev.OODRejected, "out-of-domain questions given no answer")
		row("OOD answered", ev.OODAnswered, "out-of-domain questions answered directly")
	}
	if ev.InDomain > 0 && ev.OOD > 0 {
		row("AUROC", ev.AUROC, "best score separating in-domain from out-of-domain")
	}
	fmt.Fprintf(w, "\nthreshold curve (a threshold on the best score: below it, no answer; at or above, an answer)\n")
	fmt.Fprintf(w, "  %-9s  %-16s  %-12s  %-15s  %-12s\n", "threshold", "falsely rejected", "OOD rejected", "answered (right)", "OOD answered")
	for _, p := range ev.Curve {
		mark := ""
		switch {
		case math.Abs(p.Threshold-clarify) < 0.005:
			mark = "  ← clarify"
		case math.Abs(p.Threshold-answer) < 0.005:
			mark = "  ← answer"
		}
		fmt.Fprintf(w, "  %-9.2f  %-16.3f  %-12.3f  %.3f (%.3f)    %-12.3f%s\n", p.Threshold, p.FalseRejected, p.OODRejected, p.Answered, p.AnsweredRight, p.OODAnsweredRate, mark)
	}
	return 0
}

// kbPrintErrors prints each joined error on its own line.
func kbPrintErrors(w io.Writer, err error) {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			kbPrintErrors(w, e)
		}
		return
	}
	fmt.Fprintln(w, err)
}

// kbMatchLine is one line of "kb match" output.
type kbMatchLine struct {
	Query      string          `json:"query"`
	Outcome    bot.Outcome     `json:"outcome"`
	Candidates []bot.Candidate `json:"candidates"`
}

func kbMatch(kb *bot.KnowledgeBase, stdin io.Reader, stdout, stderr io.Writer) int {
	// Match as the service will once training is done.
	kb.WaitTrained()
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		q := strings.TrimRight(sc.Text(), "\r")
		r := kb.Match(q)
		if err := enc.Encode(kbMatchLine{Query: q, Outcome: r.Outcome, Candidates: r.Candidates}); err != nil {
			fmt.Fprintf(stderr, "write: %v\n", err)
			return 1
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "read stdin: %v\n", err)
		return 1
	}
	return 0
}
