package dingtalk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// maxClockSkew is how far a callback's timestamp may be from now.
const maxClockSkew = time.Hour

// WebhookHandler receives HTTP-mode callbacks (mount it at
// cfg.WebhookPath, POST). In order:
//   - timestamp and sign headers are checked before the body is read:
//     sign = base64(HMAC-SHA256(key=app secret, timestamp+"\n"+app secret)),
//     timestamp (ms) within 1 hour of now; else 401 and nothing happens;
//   - a body over webhook_max_body is 413, one not received within
//     server.read_timeout 408, malformed JSON or a payload without msgId
//     400;
//   - the message (any msgtype; unknown ones become KindUnknown) goes to
//     the Handler: nil → 200 {} at once (the answer is sent asynchronously
//     through the outbox), error → 500 so DingTalk retries; 503 before Start
//     and after Close.
//
// Error bodies are {"error": code, "message": text}.
//
// Docs: https://open.dingtalk.com/document/isvapp/receive-message
func (a *Adapter) WebhookHandler() gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := a.verifySign(c.GetHeader("timestamp"), c.GetHeader("sign")); err != nil {
			a.log.Warn("webhook rejected", "reason", err.Error(), "remote", c.ClientIP())
			abort(c, http.StatusUnauthorized, "invalid_signature", "timestamp or sign header is missing, stale or wrong")
			return
		}
		limit := a.cfg.WebhookMaxBody
		if c.Request.ContentLength > limit {
			abort(c, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("body exceeds %d bytes", limit))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				abort(c, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("body exceeds %d bytes", limit))
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// server.read_timeout cut a slow body: nothing was stored,
				// and a sender that means well may try again.
				abort(c, http.StatusRequestTimeout, "body_timeout", "request body not received in time, retry")
				return
			}
			abort(c, http.StatusBadRequest, "unreadable_body", "request body could not be read")
			return
		}
		switch err := a.receive(c.Request.Context(), body, "webhook"); {
		case errors.Is(err, errUnreadable):
			abort(c, http.StatusBadRequest, "malformed_json", "body is not a DingTalk message: "+err.Error())
			return
		case errors.Is(err, errNoMsgID):
			abort(c, http.StatusBadRequest, "missing_msg_id", "message has no msgId")
			return
		case errors.Is(err, errClosed), errors.Is(err, errNotStarted):
			abort(c, http.StatusServiceUnavailable, "unavailable", "not accepting messages, retry later")
			return
		case err != nil:
			abort(c, http.StatusInternalServerError, "not_stored", "message could not be stored, retry later")
			return
		}
		c.JSON(http.StatusOK, gin.H{})
	}
}

func abort(c *gin.Context, status int, code, message string) {
	c.AbortWithStatusJSON(status, gin.H{"error": code, "message": message})
}

var (
	errSignMissing = errors.New("timestamp or sign header missing")
	errSignStale   = errors.New("timestamp more than 1 hour from now")
	errSignBad     = errors.New("sign does not match")
)

// verifySign checks an HTTP callback's timestamp and sign headers.
func (a *Adapter) verifySign(timestamp, sign string) error {
	if timestamp == "" || sign == "" {
		return errSignMissing
	}
	ms, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q: %w", timestamp, strconv.ErrSyntax)
	}
	skew := a.now().Sub(time.UnixMilli(ms))
	if skew > maxClockSkew || skew < -maxClockSkew {
		return errSignStale
	}
	if !hmac.Equal([]byte(sign), []byte(computeSign(a.secret.Reveal(), timestamp))) {
		return errSignBad
	}
	return nil
}

// computeSign is DingTalk's callback signature.
func computeSign(secret, timestamp string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
