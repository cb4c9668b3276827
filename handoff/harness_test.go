package handoff_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/handoff/clocktest"
)

// wed10 is Wednesday 2026-06-03 10:00 in Shanghai.
var wed10 = time.Date(2026, 6, 3, 10, 0, 0, 0, shanghai)

var shanghai = mustLoc("Asia/Shanghai")

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// baseYAML: always open, two groups, three agents.
const baseYAML = `
dingtalk: { mode: webhook, client_secret: test-secret }
routing:
  mode: bot_first
  no_answer_limit: 2
  skill_group: after_sales
service_rules:
  - name: default
    hours: { mon-sun: ["00:00-24:00"] }
skill_groups:
  - name: after_sales
    display_name: 售后服务
    members:
      - { staff_id: a1, name: 小王, max_chats: 2 }
      - { staff_id: a2, name: 小李, max_chats: 2 }
  - name: pre_sales
    display_name: 售前咨询
    members:
      - { staff_id: b1, name: 小张, max_chats: 1 }
`

func parseConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// kbEntries is the tiny knowledge base of the tests.
var kbEntries = []bot.Entry{
	{ID: "return", Question: "怎么退货", Similar: []string{"如何退货", "我要退货"}, Answer: "退货请在订单页点击申请退货。"},
	{ID: "invoice", Question: "怎么开发票", Similar: []string{"发票怎么开", "开具发票"}, Answer: "发票请在订单详情页申请。"},
	{ID: "complain", Question: "我要投诉", Similar: []string{"投诉客服"}, Answer: "非常抱歉给您带来不便。", Handoff: true},
	{ID: "delivery", Question: "多久发货", Similar: []string{"什么时候发货"}, Answer: "下单后48小时内发货。"},
	{ID: "refund", Question: "怎么退款", Similar: []string{"退款多久到账"}, Answer: "退款将在3个工作日内原路退回。"},
}

// harness is one engine on one database with a fake clock, recording what
// it sent.
type harness struct {
	t     *testing.T
	ctx   context.Context
	db    *gormstore.DB
	store *config.Store
	clock *clocktest.Clock
	e     *handoff.Engine
	bot   *bot.Bot

	mu     sync.Mutex
	kicked []gormstore.OutboxItem
	seen   int64 // outbox rows read so far
	n      int
}

func newHarness(t *testing.T, driver, yaml string) *harness {
	t.Helper()
	return newHarnessOn(t, gormstoretest.Open(t, driver), yaml, clocktest.New(wed10))
}

func newHarnessOn(t *testing.T, db *gormstore.DB, yaml string, clock *clocktest.Clock) *harness {
	return newHarnessWith(t, db, parseConfig(t, yaml), clock)
}

func newHarnessWith(t *testing.T, db *gormstore.DB, cfg *config.Config, clock *clocktest.Clock) *harness {
	h := &harness{t: t, ctx: context.Background(), db: db, store: config.NewStore(cfg), clock: clock}
	h.bot = newTestBot(t, h.store.Current())
	h.e = h.engine()
	// Another harness may have used the database: start after its rows.
	var err error
	if h.seen, err = gormstore.NewOutboxStore(db).LastID(h.ctx); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) engine() *handoff.Engine {
	return handoff.New(handoff.Deps{Config: h.store, Bot: h.bot, Clock: h.clock, Store: gormstore.NewHandoffStore(h.db, h.kick)})
}

// kick records what the store hands the sender.
func (h *harness) kick(_ context.Context, sent []gormstore.OutboxItem) {
	h.mu.Lock()
	h.kicked = append(h.kicked, sent...)
	h.mu.Unlock()
}

// shareKicks makes h record its kicks in other's list (two replicas, one
// reader).
func (h *harness) shareKicks(other *harness) {
	h.e = handoff.New(handoff.Deps{Config: h.store, Bot: h.bot, Clock: h.clock, Store: gormstore.NewHandoffStore(h.db,
		func(_ context.Context, sent []gormstore.OutboxItem) {
			other.mu.Lock()
			other.kicked = append(other.kicked, sent...)
			other.mu.Unlock()
		})})
}

// reload swaps the config.
func (h *harness) reload(yaml string) { h.store.Replace(parseConfig(h.t, yaml)) }

func (h *harness) msg(conv, user, text string) adapter.Message {
	h.n++
	now := h.clock.Now()
	typ := adapter.Private
	title := ""
	if strings.HasPrefix(conv, "grp") {
		typ, title = adapter.Group, "售后群"
	}
	return adapter.Message{ID: fmt.Sprintf("m%05d-%s", h.n, user), ConversationID: conv, ConversationType: typ,
		ConversationTitle: title, SenderID: user, SenderStaffID: user, SenderNick: "用户" + user,
		Kind: adapter.KindText, Text: text, SessionWebhook: "https://oapi.dingtalk.com/robot/sendBySession?s=" + conv,
		SessionWebhookExpiry: now.Add(90 * time.Minute), CreatedAt: now}
}

// say sends a private text from user and returns what was sent.
func (h *harness) say(user, text string) []adapter.Reply {
	h.t.Helper()
	return h.send(h.msg("cid-"+user, user, text))
}

func (h *harness) send(m adapter.Message) []adapter.Reply {
	h.t.Helper()
	if err := h.e.Handle(h.ctx, m); err != nil {
		h.t.Fatalf("Handle(%q): %v", m.Text, err)
	}
	return h.sent()
}

// sent returns the outbox rows written since the last call, checking that
// each was kicked.
func (h *harness) sent() []adapter.Reply {
	h.t.Helper()
	rows, err := gormstore.NewOutboxStore(h.db).After(h.ctx, h.seen, 1<<20)
	if err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	kicked := slices.Clone(h.kicked)
	h.mu.Unlock()
	out := make([]adapter.Reply, len(rows))
	for i, r := range rows {
		out[i] = r.Reply
		// The sender gets the rows in memory: they must be what was stored.
		k := slices.IndexFunc(kicked, func(it gormstore.OutboxItem) bool { return it.ID == r.ID })
		switch {
		case k < 0:
			h.t.Errorf("outbox row %d (%q) was not kicked", r.ID, out[i].Text)
		case !reflect.DeepEqual(kicked[k].Reply, out[i]):
			h.t.Errorf("outbox row %d: kicked %+v, stored %+v", r.ID, kicked[k].Reply, out[i])
		}
		h.seen = r.ID
	}
	return out
}

func (h *harness) presence(staff string, p handoff.Presence) handoff.PresenceResult {
	h.t.Helper()
	res, err := h.e.SetPresence(h.ctx, staff, p)
	if err != nil {
		h.t.Fatalf("SetPresence(%s, %s): %v", staff, p, err)
	}
	return res
}

func (h *harness) conv(user string) handoff.ConversationState {
	h.t.Helper()
	return h.convKey("cid-" + user + "|" + user)
}

func (h *harness) convKey(key string) handoff.ConversationState {
	h.t.Helper()
	c, err := h.e.Conversation(h.ctx, key)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) fire() int {
	h.t.Helper()
	n, err := h.e.FireDue(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

func (h *harness) view(staff string) handoff.AgentView {
	h.t.Helper()
	v, err := h.e.Sessions(h.ctx, staff)
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

// to filters replies by recipient.
func to(rs []adapter.Reply, userID string) []adapter.Reply {
	var out []adapter.Reply
	for _, r := range rs {
		if r.UserID == userID {
			out = append(out, r)
		}
	}
	return out
}

func texts(rs []adapter.Reply) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Text
	}
	return out
}

// expectTexts checks the replies to userID, in order, contain the given
// substrings one each.
func expectTexts(t *testing.T, rs []adapter.Reply, userID string, want ...string) {
	t.Helper()
	got := to(rs, userID)
	if len(got) != len(want) {
		t.Fatalf("to %s: got %d messages %q, want %d %q", userID, len(got), texts(got), len(want), want)
	}
	for i, w := range want {
		if !strings.Contains(got[i].Text, w) {
			t.Fatalf("to %s: message %d = %q, want it to contain %q", userID, i, got[i].Text, w)
		}
	}
}

func expectState(t *testing.T, c handoff.ConversationState, want handoff.State) {
	t.Helper()
	if c.State != want {
		t.Fatalf("%s state = %s, want %s", c.UserKey, c.State, want)
	}
}
