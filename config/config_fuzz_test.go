package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse feeds any text to the config reader as a config file: it is
// refused as not YAML (no config), or read into a config whose problems,
// if any, each name a key; validation and warnings never fail on what the
// reader let through, and a config read without problems reads again the
// same way.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../examples/dingdesk.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		minimal,
		"routingg: {mode: bot_only}\nbot_typo: 1\n",
		"service_rules: [ { name: r, customer_idle_timeout: ten minutes, hours: { mon-fry: [\"25:00-26:00\"] } } ]\n",
		"skill_groups: [ it, { name: hr, members: [ x, { staff_id: a, max_chats: zero } ] } ]\n",
		"bot: { synonyms: [[a, b], c, {x: y}], knowledge: \"a.yaml,b.csv\" }\n",
		"a: &x [1]\nb: *x\n", "- 1\n", "", "server: 3\n", "agents: { staff_id: a }\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		cfg, err := Parse(text)
		var ve *ValidationError
		if err != nil && !errors.As(err, &ve) {
			if cfg != nil {
				t.Fatalf("a config with a fatal error: %v", err)
			}
			return
		}
		if cfg == nil {
			t.Fatal("no config and no fatal error")
		}
		if ve != nil {
			if !strings.HasPrefix(ve.Error(), "invalid config") {
				t.Fatalf("error text %q", ve.Error())
			}
			for _, p := range ve.Problems {
				if p.Key == "" || p.Message == "" {
					t.Fatalf("problem without key or message: %+v", p)
				}
			}
		}
		verr := cfg.Validate()
		var vve *ValidationError
		if verr != nil && !errors.As(verr, &vve) {
			t.Fatalf("Validate: %v", verr)
		}
		_ = cfg.Warnings()
		_, _ = cfg.Route("cid")
		if err == nil && verr == nil {
			again, err := Parse(text)
			if err != nil || again.Validate() != nil {
				t.Fatalf("a valid config does not read again: %v", err)
			}
		}
	})
}
