package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/dingdesk/dingdesk/config"
)

// The workbench (客服工作台): handlers behind Protected(RoleAgent).

const (
	transcriptPage = 50   // lines per transcript page
	maxReply       = 4000 // characters of one reply (DingTalk's text limit is 5000 bytes-ish)
	maxCanned      = 1000
	maxCategory    = 32
)

func (s *Server) cfg() *config.Config { return s.d.Config() }

// texts are the workbench's texts (web.texts) of the current config.
func (s *Server) texts() *config.WebTexts { return &s.d.Config().Web.Texts }

// expand fills {name} placeholders of a configured text.
func expand(text string, pairs ...string) string {
	r := make([]string, 0, len(pairs))
	for i := 0; i+1 < len(pairs); i += 2 {
		r = append(r, "{"+pairs[i]+"}", pairs[i+1])
	}
	return strings.NewReplacer(r...).Replace(text)
}

// maxChats is the agent's capacity (the largest of their memberships).
func maxChats(cfg *config.Config, staffID string) int {
	n := 0
	for _, g := range cfg.SkillGroups {
		for _, m := range g.Members {
			if m.StaffID == staffID && m.MaxChats > n {
				n = m.MaxChats
			}
		}
	}
	return n
}

// deskData is what the desk page and its header need.
func (s *Server) deskData(c *gin.Context, sel *Session) (gin.H, error) {
	me := IdentityFrom(c)
	_, newest, err := s.d.Store.EventBounds(c.Request.Context())
	if err != nil {
		return nil, err
	}
	data := gin.H{"Title": s.texts().TitleDesk, "Sel": sel, "LastEvent": newest}
	if sel != nil {
		data["Open"] = sel.Status == StatusActive && sel.Agent == me.StaffID
	}
	return data, nil
}

func (s *Server) deskPage(c *gin.Context) {
	data, err := s.deskData(c, nil)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.pages.page(c, http.StatusOK, "desk", data)
}

// session loads the :id session and checks the agent may see it: their
// own (active or ended), or queued in one of their groups. write demands
// their own active session.
func (s *Server) session(c *gin.Context, write bool) (*Session, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		s.refuse(c, http.StatusNotFound, s.texts().TitleNoSession, s.texts().BadSessionID)
		return nil, false
	}
	sess, err := s.d.Store.Session(c.Request.Context(), id)
	if err != nil {
		s.fail(c, err)
		return nil, false
	}
	if sess == nil {
		s.refuse(c, http.StatusNotFound, s.texts().TitleNoSession, s.texts().NoSession)
		return nil, false
	}
	me := IdentityFrom(c)
	mine := sess.Agent == me.StaffID
	queuedInMyGroup := false
	if sess.Status == StatusQueued {
		for _, g := range s.cfg().GroupsOf(me.StaffID) {
			queuedInMyGroup = queuedInMyGroup || g == sess.Group
		}
	}
	if !mine && !queuedInMyGroup || write && !mine {
		s.d.Log.Warn("agent refused another agent's session", "staff_id", me.StaffID, "session", id)
		s.refuse(c, http.StatusForbidden, s.texts().TitleNotYours, s.texts().NotYours)
		return nil, false
	}
	if write && sess.Status != StatusActive {
		s.refuse(c, http.StatusConflict, s.texts().TitleSessionEnded, s.texts().SessionEnded)
		return nil, false
	}
	return sess, true
}

func (s *Server) sessionPage(c *gin.Context) {
	sess, ok := s.session(c, false)
	if !ok {
		return
	}
	data, err := s.deskData(c, sess)
	if err != nil {
		s.fail(c, err)
		return
	}
	if sess.Status == StatusEnded {
		data["Title"] = s.texts().TitleEndedSession
	}
	s.pages.page(c, http.StatusOK, "desk", data)
}

func (s *Server) statusData(c *gin.Context) (gin.H, error) {
	me := IdentityFrom(c)
	p, queues, err := s.d.Engine.AgentState(c.Request.Context(), me.StaffID)
	if err != nil {
		return nil, err
	}
	active, err := s.d.Store.ActiveSessions(c.Request.Context(), me.StaffID)
	if err != nil {
		return nil, err
	}
	waiting := 0
	for _, q := range queues {
		waiting += q.Length
	}
	return gin.H{"Presence": p, "Queues": queues, "Waiting": waiting, "Open": len(active),
		"Max": maxChats(s.cfg(), me.StaffID)}, nil
}

func (s *Server) statusFragment(c *gin.Context) {
	data, err := s.statusData(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.pages.fragment(c, http.StatusOK, "status", data)
}

func (s *Server) setPresence(c *gin.Context) {
	me := IdentityFrom(c)
	p := Presence(c.PostForm("presence"))
	switch p {
	case Online, Busy, Offline:
	default:
		s.refuse(c, http.StatusBadRequest, s.texts().TitleInvalid, s.texts().BadPresence)
		return
	}
	if err := s.d.Engine.SetPresence(c.Request.Context(), me.StaffID, p); err != nil {
		s.fail(c, err)
		return
	}
	s.hub.Wake() // the engine stored the events; other tabs get them now
	c.Header("HX-Trigger", `{"dd:list":null}`)
	s.statusFragment(c)
}

func (s *Server) listFragment(c *gin.Context) {
	me := IdentityFrom(c)
	ctx := c.Request.Context()
	active, err := s.d.Store.ActiveSessions(ctx, me.StaffID)
	if err != nil {
		s.fail(c, err)
		return
	}
	queued, err := s.d.Store.QueuedSessions(ctx, s.cfg().GroupsOf(me.StaffID))
	if err != nil {
		s.fail(c, err)
		return
	}
	unread := 0
	for _, a := range active {
		unread += a.Unread
	}
	sel, _ := strconv.ParseInt(c.Query("sel"), 10, 64)
	s.pages.fragment(c, http.StatusOK, "list", gin.H{"Active": active, "Queued": queued, "Sel": sel, "Unread": unread, "Now": s.d.Now()})
}

func (s *Server) chatFragment(c *gin.Context) {
	sess, ok := s.session(c, false)
	if !ok {
		return
	}
	me := IdentityFrom(c)
	s.pages.fragment(c, http.StatusOK, "chat", gin.H{"Sel": sess, "Open": sess.Status == StatusActive && sess.Agent == me.StaffID})
}

func (s *Server) transcriptFragment(c *gin.Context) {
	sess, ok := s.session(c, false)
	if !ok {
		return
	}
	before, _ := strconv.ParseInt(c.Query("before"), 10, 64)
	lines, err := s.d.Store.Transcript(c.Request.Context(), sess.UserKey, before, transcriptPage+1)
	if err != nil {
		s.fail(c, err)
		return
	}
	more := len(lines) > transcriptPage
	if more {
		lines = lines[1:]
	}
	var oldest, newest int64
	if len(lines) > 0 {
		oldest, newest = lines[0].ID, lines[len(lines)-1].ID
	}
	name := "transcript"
	if before > 0 {
		name = "transcript-page"
	}
	s.pages.fragment(c, http.StatusOK, name, gin.H{"Sel": sess, "Lines": lines, "More": more, "Oldest": oldest, "Newest": newest})
}

func (s *Server) markRead(c *gin.Context) {
	sess, ok := s.session(c, false)
	if !ok {
		return
	}
	id, _ := strconv.ParseInt(c.PostForm("last"), 10, 64)
	if sess.Agent == IdentityFrom(c).StaffID && id > 0 {
		if err := s.d.Store.MarkRead(c.Request.Context(), sess.Agent, sess.ID, id); err != nil {
			s.fail(c, err)
			return
		}
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) infoFragment(c *gin.Context) {
	sess, ok := s.session(c, false)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	all, err := s.d.Store.UserSessions(ctx, sess.UserKey)
	if err != nil {
		s.fail(c, err)
		return
	}
	var earlier []Session
	for _, o := range all {
		if o.ID != sess.ID {
			earlier = append(earlier, o)
		}
	}
	display := sess.Group
	if g, ok := s.cfg().Group(sess.Group); ok {
		display = g.DisplayName
	}
	// A session assigned at once has no queue time: it started when assigned.
	start, wait := sess.QueuedAt, time.Duration(0)
	switch {
	case start.IsZero():
		start = sess.AssignedAt
	case !sess.AssignedAt.IsZero():
		wait = sess.AssignedAt.Sub(start)
	case sess.Status == StatusQueued:
		wait = s.d.Now().Sub(start)
	}
	fromName := ""
	if sess.FromAgent != "" {
		fromName = IdentityOf(s.cfg(), sess.FromAgent).Name
	}
	s.pages.fragment(c, http.StatusOK, "info", gin.H{"Sel": sess, "Earlier": earlier, "Note": sess.Note, "GroupDisplay": display,
		"Start": start, "Wait": durationText(s.texts(), wait), "FromName": fromName, "Detail": s.people.get(ctx, sess.UserID)})
}

func (s *Server) suggestFragment(c *gin.Context) {
	sess, ok := s.session(c, false)
	if !ok {
		return
	}
	data := gin.H{"Hot": s.d.KB.Hot(s.cfg().Bot.HotCount)}
	if sess.Status == StatusActive && sess.Agent == IdentityFrom(c).StaffID {
		q, list, err := s.d.Engine.Suggestions(c.Request.Context(), sess.Agent, sess.No)
		var shown *ShownError
		if err != nil && !errors.As(err, &shown) {
			s.fail(c, err)
			return
		}
		data["Question"], data["List"] = q, list
	}
	s.pages.fragment(c, http.StatusOK, "suggest", data)
}

func (s *Server) kbSearch(c *gin.Context) {
	q := strings.TrimSpace(c.Query("q"))
	data := gin.H{"Q": q}
	if q == "" {
		data["Hot"] = s.d.KB.Hot(s.cfg().Bot.HotCount)
	} else {
		data["Results"] = s.d.KB.Search(q, 5)
	}
	s.pages.fragment(c, http.StatusOK, "kb", data)
}

func (s *Server) reply(c *gin.Context) {
	sess, ok := s.session(c, true)
	if !ok {
		return
	}
	text := strings.TrimSpace(c.PostForm("text"))
	switch {
	case text == "":
		s.refuse(c, http.StatusBadRequest, s.texts().TitleInvalid, s.texts().EmptyReply)
		return
	case utf8.RuneCountInString(text) > maxReply:
		s.refuse(c, http.StatusBadRequest, s.texts().TitleInvalid, expand(s.texts().ReplyTooLong, "max", strconv.Itoa(maxReply)))
		return
	}
	if err := s.d.Engine.Reply(c.Request.Context(), sess.Agent, sess.No, text); err != nil {
		s.fail(c, err)
		return
	}
	s.hub.Wake()
	c.Header("HX-Trigger", `{"dd:sent":null,"dd:msg":null,"dd:list":null}`)
	c.Status(http.StatusNoContent)
}

func (s *Server) end(c *gin.Context) {
	sess, ok := s.session(c, true)
	if !ok {
		return
	}
	if err := s.d.Engine.End(c.Request.Context(), sess.Agent, sess.No); err != nil {
		s.fail(c, err)
		return
	}
	s.hub.Wake()
	c.Header("HX-Redirect", "/desk")
	c.Status(http.StatusNoContent)
}

type transferOption struct {
	Name, Display string
	Online        int
}

type agentOption struct {
	StaffID, Name   string
	Presence        Presence
	Open, Max       int
	Online, HasRoom bool
}

func (s *Server) transferDialog(c *gin.Context) {
	sess, ok := s.session(c, true)
	if !ok {
		return
	}
	cfg := s.cfg()
	var ids []string
	for _, g := range cfg.SkillGroups {
		for _, m := range g.Members {
			ids = append(ids, m.StaffID)
		}
	}
	loads, err := s.d.Store.AgentLoads(c.Request.Context(), ids)
	if err != nil {
		s.fail(c, err)
		return
	}
	var groups []transferOption
	var agents []agentOption
	seen := map[string]bool{}
	for _, g := range cfg.SkillGroups {
		o := transferOption{Name: g.Name, Display: g.DisplayName}
		for _, m := range g.Members {
			l := loads[m.StaffID]
			if m.StaffID != sess.Agent && l.Presence == Online {
				o.Online++
			}
			if m.StaffID != sess.Agent && !seen[m.StaffID] {
				seen[m.StaffID] = true
				if l.Presence == "" {
					l.Presence = Offline
				}
				max := maxChats(cfg, m.StaffID)
				agents = append(agents, agentOption{StaffID: m.StaffID, Name: m.Name, Presence: l.Presence,
					Open: l.OpenChats, Max: max, Online: l.Presence == Online, HasRoom: l.OpenChats < max})
			}
		}
		groups = append(groups, o)
	}
	s.pages.fragment(c, http.StatusOK, "transfer", gin.H{"Sel": sess, "Groups": groups, "Agents": agents})
}

func (s *Server) transfer(c *gin.Context) {
	sess, ok := s.session(c, true)
	if !ok {
		return
	}
	// The engine checks the note's length (handoff.MaxNote).
	note := c.PostForm("note")
	ctx := c.Request.Context()
	var err error
	target := c.PostForm("target") // "group:NAME" or "agent:STAFFID"
	switch {
	case strings.HasPrefix(target, "group:"):
		_, err = s.d.Engine.Transfer(ctx, sess.Agent, sess.No, strings.TrimPrefix(target, "group:"), note)
	case strings.HasPrefix(target, "agent:"):
		_, err = s.d.Engine.TransferToAgent(ctx, sess.Agent, sess.No, strings.TrimPrefix(target, "agent:"), note)
	default:
		s.refuse(c, http.StatusBadRequest, s.texts().TitleInvalid, s.texts().ChooseTarget)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.hub.Wake()
	c.Header("HX-Redirect", "/desk")
	c.Status(http.StatusNoContent)
}

func (s *Server) endedPage(c *gin.Context) {
	me := IdentityFrom(c)
	now := localTime(s.d.Now())
	since := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, shanghai)
	rng := c.DefaultQuery("range", "today")
	if rng == "7d" {
		since = since.AddDate(0, 0, -6)
	}
	q := strings.TrimSpace(c.Query("q"))
	list, err := s.d.Store.EndedSessions(c.Request.Context(), me.StaffID, since, q, 200)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.pages.page(c, http.StatusOK, "ended", gin.H{"Title": s.texts().TitleEnded, "List": list, "Range": rng, "Q": q})
}

// canned is the shared 常用语 of the config followed by the agent's own.
func (s *Server) canned(c *gin.Context) ([]Canned, []Canned, error) {
	var shared []Canned
	for i, cr := range s.cfg().CannedReplies {
		shared = append(shared, Canned{Category: cr.Category, Text: cr.Text, Position: i + 1, Shared: true})
	}
	own, err := s.d.Store.CannedReplies(c.Request.Context(), IdentityFrom(c).StaffID)
	return shared, own, err
}

func (s *Server) cannedFragment(c *gin.Context) {
	shared, own, err := s.canned(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.pages.fragment(c, http.StatusOK, "canned", gin.H{"Groups": byCategory(append(shared, own...), s.texts().CannedOther)})
}

// cannedGroup is one category of 常用语.
type cannedGroup struct {
	Category string
	Items    []Canned
}

func byCategory(list []Canned, other string) []cannedGroup {
	var out []cannedGroup
	idx := map[string]int{}
	for _, c := range list {
		cat := c.Category
		if cat == "" {
			cat = other
		}
		i, ok := idx[cat]
		if !ok {
			i = len(out)
			idx[cat] = i
			out = append(out, cannedGroup{Category: cat})
		}
		out[i].Items = append(out[i].Items, c)
	}
	return out
}

func (s *Server) settingsPage(c *gin.Context) {
	shared, own, err := s.canned(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.pages.page(c, http.StatusOK, "settings", gin.H{"Title": s.texts().TitleSettings, "Shared": shared, "Own": own, "Saved": c.Query("saved")})
}

func cannedInput(c *gin.Context, t *config.WebTexts) (string, string, string) {
	cat := strings.TrimSpace(c.PostForm("category"))
	text := strings.TrimSpace(c.PostForm("text"))
	switch {
	case text == "":
		return cat, text, t.CannedEmpty
	case utf8.RuneCountInString(text) > maxCanned:
		return cat, text, expand(t.CannedTooLong, "max", strconv.Itoa(maxCanned))
	case utf8.RuneCountInString(cat) > maxCategory:
		return cat, text, expand(t.CategoryTooLong, "max", strconv.Itoa(maxCategory))
	}
	return cat, text, ""
}

func (s *Server) cannedAdd(c *gin.Context) {
	cat, text, bad := cannedInput(c, s.texts())
	if bad != "" {
		s.refuse(c, http.StatusBadRequest, s.texts().TitleInvalid, bad)
		return
	}
	if _, err := s.d.Store.AddCanned(c.Request.Context(), IdentityFrom(c).StaffID, cat, text, s.d.Now()); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/desk/settings?saved=1")
}

func (s *Server) cannedID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("cid"), 10, 64)
	if err != nil || id <= 0 {
		s.refuse(c, http.StatusNotFound, s.texts().TitleNoCanned, s.texts().BadCannedID)
		return 0, false
	}
	return id, true
}

func (s *Server) cannedResult(c *gin.Context, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		s.refuse(c, http.StatusNotFound, s.texts().TitleNoCanned, s.texts().NoCanned)
	case err != nil:
		s.fail(c, err)
	default:
		c.Redirect(http.StatusSeeOther, "/desk/settings?saved=1")
	}
}

func (s *Server) cannedUpdate(c *gin.Context) {
	id, ok := s.cannedID(c)
	if !ok {
		return
	}
	cat, text, bad := cannedInput(c, s.texts())
	if bad != "" {
		s.refuse(c, http.StatusBadRequest, s.texts().TitleInvalid, bad)
		return
	}
	s.cannedResult(c, s.d.Store.UpdateCanned(c.Request.Context(), IdentityFrom(c).StaffID, id, cat, text))
}

func (s *Server) cannedDelete(c *gin.Context) {
	id, ok := s.cannedID(c)
	if !ok {
		return
	}
	s.cannedResult(c, s.d.Store.DeleteCanned(c.Request.Context(), IdentityFrom(c).StaffID, id))
}

func (s *Server) cannedMove(c *gin.Context) {
	id, ok := s.cannedID(c)
	if !ok {
		return
	}
	delta := 1
	if c.PostForm("dir") == "up" {
		delta = -1
	}
	s.cannedResult(c, s.d.Store.MoveCanned(c.Request.Context(), IdentityFrom(c).StaffID, id, delta))
}

func (s *Server) events(c *gin.Context) {
	me := IdentityFrom(c)
	topics := []string{AgentTopic(me.StaffID)}
	for _, g := range s.cfg().GroupsOf(me.StaffID) {
		topics = append(topics, GroupTopic(g))
	}
	s.hub.ServeStream(c.Writer, c.Request, topics)
}
