package dingtalk

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"

	"github.com/open-dingtalk/dingtalk-stream-sdk-go/logger"
)

// The SDK logs through one process-global logger.ILogger. sdkBridge is
// installed once (before any SDK goroutine runs, because the SDK's
// GetLogger lazily writes the global) and fans each line out to the
// adapters currently running a stream client. One stream adapter per
// process is the normal case; with several (tests), each sees every line.
var (
	bridgeOnce sync.Once
	bridge     = &sdkBridge{sinks: map[*Adapter]struct{}{}}
)

func installSDKLogger() {
	bridgeOnce.Do(func() { logger.SetLogger(bridge) })
}

type sdkBridge struct {
	mu    sync.RWMutex
	sinks map[*Adapter]struct{}
}

func (b *sdkBridge) add(a *Adapter) {
	b.mu.Lock()
	b.sinks[a] = struct{}{}
	b.mu.Unlock()
}

func (b *sdkBridge) remove(a *Adapter) {
	b.mu.Lock()
	delete(b.sinks, a)
	b.mu.Unlock()
}

// Debugf drops the SDK's "[wire]" dumps: the open-connection request body
// carries clientSecret, the response the ticket, and the frames user
// messages. Other debug lines are redacted and passed on.
func (b *sdkBridge) Debugf(format string, args ...any) {
	if strings.HasPrefix(format, "[wire]") {
		return
	}
	b.emit(slog.LevelDebug, format, args)
}
func (b *sdkBridge) Infof(format string, args ...any)    { b.emit(slog.LevelInfo, format, args) }
func (b *sdkBridge) Warningf(format string, args ...any) { b.emit(slog.LevelWarn, format, args) }
func (b *sdkBridge) Errorf(format string, args ...any)   { b.emit(slog.LevelError, format, args) }

// Fatalf never exits: the SDK does not call it, and a library must not end
// the process.
func (b *sdkBridge) Fatalf(format string, args ...any) { b.emit(slog.LevelError, format, args) }

func (b *sdkBridge) emit(level slog.Level, format string, args []any) {
	b.mu.RLock()
	sinks := make([]*Adapter, 0, len(b.sinks))
	for a := range b.sinks {
		sinks = append(sinks, a)
	}
	b.mu.RUnlock()
	if len(sinks) == 0 {
		return
	}
	text := redact(fmt.Sprintf(format, args...))
	ev := classifySDKLine(format)
	switch {
	case ev.kind != eventNone && level == slog.LevelError:
		// Connection loss is routine (DingTalk disconnects for load
		// balancing); the SDK reconnects. Not an error for the operator.
		level = slog.LevelWarn
	case strings.HasPrefix(format, "StreamClient close."):
		// Closing a connection that is already closed: harmless.
		level = slog.LevelDebug
	}
	for _, a := range sinks {
		a.onSDKLog(context.Background(), level, ev, text)
	}
}

// sdkEvent is what an SDK log line says about the connection. The SDK
// exposes no connection state, so its log lines (matched on the constant
// format strings of v0.9.2-beta.1) are one of the signals Ready uses.
type sdkEvent struct {
	kind   int
	reason string
}

const (
	eventNone = iota
	eventUp
	eventDown
)

func classifySDKLine(format string) sdkEvent {
	switch {
	case strings.HasPrefix(format, "connect success"):
		return sdkEvent{kind: eventUp}
	case strings.HasPrefix(format, "StreamClient reconnect success"):
		return sdkEvent{kind: eventUp}
	case strings.HasPrefix(format, "connection process read message error"):
		return sdkEvent{kind: eventDown, reason: "connection lost"}
	case strings.HasPrefix(format, "ping time out"):
		return sdkEvent{kind: eventDown, reason: "keepalive ping timed out"}
	case strings.HasPrefix(format, "connection process is closed"):
		return sdkEvent{kind: eventDown, reason: "connection closed"}
	case strings.HasPrefix(format, "connection write ping message error"):
		return sdkEvent{kind: eventDown, reason: "keepalive ping failed"}
	case strings.HasPrefix(format, "StreamClient reconnect error"):
		return sdkEvent{kind: eventDown, reason: "reconnect failed"}
	}
	return sdkEvent{}
}

var redactions = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`("(?i:clientSecret|appSecret|accessToken|access_token|ticket)"\s*:\s*)"[^"]*"`), `$1"******"`},
	{regexp.MustCompile(`(?i)((?:ticket|session|access_token|sessionId)\s*=\s*\[?)[^\s&\]"']+`), `${1}******`},
	{regexp.MustCompile(`(?i)(x-acs-dingtalk-access-token:\s*)\S+`), `${1}******`},
}

// redact removes credentials the SDK might print: secrets, tickets (the SDK
// logs the ticket as sessionId), session webhook tokens and access tokens.
func redact(s string) string {
	for _, r := range redactions {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return s
}
