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

// BenchmarkHandleAnswer is the hot path: a known user asks a question the
// bot answers.
func BenchmarkHandleAnswer(b *testing.B) {
	for _, driver := range gormstoretest.Drivers(b) {
		b.Run(driver, func(b *testing.B) {
			db := gormstoretest.Open(b, driver)
			store := config.NewStore(parseConfig(b, baseYAML))
			e := handoff.New(handoff.Deps{Config: store, Bot: newTestBot(b, store.Current()), Store: gormstore.NewHandoffStore(db, nil), Clock: clocktest.New(wed10)})
			ctx := context.Background()
			msg := func(i int) adapter.Message {
				u := fmt.Sprintf("u%02d", i%50)
				return adapter.Message{ID: fmt.Sprintf("b%08d", i), ConversationID: "cid-" + u, ConversationType: adapter.Private,
					SenderID: u, SenderNick: u, Kind: adapter.KindText, Text: "怎么退货",
					SessionWebhook: "https://oapi.dingtalk.com/x", SessionWebhookExpiry: wed10.Add(time.Hour)}
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
