package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// The README's configuration reference is the admins' manual: every key
// must be in it.
func TestREADMEDocumentsEveryKey(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	deepest := false
	eachKey(reflect.TypeOf(Config{}), func(key string, _ []int, _ bool) {
		deepest = deepest || key == "skill_groups[].members[].max_chats"
		if !strings.Contains(text, "`"+key+"`") {
			t.Errorf("README.md does not document config key %s", key)
		}
	})
	if !deepest {
		t.Fatal("the key walk did not reach skill_groups[].members[].max_chats")
	}
}
