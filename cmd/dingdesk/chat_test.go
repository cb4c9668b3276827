package main

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// dingdesk chat runs the real engine and desk on a temporary database; a
// scripted session shows a user handed to an agent and back.
func TestChatSimulator(t *testing.T) {
	script := strings.Join([]string{
		"VPN 连不上怎么办",
		"a: 上线",
		"转人工",
		"a: 您好，我是小王",
		"结束会话",
		"/quit",
	}, "\n")
	// The example config, open around the clock so the test does not depend
	// on when it runs.
	example := readFile(t, "../../examples/dingdesk.yaml")
	kb, err := filepath.Abs("../../examples/kb/faq.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(`mon-fri: ["09:00-12:00", "13:30-18:00"]`, `mon-sun: ["00:00-24:00"]`,
		`"kb/faq.yaml"`, strconv.Quote(kb)).Replace(example)
	path := filepath.Join(t.TempDir(), "dingdesk.yaml")
	writeFile(t, path, cfg)
	var out, errOut bytes.Buffer
	if code := run([]string{"chat", "-c", path}, strings.NewReader(script), &out, &errOut); code != 0 {
		t.Fatalf("chat exited %d: %s", code, errOut.String())
	}
	got := out.String()
	for _, want := range []string{
		"VPN 客户端",   // the knowledge answer
		"已上线",       // the agent's presence
		"【新会话 #1】",  // the agent's notice
		"您好，我是小王",   // relayed to the user
		"本次人工服务已结束", // the closing text
	} {
		if !strings.Contains(got, want) {
			t.Errorf("chat output lacks %q:\n%s", want, got)
		}
	}
}
