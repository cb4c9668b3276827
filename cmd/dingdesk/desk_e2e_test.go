package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
)

// deskService starts the service with agent1 online (IT, max_chats 1).
func deskService(t *testing.T, o serviceOpts) *service {
	s := startService(t, o)
	s.toUser(s.say("agent1", "上线"), "agent1", "已上线")
	return s
}

func TestDeskRelayBothWays(t *testing.T) {
	s := deskService(t, serviceOpts{})
	m := s.say("u1", "转人工")
	s.toUser(m, "u1", "小王")
	notice := s.toUser(m, "agent1", "【新会话 #1】")
	if !strings.Contains(notice.Text, "用户u1") {
		t.Fatalf("notice lacks the user's name: %q", notice.Text)
	}
	// The user's next message reaches the agent; the bot stays silent.
	m = s.say("u1", "VPN 连不上怎么办")
	s.toUser(m, "agent1", "#1 用户u1：VPN 连不上怎么办")
	s.quietFor(m, "u1")
	// The agent's plain reply reaches the user.
	s.toUser(s.say("agent1", "您好，我来帮您看看"), "u1", "您好，我来帮您看看")
}

func TestDeskQueueAndEnd(t *testing.T) {
	s := deskService(t, serviceOpts{})
	s.toUser(s.say("u1", "转人工"), "agent1", "新会话 #1")
	// agent1 is at max_chats 1: u2 is queued with a position.
	s.toUser(s.say("u2", "转人工"), "u2", "第 1 位")
	// u1 ends: u1 gets the closing text, u2 is assigned, the agent is told.
	m := s.say("u1", "结束会话")
	s.toUser(m, "u1", "本次人工服务已结束")
	s.toUser(m, "u2", "小王")
	s.toUser(m, "agent1", "新会话 #2")
	s.toUser(s.say("agent1", "列表"), "agent1", "#2 用户u2")
}

func TestDeskSessionSurvivesRestart(t *testing.T) {
	s := deskService(t, serviceOpts{})
	s.toUser(s.say("u1", "转人工"), "agent1", "新会话 #1")
	s.restart()
	s.toUser(s.say("u1", "重启之后还在吗"), "agent1", "#1 用户u1：重启之后还在吗")
	s.toUser(s.say("agent1", "还在的"), "u1", "还在的")
}

func TestDeskIdleUserTimedOut(t *testing.T) {
	s := deskService(t, serviceOpts{rules: `
service_rules:
  - name: always
    hours: { mon-sun: ["00:00-24:00"] }
    customer_idle_timeout: 2s
`})
	m := s.say("u1", "转人工")
	s.toUser(m, "agent1", "新会话")
	s.toUser(m, "u1", "长时间未回复")                   // fired by the timer scanner
	s.toUser(s.say("u1", "年假有多少天"), "u1", "年假答案") // back with the bot
}

func TestDeskGroupUserAnsweredInGroupWithMention(t *testing.T) {
	s := deskService(t, serviceOpts{})
	m := s.mark()
	s.post(dingtalktest.Msg{ConversationType: dingtalktest.Group, ConversationID: "cidTeam==", ConversationTitle: "研发群",
		SenderStaffID: "u3", SenderNick: "赵六", Text: "转人工"})
	s.toUser(m, "agent1", "研发群")
	m = s.say("agent1", "赵六您好")
	got := s.waitFor(m, "the agent's reply in the group", func(x dingtalktest.Sent) bool {
		return isInGroup(x, "cidTeam==") && strings.Contains(x.Text, "赵六您好")
	})
	if !(slices.Contains(got.AtUserIDs, "u3") || strings.Contains(got.Text, "@u3")) {
		t.Fatalf("group reply does not mention u3: %+v", got)
	}
}

func TestDeskTransferToAnotherGroup(t *testing.T) {
	s := deskService(t, serviceOpts{})
	s.toUser(s.say("agent2", "上线"), "agent2", "已上线")
	s.toUser(s.say("u1", "转人工"), "agent1", "新会话 #1")
	m := s.say("agent1", "转接 #1 hr")
	s.toUser(m, "agent1", "已转接")
	s.toUser(m, "agent2", "用户u1")
	s.toUser(s.say("u1", "现在是谁"), "agent2", "现在是谁")
}

// 转接 takes a group or an agent, and the rest of the line is the note
// the receiver reads in the 【转接会话】 notice.
func TestDeskTransferWithNote(t *testing.T) {
	s := deskService(t, serviceOpts{})
	s.toUser(s.say("agent2", "上线"), "agent2", "已上线")
	s.toUser(s.say("u1", "转人工"), "agent1", "新会话 #1")
	m := s.say("agent1", "转接 #1 hr 用户要查社保 基数")
	s.toUser(m, "agent1", "已转接")
	s.toUser(m, "agent2", "转接附言（小王）：用户要查社保 基数")

	s.toUser(s.say("u2", "转人工"), "agent1", "新会话 #2")
	m = s.say("agent1", "转接 小李 老客户，请优先")
	s.toUser(m, "agent1", "已转接给")
	notice := s.toUser(m, "agent2", "【转接会话")
	if !strings.Contains(notice.Text, "转接附言（小王）：老客户，请优先") || !strings.Contains(notice.Text, "用户u2") {
		t.Fatalf("notice = %q", notice.Text)
	}
	s.toUser(s.say("u2", "在吗"), "agent2", "在吗")
	// Refused: agent1 is the one transferring.
	s.toUser(s.say("u3", "转人工"), "agent1", "新会话 #3")
	s.toUser(s.say("agent1", "转接 小王"), "agent1", "不能转接给自己")
}

func TestDeskSearchCannedAndSuggestions(t *testing.T) {
	s := deskService(t, serviceOpts{})
	s.toUser(s.say("agent1", "搜索 打印机"), "agent1", "打印机答案")
	m := s.say("u1", "转人工")
	s.toUser(m, "agent1", "新会话")
	// The user's question gives the desk suggestions to send.
	m = s.say("u1", "VPN 一直连接失败")
	s.toUser(m, "agent1", "VPN 一直连接失败")
	s.toUser(s.say("agent1", "推荐 1"), "u1", "VPN答案")
	s.toUser(s.say("agent1", "常用语"), "agent1", "您好，我是人工客服。")
	s.toUser(s.say("agent1", "常用语 1"), "u1", "您好，我是人工客服。")
	s.toUser(s.say("agent1", "#99 你好"), "agent1", "没有这个会话")
	s.toUser(s.say("agent1", "帮助"), "agent1", "客服台命令")
}

func TestDeskOfflineHandsSessionsOn(t *testing.T) {
	s := startService(t, serviceOpts{groups: `
skill_groups:
  - name: it
    rule: always
    members: [ { staff_id: agent1, name: 小王, max_chats: 2 }, { staff_id: agent2, name: 小李, max_chats: 2 } ]
`})
	s.toUser(s.say("agent1", "上线"), "agent1", "已上线")
	s.toUser(s.say("u1", "转人工"), "agent1", "新会话")
	s.toUser(s.say("agent2", "上线"), "agent2", "已上线")
	m := s.say("agent1", "下线")
	s.toUser(m, "agent1", "已交接")
	s.toUser(m, "agent2", "用户u1")
	s.toUser(s.say("u1", "还有人吗"), "agent2", "还有人吗")
}

// Two replicas on one MySQL database: the agent talks to one, the user to
// the other, and the session works across them.
func TestDeskAcrossTwoReplicas(t *testing.T) {
	if os.Getenv(gormstoretest.EnvMySQL) == "" {
		t.Skipf("set %s to run the two-replica test on MySQL", gormstoretest.EnvMySQL)
	}
	fake := dingtalktest.NewServer()
	t.Cleanup(fake.Close)
	st := gormstoretest.NewStorage(t, "mysql")
	a := startService(t, serviceOpts{fake: fake, storage: &st})
	b := startService(t, serviceOpts{fake: fake, storage: &st})
	a.toUser(a.say("agent1", "上线"), "agent1", "已上线")
	m := b.say("u1", "转人工")
	b.toUser(m, "agent1", "新会话 #1")
	b.toUser(m, "u1", "小王")
	a.toUser(a.say("agent1", "请问有什么可以帮您"), "u1", "请问有什么可以帮您")
	b.toUser(b.say("u1", "VPN 连不上"), "agent1", "#1 用户u1：VPN 连不上")
	// The same msgId delivered to both replicas is handled once.
	m = a.mark()
	dup := dingtalktest.Msg{MsgID: "both-replicas-1", SenderStaffID: "u1", SenderNick: "用户u1", Text: "还在吗"}
	a.post(dup)
	b.post(dup)
	a.toUser(m, "agent1", "还在吗")
	time.Sleep(700 * time.Millisecond)
	n := 0
	for _, x := range fake.Sent()[m:] {
		if isTo(x, "agent1") && strings.Contains(x.Text, "还在吗") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the message reached the agent %d times, want once", n)
	}
}

// The agent's suggestions are for the user's question, not for the words
// that asked for a person.
func TestDeskSuggestionsFollowTheQuestionNotTheTransferWords(t *testing.T) {
	s := deskService(t, serviceOpts{})
	s.toUser(s.say("u1", "VPN 一直连接失败"), "u1", "VPN答案")
	notice := s.toUser(s.say("u1", "我要转人工"), "agent1", "新会话")
	if !strings.Contains(notice.Text, "VPN答案") {
		t.Fatalf("the new-session notice does not suggest the VPN answer:\n%s", notice.Text)
	}
	s.toUser(s.say("agent1", "推荐 1"), "u1", "VPN答案")
}

// Text that looks like a command is not relayed: the agent gets a hint;
// "#N …" sends anything as written. 推荐 lists the latest question's
// suggestions; 推荐 N sends only from a list the agent saw.
func TestDeskHintsAndSuggestionLists(t *testing.T) {
	s := deskService(t, serviceOpts{})
	s.toUser(s.say("u1", "转人工"), "agent1", "新会话 #1")
	m := s.say("agent1", "结束会话")
	s.toUser(m, "agent1", "看起来像命令")
	s.quietFor(m, "u1")
	m = s.say("agent1", "#1 常见问题")
	s.toUser(m, "u1", "常见问题")

	// No question yet: nothing to send.
	s.toUser(s.say("agent1", "推荐 1"), "agent1", "没有可发送的推荐知识")
	// A question the bot cannot answer: its relay has no list, 推荐 none.
	m = s.say("u1", "你们食堂今天吃什么")
	relay := s.toUser(m, "agent1", "你们食堂今天吃什么")
	if strings.Contains(relay.Text, "推荐知识") {
		t.Fatalf("relay of an unanswerable question suggests: %q", relay.Text)
	}
	s.toUser(s.say("agent1", "推荐"), "agent1", "没有可发送的推荐知识")
	// A question it can: the relay shows the list, 推荐 shows it in full.
	relay = s.toUser(s.say("u1", "VPN 一直连接失败"), "agent1", "VPN 一直连接失败")
	if !strings.Contains(relay.Text, "推荐知识") {
		t.Fatalf("relay lacks its suggestions: %q", relay.Text)
	}
	s.toUser(s.say("agent1", "推荐"), "agent1", "VPN答案")
	s.toUser(s.say("agent1", "推荐 1"), "u1", "VPN答案")
}
