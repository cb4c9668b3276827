package dingtalk

import (
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
)

// The SDK reconnects after 3 s (+ up to 20 % jitter) at the earliest.
const reconnectWait = 10 * time.Second

// startStream starts a stream adapter against the fake, with the SDK's
// shortest WebSocket keepalive (3 s) so keepalive pings run during tests.
func startStream(t *testing.T, fake *dingtalktest.Server) (*Adapter, *recorder, *syncBuffer) {
	t.Helper()
	a, logs := mustNew(t, testConfig(fake, "stream"), Options{})
	a.keepAlive = 3 * time.Second
	rec := newRecorder()
	if err := a.Start(t.Context(), rec.handle); err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(); err != nil {
		t.Fatalf("Ready after Start: %v", err)
	}
	if err := fake.WaitConnections(1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return a, rec, logs
}

func TestStreamReceive(t *testing.T) {
	fake := newFake(t)
	a, rec, logs := startStream(t, fake)

	open := fake.Opens()[0]
	subscribed := false
	for _, s := range open.Subscriptions {
		subscribed = subscribed || (s.Type == "CALLBACK" && s.Topic == dingtalktest.TopicBotMessage)
	}
	if !open.OK || open.ClientID != fake.ClientID || !subscribed {
		t.Errorf("open request = %+v", open)
	}

	msgID, err := fake.Push(dingtalktest.Msg{ConversationType: dingtalktest.Group, SenderStaffID: "user001", Text: "怎么报销"})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := fake.WaitAck(msgID, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Code != 200 || ack.Err != "" {
		t.Errorf("ACK = %+v, want code 200", ack)
	}
	m := rec.wait(t, time.Second)
	if m.ID != msgID || m.Text != "怎么报销" || m.Kind != adapter.KindText || !m.AtBot ||
		m.ConversationType != adapter.Group || m.RobotCode != fake.ClientID || m.SenderID != "user001" {
		t.Errorf("message = %+v", m)
	}

	t.Run("handler error ACKs 500", func(t *testing.T) {
		rec.setFail(errStore)
		defer rec.setFail(nil)
		msgID, err := fake.Push(dingtalktest.Msg{SenderStaffID: "user001", Text: "x"})
		if err != nil {
			t.Fatal(err)
		}
		ack, err := fake.WaitAck(msgID, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if ack.Code == 200 || strings.Contains(ack.Message, "secret-path") {
			t.Errorf("ACK = %+v, want non-200 without internals", ack)
		}
	})

	t.Run("ping answered", func(t *testing.T) {
		if err := fake.Ping(); err != nil {
			t.Fatal(err)
		}
		if err := fake.WaitPongs(5 * time.Second); err != nil {
			t.Error(err)
		}
	})

	t.Run("unknown and media kinds", func(t *testing.T) {
		for msgType, kind := range map[string]adapter.Kind{"picture": adapter.KindPicture, "unknownMsgType": adapter.KindUnknown, "file": adapter.KindFile} {
			msgID, err := fake.Push(dingtalktest.Msg{SenderStaffID: "user001", MsgType: msgType})
			if err != nil {
				t.Fatal(err)
			}
			m := rec.waitID(t, msgID, 5*time.Second)
			if m.Kind != kind {
				t.Errorf("%s: got %+v", msgType, m)
			}
		}
	})

	_ = a.Close()
	for _, secret := range []string{fake.ClientSecret, "clientSecret"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log contains %q:\n%s", secret, logs.String())
		}
	}
}

func TestStreamRedeliveryAfterFailedStore(t *testing.T) {
	fake := newFake(t)
	_, rec, _ := startStream(t, fake)
	fake.SetRedeliver(300 * time.Millisecond)
	rec.setFail(errStore)
	msgID, err := fake.Push(dingtalktest.Msg{SenderStaffID: "user001", Text: "again"})
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := fake.WaitAck(msgID, 5*time.Second); err != nil || ack.Code != 500 {
		t.Fatalf("first ACK %+v, %v; want 500", ack, err)
	}
	rec.setFail(nil)
	if m := rec.wait(t, 5*time.Second); m.ID != msgID {
		t.Errorf("got %q, want the redelivered %q", m.ID, msgID)
	}
	eventually(t, 5*time.Second, "a 200 ACK", func() bool {
		for _, a := range fake.Acks() {
			if a.MsgID == msgID && a.Code == 200 {
				return true
			}
		}
		return false
	})
}

func TestStreamReconnectsAfterDrop(t *testing.T) {
	fake := newFake(t)
	a, rec, _ := startStream(t, fake)

	opens := len(fake.Opens())
	fake.DropAll()
	eventually(t, 2*time.Second, "Ready to report the drop", func() bool { return a.Ready() != nil })
	if err := a.Ready(); !strings.Contains(err.Error(), "not connected") {
		t.Errorf("Ready = %v", err)
	}
	eventually(t, reconnectWait, "a new open request", func() bool { return len(fake.Opens()) > opens })
	if err := fake.WaitConnections(1, reconnectWait); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "Ready", func() bool { return a.Ready() == nil })

	msgID, err := fake.Push(dingtalktest.Msg{SenderStaffID: "user001", Text: "after drop"})
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := fake.WaitAck(msgID, 5*time.Second); err != nil || ack.Code != 200 {
		t.Fatalf("ACK %+v, %v", ack, err)
	}
	if m := rec.wait(t, time.Second); m.ID != msgID {
		t.Errorf("got %q, want %q", m.ID, msgID)
	}
}

func TestStreamServerDisconnect(t *testing.T) {
	fake := newFake(t)
	a, rec, _ := startStream(t, fake)

	opens := len(fake.Opens())
	if err := fake.Disconnect(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the disconnect ACK", func() bool {
		for _, ack := range fake.Acks() {
			if ack.Topic == dingtalktest.TopicDisconnect {
				return ack.Code == 200
			}
		}
		return false
	})
	eventually(t, reconnectWait, "a new open request", func() bool { return len(fake.Opens()) > opens })
	if err := fake.WaitConnections(1, reconnectWait); err != nil {
		t.Fatal(err)
	}
	msgID, err := fake.Push(dingtalktest.Msg{SenderStaffID: "user001", Text: "after disconnect"})
	if err != nil {
		t.Fatal(err)
	}
	if m := rec.wait(t, 5*time.Second); m.ID != msgID {
		t.Errorf("got %q, want %q", m.ID, msgID)
	}
	eventually(t, 2*time.Second, "Ready", func() bool { return a.Ready() == nil })
}

func TestStreamCloseStopsReconnects(t *testing.T) {
	fake := newFake(t)
	a, _, _ := startStream(t, fake)

	fake.DropAll() // a reconnect is now pending in the SDK
	time.Sleep(100 * time.Millisecond)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	opens := len(fake.Opens())
	time.Sleep(5 * time.Second) // longer than the SDK's first backoff (≤ 3.6 s)
	if got := len(fake.Opens()); got != opens {
		t.Errorf("open requests grew from %d to %d after Close", opens, got)
	}
	if fake.Connections() != 0 {
		t.Errorf("%d connections after Close", fake.Connections())
	}
	if a.Ready() == nil {
		t.Error("Ready after Close = nil")
	}
	if err := a.Close(); err != nil {
		t.Error("second Close:", err)
	}
}

func TestStreamBadCredentialsRetriesInBackground(t *testing.T) {
	fake := newFake(t)
	cfg := testConfig(fake, "both")
	cfg.ClientSecret = "wrong-secret-value"
	a, logs := mustNew(t, cfg, Options{})
	rec := newRecorder()
	if err := a.Start(t.Context(), rec.handle); err != nil {
		t.Fatalf("Start = %v, want nil (retries in background)", err)
	}
	err := a.Ready()
	if err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Errorf("Ready = %v", err)
	}
	if len(fake.Opens()) != 1 || fake.Opens()[0].OK {
		t.Errorf("opens = %+v", fake.Opens())
	}
	start := time.Now()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if strings.Contains(logs.String(), "wrong-secret-value") {
		t.Errorf("secret in logs:\n%s", logs.String())
	}
}
