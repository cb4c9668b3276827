package config

// WebTexts is the catalogue of texts the web workbench shows that its
// templates do not carry (web.texts.*): page titles, refusals, the
// workbench's wording of the engine's error codes (codes it does not
// word itself use desk.texts.err_*), and labels. Placeholders in braces
// are filled in where the text is used.
type WebTexts struct {
	// TitleDesk: page title: the workbench. Default "客服工作台".
	TitleDesk string `mapstructure:"title_desk"`
	// TitleEndedSession: page title: an ended session. Default "已结束会话".
	TitleEndedSession string `mapstructure:"title_ended_session"`
	// TitleEnded: page title: 已结束. Default "已结束".
	TitleEnded string `mapstructure:"title_ended"`
	// TitleSettings: page title: settings. Default "设置".
	TitleSettings string `mapstructure:"title_settings"`
	// TitleLogin: page title: login. Default "登录".
	TitleLogin string `mapstructure:"title_login"`
	// TitleNoSession: refusal title: no such session. Default "没有这个会话".
	TitleNoSession string `mapstructure:"title_no_session"`
	// TitleNotYours: refusal title: another agent's session. Default "无权查看".
	TitleNotYours string `mapstructure:"title_not_yours"`
	// TitleSessionEnded: refusal title: the session has ended. Default "会话已结束".
	TitleSessionEnded string `mapstructure:"title_session_ended"`
	// TitleInvalid: refusal title: a request with bad input. Default "无法完成".
	TitleInvalid string `mapstructure:"title_invalid"`
	// TitleNoCanned: refusal title: no such canned reply. Default "没有这条常用语".
	TitleNoCanned string `mapstructure:"title_no_canned"`
	// TitleForbidden: refusal title: no access. Default "无权访问".
	TitleForbidden string `mapstructure:"title_forbidden"`
	// TitleCSRF: refusal title: CSRF check failed. Default "请求已失效".
	TitleCSRF string `mapstructure:"title_csrf"`
	// TitleRefused: refusal title: the engine refused (its error code's text follows). Default "操作未完成".
	TitleRefused string `mapstructure:"title_refused"`
	// TitleError: refusal title: an internal error. Default "出错了".
	TitleError string `mapstructure:"title_error"`
	// TitleCannotLogin: refusal title: the person may not log in. Default "无法登录".
	TitleCannotLogin string `mapstructure:"title_cannot_login"`
	// TitleLoginFailed: refusal title: the login did not work. Default "登录失败".
	TitleLoginFailed string `mapstructure:"title_login_failed"`
	// TitleNoDingTalk: refusal title: DingTalk login not configured. Default "未启用钉钉登录".
	TitleNoDingTalk string `mapstructure:"title_no_dingtalk"`
	// TitleLinkUsed: refusal title: a used login link. Default "登录链接已使用".
	TitleLinkUsed string `mapstructure:"title_link_used"`
	// TitleLinkExpired: refusal title: an expired login link. Default "登录链接已过期".
	TitleLinkExpired string `mapstructure:"title_link_expired"`
	// TitleLinkUnknown: refusal title: an unknown login link. Default "登录链接无效".
	TitleLinkUnknown string `mapstructure:"title_link_unknown"`
	// LoginRequired: no session cookie. Default "请先登录。".
	LoginRequired string `mapstructure:"login_required"`
	// LoginExpired: the browser session expired. Default "登录已过期，请重新登录。".
	LoginExpired string `mapstructure:"login_expired"`
	// Removed: the person left the config. Default "您已不在客服或管理员名单中，请联系管理员。".
	Removed string `mapstructure:"removed"`
	// NoRole: the person lacks the page's role. Default "您的账号没有打开此页面的权限。".
	NoRole string `mapstructure:"no_role"`
	// CSRF: a forged or missing CSRF token. Default "安全校验（CSRF）未通过，操作没有执行。请刷新页面后重试。".
	CSRF string `mapstructure:"csrf"`
	// Internal: an internal error. Default "系统暂时出错，请稍后重试。".
	Internal string `mapstructure:"internal"`
	// NotMember: a login by someone not in the config ({staff}: their userid). Default "您（{staff}）不是客服或管理员，请联系管理员把您加入配置。".
	NotMember string `mapstructure:"not_member"`
	// NoDingTalk: DingTalk login asked for but not configured. Default "此服务没有配置钉钉应用（dingtalk.client_id），请使用登录链接。".
	NoDingTalk string `mapstructure:"no_dingtalk"`
	// OAuthState: an OAuth callback without its state cookie. Default "登录请求已失效或不是从本页面发起的，请重新登录。".
	OAuthState string `mapstructure:"oauth_state"`
	// OAuthDenied: the person cancelled DingTalk's consent. Default "您在钉钉取消了授权，请重新登录。".
	OAuthDenied string `mapstructure:"oauth_denied"`
	// OAuthNoCode: a callback without a code. Default "钉钉没有返回授权码，请重新登录。".
	OAuthNoCode string `mapstructure:"oauth_no_code"`
	// Outsider: a DingTalk user outside the organisation. Default "只有本企业的成员可以登录。".
	Outsider string `mapstructure:"outsider"`
	// BadCode: DingTalk refused the code. Default "授权码无效或已过期，请重新登录。".
	BadCode string `mapstructure:"bad_code"`
	// DingTalkDown: DingTalk unreachable during login. Default "暂时无法连接钉钉，请稍后重试。".
	DingTalkDown string `mapstructure:"dingtalk_down"`
	// JSAPIState: a 免登 post without its state. Default "登录请求已失效，请刷新页面。".
	JSAPIState string `mapstructure:"jsapi_state"`
	// LinkUsed: a used login link. Default "这个登录链接已经用过了，每个链接只能登录一次。请重新获取。".
	LinkUsed string `mapstructure:"link_used"`
	// LinkExpired: an expired login link. Default "这个登录链接已过期，请重新获取。".
	LinkExpired string `mapstructure:"link_expired"`
	// LinkUnknown: an unknown login link. Default "这个登录链接不存在，请检查是否复制完整。".
	LinkUnknown string `mapstructure:"link_unknown"`
	// BadSessionID: a malformed session id in the URL. Default "会话编号无效。".
	BadSessionID string `mapstructure:"bad_session_id"`
	// NoSession: no such session. Default "这个会话不存在。".
	NoSession string `mapstructure:"no_session"`
	// NotYours: another agent's session. Default "这个会话不属于您，无法查看或操作。".
	NotYours string `mapstructure:"not_yours"`
	// SessionEnded: acting on an ended session. Default "该会话已结束，不能再操作。".
	SessionEnded string `mapstructure:"session_ended"`
	// BadPresence: an unknown presence. Default "未知的状态。".
	BadPresence string `mapstructure:"bad_presence"`
	// EmptyReply: an empty reply. Default "消息内容为空。".
	EmptyReply string `mapstructure:"empty_reply"`
	// ReplyTooLong: a reply over the limit ({max} characters). Default "消息过长（最多 {max} 字），没有发送。".
	ReplyTooLong string `mapstructure:"reply_too_long"`
	// ChooseTarget: a transfer without a target. Default "请选择要转接的技能组或客服。".
	ChooseTarget string `mapstructure:"choose_target"`
	// CannedEmpty: an empty canned reply. Default "常用语内容不能为空。".
	CannedEmpty string `mapstructure:"canned_empty"`
	// CannedTooLong: a canned reply over {max} characters. Default "常用语最多 {max} 字。".
	CannedTooLong string `mapstructure:"canned_too_long"`
	// CategoryTooLong: a category over {max} characters. Default "分类最多 {max} 字。".
	CategoryTooLong string `mapstructure:"category_too_long"`
	// BadCannedID: a malformed canned reply id. Default "常用语编号无效。".
	BadCannedID string `mapstructure:"bad_canned_id"`
	// NoCanned: no such canned reply (or another agent's). Default "这条常用语不存在，或不是您的。".
	NoCanned string `mapstructure:"no_canned"`
	// CannedOther: names 常用语 without a category. Default "其他".
	CannedOther string `mapstructure:"canned_other"`
	// ErrUnknownSession: text of error code `unknown_session` (other codes use desk.texts.err_*). Default "没有这个会话".
	ErrUnknownSession string `mapstructure:"err_unknown_session"`
	// ErrSessionEnded: text of error code `session_ended`. Default "该会话已结束".
	ErrSessionEnded string `mapstructure:"err_session_ended"`
	// ErrUnknownGroup: text of error code `unknown_group`. Default "没有技能组“{group}”".
	ErrUnknownGroup string `mapstructure:"err_unknown_group"`
	// ChatPrivate: 会员信息: a 1:1 chat. Default "单聊".
	ChatPrivate string `mapstructure:"chat_private"`
	// ChatGroup: 会员信息: a group chat. Default "群聊".
	ChatGroup string `mapstructure:"chat_group"`
	// Seconds: a duration under a minute. Default "{n}秒".
	Seconds string `mapstructure:"seconds"`
	// Minutes: a duration under an hour. Default "{n}分钟".
	Minutes string `mapstructure:"minutes"`
	// Hours: a longer duration. Default "{h}小时{m}分".
	Hours string `mapstructure:"hours"`
	// ReasonNoAnswer: hand-off reason no_answer. Default "机器人多次未能回答".
	ReasonNoAnswer string `mapstructure:"reason_no_answer"`
	// ReasonKeyword: hand-off reason keyword. Default "用户要求转人工".
	ReasonKeyword string `mapstructure:"reason_keyword"`
	// ReasonKBHandoff: hand-off reason kb_handoff. Default "知识点设置为转人工".
	ReasonKBHandoff string `mapstructure:"reason_kb_handoff"`
	// ReasonHumanOnly: hand-off reason human_only. Default "仅人工服务".
	ReasonHumanOnly string `mapstructure:"reason_human_only"`
	// ReasonTransfer: hand-off reason transfer. Default "转接".
	ReasonTransfer string `mapstructure:"reason_transfer"`
	// EndUser: end reason user_end. Default "用户结束".
	EndUser string `mapstructure:"end_user"`
	// EndAgent: end reason agent_end. Default "客服结束".
	EndAgent string `mapstructure:"end_agent"`
	// EndIdle: end reason idle. Default "用户超时未回复".
	EndIdle string `mapstructure:"end_idle"`
	// EndQueueLeft: end reason queue_left. Default "用户退出排队".
	EndQueueLeft string `mapstructure:"end_queue_left"`
	// EndQueueTimeout: end reason queue_timeout. Default "排队超时".
	EndQueueTimeout string `mapstructure:"end_queue_timeout"`
	// EndTransferred: end reason transferred. Default "已转接".
	EndTransferred string `mapstructure:"end_transferred"`
	// EndAgentOffline: end reason agent_offline. Default "客服下线，已转交".
	EndAgentOffline string `mapstructure:"end_agent_offline"`
	// SenderUser: a user's line without a nick. Default "用户".
	SenderUser string `mapstructure:"sender_user"`
	// SenderBot: the bot's lines. Default "机器人".
	SenderBot string `mapstructure:"sender_bot"`
	// SenderAgent: an agent's lines. Default "客服 {agent}".
	SenderAgent string `mapstructure:"sender_agent"`
	// SenderAgentUnnamed: an agent's lines without a name. Default "客服".
	SenderAgentUnnamed string `mapstructure:"sender_agent_unnamed"`
	// SenderSystem: service lines (queue, assignment, closing). Default "系统".
	SenderSystem string `mapstructure:"sender_system"`
	// PresenceOnline: presence online. Default "在线".
	PresenceOnline string `mapstructure:"presence_online"`
	// PresenceBusy: presence busy. Default "忙碌".
	PresenceBusy string `mapstructure:"presence_busy"`
	// PresenceOffline: presence offline. Default "离线".
	PresenceOffline string `mapstructure:"presence_offline"`
}

// DefaultWebTexts are the Chinese defaults of web.texts.
func DefaultWebTexts() WebTexts {
	return WebTexts{
		TitleDesk:          "客服工作台",
		TitleEndedSession:  "已结束会话",
		TitleEnded:         "已结束",
		TitleSettings:      "设置",
		TitleLogin:         "登录",
		TitleNoSession:     "没有这个会话",
		TitleNotYours:      "无权查看",
		TitleSessionEnded:  "会话已结束",
		TitleInvalid:       "无法完成",
		TitleNoCanned:      "没有这条常用语",
		TitleForbidden:     "无权访问",
		TitleCSRF:          "请求已失效",
		TitleRefused:       "操作未完成",
		TitleError:         "出错了",
		TitleCannotLogin:   "无法登录",
		TitleLoginFailed:   "登录失败",
		TitleNoDingTalk:    "未启用钉钉登录",
		TitleLinkUsed:      "登录链接已使用",
		TitleLinkExpired:   "登录链接已过期",
		TitleLinkUnknown:   "登录链接无效",
		LoginRequired:      "请先登录。",
		LoginExpired:       "登录已过期，请重新登录。",
		Removed:            "您已不在客服或管理员名单中，请联系管理员。",
		NoRole:             "您的账号没有打开此页面的权限。",
		CSRF:               "安全校验（CSRF）未通过，操作没有执行。请刷新页面后重试。",
		Internal:           "系统暂时出错，请稍后重试。",
		NotMember:          "您（{staff}）不是客服或管理员，请联系管理员把您加入配置。",
		NoDingTalk:         "此服务没有配置钉钉应用（dingtalk.client_id），请使用登录链接。",
		OAuthState:         "登录请求已失效或不是从本页面发起的，请重新登录。",
		OAuthDenied:        "您在钉钉取消了授权，请重新登录。",
		OAuthNoCode:        "钉钉没有返回授权码，请重新登录。",
		Outsider:           "只有本企业的成员可以登录。",
		BadCode:            "授权码无效或已过期，请重新登录。",
		DingTalkDown:       "暂时无法连接钉钉，请稍后重试。",
		JSAPIState:         "登录请求已失效，请刷新页面。",
		LinkUsed:           "这个登录链接已经用过了，每个链接只能登录一次。请重新获取。",
		LinkExpired:        "这个登录链接已过期，请重新获取。",
		LinkUnknown:        "这个登录链接不存在，请检查是否复制完整。",
		BadSessionID:       "会话编号无效。",
		NoSession:          "这个会话不存在。",
		NotYours:           "这个会话不属于您，无法查看或操作。",
		SessionEnded:       "该会话已结束，不能再操作。",
		BadPresence:        "未知的状态。",
		EmptyReply:         "消息内容为空。",
		ReplyTooLong:       "消息过长（最多 {max} 字），没有发送。",
		ChooseTarget:       "请选择要转接的技能组或客服。",
		CannedEmpty:        "常用语内容不能为空。",
		CannedTooLong:      "常用语最多 {max} 字。",
		CategoryTooLong:    "分类最多 {max} 字。",
		BadCannedID:        "常用语编号无效。",
		NoCanned:           "这条常用语不存在，或不是您的。",
		CannedOther:        "其他",
		ErrUnknownSession:  "没有这个会话",
		ErrSessionEnded:    "该会话已结束",
		ErrUnknownGroup:    "没有技能组“{group}”",
		ChatPrivate:        "单聊",
		ChatGroup:          "群聊",
		Seconds:            "{n}秒",
		Minutes:            "{n}分钟",
		Hours:              "{h}小时{m}分",
		ReasonNoAnswer:     "机器人多次未能回答",
		ReasonKeyword:      "用户要求转人工",
		ReasonKBHandoff:    "知识点设置为转人工",
		ReasonHumanOnly:    "仅人工服务",
		ReasonTransfer:     "转接",
		EndUser:            "用户结束",
		EndAgent:           "客服结束",
		EndIdle:            "用户超时未回复",
		EndQueueLeft:       "用户退出排队",
		EndQueueTimeout:    "排队超时",
		EndTransferred:     "已转接",
		EndAgentOffline:    "客服下线，已转交",
		SenderUser:         "用户",
		SenderBot:          "机器人",
		SenderAgent:        "客服 {agent}",
		SenderAgentUnnamed: "客服",
		SenderSystem:       "系统",
		PresenceOnline:     "在线",
		PresenceBusy:       "忙碌",
		PresenceOffline:    "离线",
	}
}

// problems reports the texts left empty: a refusal without a text would
// leave a blank page.
func (t WebTexts) problems() []Problem {
	return emptyTexts("web.texts.", t)
}
