package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/gormstore"
)

// configFlag adds the -c flag every subcommand takes.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("c", "dingdesk.yaml", "config file")
}

// loadConfigArgs parses a subcommand's flags (-c and those addFlags adds)
// and loads the config. A non-zero code means: exit with it (the problem is
// printed). An invalid config is printed with every problem of its
// knowledge files too, so one run shows all there is to fix.
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
	cfg, err := config.Read(*path)
	if err != nil {
		printConfigError(stderr, err)
		if cfg != nil {
			// The config is invalid: its knowledge is read, not indexed.
			if _, _, kerr := loadKnowledge(cfg); kerr != nil {
				fmt.Fprintf(stderr, "knowledge files:\n%v\n", kerr)
			}
		}
		return nil, *path, 1
	}
	return cfg, *path, 0
}

// toolConfig reads the config for a tool that uses only part of it (kb,
// report): problems under the keys it uses stop it, the others (say, a
// missing DingTalk secret on an admin's laptop) are printed as warnings.
// It reads as serve does (config.Read), so a relative SQLite file is the
// config's database, not one in the working directory.
func toolConfig(path string, stderr io.Writer, uses ...string) (*config.Config, bool) {
	cfg, err := config.Read(path)
	if cfg == nil {
		fmt.Fprintln(stderr, err)
		return nil, false
	}
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		return cfg, true
	}
	fatal := false
	for _, p := range ve.Problems {
		if slices.ContainsFunc(uses, func(k string) bool { return p.Key == k || strings.HasPrefix(p.Key, k+".") }) {
			fmt.Fprintf(stderr, "%s: %s\n", path, p)
			fatal = true
		} else {
			fmt.Fprintf(stderr, "%s: warning: %s\n", path, p)
		}
	}
	return cfg, !fatal
}

// openToolDB opens cfg's database for a command (report, kb import/export,
// login-link), logging storage warnings to stderr; false when it cannot.
func openToolDB(ctx context.Context, cfg *config.Config, stderr io.Writer) (*gormstore.DB, bool) {
	db, err := gormstore.Open(ctx, cfg.Storage, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintf(stderr, "storage: %v\n", err)
		return nil, false
	}
	return db, true
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	cfg, path, code := loadConfigArgs("check", args, stderr, nil)
	if code != 0 {
		return code
	}
	kb, err := readKnowledge(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "knowledge files:\n%v\n", err)
		return 1
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "%s: OK (%d knowledge entries, %d skill groups, %d service rules)\n",
		path, kb.Len(), len(cfg.SkillGroups), len(cfg.ServiceRules))
	return 0
}

// loadKnowledge reads cfg's knowledge files and matching options (the
// synonyms file among them): what a knowledge base is built from. The error
// lists every problem of both, one a line.
func loadKnowledge(cfg *config.Config) ([]bot.Entry, bot.Options, error) {
	entries, loadErr := bot.LoadKnowledge(knowledgePaths(cfg))
	opts, optErr := bot.OptionsFrom(cfg.Bot, cfg.Resolve)
	return entries, opts, errors.Join(loadErr, optErr)
}

// readKnowledge loads cfg's knowledge and indexes it as serve does (the
// files alone, without the semantic tier).
func readKnowledge(cfg *config.Config) (*bot.KnowledgeBase, error) {
	entries, opts, err := loadKnowledge(cfg)
	if err != nil {
		return nil, err
	}
	kb, err := bot.NewKnowledgeBase(entries, opts)
	if err != nil {
		return nil, fmt.Errorf("knowledge base: %w", err)
	}
	return kb, nil
}

// printConfigError prints every problem of an invalid config on its own line.
func printConfigError(w io.Writer, err error) {
	for _, line := range problemLines(err) {
		fmt.Fprintln(w, line)
	}
}

// problemLines is every problem in errs, one string each: a config's by
// key path, knowledge files' by file:line.
func problemLines(errs ...error) []string {
	var out []string
	for _, err := range errs {
		if err == nil {
			continue
		}
		var ve *config.ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				out = append(out, p.String())
			}
			continue
		}
		for _, l := range strings.Split(err.Error(), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

func knowledgePaths(cfg *config.Config) []string {
	out := make([]string, len(cfg.Bot.Knowledge))
	for i, p := range cfg.Bot.Knowledge {
		out[i] = cfg.Resolve(p)
	}
	return out
}

func mkdirTemp() (string, error) { return os.MkdirTemp("", "dingdesk-chat-") }
