package dingtalktest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Sign computes the HTTP-mode callback signature (§2.2):
// Base64(HMAC-SHA256(key=secret, msg=timestamp+"\n"+secret)), standard
// encoding with padding and no URL-escaping.
func Sign(secret string, timestampMillis int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestampMillis, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// PostWebhook POSTs the payload of m to url as DingTalk's HTTP-mode callback,
// signed with s.ClientSecret and the current time. The caller closes
// resp.Body.
func (s *Server) PostWebhook(url string, m Msg) (msgID string, resp *http.Response, err error) {
	msgID, body := s.Payload(m)
	now := time.Now()
	resp, err = s.PostWebhookRaw(url, body, now, Sign(s.ClientSecret, now.UnixMilli()))
	return msgID, resp, err
}

// PostWebhookRaw POSTs body to url with the timestamp header ts (Unix ms)
// and the sign header as given, for forged, stale or malformed callbacks. A
// zero ts or an empty sign leaves that header out. The caller closes
// resp.Body.
func (s *Server) PostWebhookRaw(url string, body []byte, ts time.Time, sign string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("dingtalktest: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if !ts.IsZero() {
		req.Header.Set("timestamp", strconv.FormatInt(ts.UnixMilli(), 10))
	}
	if sign != "" {
		req.Header.Set("sign", sign)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("dingtalktest: webhook post: %w", err)
	}
	return resp, nil
}
