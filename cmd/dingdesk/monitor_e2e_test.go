package main

import (
	"context"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/monitor"
)

// TestMonitorCounts: the monitor's figures follow a real hand-off: one
// user served, one queued behind them, and the numbers move as the agent
// ends the first session.
func TestMonitorCounts(t *testing.T) {
	s := startService(t, serviceOpts{})
	st := gormstore.NewMonitorStore(s.main.DB)
	read := func() *monitor.Status {
		t.Helper()
		status, err := monitor.Read(context.Background(), st, s.main.Config.Current(), time.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return status
	}
	group := func(status *monitor.Status, name string) monitor.Group {
		for _, g := range status.Groups {
			if g.Name == name {
				return g
			}
		}
		t.Fatalf("no group %s", name)
		return monitor.Group{}
	}
	if it := group(read(), "it"); it.Online != 0 || it.Offline != 1 || !it.OpenNow || it.Queued != 0 {
		t.Fatalf("before: %+v", it)
	}
	s.toUser(s.say("agent1", "上线"), "agent1", "已上线")
	s.toUser(s.say("u1", "转人工"), "u1", "小王")
	s.toUser(s.say("u2", "转人工"), "u2", "排第 1 位")
	time.Sleep(20 * time.Millisecond)
	status := read()
	it := group(status, "it")
	if it.Online != 1 || it.Active != 1 || it.Queued != 1 || it.LongestWait <= 0 || it.DisplayName != "IT 服务台" {
		t.Fatalf("it = %+v", it)
	}
	if a := it.Agents[0]; a.Presence != "online" || a.Open != 1 || a.MaxChats != 1 || a.SessionsToday != 1 {
		t.Fatalf("agent1 = %+v", a)
	}
	if hr := group(status, "hr"); hr.Offline != 1 || hr.Active != 0 {
		t.Fatalf("hr = %+v", hr)
	}
	if status.Bot.Handoffs != 2 {
		t.Fatalf("bot = %+v", status.Bot)
	}
	s.toUser(s.say("agent1", "结束"), "u2", "小王") // the queued user is pulled in
	it = group(read(), "it")
	if it.Queued != 0 || it.Active != 1 || it.Agents[0].SessionsToday != 2 || it.LongestWait != 0 {
		t.Fatalf("after the end: %+v", it)
	}
}
