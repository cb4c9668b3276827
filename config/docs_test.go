package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// keyPaths lists every key of the config as the README writes it:
// "server.listen", "skill_groups[].members[].max_chats".
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		if tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct && ft.PkgPath() != "time":
			out = append(out, keyPaths(ft, key)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, keyPaths(ft.Elem(), key+"[]")...)
		default:
			out = append(out, key)
		}
	}
	return out
}

// The README's configuration reference is the admins' manual: every key
// must be in it.
func TestREADMEDocumentsEveryKey(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	for _, key := range keyPaths(reflect.TypeOf(Config{}), "") {
		if !strings.Contains(text, "`"+key+"`") {
			t.Errorf("README.md does not document config key %s", key)
		}
	}
}
