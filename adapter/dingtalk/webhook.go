package dingtalk

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
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
		body, err := readBody(http.MaxBytesReader(c.Writer, c.Request.Body, limit), c.Request.ContentLength)
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
		// What c.JSON(200, gin.H{}) writes, without encoding a map (nor,
		// as c.Data would, allocating the header's value).
		c.Writer.Header()["Content-Type"] = jsonContentType
		c.Status(http.StatusOK)
		_, _ = c.Writer.Write(emptyObject)
	}
}

var (
	emptyObject     = []byte("{}")
	jsonContentType = []string{"application/json; charset=utf-8"}
)

// readBody reads r to its end like io.ReadAll, into one buffer of the
// declared size (DingTalk always sends Content-Length) instead of growing
// one from 512 bytes. It reads until io.EOF even when size bytes have
// arrived: the server lifts the body's read deadline at EOF
// (withDeadlines in cmd/dingdesk). size is -1 when unknown; callers bound
// it (webhook_max_body, maxResponse) before asking for the buffer.
func readBody(r io.Reader, size int64) ([]byte, error) {
	if size < 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, size+1) // +1: the read that reports EOF has room
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
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
	if !a.signer.verify(timestamp, sign) {
		return errSignBad
	}
	return nil
}

// signer checks callback signatures with pooled HMAC states: hmac.New
// costs two SHA-256 states, both key pads and their allocations, on every
// callback.
type signer struct {
	secret string
	pool   sync.Pool // *signState keyed with secret
}

type signState struct {
	mac hash.Hash
	buf []byte // the signed text, then the expected sign
}

func newSigner(secret string) *signer {
	s := &signer{secret: secret}
	s.pool.New = func() any { return &signState{mac: hmac.New(sha256.New, []byte(secret))} }
	return s
}

// verify reports, in constant time, whether sign is computeSign(secret,
// timestamp).
func (s *signer) verify(timestamp, sign string) bool {
	st := s.pool.Get().(*signState)
	defer s.pool.Put(st)
	st.mac.Reset()
	st.buf = append(append(append(st.buf[:0], timestamp...), '\n'), s.secret...)
	st.mac.Write(st.buf)
	var sum [sha256.Size]byte
	want := base64.StdEncoding.AppendEncode(st.buf[:0], st.mac.Sum(sum[:0]))
	st.buf = want
	return len(sign) == len(want) && subtle.ConstantTimeCompare(want, []byte(sign)) == 1
}
