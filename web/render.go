package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Templates and static assets are part of the binary. htmx is vendored:
// htmx.org 2.0.11 (dist/htmx.min.js from the npm package, unmodified).
//
//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages renders the embedded templates. Each page template is parsed
// together with layout.html and fragments.html; fragments are rendered on
// their own for htmx swaps.
type pages struct {
	byName    map[string]*template.Template
	fragments *template.Template
	assets    map[string]string // name → content hash
}

var pageNames = []string{"login", "link", "error", "desk", "ended", "settings", "admin"}

func loadPages() (*pages, error) {
	p := &pages{byName: map[string]*template.Template{}, assets: map[string]string{}}
	err := fs.WalkDir(staticFS, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		p.assets[strings.TrimPrefix(name, "static/")] = hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{
		"asset": func(name string) (string, error) {
			h, ok := p.assets[name]
			if !ok {
				return "", fmt.Errorf("no static asset %q", name)
			}
			return "/static/" + h + "/" + name, nil
		},
		"datetime": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return localTime(t).Format("01-02 15:04")
		},
		"since":    sinceText,
		"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"reason":   reasonText,
		"ending":   endText,
		"sender":   senderText,
		"clip":     clipText,
		"presence": presenceText,
		"chatType": func(t string) string {
			if t == "2" {
				return "群聊"
			}
			return "单聊"
		},
	}
	for k, fn := range adminFuncs {
		funcs[k] = fn
	}
	p.fragments, err = template.New("fragments.html").Funcs(funcs).ParseFS(templateFS, "templates/fragments.html", "templates/admin.html")
	if err != nil {
		return nil, err
	}
	for _, n := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/fragments.html", "templates/"+n+".html")
		if err != nil {
			return nil, err
		}
		p.byName[n] = t
	}
	return p, nil
}

func (p *pages) write(c *gin.Context, status int, t *template.Template, name string, data any) {
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		c.String(http.StatusInternalServerError, "template %s: %v", name, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Referrer-Policy", "same-origin")
	c.Data(status, "text/html; charset=utf-8", b.Bytes())
}

// page renders a full page (layout.html around the page's "content").
func (p *pages) page(c *gin.Context, status int, name string, data gin.H) {
	if data == nil {
		data = gin.H{}
	}
	if id, ok := c.Get("dingdesk.identity"); ok {
		data["Me"] = id
	}
	if ws := webSessionFrom(c); ws != nil {
		data["CSRF"] = ws.CSRF
	}
	data["Page"] = name
	c.Header("X-Frame-Options", "SAMEORIGIN")
	p.write(c, status, p.byName[name], "layout.html", data)
}

// fragment renders one {{define}} of fragments.html.
func (p *pages) fragment(c *gin.Context, status int, name string, data any) {
	p.write(c, status, p.fragments, name, data)
}

// static serves an embedded asset by its content hash: the URL changes
// with the content, so it is cached for a year.
func (s *Server) static(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("name"), "/")
	hash, ok := s.pages.assets[name]
	if !ok {
		c.Status(http.StatusNotFound)
		return
	}
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil {
		c.Status(http.StatusNotFound)
		return
	}
	if c.Param("hash") == hash {
		c.Header("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		c.Header("Cache-Control", "no-cache") // an old page asking for a new asset
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, ct, b)
}

// shanghai is the zone times are shown in (the product serves Chinese
// organisations; service rules default to it too).
var shanghai = func() *time.Location {
	if l, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return l
	}
	return time.FixedZone("CST", 8*3600)
}()

func localTime(t time.Time) time.Time { return t.In(shanghai) }

func sinceText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return durationText(time.Since(t))
}

func durationText(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d秒", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d分钟", int(d.Minutes()))
	default:
		return fmt.Sprintf("%d小时%d分", int(d.Hours()), int(d.Minutes())%60)
	}
}

func reasonText(r string) string {
	switch r {
	case "no_answer":
		return "机器人多次未能回答"
	case "keyword":
		return "用户要求转人工"
	case "kb_handoff":
		return "知识点设置为转人工"
	case "human_only":
		return "仅人工服务"
	case "transfer":
		return "转接"
	}
	return r
}

func endText(r string) string {
	switch r {
	case "user_end":
		return "用户结束"
	case "agent_end":
		return "客服结束"
	case "idle":
		return "用户超时未回复"
	case "queue_left":
		return "用户退出排队"
	case "queue_timeout":
		return "排队超时"
	case "transferred":
		return "已转接"
	case "agent_offline":
		return "客服下线，已转交"
	}
	return r
}

func senderText(m Message) string {
	switch m.SenderKind {
	case "user":
		if m.SenderName != "" {
			return m.SenderName
		}
		return "用户"
	case "bot":
		return "机器人"
	case "agent":
		if m.SenderName != "" {
			return "客服 " + m.SenderName
		}
		return "客服"
	default:
		return "系统"
	}
}

func presenceText(p Presence) string {
	switch p {
	case Online:
		return "在线"
	case Busy:
		return "忙碌"
	default:
		return "离线"
	}
}

func clipText(s string, n int) string {
	r := []rune(strings.TrimSpace(s))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n]) + "…"
}
