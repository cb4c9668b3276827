package config

import (
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// checkTree walks the YAML document against the Config type before viper
// sees it: a key the type does not know (a typo such as "routingg") and a
// value of the wrong kind (a duration "ten minutes", a list where a number
// belongs) each become a Problem with its key path and line. The offending
// entry is removed from the tree, so its key keeps the default and the rest
// of the file still decodes and validates: one run reports every problem.
func checkTree(doc *yaml.Node) []Problem {
	if doc == nil || doc.Kind == 0 {
		return nil
	}
	root := doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		root = root.Content[0]
	}
	var ps []Problem
	if isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return []Problem{{Key: "(file)", Line: root.Line, Message: "the config must be a mapping of keys (server:, dingtalk:, …)"}}
	}
	checkStruct(root, reflect.TypeOf(Config{}), "", &ps)
	return ps
}

var durationType = reflect.TypeOf(time.Duration(0))

// checkStruct checks the mapping n against struct type t; prefix is the
// key path of n ("" at the root).
func checkStruct(n *yaml.Node, t reflect.Type, prefix string, ps *[]Problem) {
	fields := map[string]reflect.Type{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("mapstructure")
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = t.Field(i).Type
		names = append(names, tag)
	}
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := join(prefix, keyLabel(k))
		ft, known := fields[k.Value]
		if k.Kind != yaml.ScalarNode || !known {
			msg := "unknown key"
			if s := closest(k.Value, names); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += " (known here: " + strings.Join(names, ", ") + ")"
			}
			*ps = append(*ps, Problem{Key: key, Line: k.Line, Message: msg})
			continue
		}
		if isNull(v) {
			continue // "key:" with no value keeps the default
		}
		if checkValue(v, ft, key, ps) {
			kept = append(kept, k, v)
		}
	}
	n.Content = kept
}

// checkValue checks v against type t at key; false means v is unusable and
// must be dropped (a problem was reported). Elements of lists are checked
// and repaired in place, so the list keeps its indexes.
func checkValue(v *yaml.Node, t reflect.Type, key string, ps *[]Problem) bool {
	bad := func(format string, args ...any) bool {
		*ps = append(*ps, Problem{Key: key, Line: v.Line, Message: fmt.Sprintf(format, args...)})
		return false
	}
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	switch {
	case t.Kind() == reflect.Struct && t != durationType:
		if v.Kind != yaml.MappingNode {
			return bad("must be a mapping of keys, not %s", describe(v))
		}
		checkStruct(v, t, key, ps)
		return true
	case t.Kind() == reflect.Slice:
		if v.Kind == yaml.ScalarNode && t.Elem().Kind() == reflect.String {
			return true // "a,b,c" is split on commas, as in environment overrides
		}
		if v.Kind != yaml.SequenceNode {
			return bad("must be a list, not %s", describe(v))
		}
		for i, e := range v.Content {
			ekey := fmt.Sprintf("%s[%d]", key, i)
			if !checkValue(e, t.Elem(), ekey, ps) {
				// Keep the index: later problems name the right element.
				*e = *emptyLike(t.Elem())
			}
		}
		return true
	case t.Kind() == reflect.Map:
		if v.Kind != yaml.MappingNode {
			return bad("must be a mapping, not %s", describe(v))
		}
		kept := v.Content[:0:0]
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, e := v.Content[i], v.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				*ps = append(*ps, Problem{Key: key, Line: k.Line, Message: "keys must be plain text"})
				continue
			}
			if checkValue(e, t.Elem(), key+"."+k.Value, ps) {
				kept = append(kept, k, e)
			}
		}
		v.Content = kept
		return true
	}
	if v.Kind != yaml.ScalarNode {
		return bad("must be a single value, not %s", describe(v))
	}
	if err := checkScalar(t, v.Value); err != nil {
		return bad("%v", err)
	}
	return true
}

// checkScalar reports whether text can be decoded into a scalar of type t,
// the way the decoder will read it.
func checkScalar(t reflect.Type, text string) error {
	s := strings.TrimSpace(text)
	switch {
	case t == durationType:
		if s == "0" {
			return nil
		}
		if _, err := time.ParseDuration(s); err != nil {
			return fmt.Errorf("%q is not a duration: write a number with a unit, such as 90s, 10m or 1h", text)
		}
	case t.Kind() == reflect.Int, t.Kind() == reflect.Int64:
		if _, err := strconv.ParseInt(s, 0, 64); err != nil {
			return fmt.Errorf("%q is not a whole number", text)
		}
	case t.Kind() == reflect.Float64:
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return fmt.Errorf("%q is not a number", text)
		}
	case t.Kind() == reflect.Bool:
		if _, err := strconv.ParseBool(s); err != nil {
			return fmt.Errorf("%q is not true or false", text)
		}
	}
	return nil
}

// checkEnv checks every DINGDESK_* override of a scalar key, and returns
// the keys whose override is unusable with their problems (Parse gives those
// keys their default, so the rest still decodes and validates).
func checkEnv() (bad []string, ps []Problem) {
	eachKey(reflect.TypeOf(Config{}), func(key string, index []int, inList bool) {
		if inList {
			return
		}
		name := EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		val, set := os.LookupEnv(name)
		if !set {
			return
		}
		t := reflect.TypeOf(Config{}).FieldByIndex(index).Type
		if t.Kind() == reflect.Slice {
			return // a comma-separated list: any text is one
		}
		if err := checkScalar(t, val); err != nil {
			bad = append(bad, key)
			ps = append(ps, Problem{Key: key, Message: fmt.Sprintf("environment %s: %v", name, err)})
		}
	})
	return bad, ps
}

// emptyLike is the node that stands in for a dropped list element.
func emptyLike(t reflect.Type) *yaml.Node {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	case reflect.Slice:
		return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}
}

// keyLabel names a mapping key in a key path: its text, or what it is
// when it has none ("" for an empty key, "(a list)" for a list used as a
// key), so no problem has an empty path.
func keyLabel(k *yaml.Node) string {
	switch {
	case k.Kind == yaml.ScalarNode && k.Value != "":
		return k.Value
	case k.Kind == yaml.ScalarNode:
		return `""`
	}
	return "(" + describe(k) + ")"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "this value"
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// closest is the known key an unknown one was probably meant to be: the
// same when case, "_" and "-" are ignored, or within a small edit distance
// (one edit for short keys, more for long ones). "" when none is close.
func closest(key string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	nk := norm(key)
	best, bestD := "", -1
	for _, c := range known {
		if norm(c) == nk {
			return c
		}
		d := editDistance(nk, norm(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	limit := 1
	switch n := len([]rune(nk)); {
	case n > 12:
		limit = 3
	case n > 4:
		limit = 2
	}
	if bestD >= 0 && bestD <= limit {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance of a and b, by runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
