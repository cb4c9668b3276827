// Package config is the typed configuration of dingdesk: one YAML file plus
// DINGDESK_<PATH> environment overrides. It is the only package that imports
// viper. Every default lives in Default() and is stated in the field's doc
// comment. Reading checks every key against these types first (an unknown
// key or a value of the wrong kind is a problem, with a "did you mean"),
// then Validate checks the settings; Read and Load report all problems of
// both, each with its key path.
package config

import (
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Config is one immutable snapshot of the configuration. Components receive
// a *Config (or one of its parts) and must not modify it.
type Config struct {
	Server        Server        `mapstructure:"server"`
	DingTalk      DingTalk      `mapstructure:"dingtalk"`
	Storage       Storage       `mapstructure:"storage"`
	Log           Log           `mapstructure:"log"`
	Bot           Bot           `mapstructure:"bot"`
	Routing       Routing       `mapstructure:"routing"`
	ServiceRules  []ServiceRule `mapstructure:"service_rules"`
	SkillGroups   []SkillGroup  `mapstructure:"skill_groups"`
	Agents        []Agent       `mapstructure:"agents"`
	CannedReplies []CannedReply `mapstructure:"canned_replies"`
	Admins        []Admin       `mapstructure:"admins"`
	Desk          Desk          `mapstructure:"desk"`
	Web           Web           `mapstructure:"web"`
	Outbox        Outbox        `mapstructure:"outbox"`
	Inbox         Inbox         `mapstructure:"inbox"`

	// Path is the file the config was read from ("" when built in code).
	Path string `mapstructure:"-"`
}

// Server is the HTTP listener.
type Server struct {
	// Listen is the HTTP address. Default ":8080".
	Listen string `mapstructure:"listen"`
	// ShutdownTimeout bounds a graceful shutdown. Default 15s.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	// ReadTimeout bounds reading a request's body, counted from the end of
	// its headers: a client trickling a body is cut off. Default 10s.
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
	// WriteTimeout bounds handling a request and writing its response,
	// counted from the end of its headers. Event streams (a GET asking for
	// text/event-stream, without a body) are exempt. Default 30s.
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	// IdleTimeout closes a keep-alive connection that carried no request
	// for this long. Default 60s.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// PublicURL is the base URL agents open the workbench at
	// ("https://desk.example.com"); login links and the DingTalk OAuth
	// redirect are built from it, and cookies are Secure when it is https.
	// Default "": http://localhost:PORT from Listen.
	PublicURL string `mapstructure:"public_url"`
}

// DingTalk is the platform connection.
type DingTalk struct {
	// Mode is stream, webhook or both. Default "stream".
	Mode string `mapstructure:"mode"`
	// ClientID is the app's AppKey. Default "" (required for stream mode).
	ClientID string `mapstructure:"client_id"`
	// ClientSecret is the AppSecret; set it through
	// DINGDESK_DINGTALK_CLIENT_SECRET. Default "". Never logged.
	ClientSecret Secret `mapstructure:"client_secret"`
	// RobotCode is the robot's code for OpenAPI sends. Default: ClientID.
	RobotCode string `mapstructure:"robot_code"`
	// APIBase is the OpenAPI and stream gateway host. Default
	// "https://api.dingtalk.com".
	APIBase string `mapstructure:"api_base"`
	// WebhookPath is the HTTP callback route. Default "/dingtalk/callback".
	WebhookPath string `mapstructure:"webhook_path"`
	// WebhookMaxBody is the largest callback body accepted. Default 1048576.
	WebhookMaxBody int64 `mapstructure:"webhook_max_body"`
	// SessionWebhookHosts lists the hosts a sessionWebhook URL from a
	// payload may point at (SSRF guard). Default ["oapi.dingtalk.com",
	// "api.dingtalk.com"] plus the host of APIBase.
	SessionWebhookHosts []string `mapstructure:"session_webhook_hosts"`
	// CorpID is the organisation's CorpId: 免登 asks DingTalk for a code of
	// this org, and an OAuth login from another org is refused. Default "".
	CorpID string `mapstructure:"corp_id"`
	// OAPIBase is the old-style OpenAPI host (user lookups at login).
	// Default "https://oapi.dingtalk.com".
	OAPIBase string `mapstructure:"oapi_base"`
	// LoginBase is the OAuth login page host. Default
	// "https://login.dingtalk.com".
	LoginBase string `mapstructure:"login_base"`
	// QPS caps OpenAPI requests per second per API. Default 18 (DingTalk's
	// limit is 20).
	QPS float64 `mapstructure:"qps"`
}

// Storage is the database.
type Storage struct {
	// Driver is sqlite or mysql. Default "sqlite".
	Driver string `mapstructure:"driver"`
	// DSN is the SQLite file or the MySQL DSN
	// ("user:pw@tcp(host:3306)/db?parseTime=true"). A relative SQLite file
	// is relative to the config file, like knowledge files (Load makes it
	// absolute). Default "data/dingdesk.db".
	DSN Secret `mapstructure:"dsn"`
	// DedupRetention is how long accepted msgIds are remembered to drop
	// redeliveries. Default 168h (7 days).
	DedupRetention time.Duration `mapstructure:"dedup_retention"`
	// ReplicaTimeout is how long a replica may miss heartbeats before
	// another replica (or the next start) takes over its accepted messages
	// and the sends it had claimed. Heartbeats go every fifth of it.
	// Default 5s.
	ReplicaTimeout time.Duration `mapstructure:"replica_timeout"`
}

// Log is the process log.
type Log struct {
	// Level is debug, info, warn or error. Default "info".
	Level string `mapstructure:"level"`
	// Format is json or text. Default "json".
	Format string `mapstructure:"format"`
}

// Bot is the knowledge-base robot.
type Bot struct {
	// Knowledge lists knowledge files (.yaml/.yml, .csv, .jsonl), relative
	// to the config file. Default [].
	Knowledge []string `mapstructure:"knowledge"`
	// NoAnswerReply is sent when nothing matched. Default
	// "抱歉，这个问题我还不会，您可以换个说法试试，或者输入“转人工”联系人工客服。".
	NoAnswerReply string `mapstructure:"no_answer_reply"`
	// AnswerThreshold is the confidence (0..1) at or above which the best
	// entry is answered directly. Default 0.6.
	AnswerThreshold float64 `mapstructure:"answer_threshold"`
	// ClarifyThreshold is the confidence (0..1) at or above which the best
	// entries are offered as "您是不是想问". Default 0.28.
	ClarifyThreshold float64 `mapstructure:"clarify_threshold"`
	// ClarifyPrompt opens a clarify list. Default "您是不是想问：".
	ClarifyPrompt string `mapstructure:"clarify_prompt"`
	// ClarifyCount is how many questions a clarify list offers. Default 3.
	ClarifyCount int `mapstructure:"clarify_count"`
	// HotCommand asks for the most frequent questions. Default "常见问题".
	HotCommand string `mapstructure:"hot_command"`
	// HotPrompt opens the hot-question list. Default "大家都在问：".
	HotPrompt string `mapstructure:"hot_prompt"`
	// HotCount is how many hot questions are listed. Default 5.
	HotCount int `mapstructure:"hot_count"`
	// UnsupportedReply answers pictures, files, video and unknown message
	// types. Default "暂时只能识别文字消息哦，请用文字描述您的问题。".
	UnsupportedReply string `mapstructure:"unsupported_reply"`
	// Synonyms are groups of words that mean the same; the first word of
	// each group is the canonical one. Default [].
	Synonyms [][]string `mapstructure:"synonyms"`
	// SynonymsFile is an optional file of synonym groups, one group per line,
	// words separated by spaces or commas. Default "".
	SynonymsFile string `mapstructure:"synonyms_file"`
	// StopWords are dropped from questions before matching. Default: a
	// built-in list of Chinese function words.
	StopWords []string `mapstructure:"stop_words"`
	// Semantic is the optional semantic tier. Default off.
	Semantic Semantic `mapstructure:"semantic"`
}

// Semantic adds embedding similarity from an OpenAI-compatible embeddings
// endpoint (POST {base_url}/embeddings: OpenAI, Ollama, vLLM,
// text-embeddings-inference, DashScope compatible mode…) to matching.
type Semantic struct {
	// Enabled turns the tier on. Default false.
	Enabled bool `mapstructure:"enabled"`
	// BaseURL is the API root including its version, e.g.
	// "http://127.0.0.1:11434/v1". Default "".
	BaseURL string `mapstructure:"base_url"`
	// Model is the embedding model's name (it keys the cache). Default "".
	Model string `mapstructure:"model"`
	// APIKey is sent as a bearer token when set; set it through
	// DINGDESK_BOT_SEMANTIC_API_KEY. Default "".
	APIKey Secret `mapstructure:"api_key"`
	// Dimensions, when > 0, is requested and every vector must have it.
	// Default 0 (the model's own).
	Dimensions int `mapstructure:"dimensions"`
	// Timeout bounds one question's embedding; past it the question is
	// matched lexically. Default 300ms.
	Timeout time.Duration `mapstructure:"timeout"`
	// BatchSize is how many knowledge questions one request carries at
	// load. Default 32.
	BatchSize int `mapstructure:"batch_size"`
	// CacheDir keeps the knowledge questions' embeddings between runs,
	// relative to the config file. Default "data/embeddings".
	CacheDir string `mapstructure:"cache_dir"`
}

// Routing decides between the bot and a person.
type Routing struct {
	// Mode is bot_first, bot_only or human_only. Default "bot_first".
	Mode string `mapstructure:"mode"`
	// NoAnswerLimit hands off after this many unanswered questions in a row
	// (bot_first). Default 3.
	NoAnswerLimit int `mapstructure:"no_answer_limit"`
	// TransferKeywords ask for a person. Default ["转人工", "人工客服"].
	TransferKeywords []string `mapstructure:"transfer_keywords"`
	// EndKeywords end a human session or leave the queue. Default
	// ["结束会话"].
	EndKeywords []string `mapstructure:"end_keywords"`
	// SkillGroup is the default group for hand-offs. Default: the first
	// skill group.
	SkillGroup string `mapstructure:"skill_group"`
	// Overrides set the mode and/or skill group per conversation id.
	// Default [].
	Overrides []Override `mapstructure:"overrides"`
	// NoHumanReply answers a transfer keyword in bot_only mode. Default
	// "当前会话暂未开放人工服务，请继续向我提问哦。".
	NoHumanReply string `mapstructure:"no_human_reply"`
	// BotOnlyNoAnswerReply is the 无答案回复 of bot_only (仅机器人服务)
	// conversations, which have no person to offer. Default
	// "抱歉，这个问题我还不会，您可以换个说法试试。".
	BotOnlyNoAnswerReply string `mapstructure:"bot_only_no_answer_reply"`
	// EndInBotReply answers an end keyword when no session is open. Default
	// "当前没有进行中的人工会话，有问题随时问我哦。".
	EndInBotReply string `mapstructure:"end_in_bot_reply"`
}

// Override changes routing for one conversation.
type Override struct {
	ConversationID string `mapstructure:"conversation_id"`
	// Mode is bot_first, bot_only or human_only; "" keeps routing.mode.
	Mode string `mapstructure:"mode"`
	// SkillGroup; "" keeps routing.skill_group.
	SkillGroup string `mapstructure:"skill_group"`
}

// ServiceRule is when a skill group works and what it tells users.
type ServiceRule struct {
	Name string `mapstructure:"name"`
	// Timezone is an IANA zone. Default "Asia/Shanghai".
	Timezone string `mapstructure:"timezone"`
	// Hours maps day keys (mon…sun, or ranges like mon-fri) to time ranges
	// ("09:00-12:00", "00:00-24:00", overnight "21:00-02:00"). Default:
	// {mon-fri: ["09:00-18:00"]}.
	Hours map[string][]string `mapstructure:"hours"`
	// Holidays are closed dates (2006-01-02). Default [].
	Holidays []string `mapstructure:"holidays"`
	// Workdays (调休) are dates open although they are weekend days: "DATE"
	// uses Monday's hours, "DATE 09:00-18:00[,…]" explicit ranges. Default [].
	Workdays []string `mapstructure:"workdays"`
	// OffHoursMessage (非上班时间提示). Default
	// "现在是非工作时间，客服还未上班哦，您可以先向我提问，或在工作时间再来联系人工客服。".
	OffHoursMessage string `mapstructure:"off_hours_message"`
	// NoAgentMessage (无客服在线提示). Default
	// "现在暂时没有客服在线呢，请您过一会再来吧！".
	NoAgentMessage string `mapstructure:"no_agent_message"`
	// QueueMessage tells the queue position ({position}). Default
	// "客服都在忙，您已进入排队，当前排第 {position} 位，请耐心等待。输入“结束会话”可退出排队。".
	QueueMessage string `mapstructure:"queue_message"`
	// QueueMovedMessage tells a new position. Default
	// "排队更新：您当前排第 {position} 位。".
	QueueMovedMessage string `mapstructure:"queue_moved_message"`
	// AssignedMessage tells the user who serves them. Default
	// "客服 {agent} 为您服务，请问有什么可以帮您？".
	AssignedMessage string `mapstructure:"assigned_message"`
	// ClosingMessage ends a session (user or agent). Default
	// "本次人工服务已结束，感谢您的咨询！如有其他问题，可以继续问我。".
	ClosingMessage string `mapstructure:"closing_message"`
	// HumanOnlyClosingMessage ends a session of a human_only conversation
	// (user, agent or idle timeout), where the bot never answers. Default
	// "本次人工服务已结束，感谢您的咨询！如有其他问题，欢迎随时留言，客服会继续为您服务。".
	HumanOnlyClosingMessage string `mapstructure:"human_only_closing_message"`
	// IdleClosingMessage ends a session after customer_idle_timeout. Default
	// "由于您长时间未回复，本次人工服务已自动结束。如有需要，可以再次输入“转人工”。".
	IdleClosingMessage string `mapstructure:"idle_closing_message"`
	// QueueLeftMessage confirms leaving the queue. Default
	// "您已退出排队，有问题随时问我哦。".
	QueueLeftMessage string `mapstructure:"queue_left_message"`
	// QueueTimeoutMessage ends a wait after queue_timeout. Default
	// "非常抱歉，当前排队人数较多，您已等待较长时间，请稍后再试。".
	QueueTimeoutMessage string `mapstructure:"queue_timeout_message"`
	// CustomerIdleTimeout (会员超时) ends a human session the user left idle.
	// Default 10m; 0 disables.
	CustomerIdleTimeout time.Duration `mapstructure:"customer_idle_timeout"`
	// QueueTimeout ends a queue wait. Default 15m; 0 disables.
	QueueTimeout time.Duration `mapstructure:"queue_timeout"`
	// Satisfaction (满意度) is the rating prompt a user gets when a human
	// session ends (by the user, the agent or customer_idle_timeout).
	Satisfaction Satisfaction `mapstructure:"satisfaction"`
}

// Satisfaction configures the 满意度 survey of a service rule.
type Satisfaction struct {
	// Enabled sends the prompt. Default true.
	Enabled bool `mapstructure:"enabled"`
	// Prompt precedes the numbered labels. Default
	// "请您对本次人工服务做出评价，回复数字即可：".
	Prompt string `mapstructure:"prompt"`
	// Labels name the ratings 1…5, worst first. Default
	// [非常不满意, 不满意, 一般, 满意, 非常满意].
	Labels []string `mapstructure:"labels"`
	// Thanks answers a rating. Default "感谢您的评价，祝您生活愉快！".
	Thanks string `mapstructure:"thanks"`
	// Timeout is how long the prompt waits for a rating; any other message
	// ends it sooner. Default 10m.
	Timeout time.Duration `mapstructure:"timeout"`
}

// SkillGroup (技能组) is a team of agents sharing a service rule.
type SkillGroup struct {
	Name string `mapstructure:"name"`
	// DisplayName is shown to users and agents. Default: Name.
	DisplayName string `mapstructure:"display_name"`
	// Rule names a service rule. Default: the first service rule.
	Rule    string   `mapstructure:"rule"`
	Members []Member `mapstructure:"members"`
}

// Member is an agent in a skill group.
type Member struct {
	// StaffID is the agent's DingTalk staffId (userid).
	StaffID string `mapstructure:"staff_id"`
	// Name is shown to users ("客服 小王 为您服务"). Default: StaffID.
	Name string `mapstructure:"name"`
	// MaxChats (在线最大接单人数) caps the agent's open sessions. Default 5.
	MaxChats int `mapstructure:"max_chats"`
}

// Agent is an alternative way to declare one agent in several skill groups;
// it is merged into each group's members.
type Agent struct {
	StaffID     string   `mapstructure:"staff_id"`
	Name        string   `mapstructure:"name"`
	MaxChats    int      `mapstructure:"max_chats"`
	SkillGroups []string `mapstructure:"skill_groups"`
}

// CannedReply (常用语) is a prepared text agents send by number.
type CannedReply struct {
	Category string `mapstructure:"category"`
	Text     string `mapstructure:"text"`
}

// Admin may open the admin console (and, when also a member of a skill
// group, the workbench).
type Admin struct {
	// StaffID is the admin's DingTalk staffId (userid).
	StaffID string `mapstructure:"staff_id"`
	// Name is shown in the console. Default: StaffID.
	Name string `mapstructure:"name"`
}

// Web is the browser workbench and console.
type Web struct {
	// SessionTTL logs a browser out after this much inactivity. Default 12h.
	SessionTTL time.Duration `mapstructure:"session_ttl"`
	// LoginLinkTTL is how long a `dingdesk login-link` URL works (once).
	// Default 5m.
	LoginLinkTTL time.Duration `mapstructure:"login_link_ttl"`
	// EventRetention is how long live events are kept for reconnecting
	// browsers (Last-Event-ID); an older id gets a full refresh. Default 24h.
	EventRetention time.Duration `mapstructure:"event_retention"`
	// Texts are the workbench's titles, refusals and labels. Default:
	// DefaultWebTexts.
	Texts WebTexts `mapstructure:"texts"`
}

// Desk holds the agents' command words in their 1:1 chat with the bot.
type Desk struct {
	// Online. Default "上线".
	Online string `mapstructure:"online"`
	// Offline. Default "下线".
	Offline string `mapstructure:"offline"`
	// Busy. Default "忙碌".
	Busy string `mapstructure:"busy"`
	// List. Default "列表".
	List string `mapstructure:"list"`
	// End. Default "结束".
	End string `mapstructure:"end"`
	// Transfer. Default "转接".
	Transfer string `mapstructure:"transfer"`
	// Search. Default "搜索".
	Search string `mapstructure:"search"`
	// Canned. Default "常用语".
	Canned string `mapstructure:"canned"`
	// Suggest sends a suggested knowledge answer. Default "推荐".
	Suggest string `mapstructure:"suggest"`
	// Help. Default "帮助".
	Help string `mapstructure:"help"`
	// TranscriptLines is how many recent messages a new-session notice
	// carries. Default 5.
	TranscriptLines int `mapstructure:"transcript_lines"`
	// Texts are what agents read (notices, answers, error texts). Default:
	// DefaultDeskTexts.
	Texts DeskTexts `mapstructure:"texts"`
}

// Inbox is how accepted inbound messages are queued and handled.
type Inbox struct {
	// MaxQueued bounds the accepted messages waiting in memory for their
	// user's worker. Beyond it new messages are refused (DingTalk delivers
	// them again) instead of being parked or reordered. Default 10000.
	MaxQueued int `mapstructure:"max_queued"`
	// MaxAttempts is how often a message is tried while storage is healthy
	// before it is recorded as failed. Default 5.
	MaxAttempts int `mapstructure:"max_attempts"`
	// FailedReply tells the user their message could not be handled.
	FailedReply string `mapstructure:"failed_reply"`
}

// Outbox is the stored queue of outbound messages.
type Outbox struct {
	// MaxAttempts before a send is recorded as failed. Default 12.
	MaxAttempts int `mapstructure:"max_attempts"`
	// MaxAge before a send is recorded as failed. Default 1h.
	MaxAge time.Duration `mapstructure:"max_age"`
	// Workers send in parallel. Default 8.
	Workers int `mapstructure:"workers"`
}

// Secret is a string that never shows in logs or %v output.
type Secret string

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "******"
}

// LogValue hides the value from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Reveal returns the value, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// Effective accessors: defaults that depend on other keys.

// EffectiveRobotCode is RobotCode, or ClientID when empty.
func (d DingTalk) EffectiveRobotCode() string {
	if d.RobotCode != "" {
		return d.RobotCode
	}
	return d.ClientID
}

// DefaultSkillGroup is routing.skill_group, or the first group.
func (c *Config) DefaultSkillGroup() string {
	if c.Routing.SkillGroup != "" {
		return c.Routing.SkillGroup
	}
	if len(c.SkillGroups) > 0 {
		return c.SkillGroups[0].Name
	}
	return ""
}

// Group finds a skill group by name.
func (c *Config) Group(name string) (*SkillGroup, bool) {
	for i := range c.SkillGroups {
		if c.SkillGroups[i].Name == name {
			return &c.SkillGroups[i], true
		}
	}
	return nil, false
}

// Rule finds a service rule by name.
func (c *Config) Rule(name string) (*ServiceRule, bool) {
	for i := range c.ServiceRules {
		if c.ServiceRules[i].Name == name {
			return &c.ServiceRules[i], true
		}
	}
	return nil, false
}

// RuleOf is the service rule of a skill group.
func (c *Config) RuleOf(group string) (*ServiceRule, bool) {
	g, ok := c.Group(group)
	if !ok {
		return nil, false
	}
	return c.Rule(g.Rule)
}

// Route is the effective mode and skill group of a conversation.
func (c *Config) Route(conversationID string) (mode, group string) {
	mode, group = c.Routing.Mode, c.DefaultSkillGroup()
	for _, o := range c.Routing.Overrides {
		if o.ConversationID == conversationID {
			if o.Mode != "" {
				mode = o.Mode
			}
			if o.SkillGroup != "" {
				group = o.SkillGroup
			}
			break
		}
	}
	return mode, group
}

// IsAgent reports whether staffID is a member of any skill group.
func (c *Config) IsAgent(staffID string) bool {
	if staffID == "" {
		return false
	}
	for _, g := range c.SkillGroups {
		for _, m := range g.Members {
			if m.StaffID == staffID {
				return true
			}
		}
	}
	return false
}

// IsAdmin reports whether staffID is listed in admins.
func (c *Config) IsAdmin(staffID string) bool {
	return staffID != "" && slices.ContainsFunc(c.Admins, func(a Admin) bool { return a.StaffID == staffID })
}

// EffectivePublicURL is server.public_url without a trailing slash, or
// http://localhost:PORT from addr (the bound listen address, which knows
// the port when server.listen ends in :0).
func (c *Config) EffectivePublicURL(addr string) string {
	if c.Server.PublicURL != "" {
		return strings.TrimRight(c.Server.PublicURL, "/")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://localhost"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Member finds staffID in a group.
func (c *Config) Member(group, staffID string) (*Member, bool) {
	g, ok := c.Group(group)
	if !ok {
		return nil, false
	}
	for i := range g.Members {
		if g.Members[i].StaffID == staffID {
			return &g.Members[i], true
		}
	}
	return nil, false
}

// GroupsOf lists the skill groups staffID belongs to, in config order.
func (c *Config) GroupsOf(staffID string) []string {
	var out []string
	for _, g := range c.SkillGroups {
		for _, m := range g.Members {
			if m.StaffID == staffID {
				out = append(out, g.Name)
				break
			}
		}
	}
	return out
}

// Resolve makes a path from the config (knowledge files, synonyms file)
// absolute, relative to the config file's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}
