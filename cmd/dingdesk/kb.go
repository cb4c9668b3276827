package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
)

const kbUsage = `Usage:
  dingdesk kb match [-c dingdesk.yaml]   match questions read from stdin, one per line;
                                         print one JSON line each: query, outcome, candidates
  dingdesk kb check [-c dingdesk.yaml]   validate the knowledge files (problems with file:line)
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
	switch args[0] {
	case "match", "check":
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
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments %q\n\n%s", fs.Args(), kbUsage)
		return 2
	}
	cfg, ok := kbLoadConfig(*path, stderr)
	if !ok {
		return 1
	}
	paths := make([]string, len(cfg.Bot.Knowledge))
	for i, p := range cfg.Bot.Knowledge {
		paths[i] = cfg.Resolve(p)
	}
	entries, err := bot.LoadKnowledge(paths)
	if err != nil {
		kbPrintErrors(stderr, err)
		return 1
	}
	opts, err := bot.OptionsFrom(cfg.Bot, cfg.Resolve)
	if err != nil {
		kbPrintErrors(stderr, err)
		return 1
	}
	kb, err := bot.NewKnowledgeBase(entries, opts)
	if err != nil {
		kbPrintErrors(stderr, err)
		return 1
	}
	if args[0] == "check" {
		files := "files"
		if len(paths) == 1 {
			files = "file"
		}
		fmt.Fprintf(stdout, "%d knowledge entries in %d %s: OK\n", kb.Len(), len(paths), files)
		return 0
	}
	return kbMatch(kb, stdin, stdout, stderr)
}

// kbLoadConfig reads and validates the config. Only problems under bot.*
// stop the kb tools; others (say, a missing DingTalk secret on an admin's
// laptop) are printed as warnings.
func kbLoadConfig(path string, stderr io.Writer) (*config.Config, bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "read config: %v\n", err)
		return nil, false
	}
	cfg, err := config.Parse(raw)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		return nil, false
	}
	if abs, err := filepath.Abs(path); err == nil {
		cfg.Path = abs
	}
	var ve *config.ValidationError
	if err := cfg.Validate(); errors.As(err, &ve) {
		fatal := false
		for _, p := range ve.Problems {
			if p.Key == "bot" || strings.HasPrefix(p.Key, "bot.") {
				fmt.Fprintf(stderr, "%s: %s\n", path, p)
				fatal = true
			} else {
				fmt.Fprintf(stderr, "%s: warning: %s\n", path, p)
			}
		}
		if fatal {
			return nil, false
		}
	} else if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		return nil, false
	}
	return cfg, true
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
