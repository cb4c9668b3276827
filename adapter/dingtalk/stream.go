package dingtalk

// Stream mode runs the official dingtalk-stream-sdk-go client, pinned at
// v0.9.2-beta.1 rather than the latest non-beta v0.9.1: v0.9.1 can panic
// with "send on closed channel" inside an SDK goroutine after a network
// blip or ping timeout (open-dingtalk/dingtalk-stream-sdk-go#27, #28, #32;
// no recover() of ours can catch it), and its Close() does not stop
// auto-reconnect. v0.9.2-beta.1 (PR #34, #35) drives each connection from a
// lifecycle context: Close cancels reconnects, reconnects back off from 3 s
// doubling to 60 s with jitter, and a dead connection cancels its handlers.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/open-dingtalk/dingtalk-stream-sdk-go/client"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/payload"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/utils"
)

// streamClient is the part of the SDK's *client.StreamClient the adapter
// drives once the handlers are registered.
type streamClient interface {
	Start(ctx context.Context) error
	Close()
}

var errNotStored = errors.New("message not stored, please redeliver")

// newStream builds the SDK client with our handlers: the bot callback as a
// raw frame handler (so the payload goes through decodePayload/toMessage
// like a webhook body, robotCode and content included), and the SDK's own
// ping and disconnect handlers wrapped to observe the connection.
func (a *Adapter) newStream() streamClient {
	installSDKLogger()
	cli := client.NewStreamClient(
		client.WithAppCredential(client.NewAppCredentialConfig(a.cfg.ClientID, a.secret.Reveal())),
		client.WithOpenApiHost(a.apiBase.String()),
		client.WithAutoReconnect(true),
		client.WithKeepAlive(a.keepAlive),
	)
	cli.RegisterRouter(utils.SubscriptionTypeKSystem, "ping",
		func(ctx context.Context, df *payload.DataFrame) (*payload.DataFrameResponse, error) {
			a.conn.set(true, nil)
			return cli.OnPing(ctx, df)
		})
	cli.RegisterRouter(utils.SubscriptionTypeKSystem, "disconnect",
		func(ctx context.Context, df *payload.DataFrame) (*payload.DataFrameResponse, error) {
			// The SDK ACKs, closes this connection and reconnects.
			a.conn.set(false, errors.New("server asked to reconnect"))
			a.log.Info("stream disconnect requested by server")
			return cli.OnDisconnect(ctx, df)
		})
	cli.RegisterCallbackRouter(payload.BotMessageCallbackTopic, a.onBotFrame)
	return cli
}

// connect tries the first connection now and, if that fails, keeps trying
// in the background until life ends. It calls a.retrying.Done when done.
func (a *Adapter) connect(ctx, life context.Context) {
	err := a.startStream(ctx, life)
	if err == nil {
		a.retrying.Done()
		return
	}
	if life.Err() != nil { // closed meanwhile
		a.retrying.Done()
		return
	}
	a.log.Warn("stream connect failed, retrying", "error", err.Error())
	go func() {
		defer a.retrying.Done()
		backoff := 3 * time.Second
		for attempt := 2; ; attempt++ {
			if !sleep(life, backoff+rand.N(backoff/5+1)) {
				return
			}
			err := a.startStream(life, life)
			if err == nil {
				return
			}
			if life.Err() != nil {
				return
			}
			a.log.Warn("stream connect failed, retrying", "attempt", attempt, "error", err.Error())
			backoff = min(2*backoff, 60*time.Second)
		}
	}()
}

// startStream runs one SDK Start, bounded by ctx and life. Once it
// succeeds the SDK owns reconnecting.
func (a *Adapter) startStream(ctx, life context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(life, cancel)()
	if err := a.stream.Start(sctx); err != nil {
		err = errors.New(redact(a.redactSecret(err.Error())))
		a.conn.set(false, fmt.Errorf("connect: %w", err))
		return err
	}
	a.conn.set(true, nil)
	a.log.Info("stream connected", "api_base", a.apiBase.String())
	return nil
}

// onBotFrame handles a CALLBACK frame on /v1.0/im/bot/messages/get. It only
// normalises the message and hands it to the Handler, which stores it and
// returns: answering happens elsewhere, so the ACK goes out fast. A Handler
// error makes the SDK ACK 500, and DingTalk redelivers.
func (a *Adapter) onBotFrame(ctx context.Context, df *payload.DataFrame) (*payload.DataFrameResponse, error) {
	a.conn.set(true, nil)
	data := []byte(df.Data)
	if df.GetHeader(payload.DataFrameHeaderKContentType) == payload.DataFrameContentTypeKBase64 {
		if b, err := base64.StdEncoding.DecodeString(df.Data); err == nil {
			data = b
		}
	}
	// The Handler's store finishes even if this connection dies meanwhile
	// (the ACK is then lost, DingTalk redelivers, the store deduplicates).
	switch err := a.receive(context.WithoutCancel(ctx), data, "stream"); {
	case errors.Is(err, errUnreadable), errors.Is(err, errNoMsgID):
		// Redelivery cannot fix a malformed payload: ACK and drop.
		a.log.Error("stream callback dropped", "frame_id", df.GetMessageId(), "error", err.Error())
		return nil, nil
	case err != nil:
		return nil, errNotStored
	}
	return nil, nil
}

// onSDKLog receives one (already redacted) SDK log line.
func (a *Adapter) onSDKLog(ctx context.Context, level slog.Level, ev sdkEvent, text string) {
	switch ev.kind {
	case eventUp:
		a.conn.set(true, nil)
	case eventDown:
		a.conn.set(false, errors.New(ev.reason))
	}
	a.log.Log(ctx, level, "stream sdk", "detail", a.redactSecret(text))
}

func (a *Adapter) redactSecret(s string) string {
	if sec := a.secret.Reveal(); len(sec) >= 4 {
		s = strings.ReplaceAll(s, sec, "******")
	}
	return s
}

// connState is what Ready knows about the stream connection. The SDK
// exposes no connection state, so it is pieced together from:
//   - our own Start calls (success: up; failure: down with the error);
//   - frames reaching our handlers (bot callbacks, server pings: up);
//   - the server's disconnect frame (down until the SDK reconnects);
//   - the SDK's log lines, matched on v0.9.2-beta.1's constant format
//     strings: "connect success" (up, also after its own reconnects) and
//     read errors, ping timeouts, closed connections (down).
//
// A half-open connection is detected by the SDK's WebSocket keepalive
// (ping after 30 s idle, 5 s for the pong) and then shows as down. What it
// cannot detect: a connection that answers pings but on which DingTalk
// stopped delivering (reported "zombie" connections) looks up.
type connState struct {
	mu  sync.Mutex
	up  bool
	err error
}

func (c *connState) set(up bool, err error) {
	c.mu.Lock()
	c.up, c.err = up, err
	c.mu.Unlock()
}

func (c *connState) ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.up:
		return nil
	case c.err != nil:
		return fmt.Errorf("dingtalk: stream not connected: %w", c.err)
	default:
		return errors.New("dingtalk: stream not connected")
	}
}
