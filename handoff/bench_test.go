package handoff_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/handoff/clocktest"
)

// benchEngine is an engine of the benchmarks: baseYAML and the test bot on
// db, at clock's time, with nothing listening for the outbox.
func benchEngine(b *testing.B, db *gormstore.DB, clock *clocktest.Clock) *handoff.Engine {
	store := config.NewStore(parseConfig(b, baseYAML))
	return handoff.New(handoff.Deps{Config: store, Bot: newTestBot(b, store.Current()), Store: gormstore.NewHandoffStore(db, nil), Clock: clock})
}

// benchMsg is user's private text message id, with a valid sessionWebhook.
func benchMsg(user, id, text string) adapter.Message {
	return adapter.Message{ID: id, ConversationID: "cid-" + user, ConversationType: adapter.Private,
		SenderID: user, SenderNick: user, Kind: adapter.KindText, Text: text,
		SessionWebhook: "https://oapi.dingtalk.com/x", SessionWebhookExpiry: wed10.Add(time.Hour)}
}

// BenchmarkHandleAnswer is the hot path: a known user asks a question the
// bot answers.
func BenchmarkHandleAnswer(b *testing.B) {
	for _, driver := range gormstoretest.Drivers(b) {
		b.Run(driver, func(b *testing.B) {
			e := benchEngine(b, gormstoretest.Open(b, driver), clocktest.New(wed10))
			ctx := context.Background()
			msg := func(i int) adapter.Message {
				return benchMsg(fmt.Sprintf("u%02d", i%50), fmt.Sprintf("b%08d", i), "怎么退货")
			}
			for i := 0; i < 50; i++ { // the users exist
				if err := e.Handle(ctx, msg(-i-1)); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := e.Handle(ctx, msg(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRelayToAgent: a user with a person writes; the message is
// relayed to the agent (transcript line, notice, and the event the
// workbench streams, all in one transaction).
func BenchmarkRelayToAgent(b *testing.B) {
	for _, driver := range gormstoretest.Drivers(b) {
		b.Run(driver, func(b *testing.B) {
			e := benchEngine(b, gormstoretest.Open(b, driver), clocktest.New(wed10))
			ctx := context.Background()
			if _, err := e.SetPresence(ctx, "a1", handoff.Online); err != nil {
				b.Fatal(err)
			}
			if err := e.Handle(ctx, benchMsg("u1", "r-1", "转人工")); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := e.Handle(ctx, benchMsg("u1", fmt.Sprintf("r%08d", i), "还在吗")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
