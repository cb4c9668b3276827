package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment override: DINGDESK_SERVER_LISTEN
// overrides server.listen.
const EnvPrefix = "DINGDESK"

// Load reads path, applies DINGDESK_* environment overrides and defaults,
// and validates. The error of an invalid config is a *ValidationError that
// lists every problem with its key path: unknown keys, values of the wrong
// kind and invalid settings, all in one list.
func Load(path string) (*Config, error) {
	cfg, err := Read(path)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// Read is Load for callers that go on checking an invalid config (dingdesk
// check reads its knowledge files too, so one run shows every problem): the
// config is returned also with a *ValidationError, each bad key left at its
// default. It is nil only when the file cannot be read or is not YAML.
func Read(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(raw)
	var ve *ValidationError
	if err != nil && !errors.As(err, &ve) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if abs, err := filepath.Abs(path); err == nil {
		cfg.Path = abs
	}
	cfg.Storage.DSN = cfg.resolveDSN()
	var ps []Problem
	if ve != nil {
		ps = ve.Problems
	}
	var vErr *ValidationError
	if errors.As(cfg.Validate(), &vErr) {
		ps = append(ps, vErr.Problems...)
	}
	if len(ps) > 0 {
		return cfg, &ValidationError{Problems: ps}
	}
	return cfg, nil
}

// resolveDSN makes a relative SQLite file relative to the config file, as
// knowledge files are: the same config means the same database whatever
// the working directory. ":memory:", "file:" URIs, absolute paths and MySQL
// DSNs are kept as they are.
func (c *Config) resolveDSN() Secret {
	dsn := c.Storage.DSN.Reveal()
	if c.Storage.Driver != "sqlite" || dsn == "" || c.Path == "" {
		return c.Storage.DSN
	}
	file, query, hasQuery := strings.Cut(dsn, "?")
	if file == ":memory:" || strings.HasPrefix(file, "file:") || filepath.IsAbs(file) {
		return c.Storage.DSN
	}
	file = c.Resolve(file)
	if hasQuery {
		file += "?" + query
	}
	return Secret(file)
}

// Parse decodes YAML plus environment overrides onto the defaults. It does
// not validate the settings, but it does check the keys: an unknown key or a
// value of the wrong kind is a *ValidationError listing each with its path
// and line, and the config is returned all the same with those keys at their
// defaults. Any other error (the text is not YAML) returns no config.
func Parse(yamlText []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(yamlText, &doc); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	ps := checkTree(&doc)
	if len(doc.Content) > 0 {
		cleaned, err := yaml.Marshal(&doc)
		if err != nil {
			return nil, fmt.Errorf("parse YAML: %w", err)
		}
		yamlText = cleaned
	} else {
		yamlText = nil
	}
	badEnv, envProblems := checkEnv()
	ps = append(ps, envProblems...)

	v := viper.New()
	v.SetConfigType("yaml")
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	// Registering every scalar key as a default is what lets AutomaticEnv
	// reach Unmarshal (spf13/viper#761).
	def := reflect.ValueOf(*Default())
	setDefaults(v, def)
	if err := v.ReadConfig(bytes.NewReader(yamlText)); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	for _, key := range badEnv {
		v.Set(key, defaultOf(def, key))
	}
	// service_rules[] elements start from DefaultServiceRule: filled at the
	// map level, so a key the file sets (even to 0, "off") is kept.
	if rules, ok := v.Get("service_rules").([]any); ok {
		defaults := fieldMap(reflect.ValueOf(DefaultServiceRule()))
		for _, r := range rules {
			if m, ok := r.(map[string]any); ok {
				fillMap(m, defaults)
			}
		}
		v.Set("service_rules", rules)
	}
	// max_chats defaults only when absent: an explicit 0 is an error.
	if groups, ok := v.Get("skill_groups").([]any); ok {
		for _, g := range groups {
			if gm, ok := g.(map[string]any); ok {
				if members, ok := gm["members"].([]any); ok {
					defaultKey(members, "max_chats", DefaultMaxChats)
				}
			}
		}
		v.Set("skill_groups", groups)
	}
	if agents, ok := v.Get("agents").([]any); ok {
		defaultKey(agents, "max_chats", DefaultMaxChats)
		v.Set("agents", agents)
	}
	cfg := &Config{}
	err := v.Unmarshal(cfg, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	)), func(dc *mapstructure.DecoderConfig) { dc.ErrorUnused = false })
	if err != nil {
		// checkTree and checkEnv catch what the decoder refuses; this is
		// a backstop that still names the problem.
		return nil, fmt.Errorf("decode: %w", err)
	}
	fillListDefaults(cfg)
	if len(ps) > 0 {
		return cfg, &ValidationError{Problems: ps}
	}
	return cfg, nil
}

// setDefaults registers every key of the defaults. Keys inside lists of
// structs (service_rules, skill_groups, …) are left to the map-level fill
// in Parse and to fillListDefaults: viper cannot default inside list
// elements.
func setDefaults(v *viper.Viper, def reflect.Value) {
	eachKey(def.Type(), func(key string, index []int, inList bool) {
		if !inList {
			v.SetDefault(key, def.FieldByIndex(index).Interface())
		}
	})
}

// defaultOf is the default of the scalar key (not inside a list).
func defaultOf(def reflect.Value, key string) any {
	var out any
	eachKey(def.Type(), func(k string, index []int, inList bool) {
		if k == key && !inList {
			out = def.FieldByIndex(index).Interface()
		}
	})
	return out
}

// eachKey calls fn for every leaf key of the struct type t, by its
// mapstructure path ("server.listen", "skill_groups[].members[].max_chats"),
// with the field's index path from the nearest struct (valid for
// reflect.Value.FieldByIndex on t when inList is false).
func eachKey(t reflect.Type, fn func(key string, index []int, inList bool)) {
	var walk func(t reflect.Type, prefix string, index []int, inList bool)
	walk = func(t reflect.Type, prefix string, index []int, inList bool) {
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
			idx := append(slices.Clone(index), i)
			switch ft := f.Type; {
			case ft.Kind() == reflect.Struct && ft.PkgPath() != "time":
				walk(ft, key, idx, inList)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(ft.Elem(), key+"[]", nil, true)
			default:
				fn(key, idx, inList)
			}
		}
	}
	walk(t, "", nil, false)
}

// defaultKey sets key on every map element of list that lacks it.
func defaultKey(list []any, key string, value any) {
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			if _, set := m[key]; !set {
				m[key] = value
			}
		}
	}
}

// fieldMap maps a flat struct's mapstructure keys to its values.
func fieldMap(val reflect.Value) map[string]any {
	out := map[string]any{}
	t := val.Type()
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("mapstructure"); tag != "" && tag != "-" {
			if f := val.Field(i); f.Kind() == reflect.Struct {
				out[tag] = fieldMap(f) // nested keys (satisfaction.*) default one by one
			} else {
				out[tag] = f.Interface()
			}
		}
	}
	return out
}

// fillMap sets the keys of defaults that m leaves out, into nested maps too.
func fillMap(m, defaults map[string]any) {
	for k, dv := range defaults {
		cur, set := m[k]
		if !set {
			m[k] = dv
			continue
		}
		sub, isMap := cur.(map[string]any)
		if dm, nested := dv.(map[string]any); nested && isMap {
			fillMap(sub, dm)
		}
	}
}

// fillListDefaults gives list elements the defaults viper cannot.
func fillListDefaults(c *Config) {
	base := DefaultServiceRule()
	if len(c.ServiceRules) == 0 {
		r := base
		r.Name = "default"
		c.ServiceRules = []ServiceRule{r}
	}
	for i := range c.SkillGroups {
		g := &c.SkillGroups[i]
		if g.DisplayName == "" {
			g.DisplayName = g.Name
		}
		if g.Rule == "" {
			g.Rule = c.ServiceRules[0].Name
		}
		for j := range g.Members {
			m := &g.Members[j]
			if m.Name == "" {
				m.Name = m.StaffID
			}
		}
	}
	for i := range c.Admins {
		if c.Admins[i].Name == "" {
			c.Admins[i].Name = c.Admins[i].StaffID
		}
	}
	// agents[] are merged into their groups' members; an unknown group is
	// reported by Validate.
	for _, a := range c.Agents {
		m := Member{StaffID: a.StaffID, Name: a.Name, MaxChats: a.MaxChats}
		if m.Name == "" {
			m.Name = m.StaffID
		}
		for _, name := range a.SkillGroups {
			for i := range c.SkillGroups {
				if c.SkillGroups[i].Name == name {
					c.SkillGroups[i].Members = append(c.SkillGroups[i].Members, m)
				}
			}
		}
	}
}
