package web

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/monitor"
)

// TestMonitorFragmentWithAQueue renders the monitor's live fragment with a
// user waiting: template functions are only checked when called, and the
// longest-wait cell calls dur only while someone queues.
func TestMonitorFragmentWithAQueue(t *testing.T) {
	texts := config.DefaultWebTexts()
	p, err := loadPages(func() *config.WebTexts { return &texts })
	if err != nil {
		t.Fatal(err)
	}
	st := &monitor.Status{At: time.Now(), Groups: []monitor.Group{
		{Name: "it", DisplayName: "IT 服务台", OpenNow: true, Online: 1, Active: 1, Queued: 1, LongestWait: 90 * time.Second},
	}}
	var b bytes.Buffer
	if err := p.fragments.ExecuteTemplate(&b, "admin-monitor-live", gin.H{"Status": st}); err != nil {
		t.Fatal(err)
	}
	if want := `<td data-k="queued">1</td>`; !strings.Contains(b.String(), want) {
		t.Fatalf("fragment lacks %s:\n%s", want, b.String())
	}
}
