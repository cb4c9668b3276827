package handoff_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/web"
)

func TestTransferNoteAndToAgent(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		h := newHarness(t, driver, queueConfig())
		for _, a := range []string{"a1", "a2", "b1", "c1"} {
			h.presence(a, handoff.Online)
		}
		h.say("u1", "转人工") // → a1 or a2: the least loaded, by staff id on a tie
		h.sent()
		first := h.conv("u1").Session.Agent

		// A group transfer carries the note into the receiver's notice.
		mv, err := h.e.Transfer(h.ctx, first, 0, "p", "  客户要开发票  ")
		if err != nil {
			t.Fatal(err)
		}
		if mv.To.Agent != "b1" || mv.To.Note != "客户要开发票" {
			t.Fatalf("transfer = %+v", mv.To)
		}
		expectTexts(t, h.sent(), "b1", "原因：由 "+handoff.AgentName(h.store.Current(), first)+" 转接\n转接附言（"+
			handoff.AgentName(h.store.Current(), first)+"）：客户要开发票")

		// To a named agent: the target's session, in the same group.
		h.say("u2", "转人工")
		h.sent()
		from := h.conv("u2").Session.Agent
		target := "a1"
		if from == "a1" {
			target = "a2"
		}
		mv, err = h.e.TransferToAgent(h.ctx, from, 0, target, "请跟进退款")
		if err != nil {
			t.Fatal(err)
		}
		if mv.From.EndReason != handoff.EndTransferred || mv.To.Agent != target || mv.To.Group != "g" ||
			mv.To.Status != handoff.StatusActive || mv.To.FromAgent != from || mv.To.Note != "请跟进退款" {
			t.Fatalf("transfer to agent = from %+v to %+v", mv.From, mv.To)
		}
		r := h.sent()
		name := handoff.AgentName(h.store.Current(), target)
		expectTexts(t, r, "u2", "客服 "+name+" 为您服务")
		expectTexts(t, r, target, "【转接会话 #"+strconv.Itoa(mv.To.No)+"】用户u2 · 单聊 · 技能组 售后服务")
		if got := to(r, target)[0].Text; !strings.Contains(got, "转接附言（"+handoff.AgentName(h.store.Current(), from)+"）：请跟进退款") {
			t.Fatalf("notice without the note: %q", got)
		}
		expectTexts(t, r, from)
		expectTexts(t, h.say("u2", "好的"), target, "：好的")

		// Refusals leave the session where it is and send nothing. target
		// is full now (max_chats 1), a3 offline.
		h.say("u3", "转人工")
		h.sent()
		holder := h.conv("u3").Session.Agent
		long := strings.Repeat("长", handoff.MaxNote+1)
		for _, c := range []struct {
			to, note string
			want     error
		}{
			{target, "", handoff.ErrAgentFull},
			{"a3", "", handoff.ErrAgentOffline},
			{"zz", "", handoff.ErrUnknownAgent},
			{holder, "", handoff.ErrSelfTransfer},
			{"c1", long, handoff.ErrNoteTooLong},
		} {
			_, err := h.e.TransferToAgent(h.ctx, holder, 0, c.to, c.note)
			if !errors.Is(err, c.want) {
				t.Errorf("transfer to %s = %v, want %v", c.to, err, c.want)
			}
		}
		if _, err := h.e.Transfer(h.ctx, holder, 0, "p", long); !errors.Is(err, handoff.ErrNoteTooLong) {
			t.Errorf("group transfer with a long note = %v", err)
		}
		if c := h.conv("u3"); c.State != handoff.StateHuman || c.Session.Agent != holder {
			t.Fatalf("u3 after refusals = %+v", c.Session)
		}
		if r := h.sent(); len(r) != 0 {
			t.Fatalf("refused transfers sent %q", texts(r))
		}

		// An agent of another group: the session goes to their group (its
		// service hours do not apply: the agent is online).
		mv, err = h.e.TransferToAgent(h.ctx, holder, 0, "c1", "")
		if err != nil || mv.To.Group != "q" || mv.To.Agent != "c1" {
			t.Fatalf("transfer to c1 = %+v, %v", mv.To, err)
		}
		if got := to(h.sent(), "c1"); len(got) != 1 || strings.Contains(got[0].Text, "转接附言") {
			t.Fatalf("c1 got %q (no note was given)", texts(got))
		}
	})
}

// The engine publishes its events in its own transactions; a refused
// operation publishes nothing.
func TestEngineEvents(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		h := newHarness(t, driver, queueConfig())
		ws := gormstore.NewWebStore(h.db)
		var last int64
		next := func() []string {
			t.Helper()
			evs, err := ws.EventsAfter(h.ctx, last, 1000)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, e := range evs {
				out = append(out, e.Topic+" "+e.Type+" "+e.Data)
				last = e.ID
			}
			return out
		}
		expect := func(what string, got []string, want ...string) {
			t.Helper()
			for _, w := range want {
				if !slices.Contains(got, w) {
					t.Errorf("%s: no event %q in %q", what, w, got)
				}
			}
		}
		h.presence("a1", handoff.Online)
		expect("online", next(), "agent:a1 presence online", "group:g queue g")

		h.say("u1", "转人工")
		s1 := strconv.FormatInt(h.conv("u1").Session.ID, 10)
		expect("assigned", next(), "agent:a1 session "+s1, "agent:a1 message "+s1)

		h.say("u1", "你好")
		expect("user line", next(), "agent:a1 message "+s1)
		if _, err := h.e.AgentReply(h.ctx, "a1", 0, "您好"); err != nil {
			t.Fatal(err)
		}
		expect("agent reply", next(), "agent:a1 message "+s1)

		h.say("u2", "转人工") // a1 is full: queued
		expect("queued", next(), "group:g queue g")
		if got := next(); len(got) != 0 {
			t.Fatalf("events without a change: %q", got)
		}

		// A refused operation rolls its events back with it.
		if _, err := h.e.TransferToAgent(h.ctx, "a1", 0, "a2", ""); !errors.Is(err, handoff.ErrAgentOffline) {
			t.Fatal(err)
		}
		if got := next(); len(got) != 0 {
			t.Fatalf("a refused transfer published %q", got)
		}

		// Ending pulls u2 in: the end, the assignment and the queue change.
		if _, err := h.e.End(h.ctx, "a1", 0); err != nil {
			t.Fatal(err)
		}
		s2 := strconv.FormatInt(h.conv("u2").Session.ID, 10)
		expect("end", next(), "agent:a1 session "+s1, "agent:a1 session "+s2, "group:g queue g", "agent:a1 message "+s2)

		h.presence("a1", handoff.Busy)
		expect("busy", next(), "agent:a1 "+web.EventPresence+" busy")
	})
}
