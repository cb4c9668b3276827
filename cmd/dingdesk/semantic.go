package main

import (
	"log/slog"
	"net/http"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/bot/openaiembed"
	"github.com/dingdesk/dingdesk/config"
)

// newSemantic builds the bot's semantic tier from bot.semantic, or nil when
// it is off. Nothing is fetched here: entries are embedded when a knowledge
// base is built, in the background.
func newSemantic(cfg *config.Config, log *slog.Logger) *bot.Semantic {
	sc := cfg.Bot.Semantic
	if !sc.Enabled {
		return nil
	}
	client := &openaiembed.Client{
		BaseURL:    sc.BaseURL,
		Model:      sc.Model,
		APIKey:     sc.APIKey.Reveal(),
		Dimensions: sc.Dimensions,
		// Deadlines come from the per-request contexts (query timeout,
		// batch timeout); the transport only bounds idle connections.
		HTTP: &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 16}},
	}
	cacheDir := ""
	if sc.CacheDir != "" {
		cacheDir = cfg.Resolve(sc.CacheDir)
	}
	return bot.NewSemantic(client, bot.SemanticConfig{
		Model:      sc.Model,
		Dimensions: sc.Dimensions,
		Timeout:    sc.Timeout,
		BatchSize:  sc.BatchSize,
		CacheDir:   cacheDir,
	}, log)
}
