package config

import (
	"strings"
	"testing"
)

func TestDeskTextsMustNotBeEmpty(t *testing.T) {
	cfg, err := Parse([]byte("dingtalk: { mode: webhook, client_secret: s }\ndesk:\n  texts:\n    relay: \"\"\n    current_mark: \"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "desk.texts.relay: must not be empty") || strings.Contains(err.Error(), "current_mark") {
		t.Fatalf("Validate = %v", err)
	}
	if cfg.Desk.Texts.NewSession != DefaultDeskTexts().NewSession {
		t.Fatalf("a key the file leaves out keeps its default: %q", cfg.Desk.Texts.NewSession)
	}
}

func TestWebTextsMustNotBeEmpty(t *testing.T) {
	cfg, err := Parse([]byte("dingtalk: { mode: webhook, client_secret: s }\nweb:\n  texts:\n    title_login: \" \"\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "web.texts.title_login: must not be empty") {
		t.Fatalf("Validate = %v", err)
	}
	if cfg.Web.Texts.TitleDesk != DefaultWebTexts().TitleDesk {
		t.Fatalf("a key the file leaves out keeps its default: %q", cfg.Web.Texts.TitleDesk)
	}
}
