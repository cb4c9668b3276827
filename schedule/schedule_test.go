package schedule

import (
	"testing"
	"time"
)

func mustNew(t *testing.T, tz string, hours map[string][]string, holidays, workdays []string) *Schedule {
	t.Helper()
	s, errs := New(tz, hours, holidays, workdays)
	if len(errs) > 0 {
		t.Fatalf("New: %v", errs)
	}
	return s
}

func TestOpen(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, sh)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	office := mustNew(t, "Asia/Shanghai",
		map[string][]string{"mon-fri": {"09:00-12:00", "13:30-18:00"}},
		[]string{"2026-10-01"}, []string{"2026-09-27", "2026-10-10 10:00-16:00"})
	night := mustNew(t, "Asia/Shanghai", map[string][]string{"fri": {"21:00-02:00"}, "sat,sun": {"00:00-24:00"}}, []string{"2026-11-20"}, nil)
	allWeek := mustNew(t, "", map[string][]string{"mon-sun": {"00:00-24:00"}}, nil, nil)
	wrap := mustNew(t, "UTC", map[string][]string{"fri-mon": {"10:00-11:00"}}, nil, nil)
	cases := []struct {
		name string
		s    *Schedule
		at   time.Time
		want bool
	}{
		{"morning", office, at("2026-11-23 09:00"), true}, // Monday
		{"before opening", office, at("2026-11-23 08:59"), false},
		{"lunch break", office, at("2026-11-23 12:30"), false},
		{"afternoon", office, at("2026-11-23 17:59"), true},
		{"closing minute", office, at("2026-11-23 18:00"), false},
		{"saturday", office, at("2026-11-28 10:00"), false},
		{"holiday on a thursday", office, at("2026-10-01 10:00"), false},
		{"调休 sunday uses monday hours", office, at("2026-09-27 10:00"), true},
		{"调休 sunday lunch", office, at("2026-09-27 12:30"), false},
		{"调休 with explicit range", office, at("2026-10-10 15:30"), true},
		{"调休 explicit range ends", office, at("2026-10-10 16:30"), false},
		{"timezone: 01:00 UTC is 09:00 Shanghai", office, time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC), true},
		{"timezone: 00:59 UTC is 08:59 Shanghai", office, time.Date(2026, 11, 23, 0, 59, 0, 0, time.UTC), false},
		{"overnight friday evening", night, at("2026-11-27 23:00"), true},
		{"overnight spills into saturday", night, at("2026-11-28 01:30"), true},
		{"friday before the night shift", night, at("2026-11-27 20:59"), false},
		{"thursday night is closed", night, at("2026-11-26 23:00"), false},
		{"friday holiday closes its night", night, at("2026-11-20 23:00"), false},
		{"24:00 end covers the last minute", allWeek, at("2026-11-24 23:59"), true},
		{"day range wraps the week end", wrap, time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC), true}, // Sunday
		{"wrap excludes midweek", wrap, time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.s.Open(c.at); got != c.want {
				t.Fatalf("Open(%s) = %v, want %v", c.at, got, c.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	_, errs := New("Mars/Base", map[string][]string{"mon-fry": {"09:00-18:00"}, "tue": {"25:00-26:00", "9-18", "10:00-10:00"}},
		[]string{"2026-13-01"}, []string{"someday"})
	keys := map[string]bool{}
	for _, e := range errs {
		keys[e.Key] = true
	}
	for _, k := range []string{"timezone", "hours.mon-fry", "hours.tue[0]", "hours.tue[1]", "hours.tue[2]", "holidays[0]", "workdays[0]"} {
		if !keys[k] {
			t.Errorf("no error for %s; got %v", k, errs)
		}
	}
	for _, ok := range []string{"09:00-18:00", "00:00-24:00", "21:00-02:00", "9:30-12:00"} {
		if _, err := ParseRange(ok); err != nil {
			t.Errorf("ParseRange(%q) = %v", ok, err)
		}
	}
	days, err := ParseDays("mon-sun")
	if err != nil || len(days) != 7 {
		t.Errorf("mon-sun = %v, %v", days, err)
	}
}
