package web

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/monitor"
)

// The monitor's live figures render with a queue waiting: the longest wait
// and the agents' presence come out in web.texts' words. (Template funcs
// are checked only when a template runs, so a func whose signature changed
// fails here, not at parse time.)
func TestMonitorFragmentRendersQueueAndPresence(t *testing.T) {
	texts := config.DefaultWebTexts()
	texts.PresenceBusy = "暂离"
	p, err := loadPages(func() *config.WebTexts { return &texts })
	if err != nil {
		t.Fatal(err)
	}
	st := &monitor.Status{At: time.Now(), Groups: []monitor.Group{{Name: "it", DisplayName: "IT 服务台", OpenNow: true,
		Online: 1, Active: 1, Queued: 2, LongestWait: 90 * time.Second,
		Agents: []monitor.Agent{{StaffID: "agent1", Name: "小王", Presence: "busy", Open: 1, MaxChats: 1}}}}}
	var b bytes.Buffer
	if err := p.fragments.ExecuteTemplate(&b, "admin-monitor-live", map[string]any{"Status": st}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{`<td data-k="queued">2</td><td>` + durationText(&texts, 90*time.Second) + `</td>`,
		`<td data-k="presence">暂离</td>`, `<td data-k="load">1 / 1</td>`} {
		if !strings.Contains(out, want) {
			t.Errorf("monitor fragment lacks %q:\n%s", want, out)
		}
	}
}
