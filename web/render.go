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
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dingdesk/dingdesk/config"
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

func loadPages(texts func() *config.WebTexts) (*pages, error) {
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
		"since":    func(t time.Time) string { return sinceText(texts(), t) },
		"dur":      func(d time.Duration) string { return durationText(texts(), d) },
		"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"reason":   func(r string) string { return reasonText(texts(), r) },
		"ending":   func(r string) string { return endText(texts(), r) },
		"sender":   func(m Message) string { return senderText(texts(), m) },
		"clip":     clipText,
		"presence": func(p Presence) string { return presenceText(texts(), p) },
		// presenceOf is presence for the monitor's plain strings.
		"presenceOf": func(p string) string { return presenceText(texts(), Presence(p)) },
		"chatType": func(c string) string {
			if c == "2" {
				return texts().ChatGroup
			}
			return texts().ChatPrivate
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

func sinceText(t *config.WebTexts, at time.Time) string {
	if at.IsZero() {
		return ""
	}
	return durationText(t, time.Since(at))
}

func durationText(t *config.WebTexts, d time.Duration) string {
	switch {
	case d < time.Minute:
		return expand(t.Seconds, "n", strconv.Itoa(int(d.Seconds())))
	case d < time.Hour:
		return expand(t.Minutes, "n", strconv.Itoa(int(d.Minutes())))
	default:
		return expand(t.Hours, "h", strconv.Itoa(int(d.Hours())), "m", strconv.Itoa(int(d.Minutes())%60))
	}
}

func reasonText(t *config.WebTexts, r string) string {
	if v := map[string]string{"no_answer": t.ReasonNoAnswer, "keyword": t.ReasonKeyword, "kb_handoff": t.ReasonKBHandoff,
		"human_only": t.ReasonHumanOnly, "transfer": t.ReasonTransfer}[r]; v != "" {
		return v
	}
	return r
}

func endText(t *config.WebTexts, r string) string {
	if v := map[string]string{"user_end": t.EndUser, "agent_end": t.EndAgent, "idle": t.EndIdle, "queue_left": t.EndQueueLeft,
		"queue_timeout": t.EndQueueTimeout, "transferred": t.EndTransferred, "agent_offline": t.EndAgentOffline}[r]; v != "" {
		return v
	}
	return r
}

func senderText(t *config.WebTexts, m Message) string {
	switch m.SenderKind {
	case "user":
		if m.SenderName != "" {
			return m.SenderName
		}
		return t.SenderUser
	case "bot":
		return t.SenderBot
	case "agent":
		if m.SenderName != "" {
			return expand(t.SenderAgent, "agent", m.SenderName)
		}
		return t.SenderAgentUnnamed
	default:
		return t.SenderSystem
	}
}

func presenceText(t *config.WebTexts, p Presence) string {
	switch p {
	case Online:
		return t.PresenceOnline
	case Busy:
		return t.PresenceBusy
	default:
		return t.PresenceOffline
	}
}

func clipText(s string, n int) string {
	r := []rune(strings.TrimSpace(s))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n]) + "…"
}
