package dingtalk

// render.go turns an adapter.Reply into DingTalk message bodies: the
// sessionWebhook body and the OpenAPI msgKey/msgParam pair. Every DingTalk
// formatting quirk lives here.
//
// Docs:
//   - sessionWebhook bodies (same as the custom robot):
//     https://open.dingtalk.com/document/orgapp/custom-robots-send-group-messages
//   - OpenAPI templates (msgKey, msgParam):
//     https://open.dingtalk.com/document/development/robot-message-type
//   - 1:1 https://open.dingtalk.com/document/orgapp/chatbots-send-one-on-one-chat-messages-in-batches
//   - group https://open.dingtalk.com/document/orgapp/the-robot-sends-a-group-message
//
// Mentions. In a group the reply @-mentions UserID, on the first part of a
// split reply only (one notification per reply):
//   - sessionWebhook: at.atUserIds=[UserID]; markdown does not render the
//     mention unless "@UserID" is also in the text, so markdown gets it as
//     the first line. Plain text does not: DingTalk shows the at field.
//   - OpenAPI groupMessages/send has no at field. The text starts with
//     "@UserID " (markdown: "@UserID" on its own first line) so the user
//     still sees who is addressed. DingTalk does not turn that into a real
//     mention (no notification, the staffId is shown as typed); it is the
//     best the API offers, chosen over dropping the hint.
//
// Length. A robot body must stay under 20 000 bytes ("请保持大小在
// 20000bytes 以内"), and markdown above ~3 500 characters renders badly
// (community limit, not official). Texts are split on rune boundaries into
// parts of at most maxPartRunes, preferably at a blank line, then a line
// break, then a space; a code fence cut in two is closed and reopened.
// Every rendered body is checked against maxBodyBytes and split further if
// needed. Parts are sent in order.

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/dingdesk/dingdesk/adapter"
)

const (
	maxBodyBytes = 20000 // exclusive
	maxPartRunes = 3500
	// fenceReserve leaves room for closing and reopening a code fence.
	fenceReserve = 24
	// defaultTitle is a markdown title when the reply has none and its
	// text has no usable first line.
	defaultTitle  = "消息"
	maxTitleRunes = 30
)

var errEmptyReply = errors.New("dingtalk: empty reply text")

// destination is where a reply goes, resolved from the Reply.
type destination struct {
	group          bool
	userID         string // private: recipient; group: user to @
	conversationID string // group: openConversationId
	robotCode      string
}

// part is one message of a possibly split reply.
type part struct {
	format  adapter.Format
	title   string // markdown only
	text    string
	mention string // group user to @ on this part, "" for none
	// sessionBody is rendered by renderParts (which needs its size) and
	// sent as it is.
	sessionBody []byte
	// apiPath and apiBody are the OpenAPI request, rendered by apiRequest
	// on first use: most replies leave through their sessionWebhook, and
	// renderParts only renders them when apiBound cannot tell that they
	// fit.
	apiPath string
	apiBody []byte
}

// apiRequest is p's OpenAPI path and body, rendered once.
func (p *part) apiRequest(d destination) (path string, body []byte, err error) {
	if p.apiBody == nil {
		path, req, err := renderOpenAPI(*p, d)
		if err != nil {
			return "", nil, err
		}
		b, err := marshal(req)
		if err != nil {
			return "", nil, err
		}
		p.apiPath, p.apiBody = path, b
	}
	return p.apiPath, p.apiBody, nil
}

// sessionMessage is the body POSTed to a sessionWebhook.
type sessionMessage struct {
	MsgType  string           `json:"msgtype"`
	Text     *sessionText     `json:"text,omitempty"`
	Markdown *sessionMarkdown `json:"markdown,omitempty"`
	At       *sessionAt       `json:"at,omitempty"`
}

type sessionText struct {
	Content string `json:"content"`
}

type sessionMarkdown struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

type sessionAt struct {
	AtUserIDs []string `json:"atUserIds"`
	IsAtAll   bool     `json:"isAtAll"`
}

// otoRequest is the body of /v1.0/robot/oToMessages/batchSend.
type otoRequest struct {
	RobotCode string   `json:"robotCode"`
	UserIDs   []string `json:"userIds"`
	MsgKey    string   `json:"msgKey"`
	MsgParam  string   `json:"msgParam"` // a JSON document as a string
}

// groupRequest is the body of /v1.0/robot/groupMessages/send.
type groupRequest struct {
	RobotCode          string `json:"robotCode"`
	OpenConversationID string `json:"openConversationId"`
	MsgKey             string `json:"msgKey"`
	MsgParam           string `json:"msgParam"` // a JSON document as a string
}

// renderSession is the sessionWebhook body of p.
func renderSession(p part) ([]byte, error) {
	m := sessionMessage{}
	text := p.text
	if p.format == adapter.Markdown {
		if p.mention != "" {
			text = "@" + p.mention + "\n\n" + text
		}
		m.MsgType = "markdown"
		m.Markdown = &sessionMarkdown{Title: p.title, Text: text}
	} else {
		m.MsgType = "text"
		m.Text = &sessionText{Content: text}
	}
	if p.mention != "" {
		m.At = &sessionAt{AtUserIDs: []string{p.mention}}
	}
	return marshal(m)
}

// renderOpenAPI is the OpenAPI path and request body of p.
func renderOpenAPI(p part, d destination) (path string, body any, err error) {
	var key string
	var param any
	switch p.format {
	case adapter.Markdown:
		text := p.text
		if p.mention != "" {
			text = "@" + p.mention + "\n\n" + text
		}
		key, param = "sampleMarkdown", map[string]string{"title": p.title, "text": text}
	default:
		text := p.text
		if p.mention != "" {
			text = "@" + p.mention + " " + text
		}
		key, param = "sampleText", map[string]string{"content": text}
	}
	raw, err := marshal(param)
	if err != nil {
		return "", nil, err
	}
	if d.group {
		return pathGroupSend, groupRequest{RobotCode: d.robotCode, OpenConversationID: d.conversationID, MsgKey: key, MsgParam: string(raw)}, nil
	}
	return pathBatchSend, otoRequest{RobotCode: d.robotCode, UserIDs: []string{d.userID}, MsgKey: key, MsgParam: string(raw)}, nil
}

// renderParts splits r into parts whose bodies fit DingTalk's limits on
// both paths (sessionWebhook and OpenAPI), in order.
func renderParts(r adapter.Reply, d destination) ([]part, error) {
	text := strings.TrimSpace(r.Text)
	if text == "" {
		return nil, errEmptyReply
	}
	format := adapter.Text
	if r.Format == adapter.Markdown {
		format = adapter.Markdown
	}
	title := ""
	if format == adapter.Markdown {
		title = markdownTitle(r.Title, text)
	}
	mention := ""
	if d.group && d.userID != "" {
		mention = d.userID
	}
	limit := maxPartRunes - utf8.RuneCountInString(mention) - 3
	if format == adapter.Markdown {
		limit -= fenceReserve
	}

	chunks := splitText(text, limit)
	if format == adapter.Markdown {
		chunks = balanceFences(chunks)
	}
	var parts []part
	for len(chunks) > 0 {
		c := chunks[0]
		chunks = chunks[1:]
		p := part{format: format, title: title, text: c}
		if len(parts) == 0 {
			p.mention = mention
		}
		fits, err := fitsLimits(&p, d)
		if err != nil {
			return nil, err
		}
		if !fits {
			n := utf8.RuneCountInString(c)
			if n <= 1 {
				return nil, errors.New("dingtalk: reply cannot be split under the size limit")
			}
			smaller := splitText(c, (n+1)/2)
			if format == adapter.Markdown {
				smaller = balanceFences(smaller)
			}
			chunks = append(smaller, chunks...)
			continue
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// fitsLimits renders p's session body into it and reports whether the
// bodies of both paths fit. The OpenAPI body is rendered only when apiBound
// is not already under the limit.
func fitsLimits(p *part, d destination) (bool, error) {
	sb, err := renderSession(*p)
	if err != nil {
		return false, err
	}
	p.sessionBody = sb
	if len(sb) >= maxBodyBytes {
		return false, nil
	}
	if apiBound(*p, d) < maxBodyBytes {
		return true, nil
	}
	_, ob, err := p.apiRequest(d)
	if err != nil {
		return false, err
	}
	return len(ob) < maxBodyBytes, nil
}

// apiBound is at least the length of p's OpenAPI body (renderOpenAPI,
// marshalled): its texts are JSON strings in msgParam, itself a JSON
// string in the body, so they are escaped twice. Everything else in the
// body (keys, msgKey, quotes, the separator after the mention) takes less
// than apiFixedBytes.
func apiBound(p part, d destination) int {
	return apiFixedBytes + twiceEscapedBound(p.text) + twiceEscapedBound(p.title) + twiceEscapedBound(p.mention) +
		twiceEscapedBound(d.robotCode) + twiceEscapedBound(d.userID) + twiceEscapedBound(d.conversationID)
}

const apiFixedBytes = 256

// twiceEscapedBound is at least the length of s JSON-encoded (by marshal)
// and the result encoded again, quotes aside. A byte that one encoding
// escapes (a control character, '"', '\\') takes at most 7 bytes after
// both; so do U+2028 and U+2029 (three bytes become \\u2028) and an
// invalid byte (\\ufffd); any other byte stays one byte.
func twiceEscapedBound(s string) int {
	if !utf8.ValidString(s) {
		return 7 * len(s)
	}
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == '"' || c == '\\':
			n += 6
		case c == 0xE2 && (strings.HasPrefix(s[i:], "\u2028") || strings.HasPrefix(s[i:], "\u2029")):
			n += 4
		}
	}
	return n
}

// markdownTitle is the title shown in the chat list: the reply's, else
// the text's first line without markdown markers.
func markdownTitle(title, text string) string {
	t := strings.TrimSpace(title)
	if t == "" {
		line, _, _ := strings.Cut(text, "\n")
		t = strings.TrimSpace(strings.TrimLeft(line, "#>*-+` \t"))
		t = strings.Trim(t, "*_`")
	}
	if t == "" {
		return defaultTitle
	}
	if r := []rune(t); len(r) > maxTitleRunes {
		t = string(r[:maxTitleRunes]) + "…"
	}
	return t
}

// splitText cuts s into chunks of at most max runes, never inside a rune:
// at the last blank line, else line break, else space in the second half
// of the window, else exactly at max.
func splitText(s string, max int) []string {
	if max < 1 {
		max = 1
	}
	if utf8.ValidString(s) && utf8.RuneCountInString(s) <= max { // most replies: no rune slice
		if last := strings.TrimRight(s, " \t\r\n"); last != "" {
			return []string{last}
		}
		return nil
	}
	var out []string
	rest := []rune(s)
	for len(rest) > max {
		cut, skip := bestCut(rest[:max+1])
		chunk := strings.TrimRight(string(rest[:cut]), " \t\r\n")
		rest = trimLeadingNewlines(rest[cut+skip:])
		if chunk != "" {
			out = append(out, chunk)
		}
	}
	if last := strings.TrimRight(string(rest), " \t\r\n"); last != "" {
		out = append(out, last)
	}
	return out
}

// bestCut picks where to cut window (max+1 runes, so a separator right at
// the limit counts). It returns the length of the chunk before the cut and
// how many separator runes to drop after it.
func bestCut(window []rune) (cut, skip int) {
	max := len(window) - 1
	half := max / 2
	for i := max; i > half; i-- { // blank line
		if window[i] == '\n' && window[i-1] == '\n' {
			return i - 1, 0
		}
	}
	for i := max; i > half; i-- { // line break
		if window[i] == '\n' {
			return i, 0
		}
	}
	for i := max; i > half; i-- { // space
		if window[i] == ' ' || window[i] == '\t' || window[i] == '\u3000' {
			return i, 1
		}
	}
	return max, 0
}

func trimLeadingNewlines(r []rune) []rune {
	for len(r) > 0 && (r[0] == '\n' || r[0] == '\r') {
		r = r[1:]
	}
	return r
}

// balanceFences closes a ``` code fence left open at the end of a chunk and
// reopens it (with its info string) at the start of the next one.
func balanceFences(chunks []string) []string {
	out := make([]string, 0, len(chunks))
	open := "" // the opening fence line carried over, "" when none
	for _, c := range chunks {
		if open != "" {
			c = open + "\n" + c
		}
		open = ""
		for _, line := range strings.Split(c, "\n") {
			l := strings.TrimSpace(line)
			if !strings.HasPrefix(l, "```") {
				continue
			}
			if open == "" {
				open = l
			} else {
				open = ""
			}
		}
		if open != "" {
			c += "\n```"
		}
		out = append(out, c)
	}
	return out
}
