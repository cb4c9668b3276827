package handoff_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
)

// queueYAML: one group, agents with one chat each, timeouts on.
const queueYAML = `
dingtalk: { mode: webhook, client_secret: test-secret }
routing: { skill_group: g }
service_rules:
  - name: r
    hours: { mon-sun: ["00:00-24:00"] }
    customer_idle_timeout: 10m
    queue_timeout: 15m
skill_groups:
  - name: g
    display_name: 售后服务
    members:
      - { staff_id: a1, name: 小王, max_chats: 1 }
      - { staff_id: a2, name: 小李, max_chats: 1 }
      - { staff_id: a3, name: 小赵, max_chats: 1 }
  - name: p
    display_name: 售前咨询
    members:
      - { staff_id: b1, name: 小张, max_chats: 1 }
  - name: q
    display_name: 夜班
    rule: closed
    members:
      - { staff_id: c1, name: 小夜, max_chats: 1 }
  - name: empty
    members:
      - { staff_id: d1, name: 小空, max_chats: 1 }
`

// closedRule adds a rule that is never open on a Wednesday.
const closedRule = `
  - name: closed
    hours: { sun: ["00:00-24:00"] }
`

func queueConfig() string {
	return strings.Replace(queueYAML, "skill_groups:", strings.TrimPrefix(closedRule, "\n")+"skill_groups:", 1)
}

func TestQueueAndEndings(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		h := newHarness(t, driver, queueConfig())
		h.presence("a1", handoff.Online)
		h.sent()

		r := h.say("u1", "转人工")
		expectTexts(t, r, "u1", "客服 小王 为您服务")
		expectTexts(t, r, "a1", "【新会话 #1】用户u1 · 单聊 · 技能组 售后服务")
		expectTexts(t, h.say("u2", "转人工"), "u2", "当前排第 1 位")
		expectTexts(t, h.say("u3", "转人工"), "u3", "当前排第 2 位")
		expectTexts(t, h.say("u4", "转人工"), "u4", "当前排第 3 位")
		expectState(t, h.conv("u3"), handoff.StateQueued)
		if c := h.conv("u3"); c.Session.Position != 2 || c.Session.Reason != handoff.ReasonKeyword {
			t.Fatalf("u3 session = %+v", c.Session)
		}

		// While queued the bot is silent; a position reminder at most once a
		// minute.
		if r := h.say("u3", "怎么退货"); len(r) != 0 {
			t.Fatalf("queued user got %q", texts(r))
		}
		h.clock.Advance(2 * time.Minute)
		expectTexts(t, h.say("u3", "还要等多久"), "u3", "排队更新：您当前排第 2 位")

		// a2 comes online and pulls the head of the queue; the others move.
		res := h.presence("a2", handoff.Online)
		if len(res.Assigned) != 1 || res.Assigned[0].UserID != "u2" || res.Assigned[0].Agent != "a2" || res.Assigned[0].No != 1 {
			t.Fatalf("assigned = %+v", res.Assigned)
		}
		r = h.sent()
		expectTexts(t, r, "u2", "客服 小李 为您服务")
		expectTexts(t, r, "a2", "【新会话 #1】用户u2")
		expectTexts(t, r, "u3", "排队更新：您当前排第 1 位")
		expectTexts(t, r, "u4", "排队更新：您当前排第 2 位")

		// A user with a person is relayed to the agent, the bot is silent.
		r = h.say("u1", "我的订单还没到")
		expectTexts(t, r, "a1", "#1 用户u1：我的订单还没到")
		expectTexts(t, r, "u1")
		pic := h.msg("cid-u1", "u1", "")
		pic.Kind = adapter.KindPicture
		expectTexts(t, h.send(pic), "a1", "#1 用户u1：[图片]")

		// The user ends: closing text, agent notice, next in queue pulled.
		r = h.say("u1", "结束会话")
		expectTexts(t, r, "u1", "本次人工服务已结束")
		expectTexts(t, r, "a1", "【会话结束 #1】用户u1：用户结束了会话", "【新会话 #2】用户u3")
		expectTexts(t, r, "u3", "客服 小王 为您服务")
		expectTexts(t, r, "u4", "排队更新：您当前排第 1 位")
		if c := h.conv("u1"); c.State != handoff.StateBot || c.Misses != 0 {
			t.Fatalf("u1 = %+v", c)
		}
		// Back with the bot, u1 gets answers again.
		expectTexts(t, h.say("u1", "怎么退货"), "u1", "退货请在订单页")

		// Leaving the queue.
		expectTexts(t, h.say("u4", "结束会话"), "u4", "您已退出排队")
		expectState(t, h.conv("u4"), handoff.StateBot)

		// The agent ends the current session (#2, u3); no notice to the
		// agent, the desk shows the result.
		s, err := h.e.End(h.ctx, "a1", 0)
		if err != nil || s.No != 2 || s.UserID != "u3" || s.EndReason != handoff.EndAgent {
			t.Fatalf("End = %+v, %v", s, err)
		}
		r = h.sent()
		expectTexts(t, r, "u3", "本次人工服务已结束")
		expectTexts(t, r, "a1")
		if _, err := h.e.End(h.ctx, "a1", 0); !errors.Is(err, handoff.ErrNoCurrentSession) {
			t.Fatalf("End with no current = %v", err)
		}
		if _, err := h.e.End(h.ctx, "a1", 2); !errors.Is(err, handoff.ErrSessionEnded) {
			t.Fatalf("End of an ended session = %v", err)
		}
		if _, err := h.e.End(h.ctx, "a1", 99); !errors.Is(err, handoff.ErrUnknownSession) || !strings.Contains(err.Error(), "#99") {
			t.Fatalf("End #99 = %v", err)
		}

		v := h.view("a2")
		if v.Presence != handoff.Online || len(v.Sessions) != 1 || v.Sessions[0].UserID != "u2" || v.Current != 1 ||
			len(v.Queues) != 1 || v.Queues[0].Display != "售后服务" || v.Queues[0].Length != 0 {
			t.Fatalf("view a2 = %+v", v)
		}
		st := gormstore.NewHandoffStore(h.db, nil)
		for _, a := range []string{"a1", "a2"} {
			row, _ := st.Agent(h.ctx, a)
			want := map[string]int{"a1": 0, "a2": 1}[a]
			if row.OpenChats != want {
				t.Errorf("%s open chats = %d, want %d", a, row.OpenChats, want)
			}
		}
	})
}

func TestTimeouts(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		h := newHarness(t, driver, queueConfig())
		h.presence("a1", handoff.Online)
		h.say("u1", "转人工")
		h.say("u2", "转人工")
		h.sent()
		start := h.clock.Now()

		h.clock.Set(start.Add(9 * time.Minute))
		h.say("u1", "还在吗") // pushes u1's idle timeout to 19m
		h.clock.Set(start.Add(14*time.Minute + 59*time.Second))
		if n := h.fire(); n != 0 {
			t.Fatalf("fired %d before anything was due", n)
		}
		h.clock.Set(start.Add(15 * time.Minute))
		if n := h.fire(); n != 1 {
			t.Fatalf("queue timeout: fired %d, want 1", n)
		}
		expectTexts(t, h.sent(), "u2", "等待较长时间")
		expectState(t, h.conv("u2"), handoff.StateBot)

		h.clock.Set(start.Add(19 * time.Minute))
		if n := h.fire(); n != 1 {
			t.Fatalf("idle timeout: fired %d, want 1", n)
		}
		r := h.sent()
		expectTexts(t, r, "u1", "长时间未回复")
		expectTexts(t, r, "a1", "【会话结束 #1】用户u1：用户长时间未回复")
		expectState(t, h.conv("u1"), handoff.StateBot)
		if n := h.fire(); n != 0 {
			t.Fatalf("fired %d twice", n)
		}

		// An agent reply pushes the idle timeout too.
		h.say("u3", "转人工")
		h.clock.Advance(8 * time.Minute)
		if _, err := h.e.AgentReply(h.ctx, "a1", 0, "您好"); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(8 * time.Minute)
		if n := h.fire(); n != 0 {
			t.Fatalf("fired %d after an agent reply", n)
		}
		h.clock.Advance(2 * time.Minute)
		if n := h.fire(); n != 1 {
			t.Fatalf("fired %d, want the idle timeout", n)
		}
	})
}

func TestOfflineAgentHandsSessionsOn(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		t.Run("to a colleague with capacity", func(t *testing.T) {
			h := newHarness(t, driver, queueConfig())
			h.presence("a1", handoff.Online)
			h.say("u1", "转人工")
			h.presence("a2", handoff.Online)
			h.sent()
			res := h.presence("a1", handoff.Offline)
			if len(res.Moved) != 1 || res.Moved[0].From.Agent != "a1" || res.Moved[0].From.EndReason != handoff.EndAgentOffline ||
				res.Moved[0].To.Agent != "a2" || res.Moved[0].To.Status != handoff.StatusActive {
				t.Fatalf("moved = %+v", res.Moved)
			}
			r := h.sent()
			expectTexts(t, r, "u1", "客服 小李 为您服务")
			expectTexts(t, r, "a2", "【转接会话 #1】用户u1 · 单聊 · 技能组 售后服务\n原因：由 小王 转接")
			if v := h.view("a1"); len(v.Sessions) != 0 || v.Presence != handoff.Offline {
				t.Fatalf("a1 view = %+v", v)
			}
			expectTexts(t, h.say("u1", "你好"), "a2", "#1 用户u1：你好")
		})
		t.Run("back to the front of the queue", func(t *testing.T) {
			h := newHarness(t, driver, strings.Replace(queueConfig(), "{ staff_id: a1, name: 小王, max_chats: 1 }", "{ staff_id: a1, name: 小王, max_chats: 2 }", 1))
			h.presence("a1", handoff.Online)
			h.presence("a2", handoff.Online)
			h.say("u1", "转人工") // a1
			h.say("u2", "转人工") // a2 (less loaded)
			h.say("u3", "转人工") // a1
			expectTexts(t, h.say("u4", "转人工"), "u4", "当前排第 1 位")
			res := h.presence("a1", handoff.Offline)
			if len(res.Moved) != 2 {
				t.Fatalf("moved = %+v", res.Moved)
			}
			for i, m := range res.Moved {
				wantUser := []string{"u1", "u3"}[i]
				if m.From.UserID != wantUser || m.To.Status != handoff.StatusQueued || m.To.Position != i+1 {
					t.Fatalf("move %d = %+v", i, m)
				}
			}
			r := h.sent()
			expectTexts(t, r, "u1", "当前排第 1 位")
			expectTexts(t, r, "u3", "当前排第 2 位")
			for _, u := range []string{"u1", "u3", "u4"} {
				c := h.conv(u)
				want := map[string]int{"u1": 1, "u3": 2, "u4": 3}[u]
				if c.State != handoff.StateQueued || c.Session.Position != want {
					t.Fatalf("%s = %+v, want queued at %d", u, c.Session, want)
				}
			}
			// Capacity frees: the moved users come first.
			if _, err := h.e.End(h.ctx, "a2", 1); err != nil {
				t.Fatal(err)
			}
			r = h.sent()
			expectTexts(t, r, "u2", "本次人工服务已结束")
			expectTexts(t, r, "u1", "客服 小李 为您服务")
			expectTexts(t, r, "u3", "排队更新：您当前排第 1 位")
			expectTexts(t, r, "u4", "排队更新：您当前排第 2 位")
		})
	})
}

func TestRunTimers(t *testing.T) {
	h := newHarness(t, "sqlite", queueConfig())
	h.e = handoff.New(handoff.Deps{Config: h.store, Bot: h.bot, Clock: h.clock, TimerInterval: 5 * time.Millisecond,
		Store: gormstore.NewHandoffStore(h.db, func(_ context.Context, sent []gormstore.OutboxItem) {
			h.mu.Lock()
			h.kicked = append(h.kicked, sent...)
			h.mu.Unlock()
		})})
	h.presence("a1", handoff.Online)
	h.say("u1", "转人工")
	h.say("u2", "转人工")
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan struct{})
	go func() { h.e.RunTimers(ctx); close(done) }()
	wait := func(user string, want handoff.State) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for h.conv(user).State != want {
			if time.Now().After(deadline) {
				t.Fatalf("RunTimers: %s is %s, want %s", user, h.conv(user).State, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// u1's idle timeout (10m) comes before u2's queue timeout (15m): u2
	// is pulled in, then idles out too.
	h.clock.Advance(16 * time.Minute)
	wait("u1", handoff.StateBot)
	wait("u2", handoff.StateHuman)
	h.clock.Advance(10 * time.Minute)
	wait("u2", handoff.StateBot)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunTimers did not return after cancel")
	}
}

func TestBusyKeepsSessions(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		h := newHarness(t, driver, queueConfig())
		h.presence("a1", handoff.Online)
		h.say("u1", "转人工")
		if res := h.presence("a1", handoff.Busy); len(res.Moved) != 0 {
			t.Fatalf("busy moved %+v", res.Moved)
		}
		h.sent()
		expectTexts(t, h.say("u1", "还在吗"), "a1", "#1 用户u1：还在吗")
		expectTexts(t, h.say("u2", "转人工"), "u2", "暂时没有客服在线")
		if v := h.view("a1"); v.Presence != handoff.Busy || len(v.Sessions) != 1 {
			t.Fatalf("view = %+v", v)
		}
		// Back online with a free chat? max_chats 1 is taken: nothing pulled.
		if res := h.presence("a1", handoff.Online); len(res.Assigned) != 0 {
			t.Fatalf("assigned %+v", res.Assigned)
		}
	})
}
