package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dingdesk/dingdesk/kbxlsx"
	"github.com/dingdesk/dingdesk/knowledge"
	"github.com/dingdesk/dingdesk/monitor"
	"github.com/dingdesk/dingdesk/report"
	"github.com/dingdesk/dingdesk/svgchart"
	"github.com/dingdesk/dingdesk/transcript"
)

// The admin console (管理后台) under /admin, for the staff listed under
// admins: the live monitor, 未解决问题, knowledge editing with Excel import
// and export, reports and transcripts. It lives in this package, beside the
// workbench, because it is the same site: the same login, browser
// sessions, CSRF check, layout and assets; a package of its own would have
// to export all of them. Every route is behind Protected(RoleAdmin), so
// agents who are not admins are refused every page and every action.

// Admin is what the console needs of the domain packages (knowledge,
// kbxlsx, monitor, report, transcript); cmd/dingdesk wires it.
type Admin interface {
	Monitor(ctx context.Context) (*monitor.Status, error)

	Unanswered(ctx context.Context) ([]knowledge.Question, []knowledge.AgentAnswer, error)
	AddAsSimilar(ctx context.Context, actor, question, entryID string) error
	CreateFromQuestion(ctx context.Context, actor, question string, d knowledge.Draft) error
	Ignore(ctx context.Context, actor, question string) error

	Entries(ctx context.Context, f knowledge.Filter) ([]knowledge.Entry, []knowledge.Category, error)
	Entry(ctx context.Context, id string) (knowledge.Entry, error)
	CreateEntry(ctx context.Context, actor string, d knowledge.Draft) (knowledge.Entry, error)
	UpdateEntry(ctx context.Context, actor, id string, version int64, d knowledge.Draft) (knowledge.Entry, error)
	SetDisabled(ctx context.Context, actor, id string, disabled bool) error
	DeleteEntry(ctx context.Context, actor, id string) error
	// StageImport previews a workbook and keeps it under the token.
	StageImport(ctx context.Context, actor string, r io.Reader) (token string, p *knowledge.Plan, err error)
	ConfirmImport(ctx context.Context, actor, token string) (*knowledge.Plan, int, error)
	Export(ctx context.Context, w io.Writer) error

	Report(ctx context.Context, o report.Options) (*report.Report, error)
	ReportSessions(ctx context.Context, from, to time.Time, loc *time.Location) ([]report.Session, error)

	Transcripts(ctx context.Context, q transcript.Query) ([]transcript.Session, error)
	Transcript(ctx context.Context, id int64) (*transcript.Transcript, error)
}

func (s *Server) mountAdmin(r gin.IRouter) {
	if s.d.Admin == nil {
		return
	}
	a := r.Group("/admin", s.Protected(RoleAdmin))
	a.GET("", func(c *gin.Context) { c.Redirect(http.StatusFound, "/admin/monitor") })
	a.GET("/monitor", s.adminMonitor)
	a.GET("/monitor/live", s.adminMonitorLive)
	a.GET("/unanswered", s.adminUnanswered)
	a.POST("/unanswered/similar", s.adminAddSimilar)
	a.POST("/unanswered/create", s.adminCreateFromQuestion)
	a.POST("/unanswered/ignore", s.adminIgnore)
	a.GET("/kb", s.adminKB)
	a.GET("/kb/new", s.adminEntryForm)
	a.POST("/kb/new", s.adminEntryCreate)
	a.GET("/kb/e/:id", s.adminEntryForm)
	a.POST("/kb/e/:id", s.adminEntryUpdate)
	a.POST("/kb/e/:id/disable", s.adminEntryDisable(true))
	a.POST("/kb/e/:id/enable", s.adminEntryDisable(false))
	a.POST("/kb/e/:id/delete", s.adminEntryDelete)
	a.GET("/kb/import", s.adminImportPage)
	a.POST("/kb/import", s.adminImportPreview)
	a.POST("/kb/import/confirm", s.adminImportConfirm)
	a.GET("/kb/export", s.adminExport)
	a.GET("/reports", s.adminReports)
	a.GET("/reports/report.csv", s.adminReportCSV)
	a.GET("/reports/sessions.csv", s.adminSessionsCSV)
	a.GET("/transcripts", s.adminTranscripts)
	a.GET("/transcripts/:id", s.adminTranscript)
}

// adminPage renders a console section inside the layout.
func (s *Server) adminPage(c *gin.Context, section, title string, data gin.H) {
	if data == nil {
		data = gin.H{}
	}
	data["Section"], data["Title"] = section, title
	data["Notice"] = c.Query("ok")
	s.pages.page(c, http.StatusOK, "admin", data)
}

// done redirects back after an action, with a notice to show (PRG: a
// reload does not repeat the action).
func done(c *gin.Context, to, notice string) {
	sep := "?"
	if strings.Contains(to, "?") {
		sep = "&"
	}
	c.Redirect(http.StatusSeeOther, to+sep+"ok="+url.QueryEscape(notice))
}

// adminFail shows the knowledge package's refusals in Chinese.
func (s *Server) adminFail(c *gin.Context, err error) {
	var ve *knowledge.ValidationError
	switch {
	case errors.As(err, &ve):
		msgs := make([]string, len(ve.Problems))
		for i, p := range ve.Problems {
			msgs[i] = p.Msg
		}
		err = &ShownError{Text: "保存失败：" + strings.Join(msgs, "；")}
	case errors.Is(err, knowledge.ErrConflict):
		err = &ShownError{Text: "这条知识已被他人修改，请刷新页面后再改。"}
	case errors.Is(err, knowledge.ErrNotFound):
		err = &ShownError{Text: "没有这条知识（可能已被删除）。"}
	case errors.Is(err, knowledge.ErrEmptyQuestion):
		err = &ShownError{Text: "问题不能为空。"}
	case errors.Is(err, knowledge.ErrStagedGone):
		err = &ShownError{Text: "预览已失效（超过一小时或已导入），请重新上传文件。"}
	case errors.Is(err, kbxlsx.ErrNoHeader):
		err = &ShownError{Text: "文件第一行需要列名：问题、相似问题、答案、类目。"}
	case errors.Is(err, transcript.ErrNotFound):
		err = &ShownError{Text: "没有这个会话。"}
	}
	s.fail(c, err)
}

func actor(c *gin.Context) string { return IdentityFrom(c).StaffID }

// ---- 实时监控 ----

func (s *Server) adminMonitor(c *gin.Context) {
	st, err := s.d.Admin.Monitor(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	s.adminPage(c, "monitor", "实时监控", gin.H{"Status": st})
}

// adminMonitorLive is the monitor's figures alone, which the page polls.
func (s *Server) adminMonitorLive(c *gin.Context) {
	st, err := s.d.Admin.Monitor(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	s.pages.fragment(c, http.StatusOK, "admin-monitor-live", gin.H{"Status": st})
}

// ---- 未解决问题 ----

func (s *Server) adminUnanswered(c *gin.Context) {
	qs, drafts, err := s.d.Admin.Unanswered(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	s.adminPage(c, "unanswered", "未解决问题", gin.H{"Questions": qs, "Drafts": drafts})
}

func (s *Server) adminAddSimilar(c *gin.Context) {
	q, id := strings.TrimSpace(c.PostForm("question")), c.PostForm("entry")
	if err := s.d.Admin.AddAsSimilar(c.Request.Context(), actor(c), q, id); err != nil {
		s.adminFail(c, err)
		return
	}
	done(c, "/admin/unanswered", "已将“"+q+"”添加为相似问题")
}

func (s *Server) adminCreateFromQuestion(c *gin.Context) {
	q := strings.TrimSpace(c.PostForm("question"))
	d := knowledge.Draft{Question: strings.TrimSpace(c.DefaultPostForm("title", q)), Answer: strings.TrimSpace(c.PostForm("answer")),
		Category: strings.TrimSpace(c.PostForm("category"))}
	if err := s.d.Admin.CreateFromQuestion(c.Request.Context(), actor(c), q, d); err != nil {
		s.adminFail(c, err)
		return
	}
	done(c, "/admin/unanswered", "已新建知识“"+d.Question+"”")
}

func (s *Server) adminIgnore(c *gin.Context) {
	q := strings.TrimSpace(c.PostForm("question"))
	if err := s.d.Admin.Ignore(c.Request.Context(), actor(c), q); err != nil {
		s.adminFail(c, err)
		return
	}
	done(c, "/admin/unanswered", "已忽略“"+q+"”")
}

// ---- 知识库 ----

func (s *Server) adminKB(c *gin.Context) {
	f := knowledge.Filter{Category: c.Query("category"), Text: strings.TrimSpace(c.Query("q")), Disabled: true, Sort: c.Query("sort")}
	list, cats, err := s.d.Admin.Entries(c.Request.Context(), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.adminPage(c, "kb", "知识库", gin.H{"Entries": list, "Categories": cats, "Filter": f})
}

func (s *Server) adminEntryForm(c *gin.Context) {
	data := gin.H{"Entry": knowledge.Entry{}}
	title := "新建知识"
	if id := c.Param("id"); id != "" {
		e, err := s.d.Admin.Entry(c.Request.Context(), id)
		if err != nil {
			s.adminFail(c, err)
			return
		}
		data["Entry"], data["Editing"] = e, true
		title = "编辑知识"
	}
	s.adminPage(c, "entry", title, data)
}

// draftOf reads the entry form; similar questions one per line.
func draftOf(c *gin.Context) knowledge.Draft {
	var similar []string
	for _, l := range strings.Split(c.PostForm("similar"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			similar = append(similar, l)
		}
	}
	return knowledge.Draft{ID: strings.TrimSpace(c.PostForm("id")), Question: strings.TrimSpace(c.PostForm("question")),
		Similar: similar, Answer: strings.TrimSpace(c.PostForm("answer")), Category: strings.TrimSpace(c.PostForm("category")),
		Handoff: c.PostForm("handoff") == "on"}
}

func (s *Server) adminEntryCreate(c *gin.Context) {
	e, err := s.d.Admin.CreateEntry(c.Request.Context(), actor(c), draftOf(c))
	if err != nil {
		s.adminFail(c, err)
		return
	}
	done(c, "/admin/kb", "已新建知识“"+e.Question+"”")
}

func (s *Server) adminEntryUpdate(c *gin.Context) {
	version, _ := strconv.ParseInt(c.PostForm("version"), 10, 64)
	e, err := s.d.Admin.UpdateEntry(c.Request.Context(), actor(c), c.Param("id"), version, draftOf(c))
	if err != nil {
		s.adminFail(c, err)
		return
	}
	done(c, "/admin/kb", "已保存知识“"+e.Question+"”")
}

func (s *Server) adminEntryDisable(disabled bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := s.d.Admin.SetDisabled(c.Request.Context(), actor(c), c.Param("id"), disabled); err != nil {
			s.adminFail(c, err)
			return
		}
		notice := "已启用"
		if disabled {
			notice = "已停用"
		}
		done(c, "/admin/kb", notice)
	}
}

func (s *Server) adminEntryDelete(c *gin.Context) {
	if err := s.d.Admin.DeleteEntry(c.Request.Context(), actor(c), c.Param("id")); err != nil {
		s.adminFail(c, err)
		return
	}
	done(c, "/admin/kb", "已删除")
}

// ---- Excel 导入导出 ----

func (s *Server) adminImportPage(c *gin.Context) { s.adminPage(c, "import", "批量导入", nil) }

func (s *Server) adminImportPreview(c *gin.Context) {
	fh, err := c.FormFile("file")
	if err != nil {
		s.refuse(c, http.StatusBadRequest, "导入失败", "请选择要导入的 .xlsx 文件。")
		return
	}
	if fh.Size > kbxlsx.MaxFileBytes {
		s.refuse(c, http.StatusRequestEntityTooLarge, "导入失败", fmt.Sprintf("文件太大（上限 %d MB）。", kbxlsx.MaxFileBytes>>20))
		return
	}
	f, err := fh.Open()
	if err != nil {
		s.fail(c, err)
		return
	}
	defer f.Close()
	token, plan, err := s.d.Admin.StageImport(c.Request.Context(), actor(c), f)
	if err != nil {
		if !errors.Is(err, kbxlsx.ErrNoHeader) && !errors.Is(err, knowledge.ErrStagedGone) {
			err = &ShownError{Text: "无法读取该文件，请上传 Excel（.xlsx）文件：" + err.Error()}
		}
		s.adminFail(c, err)
		return
	}
	s.adminPage(c, "import", "批量导入", gin.H{"Plan": plan, "Token": token, "File": fh.Filename})
}

func (s *Server) adminImportConfirm(c *gin.Context) {
	plan, n, err := s.d.Admin.ConfirmImport(c.Request.Context(), actor(c), c.PostForm("token"))
	if err != nil {
		s.adminFail(c, err)
		return
	}
	_ = plan
	done(c, "/admin/kb", fmt.Sprintf("已导入 %d 条知识", n))
}

func (s *Server) adminExport(c *gin.Context) {
	var b bytes.Buffer
	if err := s.d.Admin.Export(c.Request.Context(), &b); err != nil {
		s.fail(c, err)
		return
	}
	name := "knowledge-" + s.d.Now().In(shanghai).Format("20060102") + ".xlsx"
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Data(http.StatusOK, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b.Bytes())
}

// ---- 数据报表 ----

// reportQuery reads from, to (local dates, both included; the last 7 days
// by default) and by (day, week, month, group, agent, comma-separated).
func (s *Server) reportQuery(c *gin.Context) (report.Options, string, string, string, error) {
	o := report.Options{Location: shanghai}
	today := s.d.Now().In(shanghai)
	from, to, by := c.DefaultQuery("from", today.AddDate(0, 0, -6).Format(time.DateOnly)), c.DefaultQuery("to", today.Format(time.DateOnly)), c.DefaultQuery("by", "day")
	var err error
	if o.From, err = time.ParseInLocation(time.DateOnly, from, shanghai); err != nil {
		return o, from, to, by, &ShownError{Text: "开始日期格式应为 2026-12-01"}
	}
	if o.To, err = time.ParseInLocation(time.DateOnly, to, shanghai); err != nil || o.To.Before(o.From) {
		return o, from, to, by, &ShownError{Text: "结束日期应为不早于开始日期的日期，如 2026-12-31"}
	}
	for _, p := range strings.Split(by, ",") {
		switch p {
		case "day", "week", "month":
			o.Period = report.Period(p)
		case "group":
			o.ByGroup = true
		case "agent":
			o.ByAgent = true
		}
	}
	return o, from, to, by, nil
}

// groupNames are the skill groups' display names.
func (s *Server) groupNames() report.Names {
	names := report.Names{}
	for _, g := range s.d.Config().SkillGroups {
		names[g.Name] = g.DisplayName
	}
	return names
}

func (s *Server) adminReports(c *gin.Context) {
	o, from, to, by, err := s.reportQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	rep, err := s.d.Admin.Report(c.Request.Context(), o)
	if err != nil {
		s.fail(c, err)
		return
	}
	// The chart is by day over the whole range, whatever the table's split.
	daily := rep
	if o.Period != report.Day || o.ByGroup || o.ByAgent {
		if daily, err = s.d.Admin.Report(c.Request.Context(), report.Options{From: o.From, To: o.To, Location: o.Location, Period: report.Day}); err != nil {
			s.fail(c, err)
			return
		}
	}
	labels, sessions := daily.Column(func(m report.Metrics) float64 { return float64(m.Sessions) })
	_, handoffs := daily.Column(func(m report.Metrics) float64 { return float64(m.Handoffs) })
	_, questions := daily.Column(func(m report.Metrics) float64 { return float64(m.Questions) })
	chart := svgchart.Bars(svgchart.Chart{Title: "每日会话", Labels: labels, Series: []svgchart.Series{
		{Name: "机器人问题数", Values: questions}, {Name: "转人工", Values: handoffs}, {Name: "人工会话", Values: sessions}}})
	_, answer := daily.Column(func(m report.Metrics) float64 { return m.AnswerRate() })
	_, none := daily.Column(func(m report.Metrics) float64 { return m.NoAnswerRate() })
	rates := svgchart.Lines(svgchart.Chart{Title: "机器人回答率", Labels: labels, Format: svgchart.Percent, Series: []svgchart.Series{
		{Name: "回答率", Values: answer}, {Name: "无答案率", Values: none}}})
	q := url.Values{"from": {from}, "to": {to}, "by": {by}}.Encode()
	s.adminPage(c, "reports", "数据报表", gin.H{"Report": rep, "Chart": chart, "Rates": rates, "From": from, "To": to, "By": by,
		"Query": q, "Names": s.groupNames()})
}

func (s *Server) adminReportCSV(c *gin.Context) {
	o, from, to, _, err := s.reportQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if c.Query("by") == "" { // the download: one row per day × group × agent
		o.Period, o.ByGroup, o.ByAgent = report.Day, true, true
	}
	rep, err := s.d.Admin.Report(c.Request.Context(), o)
	if err != nil {
		s.fail(c, err)
		return
	}
	var b bytes.Buffer
	if err := report.WriteCSV(&b, rep, s.groupNames()); err != nil {
		s.fail(c, err)
		return
	}
	csvDownload(c, "report-"+from+"-"+to+".csv", b.Bytes())
}

func (s *Server) adminSessionsCSV(c *gin.Context) {
	o, from, to, _, err := s.reportQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	list, err := s.d.Admin.ReportSessions(c.Request.Context(), o.From, o.To, o.Location)
	if err != nil {
		s.fail(c, err)
		return
	}
	var b bytes.Buffer
	if err := report.WriteSessionsCSV(&b, list, o.Location, s.groupNames()); err != nil {
		s.fail(c, err)
		return
	}
	csvDownload(c, "sessions-"+from+"-"+to+".csv", b.Bytes())
}

func csvDownload(c *gin.Context, name string, body []byte) {
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Data(http.StatusOK, "text/csv; charset=utf-8", body)
}

// ---- 会话记录 ----

func (s *Server) adminTranscripts(c *gin.Context) {
	q := transcript.Query{User: strings.TrimSpace(c.Query("user")), Agent: strings.TrimSpace(c.Query("agent")),
		Group: c.Query("group"), Text: strings.TrimSpace(c.Query("text"))}
	if d, err := time.ParseInLocation(time.DateOnly, c.Query("from"), shanghai); err == nil {
		q.From = d
	}
	if d, err := time.ParseInLocation(time.DateOnly, c.Query("to"), shanghai); err == nil {
		q.To = d.AddDate(0, 0, 1)
	}
	list, err := s.d.Admin.Transcripts(c.Request.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.adminPage(c, "transcripts", "会话记录", gin.H{"Sessions": list, "Q": c.Request.URL.Query(), "Groups": s.d.Config().SkillGroups,
		"Names": s.groupNames()})
}

func (s *Server) adminTranscript(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		s.adminFail(c, transcript.ErrNotFound)
		return
	}
	t, err := s.d.Admin.Transcript(c.Request.Context(), id)
	if err != nil {
		s.adminFail(c, err)
		return
	}
	s.adminPage(c, "transcript", "会话记录", gin.H{"T": t, "Names": s.groupNames()})
}

// adminFuncs are the console's template helpers.
var adminFuncs = template.FuncMap{
	"pct":   svgchart.Percent,
	"secs":  func(d time.Duration) string { return svgchart.Seconds(d.Seconds()) },
	"join":  strings.Join,
	"lines": func(ss []string) string { return strings.Join(ss, "\n") },
	"group": func(names report.Names, g string) string {
		if n, ok := names[g]; ok && n != "" {
			return n
		}
		if g == "" {
			return "全部"
		}
		return g
	},
	"agentName": func(r report.Row) string {
		switch {
		case r.Agent == "":
			return "全部"
		case r.Agent == report.UnassignedAgent:
			return "未接入"
		case r.AgentName != "":
			return r.AgentName
		}
		return r.Agent
	},
	// rowOf pairs a report row with the group names for admin-report-row.
	"rowOf": func(r report.Row, names report.Names) map[string]any { return map[string]any{"Row": r, "Names": names} },
	// field names an import column as the workbook does.
	"field": func(f string) string {
		if n, ok := map[string]string{"question": "问题", "similar": "相似问题", "answer": "答案", "category": "类目",
			"id": "编号", "handoff": "转人工", "disabled": "状态"}[f]; ok {
			return n
		}
		if f == "" {
			return "整行"
		}
		return f
	},
	"action": func(a knowledge.PlanAction) string {
		return map[knowledge.PlanAction]string{knowledge.PlanCreate: "新增", knowledge.PlanUpdate: "更新", knowledge.PlanUnchanged: "不变"}[a]
	},
}
