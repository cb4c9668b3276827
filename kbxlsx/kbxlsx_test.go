package kbxlsx_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/kbxlsx"
	"github.com/dingdesk/dingdesk/knowledge"
)

var fileEntries = []bot.Entry{
	{ID: "vpn", Question: "VPN 连不上怎么办", Similar: []string{"VPN 无法连接", "在家连不上公司 VPN"}, Answer: "重启 VPN 客户端。\n仍不行请联系 IT。", Category: "IT"},
	{ID: "leave", Question: "怎么请假", Answer: "在钉钉审批里提交请假。", Category: "HR", Handoff: true},
}

func manager(t *testing.T, driver string) *knowledge.Manager {
	db := gormstoretest.Open(t, driver)
	return knowledge.NewManager(gormstore.NewKnowledgeStore(db), func() ([]bot.Entry, error) { return slices.Clone(fileEntries), nil }, nil)
}

// sheet builds a workbook the way an admin would fill one in.
func sheet(t *testing.T, rows [][]any) *bytes.Buffer {
	t.Helper()
	f := excelize.NewFile()
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow("Sheet1", cell, &r); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestExportImportRoundTrip(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		m := manager(t, driver)
		if _, err := m.Create(ctx, "admin", knowledge.Draft{ID: "printer", Question: "打印机卡纸", Similar: []string{"打印机卡住了|怎么办"}, Answer: "打开后盖。", Category: "IT"}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.SetDisabled(ctx, "admin", "printer", true); err != nil {
			t.Fatal(err)
		}
		all, _ := m.List(ctx, knowledge.Filter{Disabled: true})
		var buf bytes.Buffer
		if err := kbxlsx.Write(&buf, all); err != nil {
			t.Fatal(err)
		}
		rows, problems, err := kbxlsx.Read(bytes.NewReader(buf.Bytes()))
		if err != nil || len(problems) != 0 || len(rows) != 3 {
			t.Fatalf("read back: %d rows, %v, %v", len(rows), problems, err)
		}
		if r := rows[0]; r.Row != 2 || r.ID != "vpn" || !slices.Equal(r.Similar, fileEntries[0].Similar) || r.Answer != fileEntries[0].Answer {
			t.Fatalf("row 2 = %+v", r)
		}
		if r := rows[1]; r.Handoff == nil || !*r.Handoff {
			t.Fatalf("handoff lost: %+v", r)
		}
		if r := rows[2]; r.Disabled == nil || !*r.Disabled {
			t.Fatalf("status lost: %+v", r)
		}
		// Re-importing the export changes nothing.
		p, err := kbxlsx.Preview(ctx, m, bytes.NewReader(buf.Bytes()))
		if err != nil || p.Same != 3 || p.Creates+p.Updates != 0 || len(p.Errors) != 0 {
			t.Fatalf("re-import: %s %v\n%s", p.Summary(), err, p.ErrorsText())
		}
	})
}

func TestImportWithBadRow(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		m := manager(t, driver)
		buf := sheet(t, [][]any{
			{"类目", "问题", "答案", "相似问题", "转人工", "状态"},          // row 1: own column order
			{"HR", "怎么请假", "打开钉钉-审批-请假。", "请假流程\n如何请假", "是"}, // 2: update (by question)
			{}, // 3: blank, skipped
			{"财务", "报销要什么材料", "发票和审批单。", "报销材料\r\n报销需要啥", ""}, // 4: create
			{"财务", "发票抬头是什么", "", "", ""},                     // 5: no answer
			{"IT", "打印机卡纸", "打开后盖。", "", "也许"},                // 6: bad 转人工
			{"IT", "显示器不亮", "检查电源。", "", "", "暂停"},            // 7: bad 状态
		})
		p, err := kbxlsx.Preview(ctx, m, buf)
		if err != nil {
			t.Fatal(err)
		}
		if p.Creates != 1 || p.Updates != 1 || len(p.Errors) != 3 || p.Errors[0].Row != 5 || p.Errors[1].Row != 6 || p.Errors[2].Row != 7 {
			t.Fatalf("preview: %s\n%s", p.Summary(), p.ErrorsText())
		}
		if !strings.Contains(p.ErrorsText(), "第 5 行 答案：答案不能为空") || !strings.Contains(p.ErrorsText(), "第 6 行 转人工") ||
			!strings.Contains(p.ErrorsText(), "第 7 行 状态：“暂停”无法识别") {
			t.Fatalf("errors:\n%s", p.ErrorsText())
		}
		// Nothing applied by the preview.
		if e, _ := m.Get(ctx, "leave"); e.Origin != knowledge.OriginFile {
			t.Fatalf("preview wrote: %+v", e)
		}
		if n, err := m.ApplyImport(ctx, "admin", p); err != nil || n != 2 {
			t.Fatalf("apply = %d, %v", n, err)
		}
		leave, _ := m.Get(ctx, "leave")
		if leave.Answer != "打开钉钉-审批-请假。" || !slices.Equal(leave.Similar, []string{"请假流程", "如何请假"}) || !leave.Handoff {
			t.Fatalf("leave = %+v", leave)
		}
		found, _ := m.List(ctx, knowledge.Filter{Category: "财务"})
		if len(found) != 1 || !slices.Equal(found[0].Similar, []string{"报销材料", "报销需要啥"}) || found[0].Handoff {
			t.Fatalf("created = %+v", found)
		}
	})
}

func TestReadRefusesBadFiles(t *testing.T) {
	if _, _, err := kbxlsx.Read(strings.NewReader("问题,答案\n")); err == nil {
		t.Fatal("a CSV read as xlsx")
	}
	_, _, err := kbxlsx.Read(sheet(t, [][]any{{"标题", "内容"}, {"a", "b"}}))
	if !errors.Is(err, kbxlsx.ErrNoHeader) {
		t.Fatalf("no header: %v", err)
	}
}

// TestStagedImportAcrossReplicas: previewed on one replica, confirmed on
// another; once only; refused when the knowledge changed since the preview
// or the preview expired.
func TestStagedImportAcrossReplicas(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		cfg := gormstoretest.NewStorage(t, driver)
		dbA, dbB := gormstoretest.OpenStorage(t, cfg), gormstoretest.OpenStorage(t, cfg)
		now := time.Now()
		clock := func() time.Time { return now }
		files := func() ([]bot.Entry, error) { return slices.Clone(fileEntries), nil }
		stA, stB := gormstore.NewKnowledgeStore(dbA), gormstore.NewKnowledgeStore(dbB)
		mA, mB := knowledge.NewManager(stA, files, clock), knowledge.NewManager(stB, files, clock)
		book := func() *bytes.Buffer {
			return sheet(t, [][]any{{"问题", "答案", "转人工"}, {"报销要什么材料", "发票。", ""}, {"坏行", "答案", "也许"}})
		}

		token, p, err := kbxlsx.Stage(ctx, mA, stA, "admin", book())
		if err != nil || p.Creates != 1 || len(p.Errors) != 1 || p.Errors[0].Row != 3 {
			t.Fatalf("stage: %v %s\n%s", err, p.Summary(), p.ErrorsText())
		}
		if all, _ := mB.List(ctx, knowledge.Filter{}); len(all) != 2 {
			t.Fatalf("staging wrote entries: %d", len(all))
		}
		p, n, err := mB.ConfirmImport(ctx, stB, "admin", token)
		if err != nil || n != 1 || len(p.Errors) != 1 {
			t.Fatalf("confirm on B: %d %v", n, err)
		}
		if _, _, err := mA.ConfirmImport(ctx, stA, "admin", token); !errors.Is(err, knowledge.ErrStagedGone) {
			t.Fatalf("second confirm: %v", err)
		}

		token, _, _ = kbxlsx.Stage(ctx, mA, stA, "admin", book())
		if _, err := mB.SetDisabled(ctx, "other", "vpn", true); err != nil {
			t.Fatal(err)
		}
		if _, _, err := mA.ConfirmImport(ctx, stA, "admin", token); !errors.Is(err, knowledge.ErrConflict) {
			t.Fatalf("confirm after a change: %v", err)
		}

		token, _, _ = kbxlsx.Stage(ctx, mA, stA, "admin", book())
		now = now.Add(knowledge.StagedTTL + time.Minute)
		if _, _, err := mA.ConfirmImport(ctx, stA, "admin", token); !errors.Is(err, knowledge.ErrStagedGone) {
			t.Fatalf("confirm after expiry: %v", err)
		}
	})
}
