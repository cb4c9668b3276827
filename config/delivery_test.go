package config

import (
	"strings"
	"testing"
	"time"
)

// The delivery keys refuse values the inbox could not live with.
func TestValidateDeliveryLimits(t *testing.T) {
	for key, edit := range map[string]func(c *Config){
		"dingtalk.webhook_max_body": func(c *Config) { c.DingTalk.WebhookMaxBody = 3 << 20 },
		"storage.replica_timeout":   func(c *Config) { c.Storage.ReplicaTimeout = 100 * time.Millisecond },
		"inbox.max_queued":          func(c *Config) { c.Inbox.MaxQueued = 0 },
		"inbox.max_attempts":        func(c *Config) { c.Inbox.MaxAttempts = 0 },
		"inbox.failed_reply":        func(c *Config) { c.Inbox.FailedReply = "  " },
	} {
		c := Default()
		edit(c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: Validate = %v, want a problem at that key", key, err)
		}
	}
}
