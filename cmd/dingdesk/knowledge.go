package main

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/bot/textnorm"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/knowledge"
)

// kbState is what the running matcher is built from besides the managed
// records: the knowledge files as last loaded without problems, and the
// matching options of the config they came with. Admin pages read the
// cached files instead of parsing them on every request.
type kbState struct {
	files atomic.Pointer[[]bot.Entry]
	opts  atomic.Pointer[bot.Options]
}

// startKnowledge loads the knowledge files, merges the managed records
// over them and builds the first matcher; Run then keeps it in sync
// (knowledge.Sync).
func (m *Main) startKnowledge(ctx context.Context, cfg *config.Config) error {
	store := gormstore.NewKnowledgeStore(m.DB)
	m.Knowledge = knowledge.NewManager(store, func() ([]bot.Entry, error) {
		return *m.kb.files.Load(), nil
	}, m.Clock.Now)
	m.Bot = bot.New(nil)
	m.KnowledgeSync = &knowledge.Sync{Manager: m.Knowledge, Log: m.Log.With("component", "knowledge"),
		Build: func(entries []bot.Entry) error {
			kb, err := bot.NewKnowledgeBase(entries, *m.kb.opts.Load())
			if err != nil {
				return err
			}
			m.Bot.Replace(kb)
			return nil
		}}
	m.Knowledge.OnChange(m.KnowledgeSync.Kick)
	m.Reviewer = &knowledge.Reviewer{Manager: m.Knowledge, Store: store, Now: m.Clock.Now,
		Match:        func(q string) bot.Result { return m.Bot.KB().Match(q) },
		NotAQuestion: func(text string) bool { return notAQuestion(m.Config.Current(), text) }}
	files, opts, err := loadKnowledge(cfg)
	if err != nil {
		return err
	}
	return m.useKnowledge(ctx, files, opts)
}

// useKnowledge rebuilds the matcher from the knowledge files' entries and
// the matching options (loadKnowledge) with the managed records; on error
// the running matcher and its inputs stay.
func (m *Main) useKnowledge(ctx context.Context, files []bot.Entry, opts bot.Options) error {
	opts.Semantic = m.Semantic
	if m.KnowledgeSync == nil { // a Main that was not Run (tests): the files alone
		kb, err := bot.NewKnowledgeBase(files, opts)
		if err != nil {
			return err
		}
		m.Bot.Replace(kb)
		return nil
	}
	oldFiles, oldOpts := m.kb.files.Swap(&files), m.kb.opts.Swap(&opts)
	if err := m.KnowledgeSync.Rebuild(ctx); err != nil {
		if oldFiles != nil {
			m.kb.files.Store(oldFiles)
			m.kb.opts.Store(oldOpts)
		}
		return err
	}
	return nil
}

// notAQuestion: transfer and end keywords and the hot command are not
// questions an agent answered.
func notAQuestion(cfg *config.Config, text string) bool {
	n := textnorm.Normalize(text)
	for _, k := range append(append([]string{cfg.Bot.HotCommand}, cfg.Routing.TransferKeywords...), cfg.Routing.EndKeywords...) {
		if k := textnorm.Normalize(k); k != "" && strings.Contains(n, k) && len([]rune(n))-len([]rune(k)) < 4 {
			return true
		}
	}
	return false
}
