package handoff_test

import (
	"testing"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
)

// newTestBot builds the bot over kbEntries with the config's thresholds.
func newTestBot(t testing.TB, cfg *config.Config) *bot.Bot {
	t.Helper()
	opts, err := bot.OptionsFrom(cfg.Bot, nil)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := bot.NewKnowledgeBase(kbEntries, opts)
	if err != nil {
		t.Fatal(err)
	}
	return bot.New(kb)
}
