package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dingdesk/dingdesk/config"
)

// newHTTPServer is the HTTP listener's server with every timeout of
// server.*: headers within read_header_timeout, a body within read_timeout,
// a response within write_timeout, and keep-alive connections closed after
// idle_timeout. Without them a client trickling a body (signed or not: the
// server drains an unread body before reusing the connection) holds a
// connection and a goroutine for as long as it likes.
func newHTTPServer(h http.Handler, s config.Server) *http.Server {
	return &http.Server{
		Handler:           withDeadlines(h, s),
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		IdleTimeout:       s.IdleTimeout,
		// ReadTimeout and WriteTimeout stay 0: withDeadlines sets them per
		// request, so that event streams can be exempt.
	}
}

// withDeadlines sets each request's read and write deadlines, counted from
// the end of its headers. http.Server's own ReadTimeout and WriteTimeout
// would do this for every request alike, and so cut every Server-Sent
// Events stream (the workbench's live updates) after write_timeout, and
// cancel its context after read_timeout. Here:
//   - a request with a body must deliver it within read_timeout; once it
//     has, the read deadline is lifted, so a handler working longer is not
//     cancelled by the connection's background read timing out;
//   - the response must be written within write_timeout;
//   - a GET or HEAD without a body that asks for text/event-stream has no
//     deadlines (a stale one from an earlier request on the same connection
//     is cleared); having no body, it cannot be used to trickle one.
func withDeadlines(h http.Handler, s config.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if isEventStream(r) {
			_ = rc.SetWriteDeadline(time.Time{})
			h.ServeHTTP(w, r)
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(s.WriteTimeout))
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			_ = rc.SetReadDeadline(time.Now().Add(s.ReadTimeout))
			r.Body = &bodyDeadline{ReadCloser: r.Body, done: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		}
		h.ServeHTTP(w, r)
	})
}

// isEventStream: a bodiless GET or HEAD asking for Server-Sent Events.
func isEventStream(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.ContentLength == 0 &&
		r.Header.Get("Transfer-Encoding") == "" && strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// bodyDeadline lifts the read deadline once the body has been read to its
// end.
type bodyDeadline struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *bodyDeadline) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.done)
	}
	return n, err
}

// logTryIt tells a newcomer where the service listens and how to see the
// bot answer without a DingTalk app: the terminal simulator runs the same
// engine on the same config.
func logTryIt(log *slog.Logger, addr string, cfg *config.Config, configPath string) {
	base := "http://" + localURLHost(addr)
	args := []any{"url", base, "health", base + "/healthz", "ready", base + "/readyz", "metrics", base + "/metrics"}
	if cfg.DingTalk.Mode == "webhook" || cfg.DingTalk.Mode == "both" {
		args = append(args, "webhook", base+cfg.DingTalk.WebhookPath)
	}
	args = append(args, "try_the_bot", "dingdesk chat -c "+configPath+" (a terminal chat with the bot and the agent desk, on a temporary database)")
	log.Info("dingdesk is up", args...)
}

// localURLHost is addr as a client on this machine reaches it: a wildcard
// listen address (":8080", "[::]:8080", "0.0.0.0:8080") becomes localhost.
func localURLHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
