package main

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
)

func TestWebhookPrivateQuestionAnsweredOnSessionWebhook(t *testing.T) {
	s := startService(t, serviceOpts{})
	id := s.post(dingtalktest.Msg{SenderStaffID: "u1", SenderNick: "张三", Text: "VPN 连不上怎么办"})
	sent := s.waitSent(1)
	if sent[0].Via != "session" || sent[0].Session != s.fake.SessionFor(id) {
		t.Fatalf("reply went via %s (session %q), want this message's sessionWebhook", sent[0].Via, sent[0].Session)
	}
	if !strings.Contains(sent[0].Text, "VPN答案") {
		t.Fatalf("reply = %q, want the VPN answer", sent[0].Text)
	}
}

func TestWebhookGroupQuestionMentionsSender(t *testing.T) {
	s := startService(t, serviceOpts{})
	s.post(dingtalktest.Msg{ConversationType: dingtalktest.Group, ConversationID: "cidGroup1==", ConversationTitle: "IT 支持群",
		SenderStaffID: "u7", SenderNick: "李四", Text: "年假有多少天"})
	sent := s.waitSent(1)
	if !strings.Contains(sent[0].Text, "年假答案") {
		t.Fatalf("reply = %q", sent[0].Text)
	}
	if !slices.Contains(sent[0].AtUserIDs, "u7") {
		t.Fatalf("group reply does not @ the sender: at=%v", sent[0].AtUserIDs)
	}
}

func TestWebhookRefusesBadRequestsAndSendsNothing(t *testing.T) {
	s := startService(t, serviceOpts{})
	_, body := s.fake.Payload(dingtalktest.Msg{SenderStaffID: "u1", Text: "VPN 连不上怎么办"})
	now := time.Now()
	old := now.Add(-2 * time.Hour)
	huge := append([]byte(`{"msgtype":"text","text":{"content":"`), bytes.Repeat([]byte("长"), 1<<20)...)
	huge = append(huge, []byte(`"}}`)...)
	cases := []struct {
		name   string
		body   []byte
		ts     time.Time
		sign   string
		status int
	}{
		{"forged sign", body, now, dingtalktest.Sign("not-the-secret", now.UnixMilli()), http.StatusUnauthorized},
		{"missing sign", body, now, "", http.StatusUnauthorized},
		{"two-hour-old timestamp", body, old, dingtalktest.Sign(s.fake.ClientSecret, old.UnixMilli()), http.StatusUnauthorized},
		{"malformed JSON", []byte(`{"msgtype":"text","text":`), now, dingtalktest.Sign(s.fake.ClientSecret, now.UnixMilli()), http.StatusBadRequest},
		{"3 MiB body", huge, now, dingtalktest.Sign(s.fake.ClientSecret, now.UnixMilli()), http.StatusRequestEntityTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := s.fake.PostWebhookRaw(s.webhookURL(), c.body, c.ts, c.sign)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, msg, c.status)
			}
		})
	}
	s.expectNoMoreSends(0)
	if n := s.main.Metrics.Accepted.Load(); n != 0 {
		t.Fatalf("%d refused requests were accepted", n)
	}
}

func TestWebhookSameMsgIDThreeTimesAnsweredOnce(t *testing.T) {
	s := startService(t, serviceOpts{})
	m := dingtalktest.Msg{MsgID: "msgDup0001", SenderStaffID: "u1", Text: "打印机怎么添加"}
	for i := 0; i < 3; i++ {
		s.post(m)
	}
	s.waitSent(1)
	s.expectNoMoreSends(1)
	// Also after a restart (the dedup key is stored).
	s.restart()
	s.post(m)
	s.expectNoMoreSends(1)
}

func TestWebhookExpiredSessionWebhookFallsBackToBatchSend(t *testing.T) {
	s := startService(t, serviceOpts{})
	t.Run("expired by time", func(t *testing.T) {
		n := len(s.fake.Sent())
		s.post(dingtalktest.Msg{SenderStaffID: "u9", Text: "每月几号发工资", CreateAt: time.Now().Add(-2 * time.Hour)})
		got := s.waitSent(n + 1)[n]
		if got.Via != "oto" || !slices.Equal(got.UserIDs, []string{"u9"}) || !strings.Contains(got.Text, "工资答案") {
			t.Fatalf("got %+v, want batchSend to u9 with the answer", got)
		}
	})
	t.Run("refused with 300001", func(t *testing.T) {
		n := len(s.fake.Sent())
		id, body := s.fake.Payload(dingtalktest.Msg{SenderStaffID: "u8", Text: "每月几号发工资"})
		s.fake.ExpireSession(s.fake.SessionFor(id))
		now := time.Now()
		resp, err := s.fake.PostWebhookRaw(s.webhookURL(), body, now, dingtalktest.Sign(s.fake.ClientSecret, now.UnixMilli()))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("post: %v %v", resp, err)
		}
		resp.Body.Close()
		got := s.waitSent(n + 1)[n]
		if got.Via != "oto" || !slices.Equal(got.UserIDs, []string{"u8"}) {
			t.Fatalf("got %+v, want batchSend to u8", got)
		}
	})
}

func TestWebhookUnsupportedTypesAnsweredPolitely(t *testing.T) {
	s := startService(t, serviceOpts{})
	for i, typ := range []string{"picture", "file", "video", "someNewType"} {
		s.post(dingtalktest.Msg{SenderStaffID: "u" + strconv.Itoa(i), MsgType: typ})
		got := s.waitSent(i + 1)[i]
		if !strings.Contains(got.Text, "文字") {
			t.Fatalf("%s answered %q, want the unsupported-message reply", typ, got.Text)
		}
	}
}

func TestStreamEndToEnd(t *testing.T) {
	s := startService(t, serviceOpts{mode: "stream"})
	if err := s.fake.WaitConnections(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "/readyz to report the stream", func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	id, err := s.fake.Push(dingtalktest.Msg{MsgID: "streamMsg1", SenderStaffID: "u1", Text: "VPN 连不上怎么办"})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := s.fake.WaitAck(id, 5*time.Second)
	if err != nil || ack.Code != 200 {
		t.Fatalf("ack = %+v, %v; want code 200", ack, err)
	}
	if got := s.waitSent(1); !strings.Contains(got[0].Text, "VPN答案") {
		t.Fatalf("reply = %q", got[0].Text)
	}
	// A redelivered msgId is answered once.
	if _, err := s.fake.Push(dingtalktest.Msg{MsgID: "streamMsg1", SenderStaffID: "u1", Text: "VPN 连不上怎么办"}); err != nil {
		t.Fatal(err)
	}
	s.expectNoMoreSends(1)

	// The fake drops every connection: the service reconnects by itself.
	s.fake.DropAll()
	if err := s.fake.WaitConnections(1, 20*time.Second); err != nil {
		t.Fatalf("no reconnect: %v", err)
	}
	var pushErr error
	eventually(t, "a push after the reconnect", func() bool {
		_, pushErr = s.fake.Push(dingtalktest.Msg{MsgID: "streamMsg2", SenderStaffID: "u2", Text: "年假有多少天"})
		return pushErr == nil
	})
	if got := s.waitSent(2); !strings.Contains(got[1].Text, "年假答案") {
		t.Fatalf("reply after reconnect = %q", got[1].Text)
	}
}

// A database that goes away for a while: the webhook refuses with 5xx (so
// DingTalk redelivers), nothing is lost, and it works again afterwards. The
// outage is another process holding SQLite's write lock longer than the
// service's busy timeout.
func TestWebhookStorageOutageLosesNothing(t *testing.T) {
	dsn := t.TempDir() + "/outage.db"
	st := gormstoretest.NewStorage(t, "sqlite")
	st.DSN = config.Secret(dsn + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(200)&_txlock=immediate")
	s := startService(t, serviceOpts{storage: &st})

	locker, err := sql.Open("sqlite", dsn+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	conn, err := locker.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	m := dingtalktest.Msg{MsgID: "outage1", SenderStaffID: "u1", Text: "年假有多少天"}
	_, resp, err := s.fake.PostWebhook(s.webhookURL(), m)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 500 {
		t.Fatalf("with storage unavailable the webhook answered %d, want 5xx so DingTalk redelivers", resp.StatusCode)
	}
	// Storage comes back; DingTalk redelivers: answered once.
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	s.post(m)
	if got := s.waitSent(1); !strings.Contains(got[0].Text, "年假答案") {
		t.Fatalf("reply = %q", got[0].Text)
	}
	s.post(m)
	s.expectNoMoreSends(1)
}
