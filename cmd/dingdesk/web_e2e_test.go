package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/web"
)

// browser is an HTTP client with a cookie jar, like one browser profile.
type browser struct {
	t    testing.TB
	hc   *http.Client
	base string
	csrf string
}

func newBrowser(t testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 15 * time.Second}}
}

var csrfRe = regexp.MustCompile(`data-csrf="([^"]+)"`)

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) (int, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = b.base + path
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if m := csrfRe.FindSubmatch(raw); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(raw)
}

func (b *browser) get(path string) (int, string) { return b.do(http.MethodGet, path, nil, nil) }

// post is an htmx POST with the page's CSRF token.
func (b *browser) post(path string, form url.Values) (int, string) {
	if form == nil {
		form = url.Values{}
	}
	return b.do(http.MethodPost, path, form, map[string]string{"X-CSRF-Token": b.csrf, "HX-Request": "true"})
}

// loginLink runs `dingdesk login-link` for staff against the service's
// config and returns the URL it printed.
func loginLink(t testing.TB, s *service, staff string) string {
	t.Helper()
	t.Setenv("DINGDESK_SERVER_PUBLIC_URL", s.url)
	var out, errOut bytes.Buffer
	if code := run([]string{"login-link", "-c", s.cfg, "--staff", staff}, nil, &out, &errOut); code != 0 {
		t.Fatalf("login-link exited %d: %s", code, errOut.String())
	}
	link := strings.TrimSpace(out.String())
	if !strings.HasPrefix(link, s.url+"/auth/link?t=") {
		t.Fatalf("login-link printed %q", link)
	}
	return link
}

// loginByLink opens the link page and submits it, as the page's script does.
func (b *browser) loginByLink(link string) {
	b.t.Helper()
	code, page := b.get(link)
	if code != http.StatusOK || !strings.Contains(page, `id="link-form"`) {
		b.t.Fatalf("link page: %d %s", code, page)
	}
	u, _ := url.Parse(link)
	code, page = b.do(http.MethodPost, "/auth/link", url.Values{"t": {u.Query().Get("t")}}, nil)
	if code != http.StatusOK || !strings.Contains(page, "客服工作台") {
		b.t.Fatalf("after login: %d %s", code, page)
	}
}

// onlySession waits until 会话列表 shows exactly one session and returns
// its id.
func (b *browser) onlySession(what string) string {
	b.t.Helper()
	var id string
	eventually(b.t, what, func() bool {
		_, page := b.get("/desk/list")
		if ids := sessionIDs(page); len(ids) == 1 {
			id = ids[0]
		}
		return id != ""
	})
	return id
}

func sessionIDs(page string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`class="session[^"]*" data-id="(\d+)"`).FindAllStringSubmatch(page, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func TestWebWorkbenchByLoginLink(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		s := startService(t, serviceOpts{driver: driver})
		s.fake.AddLoginUser(dingtalktest.LoginUser{UserID: "u1", Nick: "用户u1", Title: "测试工程师", Mobile: "13800000000"})
		b := newBrowser(t, s.url)
		b.loginByLink(loginLink(t, s, "agent1"))

		if code, page := b.post("/desk/presence", url.Values{"presence": {"online"}}); code != http.StatusOK || !strings.Contains(page, `data-presence="online"`) {
			t.Fatalf("上线: %d %s", code, page)
		}
		s.toUser(s.say("u1", "转人工"), "u1", "小王")
		id := b.onlySession("the new session in 会话列表")
		m := s.say("u1", "VPN 连不上怎么办")
		eventually(t, "the user's message unread", func() bool {
			_, page := b.get("/desk/list")
			return strings.Contains(page, `class="badge"`)
		})
		_, tr := b.get("/desk/s/" + id + "/transcript")
		if !strings.Contains(tr, "VPN 连不上怎么办") || !strings.Contains(tr, "转人工") {
			t.Fatalf("transcript lacks the user's lines: %s", tr)
		}
		if _, info := b.get("/desk/s/" + id + "/info"); !strings.Contains(info, "测试工程师") || !strings.Contains(info, "用户要求转人工") {
			t.Fatalf("会员信息 lacks the directory's title or the reason: %s", info)
		}
		_, sg := b.get("/desk/s/" + id + "/suggest")
		if !strings.Contains(sg, "VPN答案") || !strings.Contains(sg, "针对") {
			t.Fatalf("推荐知识 lacks the VPN answer: %s", sg)
		}
		_, kb := b.get("/desk/kb?q=" + url.QueryEscape("打印机"))
		if !strings.Contains(kb, "打印机答案") {
			t.Fatalf("搜索: %s", kb)
		}
		if code, _ := b.post("/desk/s/"+id+"/reply", url.Values{"text": {"您好，我来帮您看看"}}); code != http.StatusNoContent {
			t.Fatalf("reply: %d", code)
		}
		s.toUser(m, "u1", "您好，我来帮您看看")

		// 常用语: an agent's own one, stored.
		if code, _ := b.post("/desk/settings/canned", url.Values{"category": {"问候"}, "text": {"请稍等，我查一下"}}); code != http.StatusOK {
			t.Fatalf("add canned: %d", code)
		}
		if _, c := b.get("/desk/canned"); !strings.Contains(c, "请稍等，我查一下") || !strings.Contains(c, "您好，我是人工客服。") {
			t.Fatalf("常用语: %s", c)
		}

		m = s.mark()
		if code, _ := b.post("/desk/s/"+id+"/end", nil); code != http.StatusNoContent {
			t.Fatalf("end: %d", code)
		}
		s.toUser(m, "u1", "本次人工服务已结束")
		_, ended := b.get("/desk/ended")
		if !strings.Contains(ended, "/desk/s/"+id) {
			t.Fatalf("已结束 lacks the session: %s", ended)
		}
		for q, want := range map[string]bool{"u1": true, "用户u": true, "u2": false, "100%_!": false} {
			code, page := b.get("/desk/ended?range=7d&q=" + url.QueryEscape(q))
			if code != http.StatusOK || strings.Contains(page, "/desk/s/"+id) != want {
				t.Fatalf("已结束 search %q: %d, found %v, want %v", q, code, !want, want)
			}
		}
		code, page := b.get("/desk/s/" + id)
		if code != http.StatusOK || !strings.Contains(page, "会话已结束（只读）") || strings.Contains(page, `id="reply-text"`) {
			t.Fatalf("ended session is not read-only: %d", code)
		}
		if code, _ := b.post("/desk/s/"+id+"/reply", url.Values{"text": {"还在吗"}}); code != http.StatusConflict {
			t.Fatalf("reply to an ended session: %d, want 409", code)
		}
	})
}

func TestWebRefusals(t *testing.T) {
	s := startService(t, serviceOpts{})
	anon := newBrowser(t, s.url)
	if code, page := anon.get("/desk"); code != http.StatusUnauthorized || !strings.Contains(page, "请先登录") {
		t.Fatalf("no cookie: %d", code)
	}
	if code, _ := anon.do(http.MethodPost, "/desk/presence", url.Values{"presence": {"online"}}, nil); code != http.StatusUnauthorized {
		t.Fatalf("no cookie POST: %d", code)
	}

	a1, a2 := newBrowser(t, s.url), newBrowser(t, s.url)
	link := loginLink(t, s, "agent1")
	a1.loginByLink(link)
	// The same link again: refused, with a page that says why.
	if code, page := newBrowser(t, s.url).do(http.MethodPost, "/auth/link", url.Values{"t": {strings.TrimPrefix(link, s.url+"/auth/link?t=")}}, nil); code != http.StatusGone || !strings.Contains(page, "已经用过") {
		t.Fatalf("reused link: %d %s", code, page)
	}
	if code, page := newBrowser(t, s.url).get(link); code != http.StatusGone || !strings.Contains(page, "已经用过") {
		t.Fatalf("reused link page: %d", code)
	}
	// An expired link.
	tok := web.NewToken()
	now := time.Now()
	if err := gormstore.NewWebStore(s.main.DB).CreateLoginLink(context.Background(), web.HashToken(tok), "agent1", now.Add(-10*time.Minute), now.Add(-5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if code, page := newBrowser(t, s.url).get("/auth/link?t=" + tok); code != http.StatusGone || !strings.Contains(page, "已过期") {
		t.Fatalf("expired link: %d", code)
	}
	if code, _ := newBrowser(t, s.url).get("/auth/link?t=nonsense"); code != http.StatusNotFound {
		t.Fatalf("unknown link: %d", code)
	}
	// A link for someone who is neither agent nor admin is not issued.
	var out, errOut bytes.Buffer
	if code := run([]string{"login-link", "-c", s.cfg, "--staff", "stranger"}, nil, &out, &errOut); code == 0 {
		t.Fatalf("login-link for a stranger printed %q", out.String())
	}

	// A forged CSRF token changes nothing.
	if code, page := a1.do(http.MethodPost, "/desk/presence", url.Values{"presence": {"online"}}, map[string]string{"X-CSRF-Token": "forged"}); code != http.StatusForbidden || !strings.Contains(page, "CSRF") {
		t.Fatalf("forged CSRF: %d", code)
	}
	if _, st := a1.get("/desk/status"); !strings.Contains(st, `data-presence="offline"`) {
		t.Fatalf("forged CSRF changed the presence: %s", st)
	}

	// agent2's browser cannot see agent1's session.
	a2.loginByLink(loginLink(t, s, "agent2"))
	a1.post("/desk/presence", url.Values{"presence": {"online"}})
	s.toUser(s.say("u1", "转人工"), "u1", "小王")
	id := a1.onlySession("the session")
	for _, p := range []string{"/desk/s/" + id, "/desk/s/" + id + "/transcript", "/desk/s/" + id + "/info"} {
		if code, page := a2.get(p); code != http.StatusForbidden || !strings.Contains(page, "不属于您") {
			t.Fatalf("another agent's %s: %d", p, code)
		}
	}
	m := s.mark()
	if code, _ := a2.post("/desk/s/"+id+"/reply", url.Values{"text": {"我不是你的客服"}}); code != http.StatusForbidden {
		t.Fatalf("reply to another agent's session: %d", code)
	}
	if code, _ := a2.post("/desk/s/"+id+"/end", nil); code != http.StatusForbidden {
		t.Fatalf("end another agent's session: %d", code)
	}
	s.quietFor(m, "u1")

	// Logged out: the cookie no longer works.
	a1.do(http.MethodPost, "/logout", url.Values{"_csrf": {a1.csrf}}, nil)
	if code, _ := a1.get("/desk"); code != http.StatusUnauthorized {
		t.Fatalf("after logout: %d", code)
	}
}

func TestWebLoginByDingTalkOAuth(t *testing.T) {
	s := startService(t, serviceOpts{})
	s.fake.AllowRedirect(s.url + "/auth/dingtalk/callback")
	s.fake.AddLoginUser(dingtalktest.LoginUser{UserID: "agent1", Nick: "小王"})
	s.fake.AddLoginUser(dingtalktest.LoginUser{UserID: "someone", Nick: "路人"})
	s.fake.AddLoginUser(dingtalktest.LoginUser{UserID: "outsider", NotInOrg: true})

	s.fake.SelectLoginUser("agent1")
	b := newBrowser(t, s.url)
	if code, page := b.get("/auth/dingtalk/start"); code != http.StatusOK || !strings.Contains(page, "客服工作台") || !strings.Contains(page, "小王") {
		t.Fatalf("OAuth login: %d %s", code, page)
	}
	if code, _ := b.get("/desk/status"); code != http.StatusOK {
		t.Fatalf("after OAuth: %d", code)
	}

	s.fake.SelectLoginUser("someone") // in the org, but no agent
	if code, page := newBrowser(t, s.url).get("/auth/dingtalk/start"); code != http.StatusForbidden || !strings.Contains(page, "不是客服或管理员") {
		t.Fatalf("non-agent: %d", code)
	}
	s.fake.SelectLoginUser("outsider")
	if code, page := newBrowser(t, s.url).get("/auth/dingtalk/start"); code != http.StatusForbidden || !strings.Contains(page, "本企业") {
		t.Fatalf("outsider: %d", code)
	}
	// A callback without the state cookie (another site's forged login).
	if code, _ := newBrowser(t, s.url).get("/auth/dingtalk/callback?authCode=x&state=y"); code != http.StatusBadRequest {
		t.Fatalf("forged callback: %d", code)
	}

	// 免登: a code from the DingTalk client, posted by the login page.
	m := newBrowser(t, s.url)
	_, page := m.get("/login")
	state := regexp.MustCompile(`data-state="([^"]+)"`).FindStringSubmatch(page)
	if state == nil {
		t.Fatal("login page without state")
	}
	code := s.fake.MintJSAPICode("agent1")
	if st, page := m.do(http.MethodPost, "/auth/dingtalk/jsapi", url.Values{"state": {state[1]}, "code": {code}}, nil); st != http.StatusOK || !strings.Contains(page, "客服工作台") {
		t.Fatalf("免登: %d %s", st, page)
	}
}

// sseReader reads one SSE stream's events.
type sseReader struct {
	events chan [3]string // id, event, data
}

func openStream(t testing.TB, b *browser, lastID string) *sseReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/desk/events", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	hc := &http.Client{Jar: b.hc.Jar}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := &sseReader{events: make(chan [3]string, 100)}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev [3]string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev[1] != "" {
					r.events <- ev
				}
				ev = [3]string{}
			case strings.HasPrefix(line, "id: "):
				ev[0] = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev[1] = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev[2] = line[6:]
			}
		}
		close(r.events)
	}()
	return r
}

// next waits for an event of type typ (skipping others) within d.
func (r *sseReader) next(t testing.TB, typ string, d time.Duration) [3]string {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-r.events:
			if !ok {
				t.Fatalf("stream closed waiting for %q", typ)
			}
			if ev[1] == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %q event within %v", typ, d)
		}
	}
}

func TestWebEventsLiveAndResume(t *testing.T) {
	s := startService(t, serviceOpts{})
	b := newBrowser(t, s.url)
	b.loginByLink(loginLink(t, s, "agent1"))
	b.post("/desk/presence", url.Values{"presence": {"online"}})
	st := openStream(t, b, "")
	st.next(t, "hello", 5*time.Second)
	start := time.Now()
	s.say("u1", "转人工")
	ev := st.next(t, "message", 5*time.Second)
	t.Logf("转人工 reached the stream in %v", time.Since(start))
	lastID := ev[0]

	// While no stream is open, and across a restart on the same port and
	// database, the user writes: the reconnecting browser replays it.
	s.say("u1", "还有人吗")
	eventually(t, "the stored event", func() bool {
		_, page := b.get("/desk/list")
		return strings.Contains(page, "还有人吗")
	})
	restartSamePort(t, s)
	st2 := openStream(t, b, lastID)
	st2.next(t, "hello", 5*time.Second)
	if ev := st2.next(t, "message", 5*time.Second); ev[2] == "" {
		t.Fatalf("replayed event without a session id: %v", ev)
	}
	// An id the table no longer has (or never had) asks for a full refresh.
	st3 := openStream(t, b, "999999999")
	st3.next(t, "resync", 5*time.Second)
}

// restartSamePort restarts the service on its current address, as a
// deploy does; browsers reconnect to the same URL.
func restartSamePort(t testing.TB, s *service) {
	t.Helper()
	raw, err := os.ReadFile(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.main.Addr
	writeFile(t, s.cfg, strings.Replace(string(raw), `listen: "127.0.0.1:0"`, `listen: "`+addr+`"`, 1))
	s.stop()
	s.start()
}

func TestWebReplicaSeesOtherReplica(t *testing.T) {
	if len(gormstoretest.Drivers(t)) < 2 {
		t.Skip("needs MySQL (set " + gormstoretest.EnvMySQL + ")")
	}
	st := gormstoretest.NewStorage(t, "mysql")
	a := startService(t, serviceOpts{storage: &st})
	bsvc := startService(t, serviceOpts{storage: &st, fake: a.fake})
	br := newBrowser(t, a.url)
	br.loginByLink(loginLink(t, a, "agent1"))
	br.post("/desk/presence", url.Values{"presence": {"online"}})
	stream := openStream(t, br, "")
	stream.next(t, "hello", 5*time.Second)
	// The user's 转人工 is handled by replica B; A's browser hears of it.
	start := time.Now()
	bsvc.say("u1", "转人工")
	stream.next(t, "message", 5*time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("replica A's stream heard of B's change after %v", d)
	}
	br.onlySession("the session on replica A")
}

// An agent using both desks at once: what the DingTalk desk does reaches
// the browser's stream at once (the engine publishes it), and what the
// browser does is the DingTalk desk's state too.
func TestWebAndDingTalkDeskTogether(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		s := startService(t, serviceOpts{driver: driver})
		b := newBrowser(t, s.url)
		b.loginByLink(loginLink(t, s, "agent1"))
		st := openStream(t, b, "")
		st.next(t, "hello", 5*time.Second)

		start := time.Now()
		s.toUser(s.say("agent1", "上线"), "agent1", "已上线")
		if ev := st.next(t, "presence", 5*time.Second); ev[2] != "online" {
			t.Fatalf("presence event = %v", ev)
		}
		t.Logf("上线 in DingTalk reached the browser's stream in %v", time.Since(start))
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("the desk's presence reached the stream after %v", d)
		}
		if _, page := b.get("/desk/status"); !strings.Contains(page, `data-presence="online"`) {
			t.Fatalf("status after the desk's 上线: %s", page)
		}

		s.toUser(s.say("u1", "转人工"), "agent1", "新会话 #1")
		st.next(t, "session", 5*time.Second)
		id := b.onlySession("the session in 会话列表")
		// The web's reply reaches the user and makes the session the desk's
		// current one: the agent's plain text in DingTalk follows it.
		m := s.mark()
		if code, _ := b.post("/desk/s/"+id+"/reply", url.Values{"text": {"网页上回复"}}); code != http.StatusNoContent {
			t.Fatalf("reply: %d", code)
		}
		s.toUser(m, "u1", "网页上回复")
		st.next(t, "message", 5*time.Second)
		s.toUser(s.say("agent1", "钉钉里接着说"), "u1", "钉钉里接着说")
		if _, tr := b.get("/desk/s/" + id + "/transcript"); !strings.Contains(tr, "钉钉里接着说") || !strings.Contains(tr, "网页上回复") {
			t.Fatalf("transcript lacks one desk's reply: %s", tr)
		}

		// The desk's 忙碌 shows in the browser; the web's 结束会话 in the
		// desk's 列表.
		s.toUser(s.say("agent1", "忙碌"), "agent1", "忙碌")
		if ev := st.next(t, "presence", 5*time.Second); ev[2] != "busy" {
			t.Fatalf("presence event = %v", ev)
		}
		if code, _ := b.post("/desk/s/"+id+"/end", nil); code != http.StatusNoContent {
			t.Fatalf("end: %d", code)
		}
		st.next(t, "session", 5*time.Second)
		s.toUser(s.say("agent1", "列表"), "agent1", "当前没有会话")
	})
}

// 转接 from the browser to a named agent with a note: the receiver's
// DingTalk notice and 会员信息 carry the note.
func TestWebTransferToAgentWithNote(t *testing.T) {
	s := startService(t, serviceOpts{groups: `
skill_groups:
  - name: it
    rule: always
    members: [ { staff_id: agent1, name: 小王, max_chats: 2 }, { staff_id: agent2, name: 小李, max_chats: 2 } ]
`})
	a1 := newBrowser(t, s.url)
	a1.loginByLink(loginLink(t, s, "agent1"))
	a2 := newBrowser(t, s.url)
	a2.loginByLink(loginLink(t, s, "agent2"))
	a1.post("/desk/presence", url.Values{"presence": {"online"}})
	s.toUser(s.say("u1", "转人工"), "agent1", "新会话")
	id := a1.onlySession("agent1's session")
	_, dlg := a1.get("/desk/s/" + id + "/transfer")
	if !strings.Contains(dlg, `value="agent:agent2" disabled`) || !strings.Contains(dlg, "离线 · 接待 0/2") {
		t.Fatalf("an offline agent is offered: %s", dlg)
	}
	// Refused while agent2 is offline: the engine's text, nothing changed.
	code, body := a1.post("/desk/s/"+id+"/transfer", url.Values{"target": {"agent:agent2"}, "note": {"x"}})
	if code != http.StatusConflict || !strings.Contains(body, "小李现在不在线") {
		t.Fatalf("transfer to an offline agent: %d %s", code, body)
	}
	a2.post("/desk/presence", url.Values{"presence": {"online"}})
	_, dlg = a1.get("/desk/s/" + id + "/transfer")
	if strings.Contains(dlg, `value="agent:agent2" disabled`) || !strings.Contains(dlg, "在线 · 接待 0/2") {
		t.Fatalf("agent2 online is not offered: %s", dlg)
	}
	m := s.mark()
	if code, _ := a1.post("/desk/s/"+id+"/transfer", url.Values{"target": {"agent:agent2"}, "note": {"老客户，发票问题"}}); code != http.StatusNoContent {
		t.Fatalf("transfer: %d", code)
	}
	s.toUser(m, "agent2", "转接附言（小王）：老客户，发票问题")
	s.toUser(m, "u1", "小李")
	if _, info := a2.get("/desk/s/" + a2.onlySession("agent2's session") + "/info"); !strings.Contains(info, "老客户，发票问题") || !strings.Contains(info, "小王") {
		t.Fatalf("会员信息 lacks the note: %s", info)
	}
}

// The pages' server-side texts come from web.texts (and the engine's
// refusals from web.texts or desk.texts): an admin's wording shows.
func TestWebTextsConfigurable(t *testing.T) {
	s := startService(t, serviceOpts{extra: `
web:
  texts:
    login_required: 请用钉钉扫码登录工作台。
    not_yours: 别人的会话，看不了。
    presence_online: 接待中
desk:
  texts:
    err_self_transfer: 自己转给自己没有意义
`})
	if code, page := newBrowser(t, s.url).get("/desk"); code != http.StatusUnauthorized || !strings.Contains(page, "请用钉钉扫码登录工作台。") {
		t.Fatalf("no cookie: %d", code)
	}
	a1 := newBrowser(t, s.url)
	a1.loginByLink(loginLink(t, s, "agent1"))
	if _, page := a1.post("/desk/presence", url.Values{"presence": {"online"}}); !strings.Contains(page, "接待中") {
		t.Fatalf("status without the configured presence label: %s", page)
	}
	s.toUser(s.say("u1", "转人工"), "agent1", "新会话")
	id := a1.onlySession("the session")
	if code, body := a1.post("/desk/s/"+id+"/transfer", url.Values{"target": {"agent:agent1"}}); code != http.StatusConflict || !strings.Contains(body, "自己转给自己没有意义") {
		t.Fatalf("self transfer: %d %s", code, body)
	}
	a2 := newBrowser(t, s.url)
	a2.loginByLink(loginLink(t, s, "agent2"))
	if code, page := a2.get("/desk/s/" + id); code != http.StatusForbidden || !strings.Contains(page, "别人的会话，看不了。") {
		t.Fatalf("another agent's session: %d", code)
	}
}
