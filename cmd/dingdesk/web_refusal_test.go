package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/dingdesk/dingdesk/config"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/web"
)

// The workbench shows the engine's refusals with the DingTalk desk's
// mapping, its own web.texts for the codes it words differently, and lets
// internal errors through untouched.
func TestWebRefusalTexts(t *testing.T) {
	cfg := config.Default()
	cfg.SkillGroups = []config.SkillGroup{{Name: "it", DisplayName: "IT 支持", Members: []config.Member{{StaffID: "a1", Name: "小王"}}}}
	cfg.Web.Texts.ErrSessionEnded = "会话已结束"
	cfg.Desk.Texts.ErrGroupClosed = "{group}休息中"
	w := webEngine{cfg: config.NewStore(cfg)}
	for err, want := range map[error]string{
		&handoff.Error{Code: handoff.CodeSessionEnded, Session: 3}: "会话已结束",
		&handoff.Error{Code: handoff.CodeNoCurrentSession}:         cfg.Web.Texts.ErrUnknownSession,
		&handoff.Error{Code: handoff.CodeGroupClosed, Group: "it"}: "IT 支持休息中",
		&handoff.Error{Code: handoff.CodeAgentFull, Agent: "a1"}:   "小王的接待量已满，无法转接",
		&handoff.Error{Code: handoff.CodeNoteTooLong}:              fmt.Sprintf("转接附言最多 %d 字", handoff.MaxNote),
		&handoff.Error{Code: handoff.CodeInvalid}:                  cfg.Desk.Texts.ErrInternal,
	} {
		var shown *web.ShownError
		if !errors.As(w.shown(err), &shown) || shown.Text != want {
			t.Errorf("shown(%v) = %v, want the text %q", err, w.shown(err), want)
		}
	}
	internal := errors.New("disk full")
	if got := w.shown(internal); got != internal {
		t.Errorf("shown(internal) = %v, want it unchanged", got)
	}
}
