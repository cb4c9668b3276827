package handoff_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/handoff/clocktest"
)

func TestTransfer(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		h := newHarness(t, driver, queueConfig())
		h.presence("a1", handoff.Online)
		h.presence("b1", handoff.Online)
		h.say("u1", "转人工")
		h.sent()

		mv, err := h.e.Transfer(h.ctx, "a1", 1, "p", "")
		if err != nil {
			t.Fatal(err)
		}
		if mv.From.EndReason != handoff.EndTransferred || mv.To.Agent != "b1" || mv.To.Reason != handoff.ReasonTransfer || mv.To.FromAgent != "a1" {
			t.Fatalf("transfer = %+v", mv)
		}
		r := h.sent()
		expectTexts(t, r, "u1", "客服 小张 为您服务")
		expectTexts(t, r, "b1", "【转接会话 #1】用户u1 · 单聊 · 技能组 售前咨询\n原因：由 小王 转接")
		expectTexts(t, r, "a1")
		if c := h.conv("u1"); c.State != handoff.StateHuman || c.Session.Group != "p" {
			t.Fatalf("u1 = %+v", c.Session)
		}
		expectTexts(t, h.say("u1", "你好"), "b1", "#1 用户u1：你好")

		// b1 is full now: the next transfer queues in p.
		h.say("u2", "转人工")
		h.sent()
		mv, err = h.e.Transfer(h.ctx, "a1", 0, "p", "")
		if err != nil || mv.To.Status != handoff.StatusQueued || mv.To.Position != 1 {
			t.Fatalf("transfer to a full group = %+v, %v", mv, err)
		}
		expectTexts(t, h.sent(), "u2", "当前排第 1 位")
		if v := h.view("a1"); len(v.Sessions) != 0 {
			t.Fatalf("a1 still has %+v", v.Sessions)
		}

		// Refusals leave the session with the agent.
		h.say("u3", "转人工")
		h.sent()
		for _, c := range []struct {
			group string
			want  error
		}{
			{"nosuch", handoff.ErrUnknownGroup},
			{"q", handoff.ErrGroupClosed},
			{"empty", handoff.ErrNoAgentOnline},
			{"g", handoff.ErrNoAgentOnline}, // only a1 herself is online there
		} {
			if _, err := h.e.Transfer(h.ctx, "a1", 0, c.group, ""); !errors.Is(err, c.want) {
				t.Errorf("transfer to %s = %v, want %v", c.group, err, c.want)
			}
		}
		if c := h.conv("u3"); c.State != handoff.StateHuman || c.Session.Agent != "a1" {
			t.Fatalf("u3 after refused transfers = %+v", c.Session)
		}
		if r := h.sent(); len(r) != 0 {
			t.Fatalf("refused transfers sent %q", texts(r))
		}
	})
}

func TestAgentReplies(t *testing.T) {
	yaml := strings.Replace(queueConfig(), "    queue_timeout: 15m", "    queue_timeout: 15m\n    assigned_message: 已为您转接人工客服，请稍候。", 1)
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		h := newHarness(t, driver, strings.Replace(yaml, "name: 小王, max_chats: 1", "name: 小王, max_chats: 3", 1))
		chat := h.msg("agentchat-a1", "a1", "上线")
		if err := h.e.NoteAgentChat(h.ctx, chat); err != nil {
			t.Fatal(err)
		}
		h.presence("a1", handoff.Online)

		// A group user: answers go to the group, @-mentioning them.
		gm := h.msg("grp-1", "u9", "转人工")
		gm.AtBot = true
		r := h.send(gm)
		expectTexts(t, r, "u9", "已为您转接人工客服")
		notice := to(r, "a1")
		if len(notice) != 1 || !strings.HasPrefix(notice[0].Text, "【新会话 #1】用户u9 · 售后群 · 技能组 售后服务") ||
			notice[0].ConversationID != "agentchat-a1" || notice[0].ConversationType != adapter.Private || notice[0].SessionWebhook == "" {
			t.Fatalf("notice = %+v", notice)
		}
		s, err := h.e.AgentReply(h.ctx, "a1", 0, "您好，请问有什么问题？")
		if err != nil || s.No != 1 {
			t.Fatalf("AgentReply = %+v, %v", s, err)
		}
		r = h.sent()
		if len(r) != 1 || r[0].ConversationID != "grp-1" || r[0].ConversationType != adapter.Group || r[0].UserID != "u9" ||
			!strings.HasPrefix(r[0].SessionWebhook, "https://") || r[0].Text != "客服 小王 为您服务\n您好，请问有什么问题？" {
			t.Fatalf("first agent reply = %+v", r)
		}
		h.AgentReplyText(t, "a1", 0, "第二句", "第二句") // no greeting any more

		// A private user gets session #2, which becomes current.
		h.say("u1", "转人工")
		h.say("u1", "怎么退货")
		h.sent()
		if v := h.view("a1"); v.Current != 2 || len(v.Sessions) != 2 {
			t.Fatalf("view = %+v", v)
		}
		h.AgentReplyText(t, "a1", 0, "好的", "客服 小王 为您服务\n好的")
		if _, err := h.e.AgentReply(h.ctx, "a1", 1, "回到一号"); err != nil {
			t.Fatal(err)
		}
		if r := h.sent(); len(r) != 1 || r[0].UserID != "u9" {
			t.Fatalf("#1 reply went to %+v", r)
		}
		if v := h.view("a1"); v.Current != 1 {
			t.Fatalf("current after #1 = %d", v.Current)
		}
		if _, err := h.e.SetCurrent(h.ctx, "a1", 2); err != nil {
			t.Fatal(err)
		}
		if s, _ := h.e.AgentReply(h.ctx, "a1", 0, "又回来了"); s.UserID != "u1" {
			t.Fatalf("current reply went to %s", s.UserID)
		}
		if _, err := h.e.AgentReply(h.ctx, "a1", 7, "x"); !errors.Is(err, handoff.ErrUnknownSession) {
			t.Fatalf("reply to #7 = %v", err)
		}
		if _, err := h.e.AgentReply(h.ctx, "a1", 0, "  "); !errors.Is(err, handoff.ErrEmptyText) {
			t.Fatalf("empty reply = %v", err)
		}

		// 推荐: suggestions for the user's last question.
		l, err := h.e.Suggest(h.ctx, "a1", 2)
		if sug := l.Items; err != nil || l.Question != "怎么退货" || len(sug) == 0 || sug[0].EntryID != "return" || sug[0].N != 1 || l.Session.UserID != "u1" {
			t.Fatalf("suggestions = %+v %v", l, err)
		}

		if err := h.e.FinishAgentMessage(h.ctx, adapter.Message{ID: "desk-1", SenderStaffID: "a1"}, "提醒"); err != nil {
			t.Fatal(err)
		}
		expectTexts(t, h.sent(), "a1", "提醒")

		// The transcript has the agent's lines.
		lines, _ := gormstore.NewHandoffStore(h.db, nil).Messages(h.ctx, "cid-u1|u1")
		var agentLines int
		for _, l := range lines {
			if l.Sender == handoff.SenderAgent && l.SenderID == "a1" && l.SessionID != 0 {
				agentLines++
			}
		}
		if agentLines != 2 {
			t.Fatalf("agent lines = %d, want 2", agentLines)
		}
		if _, err := h.e.SetPresence(h.ctx, "stranger", handoff.Online); !errors.Is(err, handoff.ErrNotAgent) {
			t.Fatalf("stranger online = %v", err)
		}
	})
}

func (h *harness) AgentReplyText(t *testing.T, staff string, no int, text, want string) {
	t.Helper()
	if _, err := h.e.AgentReply(h.ctx, staff, no, text); err != nil {
		t.Fatal(err)
	}
	r := h.sent()
	if len(r) != 1 || r[0].Text != want {
		t.Fatalf("agent reply sent %q, want %q", texts(r), want)
	}
}

func TestConfigReload(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		h := newHarness(t, driver, queueConfig())
		h.presence("a1", handoff.Online)
		h.say("u1", "转人工")
		h.sent()

		// a1 leaves the config: the open session carries on until it ends.
		h.reload(strings.Replace(queueConfig(), "      - { staff_id: a1, name: 小王, max_chats: 1 }\n", "", 1))
		expectTexts(t, h.say("u1", "还在吗"), "a1", "#1 用户u1：还在吗")
		if _, err := h.e.AgentReply(h.ctx, "a1", 0, "在的"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.e.SetPresence(h.ctx, "a1", handoff.Online); !errors.Is(err, handoff.ErrNotAgent) {
			t.Fatalf("removed member online = %v", err)
		}
		if _, err := h.e.End(h.ctx, "a1", 0); err != nil {
			t.Fatal(err)
		}
		h.sent()
		// Gone members get nothing new.
		expectTexts(t, h.say("u2", "转人工"), "u2", "暂时没有客服在线")

		// Texts change live.
		h.reload(strings.Replace(queueConfig(), "dingtalk:", "bot: { no_answer_reply: 新的无答案回复 }\ndingtalk:", 1))
		expectTexts(t, h.say("u3", "今天天气"), "u3", "新的无答案回复")
	})
}

// TestRestart: a new engine (a restarted process) on the same database
// continues states, queue and pending timeouts.
func TestRestart(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		cfg := gormstoretest.NewStorage(t, driver)
		db1, err := gormstore.Open(t.Context(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		clock := clocktest.New(wed10)
		h := newHarnessOn(t, db1, queueConfig(), clock)
		h.presence("a1", handoff.Online)
		h.say("u1", "转人工")
		h.say("u2", "转人工")
		h.say("u3", "转人工")
		db1.Close() // the process dies

		db2 := gormstoretest.OpenStorage(t, cfg)
		h2 := newHarnessOn(t, db2, queueConfig(), clocktest.New(wed10.Add(time.Minute)))
		expectState(t, h2.conv("u1"), handoff.StateHuman)
		expectTexts(t, h2.say("u1", "我回来了"), "a1", "#1 用户u1：我回来了")
		expectTexts(t, h2.say("u1", "结束会话"), "u2", "客服 小王 为您服务")
		if c := h2.conv("u3"); c.State != handoff.StateQueued || c.Session.Position != 1 {
			t.Fatalf("u3 = %+v", c.Session)
		}
		// Pending timeouts fire in the new process: u3's queue timeout (u2
		// keeps talking, so their idle timeout moves past it).
		h2.clock.Set(wed10.Add(10 * time.Minute))
		h2.say("u2", "还在吗")
		h2.clock.Set(wed10.Add(15 * time.Minute))
		if n := h2.fire(); n != 1 {
			t.Fatalf("fired %d, want u3's queue timeout", n)
		}
		expectTexts(t, h2.sent(), "u3", "等待较长时间")
		// Session numbers continue.
		h2.say("u4", "转人工")
		if c := h2.conv("u4"); c.State != handoff.StateQueued {
			t.Fatalf("u4 = %+v", c)
		}
		h2.clock.Advance(time.Minute)
		if _, err := h2.e.End(h2.ctx, "a1", 0); err != nil {
			t.Fatal(err)
		}
		if c := h2.conv("u4"); c.State != handoff.StateHuman || c.Session.No != 3 {
			t.Fatalf("u4 = %+v", c.Session)
		}
	})
}
