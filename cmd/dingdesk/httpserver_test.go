package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/config"
)

// A client trickling a webhook body, with a valid signature or a forged
// one, is cut off after server.read_timeout; nothing is stored or answered.
func TestSlowBodyClientIsCutOff(t *testing.T) {
	t.Setenv("DINGDESK_SERVER_READ_TIMEOUT", "1s")
	s := startService(t, serviceOpts{})
	addr := strings.TrimPrefix(s.url, "http://")
	for _, signed := range []bool{true, false} {
		t.Run(fmt.Sprintf("signed=%v", signed), func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ts := time.Now().UnixMilli()
			sign := dingtalktest.Sign(s.fake.ClientSecret, ts)
			if !signed {
				sign = "forged" + sign[6:]
			}
			start := time.Now()
			fmt.Fprintf(conn, "POST /dingtalk/callback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
				"Content-Length: 4096\r\ntimestamp: %d\r\nsign: %s\r\n\r\n{\"msgId\":\"slow\",", ts, sign)
			closed := make(chan string, 1)
			go func() {
				resp, _ := io.ReadAll(conn) // a response, if any, then EOF
				closed <- string(resp)
			}()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case resp := <-closed:
					took := time.Since(start)
					if took < 900*time.Millisecond || took > 5*time.Second {
						t.Fatalf("connection closed after %v, want about read_timeout (1s)", took)
					}
					want := "408 Request Timeout"
					if !signed {
						want = "401 Unauthorized"
					}
					if !strings.Contains(resp, want) {
						t.Fatalf("response before the close = %q, want %s", resp, want)
					}
					return
				case <-tick.C:
					if time.Since(start) > 10*time.Second {
						t.Fatal("a trickling client still holds its connection after 10s")
					}
					conn.Write([]byte(" ")) // fails once the server has gone; the reader sees it
				}
			}
		})
	}
	if n := len(s.fake.Sent()); n != 0 {
		t.Fatalf("%d messages sent for a body that never arrived", n)
	}
	// The service still answers normally.
	if reply := s.ask("u1", "今天天气怎么样呀朋友"); !strings.Contains(reply.Text, "抱歉") {
		t.Fatalf("reply after the slow clients = %q", reply.Text)
	}
}

// An idle keep-alive connection is closed after server.idle_timeout.
func TestIdleKeepAliveIsClosed(t *testing.T) {
	t.Setenv("DINGDESK_SERVER_IDLE_TIMEOUT", "1s")
	s := startService(t, serviceOpts{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := 0; i < 2; i++ { // the connection is kept alive between requests
		fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("request %d: %d close=%v", i, resp.StatusCode, resp.Close)
		}
	}
	idle := time.Now()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read = %v, want EOF (closed by the server)", err)
	}
	if took := time.Since(idle); took < 900*time.Millisecond || took > 5*time.Second {
		t.Fatalf("idle connection closed after %v, want about idle_timeout (1s)", took)
	}
}

// Responses are bounded by write_timeout; event streams are not, and a
// body read to its end lifts the read deadline for the rest of the handler.
func TestDeadlinesSpareEventStreams(t *testing.T) {
	s := config.Default().Server
	s.ReadTimeout, s.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i := 0; i < 6; i++ { // 600 ms of writes: past both deadlines
			time.Sleep(100 * time.Millisecond)
			if _, err := fmt.Fprintf(w, "%d\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if r.Context().Err() != nil {
				fmt.Fprintln(w, "cancelled")
				return
			}
		}
		fmt.Fprintln(w, "done")
	})
	serve := func(s config.Server) string {
		srv := httptest.NewUnstartedServer(nil)
		srv.Config = newHTTPServer(handler, s)
		srv.Start()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	url := serve(s)
	get := func(method, accept string, body io.Reader) string {
		req, _ := http.NewRequest(method, url, body)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get("GET", "text/event-stream", nil); !strings.HasSuffix(got, "done\n") {
		t.Errorf("event stream = %q, want it to run to the end", got)
	}
	if got := get("GET", "", nil); strings.Contains(got, "done") {
		t.Errorf("plain GET past write_timeout = %q, want it cut", got)
	}
	if got := get("POST", "text/event-stream", strings.NewReader("x")); strings.Contains(got, "done") {
		t.Errorf("a POST is no event stream, yet it ran past write_timeout: %q", got)
	}
	// With time to write, a handler that read its body works on past
	// read_timeout without its context being cancelled.
	url = serve(config.Server{ReadTimeout: 300 * time.Millisecond, WriteTimeout: 5 * time.Second})
	if got := get("POST", "", strings.NewReader(`{"a":1}`)); !strings.HasSuffix(got, "done\n") {
		t.Errorf("POST whose body was read = %q, want it to run to the end", got)
	}
}

// serve says where it listens and how to see the bot answer.
func TestServeSaysHowToTryIt(t *testing.T) {
	var buf strings.Builder
	cfg := config.Default()
	cfg.DingTalk.Mode = "webhook"
	logTryIt(slog.New(slog.NewTextHandler(&buf, nil)), "[::]:8080", cfg, "examples/dingdesk.yaml")
	for _, want := range []string{"url=http://localhost:8080", "webhook=http://localhost:8080/dingtalk/callback",
		"dingdesk chat -c examples/dingdesk.yaml"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q: %s", want, buf.String())
		}
	}
	for addr, want := range map[string]string{":8080": "localhost:8080", "0.0.0.0:80": "localhost:80",
		"127.0.0.1:9": "127.0.0.1:9", "[::1]:9": "[::1]:9"} {
		if got := localURLHost(addr); got != want {
			t.Errorf("localURLHost(%q) = %q, want %q", addr, got, want)
		}
	}
}
