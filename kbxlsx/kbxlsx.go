// Package kbxlsx reads and writes knowledge as Excel workbooks (.xlsx), the
// format admins of 钉小蜜-like products exchange knowledge in: one entry a
// row, columns 问题 / 相似问题 / 答案 / 类目 (similar questions one per line
// in their cell), optionally 编号 (the entry id: updates that entry), 转人工
// (是/否) and 状态 (启用/停用). Reading reports every bad row by its number
// in the sheet; nothing is written to the knowledge base here — see
// Preview and knowledge.(*Manager).ApplyImport.
package kbxlsx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/dingdesk/dingdesk/knowledge"
)

// Limits on an uploaded workbook.
const (
	MaxFileBytes = 32 << 20 // unzipped size
	MaxRows      = 50000
)

// SheetName is the sheet Write creates and Read prefers.
const SheetName = "知识"

// columns: the header each field is written with, and the headers read as
// it (case-insensitive).
var columns = []struct {
	field   string
	header  string
	aliases []string
}{
	{"question", "问题", []string{"问题", "标准问题", "question"}},
	{"similar", "相似问题", []string{"相似问题", "相似问法", "similar"}},
	{"answer", "答案", []string{"答案", "回答", "answer"}},
	{"category", "类目", []string{"类目", "分类", "category"}},
	{"id", "编号", []string{"编号", "id"}},
	{"handoff", "转人工", []string{"转人工", "handoff"}},
	{"disabled", "状态", []string{"状态", "status"}},
}

// ErrNoHeader: the sheet has no header row with 问题 and 答案 columns.
var ErrNoHeader = errors.New("表格缺少表头：第一行需要“问题”和“答案”列（可选“相似问题”“类目”“编号”“转人工”“状态”）")

// Read parses a workbook. rows are the well-formed rows; problems are the
// rows that could not be read (a bad 转人工 or 状态 value), by row number.
// An error means the file itself is unusable (not an xlsx, no header).
func Read(r io.Reader) (rows []knowledge.ImportRow, problems []knowledge.RowError, err error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("无法读取上传的文件：%w", err)
	}
	if len(data) > MaxFileBytes {
		return nil, nil, fmt.Errorf("文件超过 %d MB，请分批导入", MaxFileBytes>>20)
	}
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{UnzipSizeLimit: MaxFileBytes, UnzipXMLSizeLimit: MaxFileBytes})
	if err != nil {
		return nil, nil, fmt.Errorf("无法读取 Excel 文件（需要 .xlsx 格式）：%w", err)
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, nil, ErrNoHeader
	}
	sheet := sheets[f.GetActiveSheetIndex()]
	if slices.Contains(sheets, SheetName) {
		sheet = SheetName
	}
	cells, err := f.GetRows(sheet)
	if err != nil {
		return nil, nil, fmt.Errorf("无法读取工作表 %s：%w", sheet, err)
	}
	if len(cells) > MaxRows+1 {
		return nil, nil, fmt.Errorf("表格超过 %d 行，请分批导入", MaxRows)
	}
	// The header is the first non-empty row.
	head := -1
	for i, c := range cells {
		if slices.ContainsFunc(c, func(s string) bool { return strings.TrimSpace(s) != "" }) {
			head = i
			break
		}
	}
	if head < 0 {
		return nil, nil, ErrNoHeader
	}
	col := map[string]int{}
	for i, h := range cells[head] {
		h = strings.ToLower(strings.TrimSpace(h))
		for _, c := range columns {
			if _, seen := col[c.field]; !seen && slices.Contains(c.aliases, h) {
				col[c.field] = i
			}
		}
	}
	if _, ok := col["question"]; !ok {
		return nil, nil, ErrNoHeader
	}
	if _, ok := col["answer"]; !ok {
		return nil, nil, ErrNoHeader
	}
	for i := head + 1; i < len(cells); i++ {
		c := cells[i]
		get := func(field string) (string, bool) {
			j, ok := col[field]
			if !ok {
				return "", false
			}
			if j >= len(c) {
				return "", true
			}
			return strings.TrimSpace(c[j]), true
		}
		if !slices.ContainsFunc(c, func(s string) bool { return strings.TrimSpace(s) != "" }) {
			continue // a blank row
		}
		row := knowledge.ImportRow{Row: i + 1}
		row.Question, _ = get("question")
		row.Answer, _ = get("answer")
		row.Category, _ = get("category")
		row.ID, _ = get("id")
		if s, _ := get("similar"); s != "" {
			row.Similar = splitSimilar(s)
		}
		// choice reads an optional two-valued column (nil when empty); a
		// value it does not know is a row error and drops the row.
		bad := false
		choice := func(field, want string, parse func(string) (bool, bool)) *bool {
			s, _ := get(field)
			if s == "" {
				return nil
			}
			v, good := parse(s)
			if !good {
				problems = append(problems, knowledge.RowError{Row: row.Row, Field: field, Msg: fmt.Sprintf("“%s”无法识别，应为%s", s, want)})
				bad = true
			}
			return &v
		}
		row.Handoff = choice("handoff", "“是”或“否”", parseYesNo)
		row.Disabled = choice("disabled", "“启用”或“停用”", parseStatus)
		if !bad {
			rows = append(rows, row)
		}
	}
	return rows, problems, nil
}

// splitSimilar splits a cell into questions: one per line (Alt+Enter in
// Excel). Only lines: a question may contain any other character, and an
// export must read back as it was.
func splitSimilar(s string) []string {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseYesNo(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "是", "y", "yes", "true", "1", "转人工":
		return true, true
	case "否", "n", "no", "false", "0":
		return false, true
	}
	return false, false
}

func parseStatus(s string) (disabled, ok bool) {
	switch strings.ToLower(s) {
	case "停用", "禁用", "disabled", "off":
		return true, true
	case "启用", "正常", "enabled", "on":
		return false, true
	}
	return false, false
}

// Preview reads a workbook and plans its import against the current
// knowledge (a dry run): the read problems and the plan's errors together,
// by row.
func Preview(ctx context.Context, m *knowledge.Manager, r io.Reader) (*knowledge.Plan, error) {
	rows, problems, err := Read(r)
	if err != nil {
		return nil, err
	}
	p, err := m.PlanImport(ctx, rows)
	if err != nil {
		return nil, err
	}
	p.AddErrors(problems)
	return p, nil
}

// Stage reads a workbook, previews its import and keeps it for
// knowledge.(*Manager).ConfirmImport under the returned token (the
// console's upload → preview → confirm, on any replica).
func Stage(ctx context.Context, m *knowledge.Manager, st knowledge.StagedStore, actor string, r io.Reader) (string, *knowledge.Plan, error) {
	rows, problems, err := Read(r)
	if err != nil {
		return "", nil, err
	}
	return m.StageImport(ctx, st, actor, rows, problems)
}

// Write writes entries as a workbook with the columns Read understands,
// so an export edited in Excel imports back.
func Write(w io.Writer, entries []knowledge.Entry) error {
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName(f.GetSheetName(0), SheetName); err != nil {
		return err
	}
	header := make([]any, len(columns))
	for i, c := range columns {
		header[i] = c.header
	}
	if err := f.SetSheetRow(SheetName, "A1", &header); err != nil {
		return err
	}
	for i, e := range entries {
		handoff, status := "否", "启用"
		if e.Handoff {
			handoff = "是"
		}
		if e.Disabled {
			status = "停用"
		}
		row := []any{e.Question, strings.Join(e.Similar, "\n"), e.Answer, e.Category, e.ID, handoff, status}
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		if err := f.SetSheetRow(SheetName, cell, &row); err != nil {
			return err
		}
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	wrap, err := f.NewStyle(&excelize.Style{Alignment: &excelize.Alignment{WrapText: true, Vertical: "top"}})
	if err != nil {
		return err
	}
	last, _ := excelize.CoordinatesToCellName(len(columns), len(entries)+1)
	if len(entries) > 0 {
		if err := f.SetCellStyle(SheetName, "A2", last, wrap); err != nil {
			return err
		}
	}
	if err := f.SetCellStyle(SheetName, "A1", "G1", bold); err != nil {
		return err
	}
	for col, width := range map[string]float64{"A": 30, "B": 36, "C": 60, "D": 12, "E": 18, "F": 8, "G": 8} {
		if err := f.SetColWidth(SheetName, col, col, width); err != nil {
			return err
		}
	}
	if err := f.SetPanes(SheetName, &excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	return f.Write(w)
}
