package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
)

// configFlag adds the -c flag every subcommand takes.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("c", "dingdesk.yaml", "config file")
}

// loadConfigArgs parses a subcommand's flags (-c and those addFlags adds)
// and loads the config. A non-zero code means: exit with it (the problem is
// printed).
func loadConfigArgs(name string, args []string, stderr io.Writer, addFlags func(*flag.FlagSet)) (*config.Config, string, int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if addFlags != nil {
		addFlags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, "", 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printConfigError(stderr, err)
		return nil, *path, 1
	}
	return cfg, *path, 0
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	cfg, path, code := loadConfigArgs("check", args, stderr, nil)
	if code != 0 {
		return code
	}
	entries, err := bot.LoadKnowledge(knowledgePaths(cfg))
	if err != nil {
		fmt.Fprintf(stderr, "knowledge files:\n%v\n", err)
		return 1
	}
	if _, err := buildKB(cfg, entries); err != nil {
		fmt.Fprintf(stderr, "knowledge base: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%d knowledge entries, %d skill groups, %d service rules)\n",
		path, len(entries), len(cfg.SkillGroups), len(cfg.ServiceRules))
	return 0
}

// printConfigError prints every problem of an invalid config on its own line.
func printConfigError(w io.Writer, err error) {
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			fmt.Fprintln(w, p)
		}
		return
	}
	fmt.Fprintln(w, err)
}

func knowledgePaths(cfg *config.Config) []string {
	out := make([]string, len(cfg.Bot.Knowledge))
	for i, p := range cfg.Bot.Knowledge {
		out[i] = cfg.Resolve(p)
	}
	return out
}

// buildKB indexes entries with the config's matching options.
func buildKB(cfg *config.Config, entries []bot.Entry) (*bot.KnowledgeBase, error) {
	return buildKBWith(cfg, entries, nil)
}

// buildKBWith is buildKB with the semantic tier sem (nil: none).
func buildKBWith(cfg *config.Config, entries []bot.Entry, sem *bot.Semantic) (*bot.KnowledgeBase, error) {
	opts, err := bot.OptionsFrom(cfg.Bot, cfg.Resolve)
	if err != nil {
		return nil, err
	}
	opts.Semantic = sem
	return bot.NewKnowledgeBase(entries, opts)
}

func mkdirTemp() (string, error) { return os.MkdirTemp("", "dingdesk-chat-") }
