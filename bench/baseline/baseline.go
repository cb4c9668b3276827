// Package baseline is the yardstick for dingdesk's message path: a webhook
// handler that only checks DingTalk's signature and replies on the
// message's sessionWebhook with a fixed text, synchronously, storing
// nothing. Benchmarks drive it and dingdesk the same way, so the difference
// is dingdesk's own work (storing, deduplicating, ordering, matching, the
// outbox).
package baseline

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// Handler serves POST path.
func Handler(path, secret string) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	r.POST(path, func(c *gin.Context) {
		ts := c.GetHeader("timestamp")
		ms, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.UnixMilli(ms)).Abs() > time.Hour {
			c.Status(http.StatusUnauthorized)
			return
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "\n" + secret))
		if !hmac.Equal([]byte(base64.StdEncoding.EncodeToString(mac.Sum(nil))), []byte(c.GetHeader("sign"))) {
			c.Status(http.StatusUnauthorized)
			return
		}
		var msg struct {
			SessionWebhook string `json:"sessionWebhook"`
		}
		if err := json.NewDecoder(io.LimitReader(c.Request.Body, 1<<20)).Decode(&msg); err != nil {
			c.Status(http.StatusBadRequest)
			return
		}
		resp, err := client.Post(msg.SessionWebhook, "application/json",
			bytes.NewReader([]byte(`{"msgtype":"text","text":{"content":"收到"}}`)))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		c.JSON(http.StatusOK, gin.H{})
	})
	return r
}
