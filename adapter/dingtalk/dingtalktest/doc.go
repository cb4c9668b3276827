// Package dingtalktest is a fake DingTalk (钉钉) for tests, in the spirit of
// net/http/httptest: NewServer starts one HTTP server on 127.0.0.1 that plays
// every DingTalk host the bot talks to — api.dingtalk.com (stream gateway,
// OAuth and robot OpenAPI), the stream WebSocket gateway, and
// oapi.dingtalk.com (sessionWebhook replies) — and records what it is sent.
// Point the adapter's api_base (and its oapi base, if it has one) at
// Server.URL; sessionWebhook URLs in the payloads already point here.
//
// It is an independent model of DingTalk written from the wire protocol in
// docs/DINGTALK.md, not from the SDK: it imports neither the DingTalk SDK nor
// any dingdesk package, so it can catch mistakes in either.
//
// # What is faithful
//
//   - Stream gateway (§1.2–1.8): POST /v1.0/gateway/connections/open checks
//     clientId and clientSecret (constant time) and answers 401
//     {"code":"authFailed","message":"鉴权失败"} on failure, as seen in the
//     wild; it returns a ws:// endpoint and a UUID ticket that is good for one
//     connection within 90 s. GET /connect?ticket= refuses unknown or expired
//     tickets with 401 and reused ones with 403 before upgrading. Frames are
//     text frames; headers are string→string (time included, as a string);
//     data is a JSON document encoded as a string. A message goes to one
//     randomly chosen connection, and only to connections whose open request
//     subscribed to its topic ("钉钉服务端只会推送 Stream Client 注册的 Topic").
//     A read loop runs per connection, so WebSocket pings get pongs and ACKs
//     are recorded.
//   - Bot callbacks (§1.10, §2.1) follow the official examples: private chats
//     carry no isInAtList, atUsers or conversationTitle (so an SDK model reads
//     IsInAtList as false there); group chats carry all three, atUsers lists
//     the bot with only its dingtalkId, and text starts with the space left by
//     the stripped @mention. sessionWebhookExpiredTime is createAt + 90 min.
//     Non-text types get realistic default content.
//   - sessionWebhook (§2.3, §2.4): errcode 0 on success; errcode 300001
//     "session 不存在" (HTTP 200) once the session is expired or unknown,
//     recording nothing; bodies over 20 000 bytes get errcode 460101 with
//     DingTalk's "body 大小不合法" text.
//   - OpenAPI (§3): /v1.0/oauth2/accessToken answers {accessToken, expireIn}
//     or 400 invalidClientIdOrSecret; batchSend and groupMessages/send need
//     x-acs-dingtalk-access-token (else 400 InvalidAuthentication
//     "不合法的access_token"), insist that msgParam is a JSON string, and
//     return processQueryKey (batchSend also the three, empty, lists). Error
//     bodies are {"code","message","requestid"} with x-acs-request-id and
//     x-acs-trace-id headers. Throttle, SetQPSLimit and QuotaExhausted answer
//     the documented 403 codes.
//   - HTTP-mode callbacks (§2.2): PostWebhook signs with
//     Base64(HMAC-SHA256(key=secret, timestamp+"\n"+secret)).
//
// # Choices where DINGTALK.md says UNCONFIRMED
//
//   - Redelivery of un-ACKed bot callbacks is off by default (the official
//     FAQ says bot messages are fire-and-forget); SetRedeliver turns on the
//     behaviour community projects report: the same frame (same messageId,
//     same msgId) again on a random connection, at most MaxRedeliveries times,
//     until an ACK with code 200 arrives (a 500 ACK does not stop it).
//   - disconnect frames carry a messageId (the doc's example has none) so
//     their ACK can be matched; the connection stops receiving messages at
//     once (community report) and is closed after SetDisconnectDelay
//     (default 200 ms instead of DingTalk's ~10 s), with a close frame.
//   - sessionWebhook accepts text and markdown (documented) and also
//     actionCard, link and feedCard. Malformed bodies, missing text or
//     markdown fields and unknown msgtypes get errcode 40035 "缺少参数 …".
//     Errors are all HTTP 200 with an errcode, like the custom robot.
//   - A missing access-token header gets the same 400 InvalidAuthentication
//     as a bad one. Missing required fields get 400 "Missing<field>" (the
//     Alibaba gateway's pattern, e.g. "Missingbody"); wrong ones, including a
//     msgParam object, get 400 "InvalidParameter". robotCode must equal
//     ClientID. sampleText needs msgParam.content, sampleMarkdown needs title
//     and text; other msgKeys are only checked for being a known key.
//   - expireIn is 7200 s. FailNext bodies use made-up codes. The old-style
//     oapi /gettoken API is not implemented. The QPS limiter is off unless
//     SetQPSLimit is called (real: 20/s per app per API).
//
// All goroutines (per-connection read loops, the redelivery loop, delayed
// closes) stop in Close. Exported fields are read-only once NewServer
// returns.
package dingtalktest
