package kbfile_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/kbfile"
	"github.com/dingdesk/dingdesk/knowledge"
)

var entries = []knowledge.Entry{
	{Entry: bot.Entry{ID: "vpn", Question: "VPN 连不上怎么办", Similar: []string{"VPN 无法连接", "在家连不上公司 VPN"}, Answer: "重启客户端。\n仍不行：\"联系 IT\"。", Category: "IT"}},
	{Entry: bot.Entry{ID: "leave", Question: "怎么请假", Answer: "钉钉审批: 请假", Handoff: true}},
	{Entry: bot.Entry{ID: "off", Question: "停用的", Answer: "不导出"}, Disabled: true},
}

func TestWriteReadsBackWithTheLoader(t *testing.T) {
	for _, f := range []kbfile.Format{kbfile.YAML, kbfile.CSV, kbfile.JSONL} {
		t.Run(string(f), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kb."+string(f))
			out, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			n, err := kbfile.Write(out, f, entries)
			out.Close()
			if err != nil || n != 2 {
				t.Fatalf("write: %d %v", n, err)
			}
			got, err := bot.LoadKnowledge([]string{path})
			if err != nil || len(got) != 2 {
				t.Fatalf("load: %v %+v", err, got)
			}
			for i, e := range entries[:2] {
				g := got[i]
				if g.ID != e.ID || g.Question != e.Question || g.Answer != e.Answer || g.Category != e.Category || g.Handoff != e.Handoff || !slices.Equal(g.Similar, e.Similar) {
					t.Fatalf("entry %d = %+v, want %+v", i, g, e)
				}
			}
			rows, problems, err := kbfile.Read(path)
			if err != nil || len(problems) != 0 || len(rows) != 2 || rows[1].Handoff == nil || !*rows[1].Handoff || rows[0].Row == 0 {
				t.Fatalf("read: %+v %v %v", rows, problems, err)
			}
		})
	}
}

func TestReadReportsBadLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kb.jsonl")
	os.WriteFile(path, []byte(`{"id":"a","question":"好问题","answer":"好答案"}
{"id":"b","question":"没有答案"}
{"id":"c","question":"好问题二","answer":"好答案二","handoff":"也许"}
`), 0o644)
	rows, problems, err := kbfile.Read(path)
	if err != nil || len(rows) != 1 || rows[0].ID != "a" || len(problems) != 2 || problems[0].Row != 2 || problems[1].Row != 3 {
		t.Fatalf("rows %+v problems %+v err %v", rows, problems, err)
	}
	if _, _, err := kbfile.Read(filepath.Join(t.TempDir(), "kb.txt")); err == nil || !strings.Contains(err.Error(), "不支持") {
		t.Fatalf("txt: %v", err)
	}
}
