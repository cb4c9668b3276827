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

// BenchmarkRelayToAgent: a user with a person writes; the message is
// relayed to the agent (transcript line, notice, and the event the
// workbench streams, all in one transaction).
func BenchmarkRelayToAgent(b *testing.B) {
	for _, driver := range gormstoretest.Drivers(b) {
		b.Run(driver, func(b *testing.B) {
			db := gormstoretest.Open(b, driver)
			store := config.NewStore(parseConfig(b, baseYAML))
			e := handoff.New(handoff.Deps{Config: store, Bot: newTestBot(b, store.Current()), Store: gormstore.NewHandoffStore(db, nil), Clock: clocktest.New(wed10)})
			ctx := context.Background()
			if _, err := e.SetPresence(ctx, "a1", handoff.Online); err != nil {
				b.Fatal(err)
			}
			msg := func(i int, text string) adapter.Message {
				return adapter.Message{ID: fmt.Sprintf("r%08d", i), ConversationID: "cid-u1", ConversationType: adapter.Private,
					SenderID: "u1", SenderNick: "u1", Kind: adapter.KindText, Text: text,
					SessionWebhook: "https://oapi.dingtalk.com/x", SessionWebhookExpiry: wed10.Add(time.Hour)}
			}
			if err := e.Handle(ctx, msg(-1, "转人工")); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := e.Handle(ctx, msg(i, "还在吗")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
