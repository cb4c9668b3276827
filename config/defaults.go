package config

import "time"

// Default is the configuration with every default filled in. It is the one
// place defaults live; the doc comments on the fields repeat them.
func Default() *Config {
	return &Config{
		Server: Server{
			Listen: ":8080", ShutdownTimeout: 15 * time.Second,
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second,
		},
		DingTalk: DingTalk{
			Mode:                "stream",
			APIBase:             "https://api.dingtalk.com",
			WebhookPath:         "/dingtalk/callback",
			WebhookMaxBody:      1 << 20,
			SessionWebhookHosts: []string{"oapi.dingtalk.com", "api.dingtalk.com"},
			QPS:                 18,
			OAPIBase:            "https://oapi.dingtalk.com",
			LoginBase:           "https://login.dingtalk.com",
		},
		Storage: Storage{Driver: "sqlite", DSN: "data/dingdesk.db", DedupRetention: 168 * time.Hour, ReplicaTimeout: 5 * time.Second},
		Log:     Log{Level: "info", Format: "json"},
		Bot: Bot{
			Knowledge:        []string{},
			NoAnswerReply:    "抱歉，这个问题我还不会，您可以换个说法试试，或者输入“转人工”联系人工客服。",
			AnswerThreshold:  0.6,
			ClarifyThreshold: 0.28,
			ClarifyPrompt:    "您是不是想问：",
			ClarifyCount:     3,
			HotCommand:       "常见问题",
			HotPrompt:        "大家都在问：",
			HotCount:         5,
			UnsupportedReply: "暂时只能识别文字消息哦，请用文字描述您的问题。",
			Semantic:         Semantic{Timeout: 300 * time.Millisecond, BatchSize: 32, CacheDir: "data/embeddings"},
		},
		Routing: Routing{
			Mode:             "bot_first",
			NoAnswerLimit:    3,
			TransferKeywords: []string{"转人工", "人工客服"},
			EndKeywords:      []string{"结束会话"},
			NoHumanReply:     "当前会话暂未开放人工服务，请继续向我提问哦。",
			EndInBotReply:    "当前没有进行中的人工会话，有问题随时问我哦。",

			BotOnlyNoAnswerReply: "抱歉，这个问题我还不会，您可以换个说法试试。",
		},
		Desk: Desk{
			Online: "上线", Offline: "下线", Busy: "忙碌", List: "列表", End: "结束",
			Transfer: "转接", Search: "搜索", Canned: "常用语", Suggest: "推荐", Help: "帮助",
			TranscriptLines: 5,

			Texts: DefaultDeskTexts(),
		},
		Outbox: Outbox{MaxAttempts: 12, MaxAge: time.Hour, Workers: 8},
		Web: Web{SessionTTL: 12 * time.Hour, LoginLinkTTL: 5 * time.Minute, EventRetention: 24 * time.Hour,
			Texts: DefaultWebTexts()},
		Inbox: Inbox{MaxQueued: 10000, MaxAttempts: 5,
			FailedReply: "非常抱歉，您的这条消息暂时无法处理，我们已记录下来并会尽快排查，请稍后再试或换个说法。"},
	}
}

// DefaultServiceRule is the template every service_rules[] entry starts
// from; keys the file leaves out keep these values.
func DefaultServiceRule() ServiceRule {
	return ServiceRule{
		Timezone:            "Asia/Shanghai",
		Hours:               map[string][]string{"mon-fri": {"09:00-18:00"}},
		OffHoursMessage:     "现在是非工作时间，客服还未上班哦，您可以先向我提问，或在工作时间再来联系人工客服。",
		NoAgentMessage:      "现在暂时没有客服在线呢，请您过一会再来吧！",
		QueueMessage:        "客服都在忙，您已进入排队，当前排第 {position} 位，请耐心等待。输入“结束会话”可退出排队。",
		QueueMovedMessage:   "排队更新：您当前排第 {position} 位。",
		AssignedMessage:     "客服 {agent} 为您服务，请问有什么可以帮您？",
		ClosingMessage:      "本次人工服务已结束，感谢您的咨询！如有其他问题，可以继续问我。",
		IdleClosingMessage:  "由于您长时间未回复，本次人工服务已自动结束。如有需要，可以再次输入“转人工”。",
		QueueLeftMessage:    "您已退出排队，有问题随时问我哦。",
		QueueTimeoutMessage: "非常抱歉，当前排队人数较多，您已等待较长时间，请稍后再试。",
		CustomerIdleTimeout: 10 * time.Minute,
		QueueTimeout:        15 * time.Minute,

		HumanOnlyClosingMessage: "本次人工服务已结束，感谢您的咨询！如有其他问题，欢迎随时留言，客服会继续为您服务。",
		Satisfaction:            DefaultSatisfaction(),
	}
}

// DefaultSatisfaction is the 满意度 survey a service rule starts from.
func DefaultSatisfaction() Satisfaction {
	return Satisfaction{Enabled: true, Prompt: "请您对本次人工服务做出评价，回复数字即可：",
		Labels: []string{"非常不满意", "不满意", "一般", "满意", "非常满意"},
		Thanks: "感谢您的评价，祝您生活愉快！", Timeout: 10 * time.Minute}
}

// DefaultMaxChats is a member's max_chats when the file leaves it out.
const DefaultMaxChats = 5
