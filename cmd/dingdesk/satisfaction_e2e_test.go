package main

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
)

// sessionRatings runs `dingdesk report --sessions --format csv` on the
// service's config and returns each session's 满意度 by user.
func (s *service) sessionRatings(t *testing.T) map[string][]string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := runReport([]string{"-c", s.cfg, "--sessions", "--format", "csv"}, &out, &errOut); code != 0 {
		t.Fatalf("dingdesk report = %d: %s", code, errOut.String())
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(out.String(), "\ufeff"))).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("report csv: %v\n%s", err, out.String())
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	got := map[string][]string{}
	for _, r := range rows[1:] {
		user := r[col["用户ID"]]
		got[user] = append(got[user], r[col["满意度邀评"]]+"/"+r[col["满意度"]])
	}
	return got
}

// Through the webhook: a human session ends → the rating prompt → "5" is
// recorded on the session (as `dingdesk report` shows) and not answered as
// a question; a question instead is answered and leaves no rating.
func TestSatisfactionThroughWebhook(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		{
			s := startService(t, serviceOpts{driver: driver})
			s.toUser(s.say("agent1", "上线"), "agent1", "已上线")

			s.toUser(s.say("u1", "转人工"), "u1", "小王")
			prompt := s.toUser(s.say("u1", "结束会话"), "u1", "请您对本次人工服务做出评价")
			if !strings.Contains(prompt.Text, "5. 非常满意") || !strings.Contains(prompt.Text, "1. 非常不满意") {
				t.Fatalf("prompt = %q", prompt.Text)
			}
			m := s.say("u1", "5")
			s.toUser(m, "u1", "感谢您的评价")
			time.Sleep(500 * time.Millisecond)
			if n := len(s.toUserAfter(m, "u1")); n != 1 {
				t.Fatalf("%d messages to u1 for the rating, want the thanks alone", n)
			}

			s.toUser(s.say("u2", "转人工"), "u2", "小王")
			s.toUser(s.say("u2", "结束会话"), "u2", "请您对本次人工服务做出评价")
			s.toUser(s.say("u2", "怎么请假"), "u2", "请假答案")

			got := s.sessionRatings(t)
			if r := got["u1"]; len(r) != 1 || r[0] != "是/5" {
				t.Errorf("u1 sessions = %q, want one rated 5", r)
			}
			if r := got["u2"]; len(r) != 1 || r[0] != "是/" {
				t.Errorf("u2 sessions = %q, want one prompted, unrated", r)
			}
			// "5" was not a question: no bot answer, no unanswered row.
			for _, x := range s.fake.Sent() {
				if isTo(x, "u1") && strings.Contains(x.Text, "抱歉") {
					t.Fatalf("the rating was answered as a question: %q", x.Text)
				}
			}
			var n int
			if err := s.main.DB.QueryRow(t.Context(), "SELECT COUNT(*) FROM handoff_unanswered WHERE question = '5'").Scan(&n); err != nil || n != 0 {
				t.Fatalf("unanswered '5' rows = %d, %v", n, err)
			}
		}
	})
}

func (s *service) toUserAfter(after int, user string) []dingtalktest.Sent {
	var out []dingtalktest.Sent
	for _, x := range s.fake.Sent()[after:] {
		if isTo(x, user) {
			out = append(out, x)
		}
	}
	return out
}
