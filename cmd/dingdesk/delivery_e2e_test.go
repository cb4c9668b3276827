package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
)

// A 70 KB text message (MySQL's text column holds 64 KiB) is stored whole
// and answered, and the users writing at the same time are answered too.
func TestLargeMessageStoredWholeAndAnswered(t *testing.T) {
	for _, driver := range gormstoretest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			s := startService(t, serviceOpts{driver: driver})
			big := "VPN 连不上怎么办。" + strings.Repeat("网络日志：连接超时，重试中。", 70_000/len("网络日志：连接超时，重试中。")+1)
			if len(big) < 70_000 {
				t.Fatalf("test text is %d bytes", len(big))
			}
			var wg sync.WaitGroup
			others := []string{"o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"}
			wg.Add(1)
			go func() { defer wg.Done(); s.post(dingtalktest.Msg{SenderStaffID: "big", Text: big}) }()
			for _, u := range others {
				wg.Add(1)
				go func(u string) {
					defer wg.Done()
					s.post(dingtalktest.Msg{SenderStaffID: u, Text: "年假有多少天"})
				}(u)
			}
			wg.Wait()
			// Diluted by its log lines, the question gets the no-answer
			// reply: answered all the same.
			s.waitFor(0, "a reply to the large message", func(x dingtalktest.Sent) bool { return isTo(x, "big") })
			for _, u := range others {
				s.toUser(0, u, "年假答案")
			}
			ctx := context.Background()
			var n int
			var stored string
			key := privateChat("big") + "|big"
			if err := s.main.DB.QueryRow(ctx, "SELECT COUNT(*) FROM inbox WHERE user_key = ?", key).Scan(&n); err != nil || n != 1 {
				t.Fatalf("inbox rows of the large message: %d, %v", n, err)
			}
			if err := s.main.DB.QueryRow(ctx, "SELECT message FROM inbox WHERE user_key = ?", key).Scan(&stored); err != nil {
				t.Fatal(err)
			}
			var m struct{ Text string }
			if err := json.Unmarshal([]byte(stored), &m); err != nil || m.Text != big {
				t.Fatalf("stored message: %d bytes of text (want %d), %v", len(m.Text), len(big), err)
			}
			var last string
			if err := s.main.DB.QueryRow(ctx, "SELECT last_question FROM handoff_conversations WHERE user_key = ?", key).Scan(&last); err != nil {
				t.Fatal(err)
			}
			if last != big {
				t.Errorf("last_question holds %d bytes, want %d", len(last), len(big))
			}
		})
	}
}

// /readyz fails while storage refuses writes although it answers pings,
// and passes again once writes work.
func TestReadyzFailsWhenStorageRefusesWrites(t *testing.T) {
	for _, driver := range gormstoretest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			s := startService(t, serviceOpts{driver: driver})
			ready := func() (int, string) {
				resp, err := http.Get(s.url + "/readyz")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			if code, body := ready(); code != http.StatusOK {
				t.Fatalf("readyz = %d %s on a healthy service", code, body)
			}
			refuse := "CREATE TRIGGER refuse_inbox BEFORE INSERT ON inbox BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
			if driver == "mysql" {
				refuse = "CREATE TRIGGER refuse_inbox BEFORE INSERT ON inbox FOR EACH ROW SIGNAL SQLSTATE 'HY000' SET MESSAGE_TEXT = 'The table is full'"
			}
			if err := s.main.DB.Exec(context.Background(), refuse); err != nil {
				t.Fatal(err)
			}
			if err := s.main.DB.Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
			eventually(t, "readyz to fail", func() bool { code, _ := ready(); return code == http.StatusServiceUnavailable })
			_, body := ready()
			if !strings.Contains(body, "storage") || !strings.Contains(body, "refuses writes") {
				t.Errorf("readyz body %s does not name the storage problem", body)
			}
			// The webhook refuses too (DingTalk redelivers), and nothing is sent.
			_, resp, err := s.fake.PostWebhook(s.webhookURL(), dingtalktest.Msg{SenderStaffID: "u1", Text: "年假有多少天"})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				t.Fatalf("webhook acknowledged a message that could not be stored: %d", resp.StatusCode)
			}
			if err := s.main.DB.Exec(context.Background(), "DROP TRIGGER refuse_inbox"); err != nil {
				t.Fatal(err)
			}
			eventually(t, "readyz to pass again", func() bool { code, _ := ready(); return code == http.StatusOK })
		})
	}
}

// Through the real serve with a tiny inbox.max_queued: deliveries the
// service cannot queue are refused (non-2xx) and delivered again, each
// user's messages leaving in order without waiting for a refused one; every
// user's answers come in the order of their questions.
func TestOverloadPushesBackAndKeepsOrder(t *testing.T) {
	s := startService(t, serviceOpts{extra: "inbox: { max_queued: 4 }\n"})
	questions := []struct{ q, a string }{{"VPN 连不上怎么办", "VPN答案"}, {"年假有多少天", "年假答案"}, {"打印机怎么添加", "打印机答案"}}
	const users, per = 12, 6
	var wgRetry sync.WaitGroup
	var refusals sync.Map
	var writers sync.WaitGroup
	for u := 0; u < users; u++ {
		writers.Add(1)
		go func(user string) {
			defer writers.Done()
			for i := 0; i < per; i++ {
				_, body := s.fake.Payload(dingtalktest.Msg{SenderStaffID: user, Text: questions[i%len(questions)].q})
				if s.postBody(body) {
					continue
				}
				refusals.Store(user+fmt.Sprint(i), true)
				wgRetry.Add(1)
				go func() { // DingTalk delivers it again
					defer wgRetry.Done()
					for !s.postBody(body) {
						time.Sleep(50 * time.Millisecond)
					}
				}()
			}
		}(fmt.Sprintf("p%02d", u))
	}
	writers.Wait()
	wgRetry.Wait()
	n := 0
	refusals.Range(func(_, _ any) bool { n++; return true })
	if n == 0 {
		t.Fatal("no delivery was refused: the test did not overload the service")
	}
	eventually(t, "every question answered", func() bool {
		return len(s.fake.Sent()) >= users*per
	})
	for u := 0; u < users; u++ {
		user := fmt.Sprintf("p%02d", u)
		var got []string
		for _, x := range s.fake.Sent() {
			if isTo(x, user) {
				got = append(got, x.Text)
			}
		}
		if len(got) != per {
			t.Fatalf("%s got %d answers, want %d: %q", user, len(got), per, got)
		}
		for i, text := range got {
			if want := questions[i%len(questions)].a; !strings.Contains(text, want) {
				t.Fatalf("%s: answer %d is %q, want %s (out of order): %q", user, i, text, want, got)
			}
		}
	}
	t.Logf("%d of %d first deliveries refused and delivered again; all answered in order", n, users*per)
}

// postBody delivers a signed payload once and reports whether it was
// acknowledged.
func (s *service) postBody(body []byte) bool {
	now := time.Now()
	resp, err := s.fake.PostWebhookRaw(s.webhookURL(), body, now, dingtalktest.Sign(s.fake.ClientSecret, now.UnixMilli()))
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
