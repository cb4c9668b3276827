package config

import (
	"reflect"
	"slices"
	"strings"
)

// DeskTexts is the catalogue of texts agents read in their 1:1 chat with
// the bot (desk.texts.*): notices from the hand-off engine, the desk's
// answers, and the text of every error code an agent operation returns.
// Placeholders in braces are filled in where the text is used: {no} the
// session number, {user} the user's nick, {group} a skill group's display
// name, {agent} an agent's name, {command}/{help}/{suggest}… the desk's
// command words. A web front end maps the same error codes to the same
// texts.
type DeskTexts struct {
	// NewSession heads a new-session notice. Default
	// "【新会话 #{no}】{user} · {chat} · 技能组 {group}".
	NewSession string `mapstructure:"new_session"`
	// TransferredSession heads the notice of a transferred session. Default
	// "【转接会话 #{no}】{user} · {chat} · 技能组 {group}".
	TransferredSession string `mapstructure:"transferred_session"`
	// PrivateChat names a 1:1 chat in notices ({chat}). Default "单聊".
	PrivateChat string `mapstructure:"private_chat"`
	// Reason introduces why a session was handed off. Default "原因：{reason}".
	Reason string `mapstructure:"reason"`
	// ReasonNoAnswer. Default "机器人多次未能回答".
	ReasonNoAnswer string `mapstructure:"reason_no_answer"`
	// ReasonKeyword. Default "用户要求转人工".
	ReasonKeyword string `mapstructure:"reason_keyword"`
	// ReasonKBHandoff. Default "问题需要人工处理".
	ReasonKBHandoff string `mapstructure:"reason_kb_handoff"`
	// ReasonHumanOnly. Default "人工服务会话".
	ReasonHumanOnly string `mapstructure:"reason_human_only"`
	// ReasonTransfer. Default "由 {agent} 转接".
	ReasonTransfer string `mapstructure:"reason_transfer"`
	// TransferNote shows the transfer note (转接附言) in a transferred-session
	// notice. Default "转接附言（{agent}）：{note}".
	TransferNote string `mapstructure:"transfer_note"`
	// RecentMessages heads the transcript in a notice. Default "—— 最近消息 ——".
	RecentMessages string `mapstructure:"recent_messages"`
	// SpeakerAgent names an agent's line in that transcript. Default "客服 {agent}".
	SpeakerAgent string `mapstructure:"speaker_agent"`
	// SpeakerBot. Default "机器人".
	SpeakerBot string `mapstructure:"speaker_bot"`
	// SpeakerSystem. Default "系统".
	SpeakerSystem string `mapstructure:"speaker_system"`
	// Suggestions heads a suggestion list (推荐知识). Default
	// "—— 推荐知识（发送“{suggest} 编号”回复用户）——".
	Suggestions string `mapstructure:"suggestions"`
	// SuggestionsFor heads the list the suggest command shows. Default
	// "#{no} {user} 的问题“{question}”的推荐知识（回复“{suggest} 编号”发给用户）：".
	SuggestionsFor string `mapstructure:"suggestions_for"`
	// RelaySuggestions heads the suggestions a relayed user message carries
	// (its questions only). Default "推荐知识（回复“{suggest} 编号”发给用户）：".
	RelaySuggestions string `mapstructure:"relay_suggestions"`
	// ReplyHint ends a new-session notice. Default
	// "回复“#{no} 内容”或直接发送文字即可回复该用户。".
	ReplyHint string `mapstructure:"reply_hint"`
	// Relay is a user's message as the agent sees it. Default "#{no} {user}：{text}".
	Relay string `mapstructure:"relay"`
	// KindPicture, KindFile, KindVideo, KindAudio and KindOther show a
	// user's non-text message to the agent. Defaults "[图片]", "[文件]",
	// "[视频]", "[语音]", "[暂不支持的消息]".
	KindPicture string `mapstructure:"kind_picture"`
	KindFile    string `mapstructure:"kind_file"`
	KindVideo   string `mapstructure:"kind_video"`
	KindAudio   string `mapstructure:"kind_audio"`
	KindOther   string `mapstructure:"kind_other"`
	// EndedByUser tells the agent the user ended a session. Default
	// "【会话结束 #{no}】{user}：用户结束了会话".
	EndedByUser string `mapstructure:"ended_by_user"`
	// EndedIdle tells the agent a session timed out. Default
	// "【会话结束 #{no}】{user}：用户长时间未回复，会话已自动结束".
	EndedIdle string `mapstructure:"ended_idle"`
	// FirstReply starts an agent's first reply to the user when the
	// assignment text did not name the agent (sent to the user). Default
	// "客服 {agent} 为您服务".
	FirstReply string `mapstructure:"first_reply"`
	// Online confirms going online. Default "✅ 已上线，开始接待。".
	Online string `mapstructure:"online"`
	// PulledIn adds how many queued users going online brought. Default
	// "已为您接入 {count} 位排队用户。".
	PulledIn string `mapstructure:"pulled_in"`
	// Busy confirms busy. Default "⏸ 已设为忙碌：保留当前会话，不再接新会话。".
	Busy string `mapstructure:"busy"`
	// Offline confirms going offline. Default "已下线。".
	Offline string `mapstructure:"offline"`
	// HandedOn lists the sessions going offline handed on. Default
	// "您的 {count} 个会话已交接：".
	HandedOn string `mapstructure:"handed_on"`
	// HandedToAgent lists one session handed to a colleague. Default
	// "#{no} {user} → {agent}".
	HandedToAgent string `mapstructure:"handed_to_agent"`
	// HandedToQueue lists one session handed back to the queue. Default
	// "#{no} {user} → {group} 排队第 {position} 位".
	HandedToQueue string `mapstructure:"handed_to_queue"`
	// Ended confirms the agent's end command. Default "已结束会话 #{no}（{user}）。".
	Ended string `mapstructure:"ended"`
	// TransferredTo confirms a transfer to an agent. Default
	// "会话 #{no}（{user}）已转接给{group}的 {agent}。".
	TransferredTo string `mapstructure:"transferred_to"`
	// TransferredQueued confirms a transfer into a queue. Default
	// "会话 #{no}（{user}）已转到{group}，排队第 {position} 位。".
	TransferredQueued string `mapstructure:"transferred_queued"`
	// Current confirms the current session. Default
	// "当前会话：#{no} {user}（{group}）。直接输入文字即可回复。".
	Current string `mapstructure:"current"`
	// TextOnly answers a non-text message from an agent. Default
	// "客服台只支持文字：请用文字回复用户或输入“{help}”查看命令。".
	TextOnly string `mapstructure:"text_only"`
	// LooksLikeCommand answers plain text that looks like a command instead
	// of being sent to the user. Default
	// "“{text}”看起来像命令，没有发给用户。要发给用户请写“#{no} {text}”；输入“{help}”查看客服命令。".
	LooksLikeCommand string `mapstructure:"looks_like_command"`
	// Error prefixes every error shown to an agent. Default "⚠️ {error}".
	Error string `mapstructure:"error"`
	// UsageEnd. Default "用法：{end} 或 {end} #编号".
	UsageEnd string `mapstructure:"usage_end"`
	// UsageTransfer. Default
	// "用法：{transfer} #编号 技能组或客服 [附言]（技能组：{groups}）".
	UsageTransfer string `mapstructure:"usage_transfer"`
	// UsageSearch. Default "用法：{search} 关键词".
	UsageSearch string `mapstructure:"usage_search"`
	// UsageSuggest. Default "用法：{suggest} 查看推荐，{suggest} 编号 发送推荐".
	UsageSuggest string `mapstructure:"usage_suggest"`
	// UsageSessionNo. Default "会话编号写作 #12".
	UsageSessionNo string `mapstructure:"usage_session_no"`
	// Status is the first line of the list command. Default "状态：{presence}".
	Status string `mapstructure:"status"`
	// PresenceOnline, PresenceBusy, PresenceOffline name presences.
	// Defaults "在线", "忙碌", "离线".
	PresenceOnline  string `mapstructure:"presence_online"`
	PresenceBusy    string `mapstructure:"presence_busy"`
	PresenceOffline string `mapstructure:"presence_offline"`
	// NoSessions. Default "当前没有会话。".
	NoSessions string `mapstructure:"no_sessions"`
	// SessionLine lists one session. Default "#{no} {user} · {chat} · {group}{current}".
	SessionLine string `mapstructure:"session_line"`
	// CurrentMark marks the current session in the list. Default "（当前）".
	CurrentMark string `mapstructure:"current_mark"`
	// QueueLine lists a group's queue. Default "排队：{group} {count} 人".
	QueueLine string `mapstructure:"queue_line"`
	// SearchHead. Default "搜索“{words}”：".
	SearchHead string `mapstructure:"search_head"`
	// SearchNone. Default "知识库里没有找到“{words}”相关的内容。".
	SearchNone string `mapstructure:"search_none"`
	// CannedHead. Default "常用语（输入“{canned} 编号”发送给当前用户）：".
	CannedHead string `mapstructure:"canned_head"`
	// CannedNone. Default "还没有配置常用语（canned_replies）。".
	CannedNone string `mapstructure:"canned_none"`
	// CannedOther names canned replies without a category. Default "其他".
	CannedOther string `mapstructure:"canned_other"`
	// CannedUnknown. Default "没有常用语 {n}（共 {count} 条，输入“{canned}”查看）".
	CannedUnknown string `mapstructure:"canned_unknown"`
	// Help is the command list. Default: the list of desk commands, with
	// the configured words in {online}, {offline}, {busy}, {list}, {end},
	// {transfer}, {search}, {suggest}, {canned} and {groups}.
	Help string `mapstructure:"help"`
	// ErrNotAgent. Default "您不是任何技能组的客服".
	ErrNotAgent string `mapstructure:"err_not_agent"`
	// ErrUnknownSession. Default "#{no}：没有这个会话".
	ErrUnknownSession string `mapstructure:"err_unknown_session"`
	// ErrSessionEnded. Default "#{no}：该会话已结束".
	ErrSessionEnded string `mapstructure:"err_session_ended"`
	// ErrNoCurrentSession. Default
	// "当前没有选中的会话，请用“#编号 内容”指定会话（输入“{list}”查看会话）".
	ErrNoCurrentSession string `mapstructure:"err_no_current_session"`
	// ErrUnknownGroup. Default "没有技能组“{group}”（可用：{groups}）".
	ErrUnknownGroup string `mapstructure:"err_unknown_group"`
	// ErrGroupClosed. Default "{group}现在不在服务时间".
	ErrGroupClosed string `mapstructure:"err_group_closed"`
	// ErrNoAgentOnline. Default "{group}现在没有其他客服在线".
	ErrNoAgentOnline string `mapstructure:"err_no_agent_online"`
	// ErrNoQuestion. Default "#{no}：该会话还没有用户提问".
	ErrNoQuestion string `mapstructure:"err_no_question"`
	// ErrNoSuggestions. Default
	// "#{no}：没有可发送的推荐知识（输入“{suggest}”查看用户最新问题的推荐）".
	ErrNoSuggestions string `mapstructure:"err_no_suggestions"`
	// ErrUnknownSuggestion. Default "#{no}：没有推荐 {n}（您看到的推荐有 {count} 条）".
	ErrUnknownSuggestion string `mapstructure:"err_unknown_suggestion"`
	// ErrEmptyText. Default "消息内容为空".
	ErrEmptyText string `mapstructure:"err_empty_text"`
	// ErrUnknownAgent: a transfer to someone in no skill group. Default
	// "没有客服“{agent}”".
	ErrUnknownAgent string `mapstructure:"err_unknown_agent"`
	// ErrAgentOffline: a transfer to an agent not online. Default
	// "{agent}现在不在线，无法转接".
	ErrAgentOffline string `mapstructure:"err_agent_offline"`
	// ErrAgentFull: a transfer to an agent at max_chats. Default
	// "{agent}的接待量已满，无法转接".
	ErrAgentFull string `mapstructure:"err_agent_full"`
	// ErrSelfTransfer. Default "不能转接给自己".
	ErrSelfTransfer string `mapstructure:"err_self_transfer"`
	// ErrNoteTooLong. Default "转接附言最多 {max} 字".
	ErrNoteTooLong string `mapstructure:"err_note_too_long"`
	// ErrInternal answers an agent operation that failed inside (the
	// message is retried). Default "操作失败，请稍后重试".
	ErrInternal string `mapstructure:"err_internal"`
}

// DefaultDeskTexts are the Chinese defaults of desk.texts.
func DefaultDeskTexts() DeskTexts {
	return DeskTexts{
		NewSession:         "【新会话 #{no}】{user} · {chat} · 技能组 {group}",
		TransferredSession: "【转接会话 #{no}】{user} · {chat} · 技能组 {group}",
		PrivateChat:        "单聊",
		Reason:             "原因：{reason}",
		ReasonNoAnswer:     "机器人多次未能回答",
		ReasonKeyword:      "用户要求转人工",
		ReasonKBHandoff:    "问题需要人工处理",
		ReasonHumanOnly:    "人工服务会话",
		ReasonTransfer:     "由 {agent} 转接",
		TransferNote:       "转接附言（{agent}）：{note}",
		RecentMessages:     "—— 最近消息 ——",
		SpeakerAgent:       "客服 {agent}",
		SpeakerBot:         "机器人",
		SpeakerSystem:      "系统",
		Suggestions:        "—— 推荐知识（发送“{suggest} 编号”回复用户）——",
		SuggestionsFor:     "#{no} {user} 的问题“{question}”的推荐知识（回复“{suggest} 编号”发给用户）：",
		RelaySuggestions:   "推荐知识（回复“{suggest} 编号”发给用户）：",
		ReplyHint:          "回复“#{no} 内容”或直接发送文字即可回复该用户。",
		Relay:              "#{no} {user}：{text}",
		KindPicture:        "[图片]",
		KindFile:           "[文件]",
		KindVideo:          "[视频]",
		KindAudio:          "[语音]",
		KindOther:          "[暂不支持的消息]",
		EndedByUser:        "【会话结束 #{no}】{user}：用户结束了会话",
		EndedIdle:          "【会话结束 #{no}】{user}：用户长时间未回复，会话已自动结束",
		FirstReply:         "客服 {agent} 为您服务",
		Online:             "✅ 已上线，开始接待。",
		PulledIn:           "已为您接入 {count} 位排队用户。",
		Busy:               "⏸ 已设为忙碌：保留当前会话，不再接新会话。",
		Offline:            "已下线。",
		HandedOn:           "您的 {count} 个会话已交接：",
		HandedToAgent:      "#{no} {user} → {agent}",
		HandedToQueue:      "#{no} {user} → {group} 排队第 {position} 位",
		Ended:              "已结束会话 #{no}（{user}）。",
		TransferredTo:      "会话 #{no}（{user}）已转接给{group}的 {agent}。",
		TransferredQueued:  "会话 #{no}（{user}）已转到{group}，排队第 {position} 位。",
		Current:            "当前会话：#{no} {user}（{group}）。直接输入文字即可回复。",
		TextOnly:           "客服台只支持文字：请用文字回复用户或输入“{help}”查看命令。",
		LooksLikeCommand:   "“{text}”看起来像命令，没有发给用户。要发给用户请写“#{no} {text}”；输入“{help}”查看客服命令。",
		Error:              "⚠️ {error}",
		UsageEnd:           "用法：{end} 或 {end} #编号",
		UsageTransfer:      "用法：{transfer} #编号 技能组或客服 [附言]（技能组：{groups}）",
		UsageSearch:        "用法：{search} 关键词",
		UsageSuggest:       "用法：{suggest} 查看推荐，{suggest} 编号 发送推荐",
		UsageSessionNo:     "会话编号写作 #12",
		Status:             "状态：{presence}",
		PresenceOnline:     "在线",
		PresenceBusy:       "忙碌",
		PresenceOffline:    "离线",
		NoSessions:         "当前没有会话。",
		SessionLine:        "#{no} {user} · {chat} · {group}{current}",
		CurrentMark:        "（当前）",
		QueueLine:          "排队：{group} {count} 人",
		SearchHead:         "搜索“{words}”：",
		SearchNone:         "知识库里没有找到“{words}”相关的内容。",
		CannedHead:         "常用语（输入“{canned} 编号”发送给当前用户）：",
		CannedNone:         "还没有配置常用语（canned_replies）。",
		CannedOther:        "其他",
		CannedUnknown:      "没有常用语 {n}（共 {count} 条，输入“{canned}”查看）",
		Help: "客服台命令：\n{online} / {offline} / {busy}：设置状态\n{list}：我的会话和排队人数\n" +
			"#编号：切换当前会话；#编号 内容：回复该会话\n直接输入文字：回复当前会话\n" +
			"{end} 或 {end} #编号：结束会话\n{transfer} #编号 技能组或客服 [附言]：转接（{groups}）\n{search} 关键词：查知识库\n" +
			"{suggest}：查看用户最新问题的推荐知识；{suggest} 编号：把您看到的推荐发给用户\n{canned} / {canned} 编号：查看 / 发送常用语",
		ErrNotAgent:          "您不是任何技能组的客服",
		ErrUnknownSession:    "#{no}：没有这个会话",
		ErrSessionEnded:      "#{no}：该会话已结束",
		ErrNoCurrentSession:  "当前没有选中的会话，请用“#编号 内容”指定会话（输入“{list}”查看会话）",
		ErrUnknownGroup:      "没有技能组“{group}”（可用：{groups}）",
		ErrGroupClosed:       "{group}现在不在服务时间",
		ErrNoAgentOnline:     "{group}现在没有其他客服在线",
		ErrNoQuestion:        "#{no}：该会话还没有用户提问",
		ErrNoSuggestions:     "#{no}：没有可发送的推荐知识（输入“{suggest}”查看用户最新问题的推荐）",
		ErrUnknownSuggestion: "#{no}：没有推荐 {n}（您看到的推荐有 {count} 条）",
		ErrEmptyText:         "消息内容为空",
		ErrUnknownAgent:      "没有客服“{agent}”",
		ErrAgentOffline:      "{agent}现在不在线，无法转接",
		ErrAgentFull:         "{agent}的接待量已满，无法转接",
		ErrSelfTransfer:      "不能转接给自己",
		ErrNoteTooLong:       "转接附言最多 {max} 字",
		ErrInternal:          "操作失败，请稍后重试",
	}
}

// problems reports the texts left empty: an empty notice or answer would
// leave an agent with a blank message (or none). current_mark may be "":
// the list then marks nothing.
func (t DeskTexts) problems() []Problem {
	return emptyTexts("desk.texts.", t, "current_mark")
}

// emptyTexts reports every string field of the text catalogue texts (a
// struct of mapstructure-tagged strings) that is blank, keyed prefix+tag,
// except the keys in mayBeEmpty.
func emptyTexts(prefix string, texts any, mayBeEmpty ...string) []Problem {
	var ps []Problem
	v := reflect.ValueOf(texts)
	for i := 0; i < v.NumField(); i++ {
		key := v.Type().Field(i).Tag.Get("mapstructure")
		if !slices.Contains(mayBeEmpty, key) && strings.TrimSpace(v.Field(i).String()) == "" {
			ps = append(ps, Problem{Key: prefix + key, Message: "must not be empty"})
		}
	}
	return ps
}
