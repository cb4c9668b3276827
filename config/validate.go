package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/schedule"
)

// Problem is one invalid key.
type Problem struct {
	Key     string // key path, e.g. "skill_groups[1].rule"
	Message string
	// Line is the key's line in the file, when the problem was found while
	// reading it (unknown keys, values of the wrong kind); 0 otherwise.
	Line int
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s: %s (line %d)", p.Key, p.Message, p.Line)
	}
	return p.Key + ": " + p.Message
}

// ValidationError lists every problem of a config.
type ValidationError struct{ Problems []Problem }

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("invalid config (%d problems):\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Modes are the service modes.
var Modes = []string{"bot_first", "bot_only", "human_only"}

// Validate reports every problem with its key path, or nil.
func (c *Config) Validate() error {
	var ps []Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	oneOf := func(key, val string, allowed ...string) {
		if !slices.Contains(allowed, val) {
			add(key, "must be one of %s (got %q)", strings.Join(allowed, ", "), val)
		}
	}

	if c.Server.Listen == "" {
		add("server.listen", "must not be empty")
	}
	for _, t := range []struct {
		key string
		d   time.Duration
	}{
		{"server.shutdown_timeout", c.Server.ShutdownTimeout},
		{"server.read_header_timeout", c.Server.ReadHeaderTimeout},
		{"server.read_timeout", c.Server.ReadTimeout},
		{"server.write_timeout", c.Server.WriteTimeout},
		{"server.idle_timeout", c.Server.IdleTimeout},
	} {
		if t.d <= 0 {
			add(t.key, "must be a positive duration such as 15s")
		}
	}

	d := c.DingTalk
	oneOf("dingtalk.mode", d.Mode, "stream", "webhook", "both")
	if (d.Mode == "stream" || d.Mode == "both") && d.ClientID == "" {
		add("dingtalk.client_id", "required in %s mode", d.Mode)
	}
	if d.ClientSecret == "" {
		// Stream mode authenticates with it; webhook mode verifies every
		// callback's signature with it.
		add("dingtalk.client_secret", "required (set DINGDESK_DINGTALK_CLIENT_SECRET)")
	}
	if u, err := url.Parse(d.APIBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("dingtalk.api_base", "must be an http(s) URL such as https://api.dingtalk.com")
	}
	if !strings.HasPrefix(d.WebhookPath, "/") {
		add("dingtalk.webhook_path", "must start with /")
	}
	if d.WebhookMaxBody < 1024 {
		add("dingtalk.webhook_max_body", "must be at least 1024 bytes")
	}
	// The stored message (JSON, where a control character can take six
	// bytes) must fit the inbox's 16 MiB mediumtext column.
	if d.WebhookMaxBody > 2<<20 {
		add("dingtalk.webhook_max_body", "must be at most 2097152 bytes (2 MiB): a stored message must fit its 16 MiB column")
	}
	if d.QPS <= 0 {
		add("dingtalk.qps", "must be positive")
	}

	oneOf("storage.driver", c.Storage.Driver, "sqlite", "mysql")
	if c.Storage.DSN == "" {
		add("storage.dsn", "must not be empty")
	}
	if c.Storage.DedupRetention < 10*60*1e9 {
		add("storage.dedup_retention", "must be at least 10m (DingTalk redelivers for minutes)")
	}

	oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf("log.format", c.Log.Format, "json", "text")

	b := c.Bot
	if b.AnswerThreshold <= 0 || b.AnswerThreshold > 1 {
		add("bot.answer_threshold", "must be in (0, 1]")
	}
	if b.ClarifyThreshold <= 0 || b.ClarifyThreshold > b.AnswerThreshold {
		add("bot.clarify_threshold", "must be in (0, bot.answer_threshold]")
	}
	if b.ClarifyCount < 1 || b.ClarifyCount > 9 {
		add("bot.clarify_count", "must be 1 to 9")
	}
	if b.HotCount < 1 {
		add("bot.hot_count", "must be at least 1")
	}
	if strings.TrimSpace(b.NoAnswerReply) == "" {
		add("bot.no_answer_reply", "must not be empty")
	}
	for i, f := range b.Knowledge {
		if !slices.Contains([]string{".yaml", ".yml", ".csv", ".jsonl"}, strings.ToLower(extOf(f))) {
			add(fmt.Sprintf("bot.knowledge[%d]", i), "unknown format %q: want .yaml, .yml, .csv or .jsonl", f)
		}
	}

	if sm := b.Semantic; sm.Enabled {
		if u, err := url.Parse(sm.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("bot.semantic.base_url", "must be an http(s) URL such as http://127.0.0.1:11434/v1 (got %q)", sm.BaseURL)
		}
		if strings.TrimSpace(sm.Model) == "" {
			add("bot.semantic.model", "must name the embedding model")
		}
		if sm.Dimensions < 0 || sm.Dimensions > 65536 {
			add("bot.semantic.dimensions", "must be 0 (the model's own) to 65536")
		}
		if sm.Timeout <= 0 || sm.Timeout > 10*time.Second {
			add("bot.semantic.timeout", "must be in (0, 10s]: a reply waits for it")
		}
		if sm.BatchSize < 1 || sm.BatchSize > 2048 {
			add("bot.semantic.batch_size", "must be 1 to 2048")
		}
	}

	r := c.Routing
	oneOf("routing.mode", r.Mode, Modes...)
	if r.NoAnswerLimit < 1 {
		add("routing.no_answer_limit", "must be at least 1 (got %d)", r.NoAnswerLimit)
	}
	if len(r.EndKeywords) == 0 {
		add("routing.end_keywords", "must list at least one keyword")
	}
	groupNames := map[string]bool{}
	for _, g := range c.SkillGroups {
		groupNames[g.Name] = true
	}
	// 钉小蜜 makes the hand-off group optional in 机器人优先: bot_first runs
	// without one (a transfer request gets the no-agent text; Warnings says
	// so). Only human_only cannot work without a group.
	needsGroup := r.Mode == "human_only"
	if r.SkillGroup != "" && !groupNames[r.SkillGroup] {
		add("routing.skill_group", "unknown skill group %q", r.SkillGroup)
	}
	seenConv := map[string]bool{}
	for i, o := range r.Overrides {
		key := fmt.Sprintf("routing.overrides[%d]", i)
		if o.ConversationID == "" {
			add(key+".conversation_id", "must not be empty")
		} else if seenConv[o.ConversationID] {
			add(key+".conversation_id", "duplicate conversation %q", o.ConversationID)
		}
		seenConv[o.ConversationID] = true
		if o.Mode != "" {
			oneOf(key+".mode", o.Mode, Modes...)
			if o.Mode == "human_only" {
				needsGroup = true
			}
		}
		if o.SkillGroup != "" && !groupNames[o.SkillGroup] {
			add(key+".skill_group", "unknown skill group %q", o.SkillGroup)
		}
	}
	if needsGroup && len(c.SkillGroups) == 0 {
		add("skill_groups", "at least one skill group is needed for human_only conversations")
	}

	ruleNames := map[string]bool{}
	for i, rule := range c.ServiceRules {
		key := fmt.Sprintf("service_rules[%d]", i)
		if rule.Name == "" {
			add(key+".name", "must not be empty")
		} else if ruleNames[rule.Name] {
			add(key+".name", "duplicate service rule %q", rule.Name)
		}
		ruleNames[rule.Name] = true
		_, errs := schedule.New(rule.Timezone, rule.Hours, rule.Holidays, rule.Workdays)
		for _, e := range errs {
			add(key+"."+e.Key, "%v", e.Err)
		}
		if rule.CustomerIdleTimeout < 0 {
			add(key+".customer_idle_timeout", "must not be negative (0 turns it off)")
		}
		if rule.QueueTimeout < 0 {
			add(key+".queue_timeout", "must not be negative (0 turns it off)")
		}
		if sat := rule.Satisfaction; sat.Enabled {
			if len(sat.Labels) != 5 {
				add(key+".satisfaction.labels", "must name the 5 ratings, worst first (has %d)", len(sat.Labels))
			}
			if sat.Timeout <= 0 {
				add(key+".satisfaction.timeout", "must be positive while the survey is enabled")
			}
		}
	}

	for i, g := range c.SkillGroups {
		key := fmt.Sprintf("skill_groups[%d]", i)
		if g.Name == "" {
			add(key+".name", "must not be empty")
		} else if strings.ContainsAny(g.Name, " \t#") {
			add(key+".name", "must not contain spaces or # (agents type it in 转接)")
		}
		if seen := countGroup(c.SkillGroups, g.Name); seen > 1 && firstGroup(c.SkillGroups, g.Name) != i {
			add(key+".name", "duplicate skill group %q", g.Name)
		}
		if !ruleNames[g.Rule] {
			add(key+".rule", "unknown service rule %q", g.Rule)
		}
		staff := map[string]bool{}
		for j, m := range g.Members {
			mkey := fmt.Sprintf("%s.members[%d]", key, j)
			if m.StaffID == "" {
				add(mkey+".staff_id", "must not be empty")
			} else if staff[m.StaffID] {
				add(mkey+".staff_id", "duplicate staff id %q in skill group %q", m.StaffID, g.Name)
			}
			staff[m.StaffID] = true
			if m.MaxChats < 1 {
				add(mkey+".max_chats", "must be at least 1 (got %d)", m.MaxChats)
			}
		}
	}
	seenAgent := map[string]bool{}
	for i, a := range c.Agents {
		key := fmt.Sprintf("agents[%d]", i)
		if a.StaffID == "" {
			add(key+".staff_id", "must not be empty")
		} else if seenAgent[a.StaffID] {
			add(key+".staff_id", "duplicate staff id %q", a.StaffID)
		}
		seenAgent[a.StaffID] = true
		if a.MaxChats < 1 {
			add(key+".max_chats", "must be at least 1 (got %d)", a.MaxChats)
		}
		if len(a.SkillGroups) == 0 {
			add(key+".skill_groups", "must name at least one skill group")
		}
		for j, name := range a.SkillGroups {
			if !groupNames[name] {
				add(fmt.Sprintf("%s.skill_groups[%d]", key, j), "unknown skill group %q", name)
			}
		}
	}
	for i, cr := range c.CannedReplies {
		if strings.TrimSpace(cr.Text) == "" {
			add(fmt.Sprintf("canned_replies[%d].text", i), "must not be empty")
		}
	}
	c.validateWeb(add)
	if c.Desk.TranscriptLines < 0 {
		add("desk.transcript_lines", "must not be negative")
	}
	ps = append(ps, c.Desk.Texts.problems()...)
	if c.Storage.ReplicaTimeout < 1e9 {
		add("storage.replica_timeout", "must be at least 1s")
	}
	if c.Inbox.MaxQueued < 1 {
		add("inbox.max_queued", "must be at least 1")
	}
	if c.Inbox.MaxAttempts < 1 {
		add("inbox.max_attempts", "must be at least 1")
	}
	if strings.TrimSpace(c.Inbox.FailedReply) == "" {
		add("inbox.failed_reply", "must not be empty")
	}
	ps = append(ps, c.Web.Texts.problems()...)
	if c.Outbox.MaxAttempts < 1 {
		add("outbox.max_attempts", "must be at least 1")
	}
	if c.Outbox.MaxAge <= 0 {
		add("outbox.max_age", "must be a positive duration")
	}
	if c.Outbox.Workers < 1 {
		add("outbox.workers", "must be at least 1")
	}
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

// Warnings are settings that are valid but probably not what the admin
// wants; dingdesk check prints them and serve logs them.
func (c *Config) Warnings() []Problem {
	var ws []Problem
	if len(c.SkillGroups) == 0 {
		botFirst := c.Routing.Mode == "bot_first"
		for _, o := range c.Routing.Overrides {
			botFirst = botFirst || o.Mode == "bot_first"
		}
		if botFirst {
			ws = append(ws, Problem{Key: "skill_groups", Message: "no skill group: bot_first conversations are answered by the bot only, and a transfer request gets the no-agent text (service_rules[].no_agent_message)"})
		}
	}
	return ws
}

func extOf(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i:]
	}
	return ""
}

func countGroup(gs []SkillGroup, name string) int {
	n := 0
	for _, g := range gs {
		if g.Name == name {
			n++
		}
	}
	return n
}

func firstGroup(gs []SkillGroup, name string) int {
	for i, g := range gs {
		if g.Name == name {
			return i
		}
	}
	return -1
}

// validateWeb checks the workbench keys: public URL, admins, login hosts
// and the web durations.
func (c *Config) validateWeb(add func(key, format string, args ...any)) {
	if p := c.Server.PublicURL; p != "" {
		if u, err := url.Parse(p); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			add("server.public_url", "must be an http(s) URL without a query, such as https://desk.example.com")
		}
	}
	for key, v := range map[string]string{"dingtalk.oapi_base": c.DingTalk.OAPIBase, "dingtalk.login_base": c.DingTalk.LoginBase} {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(key, "must be an http(s) URL")
		}
	}
	seen := map[string]bool{}
	for i, a := range c.Admins {
		key := fmt.Sprintf("admins[%d].staff_id", i)
		switch {
		case strings.TrimSpace(a.StaffID) == "":
			add(key, "must not be empty")
		case seen[a.StaffID]:
			add(key, "duplicate admin %q", a.StaffID)
		}
		seen[a.StaffID] = true
	}
	if c.Web.SessionTTL < time.Minute {
		add("web.session_ttl", "must be at least 1m")
	}
	if c.Web.LoginLinkTTL < 10*time.Second || c.Web.LoginLinkTTL > 24*time.Hour {
		add("web.login_link_ttl", "must be between 10s and 24h")
	}
	if c.Web.EventRetention < time.Minute {
		add("web.event_retention", "must be at least 1m")
	}
}
