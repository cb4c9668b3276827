package main

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/xuri/excelize/v2"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
)

const adminExtra = `
admins: [ { staff_id: boss, name: 管理员 } ]
`

// adminRoutes are every route of the console, from the router itself, so
// a page added later is covered by the refusal test without a list here.
func adminRoutes(t *testing.T, s *service) []gin.RouteInfo {
	t.Helper()
	r, ok := s.main.routes(s.main.Config.Current()).(*gin.Engine)
	if !ok {
		t.Fatal("routes is not a gin engine")
	}
	var out []gin.RouteInfo
	for _, ri := range r.Routes() {
		if strings.HasPrefix(ri.Path, "/admin") {
			out = append(out, ri)
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d admin routes", len(out))
	}
	return out
}

func concrete(path string) string {
	return regexp.MustCompile(`:[a-z]+`).ReplaceAllString(path, "1")
}

// Staff who are agents but not admins are refused every admin page and
// action; nothing runs behind the refusal.
func TestAdminConsoleRefusesNonAdmins(t *testing.T) {
	s := startService(t, serviceOpts{extra: adminExtra})
	agent := newBrowser(t, s.url)
	agent.loginByLink(loginLink(t, s, "agent1"))
	anon := newBrowser(t, s.url)
	for _, r := range adminRoutes(t, s) {
		p := concrete(r.Path)
		var code int
		var page string
		if r.Method == http.MethodGet {
			code, page = agent.get(p)
		} else {
			code, page = agent.post(p, url.Values{"question": {"x"}, "entry": {"vpn"}, "answer": {"y"}})
		}
		if code != http.StatusForbidden || !strings.Contains(page, "没有打开此页面的权限") {
			t.Errorf("agent %s %s = %d", r.Method, p, code)
		}
		if code, _ := anon.do(r.Method, p, url.Values{}, nil); code != http.StatusUnauthorized {
			t.Errorf("anonymous %s %s = %d", r.Method, p, code)
		}
	}
	// The refused POSTs changed nothing: vpn has no similar question "x".
	if got := s.ask("u1", "x").Text; strings.Contains(got, "VPN答案") {
		t.Fatalf("a refused action ran: %q", got)
	}
	// The agent's own pages still work.
	if code, _ := agent.get("/desk"); code != http.StatusOK {
		t.Fatalf("/desk for the agent = %d", code)
	}
}

// An admin's console through the real serve: every page, the one-click
// 未解决问题 → similar question, an entry edit, an import previewed and
// confirmed, the reports with their chart and CSVs, transcripts.
func TestAdminConsolePages(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		s := startService(t, serviceOpts{driver: driver, extra: adminExtra})
		b := newBrowser(t, s.url)
		b.loginByLink(loginLink(t, s, "boss"))

		for path, want := range map[string]string{
			"/admin/monitor": "实时监控", "/admin/monitor/live": "IT 服务台", "/admin/unanswered": "未解决问题",
			"/admin/kb": "VPN 连不上怎么办", "/admin/kb/new": "新建知识", "/admin/kb/e/vpn": "VPN答案",
			"/admin/kb/import": "上传并预览", "/admin/reports": "<svg", "/admin/transcripts": "会话记录",
		} {
			if code, page := b.get(path); code != http.StatusOK || !strings.Contains(page, want) {
				t.Errorf("%s = %d, want %q in it", path, code, want)
			}
		}

		// 未解决问题: an unknown question, added to vpn in one click.
		q := "公司网络远程接入怎么弄"
		s.toUser(s.say("u1", q), "u1", "抱歉")
		_, page := b.get("/admin/unanswered")
		if !strings.Contains(page, q) {
			t.Fatalf("未解决问题 lacks %q", q)
		}
		code, page := b.do(http.MethodPost, "/admin/unanswered/similar", url.Values{"_csrf": {b.csrf}, "question": {q}, "entry": {"vpn"}}, nil)
		if code != http.StatusOK || !strings.Contains(page, "已将") || strings.Contains(page, `data-question="`+q+`"`) {
			t.Fatalf("add as similar: %d", code)
		}
		eventually(t, "the bot answering the added question", func() bool { return strings.Contains(s.ask("u2", q).Text, "VPN答案") })

		// An edit the bot uses.
		_, form := b.get("/admin/kb/e/printer")
		version := regexp.MustCompile(`name="version" value="(\d+)"`).FindStringSubmatch(form)[1]
		code, _ = b.do(http.MethodPost, "/admin/kb/e/printer", url.Values{"_csrf": {b.csrf}, "version": {version},
			"question": {"打印机怎么添加"}, "similar": {"电脑找不到打印机\n打印机显示脱机"}, "answer": {"打印机新答案：找前台。"}, "category": {"IT"}}, nil)
		if code != http.StatusOK {
			t.Fatalf("edit: %d", code)
		}
		eventually(t, "the edited answer", func() bool { return strings.Contains(s.ask("u3", "打印机怎么添加").Text, "打印机新答案") })

		// Import: row 3 has no answer; nothing applies until confirmed.
		body, ctype := xlsxUpload(t, b.csrf, [][]any{{"问题", "相似问题", "答案", "类目"},
			{"报销需要什么材料", "报销材料有哪些\n报销要准备什么", "报销答案：发票和审批单。", "财务"}, {"发票抬头写什么", "", "", "财务"}})
		code, page = b.raw(http.MethodPost, "/admin/kb/import", body, ctype)
		if code != http.StatusOK || !strings.Contains(page, "第 3 行") || !strings.Contains(page, "新增 1 条") {
			t.Fatalf("preview: %d %s", code, page)
		}
		if strings.Contains(s.ask("u1", "报销要准备什么").Text, "报销答案") {
			t.Fatal("applied before confirming")
		}
		token := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page)[1]
		if code, page = b.do(http.MethodPost, "/admin/kb/import/confirm", url.Values{"_csrf": {b.csrf}, "token": {token}}, nil); code != http.StatusOK || !strings.Contains(page, "已导入 1 条") {
			t.Fatalf("confirm: %d", code)
		}
		eventually(t, "the imported answer", func() bool { return strings.Contains(s.ask("u1", "报销要准备什么").Text, "报销答案") })
		if code, x := b.get("/admin/kb/export"); code != http.StatusOK || !strings.HasPrefix(x, "PK") {
			t.Fatalf("export: %d", code)
		}

		// Reports and transcripts after a rated human session.
		s.toUser(s.say("agent1", "上线"), "agent1", "已上线")
		s.toUser(s.say("u9", "转人工"), "u9", "小王")
		m := s.say("u9", "我的工牌丢了怎么补办")
		s.waitFor(m, "the relay to the agent", func(x dingtalktest.Sent) bool { return isTo(x, "agent1") && strings.Contains(x.Text, "工牌") })
		s.toUser(s.say("agent1", "请到前台登记补办工牌，一般三天可取。"), "u9", "前台登记")
		s.toUser(s.say("u9", "结束会话"), "u9", "评价")
		s.toUser(s.say("u9", "4"), "u9", "感谢")
		if code, csv := b.get("/admin/reports/report.csv"); code != http.StatusOK || !strings.Contains(csv, "会话量") || !strings.Contains(csv, "小王") {
			t.Fatalf("report.csv: %d %s", code, csv)
		}
		if code, csv := b.get("/admin/reports/sessions.csv"); code != http.StatusOK || !strings.Contains(csv, "u9") || !strings.Contains(csv, ",是,4") {
			t.Fatalf("sessions.csv: %d %s", code, csv)
		}
		// 客服已解答: the agent's answer offered as a draft entry.
		if _, page := b.get("/admin/unanswered"); !strings.Contains(page, "我的工牌丢了怎么补办") || !strings.Contains(page, "请到前台登记补办工牌") {
			t.Fatalf("客服已解答 lacks the agent's answer: %s", page)
		}
		// The agent sees the rating in 已结束.
		ab := newBrowser(t, s.url)
		ab.loginByLink(loginLink(t, s, "agent1"))
		if _, ended := ab.get("/desk/ended"); !strings.Contains(ended, `<td class="rating">4 分</td>`) {
			t.Fatalf("已结束 lacks the rating: %s", ended)
		}
		_, page = b.get("/admin/transcripts?user=u9")
		id := regexp.MustCompile(`/admin/transcripts/(\d+)`).FindStringSubmatch(page)
		if id == nil {
			t.Fatalf("no session found: %s", page)
		}
		if _, tr := b.get("/admin/transcripts/" + id[1]); !strings.Contains(tr, "转人工") || !strings.Contains(tr, "感谢您的评价") {
			t.Fatalf("transcript: %s", tr)
		}
	})
}

// raw posts a body as is (multipart uploads).
func (b *browser) raw(method, path string, body []byte, ctype string) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// xlsxUpload is a multipart form with the CSRF field and a workbook of rows.
func xlsxUpload(t *testing.T, csrf string, rows [][]any) ([]byte, string) {
	t.Helper()
	f := excelize.NewFile()
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow("Sheet1", cell, &r); err != nil {
			t.Fatal(err)
		}
	}
	var x bytes.Buffer
	if err := f.Write(&x); err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("_csrf", csrf)
	fw, _ := w.CreateFormFile("file", "kb.xlsx")
	_, _ = fw.Write(x.Bytes())
	_ = w.Close()
	return body.Bytes(), w.FormDataContentType()
}
