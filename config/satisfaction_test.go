package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A rule that sets one satisfaction key keeps the defaults of the others.
func TestSatisfactionDefaultsKeyByKey(t *testing.T) {
	cfg, err := Parse([]byte(`
service_rules:
  - name: a
    satisfaction:
      prompt: 请打分
  - name: b
    satisfaction:
      enabled: false
  - name: c
`))
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultSatisfaction()
	a, b, c := cfg.ServiceRules[0].Satisfaction, cfg.ServiceRules[1].Satisfaction, cfg.ServiceRules[2].Satisfaction
	if a.Prompt != "请打分" || !a.Enabled || a.Timeout != 10*time.Minute || !slices.Equal(a.Labels, def.Labels) || a.Thanks != def.Thanks {
		t.Errorf("a = %+v", a)
	}
	if b.Enabled || b.Prompt != def.Prompt {
		t.Errorf("b = %+v", b)
	}
	if !c.Enabled || c.Timeout != def.Timeout || len(c.Labels) != 5 {
		t.Errorf("c = %+v", c)
	}
	bad, err := Parse([]byte("service_rules:\n  - name: a\n    satisfaction:\n      labels: [好, 坏]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "service_rules[0].satisfaction.labels") {
		t.Errorf("two labels: %v", err)
	}
}
