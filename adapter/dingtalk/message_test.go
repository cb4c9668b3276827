package dingtalk

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestToMessageGolden normalises every recorded payload in testdata/*.json
// and compares the adapter.Message with testdata/<name>.golden.
func TestToMessageGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := decodePayload(in)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			got, err := json.MarshalIndent(toMessage(raw), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestToMessageGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("toMessage(%s) =\n%s\nwant\n%s", file, got, want)
			}
		})
	}
}

// TestToMessageRules spells out the normalisation rules the golden files
// encode, so a careless -update cannot silently change them.
func TestToMessageRules(t *testing.T) {
	load := func(t *testing.T, name string) adapter.Message {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := decodePayload(b)
		if err != nil {
			t.Fatal(err)
		}
		return toMessage(raw)
	}
	cases := map[string]struct {
		file  string
		kind  adapter.Kind
		text  string
		check func(t *testing.T, m adapter.Message)
	}{
		"private text": {file: "text_private", kind: adapter.KindText, text: "怎么申请报销？", check: func(t *testing.T, m adapter.Message) {
			if m.ConversationType != adapter.Private || m.SenderID != "manager4521" || m.AtBot {
				t.Errorf("got %+v", m)
			}
			if m.RobotCode != "dingrobotmadeup0001" || m.SenderCorpID != "dingcorp7f1e2d3c4b5a6978" {
				t.Errorf("robot/corp: %+v", m)
			}
			if !m.CreatedAt.Equal(time.UnixMilli(1700000000000)) || !m.SessionWebhookExpiry.Equal(time.UnixMilli(1700005400231)) {
				t.Errorf("times: %v %v", m.CreatedAt, m.SessionWebhookExpiry)
			}
		}},
		"group @ stripped and trimmed": {file: "text_group_at", kind: adapter.KindText, text: "转人工", check: func(t *testing.T, m adapter.Message) {
			if m.ConversationType != adapter.Group || !m.AtBot || m.ConversationTitle != "售后支持群" {
				t.Errorf("got %+v", m)
			}
			if len(m.AtUserIDs) != 1 || m.AtUserIDs[0] != "lisi0002" {
				t.Errorf("AtUserIDs = %v, want [lisi0002] (bot left out)", m.AtUserIDs)
			}
		}},
		"external user falls back to senderId": {file: "text_external_user", kind: adapter.KindText, text: "你好", check: func(t *testing.T, m adapter.Message) {
			if m.SenderStaffID != "" || m.SenderID != "$:LWCP_v1:$ExternalSenderMadeUp000001" {
				t.Errorf("got %+v", m)
			}
		}},
		"richText flattened":        {file: "richtext", kind: adapter.KindText, text: "打印机报错了\n[图片]\n屏幕显示 E-02"},
		"richText only pictures":    {file: "richtext_pictures_only", kind: adapter.KindPicture},
		"audio recognition is text": {file: "audio_recognition", kind: adapter.KindText, text: "我要转人工"},
		"audio without recognition": {file: "audio_no_recognition", kind: adapter.KindAudio},
		"picture":                   {file: "picture_group", kind: adapter.KindPicture},
		"file":                      {file: "file", kind: adapter.KindFile},
		"video":                     {file: "video", kind: adapter.KindVideo},
		"unknownMsgType":            {file: "unknown_msgtype", kind: adapter.KindUnknown},
		"new msgtype":               {file: "new_msgtype", kind: adapter.KindUnknown},
		"string timestamps, numeric type": {file: "createat_string", kind: adapter.KindText, text: "多余的空格", check: func(t *testing.T, m adapter.Message) {
			if !m.CreatedAt.Equal(time.UnixMilli(1700000000000)) || m.ConversationType != adapter.Private {
				t.Errorf("got %+v", m)
			}
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m := load(t, tc.file)
			if m.Kind != tc.kind || m.Text != tc.text {
				t.Errorf("kind, text = %q, %q; want %q, %q", m.Kind, m.Text, tc.kind, tc.text)
			}
			if m.ID == "" || m.SessionWebhook == "" {
				t.Errorf("id/session missing: %+v", m)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

// TestFlexFields: createAt and conversationType decode alike whether they
// come as numbers, plain strings or strings with escapes.
func TestFlexFields(t *testing.T) {
	for raw, want := range map[string]flexInt{
		`1700000000000`: 1700000000000, `"1700000000000"`: 1700000000000, `" 17 "`: 17,
		`"\u0031\u0037"`: 17, `1.7e3`: 1700, `null`: 0, `""`: 0, `"abc"`: 0, `"\u00e9"`: 0,
	} {
		var got flexInt
		if err := json.Unmarshal([]byte(raw), &got); err != nil || got != want {
			t.Errorf("flexInt %s = %d, %v; want %d", raw, got, err, want)
		}
	}
	for raw, want := range map[string]flexString{
		`"1"`: "1", `2`: "2", `"\u0032"`: "2", `null`: "", `"群 chat"`: "群 chat", `"a\"b"`: `a"b`,
	} {
		var got flexString
		if err := json.Unmarshal([]byte(raw), &got); err != nil || got != want {
			t.Errorf("flexString %s = %q, %v; want %q", raw, got, err, want)
		}
	}
}
