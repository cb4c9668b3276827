package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/xuri/excelize/v2"
)

// adminGroups: two agents of one chat each in it, so a third user queues.
const adminGroups = `
skill_groups:
  - name: it
    display_name: IT 服务台
    rule: always
    members: [ { staff_id: agent1, name: 小王, max_chats: 1 }, { staff_id: agent3, name: 小赵, max_chats: 1 } ]
  - name: hr
    display_name: 人事
    rule: always
    members: [ { staff_id: agent2, name: 小李, max_chats: 2 } ]
`

// TestAdminBrowser runs web/e2e/admin.test.mjs (the admin console in
// chromium) against the real serve wiring, with a control API that plays
// the users and agents through the webhook and writes workbooks to upload.
func TestAdminBrowser(t *testing.T) {
	s := startService(t, serviceOpts{driver: browserDriver(t), groups: adminGroups, extra: adminExtra})
	t.Setenv("DINGDESK_SERVER_PUBLIC_URL", s.url)
	files := t.TempDir()

	c := newBrowserControl(s, nil)
	// /xlsx writes a workbook of rows (arrays of cells) and returns its path.
	c.handle("/xlsx", func(r controlReq) (any, error) {
		f := excelize.NewFile()
		rows, _ := r["rows"].([]any)
		for i, row := range rows {
			cells, _ := row.([]any)
			cell, _ := excelize.CoordinatesToCellName(1, i+1)
			if err := f.SetSheetRow("Sheet1", cell, &cells); err != nil {
				return nil, err
			}
		}
		path := filepath.Join(files, r.str("name"))
		return map[string]string{"path": path}, f.SaveAs(path)
	})
	c.runScript(t, "admin.test.mjs", "ADMIN_SHOTS="+os.Getenv("DINGDESK_ADMIN_SHOTS"))
}
