package schedule

import (
	"testing"
	"time"
)

// FuzzParseRange: a range that parses renders back to text that parses
// to the same range, within one day's minutes.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"09:00-18:00", "00:00-24:00", "21:00-02:00", "9:5-10:00", "24:00-01:00", "12:00-12:00", " 08:30 - 17:30 ", "-", "99:99-00:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			return
		}
		if r.Start < 0 || r.Start >= 24*60 || r.End < 0 || r.End > 24*60 {
			t.Fatalf("%q → out of the day: %+v", s, r)
		}
		back, err := ParseRange(r.String())
		if err != nil || back != r {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, r, r.String(), back, err)
		}
	})
}

// FuzzSchedule builds a schedule from one day key, range, holiday and
// 调休 workday as the config would give them: either every problem is
// reported (and there is no schedule) or the schedule answers Open for any
// instant without failing.
func FuzzSchedule(f *testing.F) {
	f.Add("Asia/Shanghai", "mon-fri", "09:00-12:00", "2026-10-01", "2026-09-27", int64(1_790_000_000))
	f.Add("UTC", "fri-mon", "21:00-02:00", "2026-02-30", "2026-09-27 10:00-16:00", int64(0))
	f.Add("", "sat,sun", "00:00-24:00", "", "2026-09-27 25:00-26:00,09:00-10:00", int64(-1))
	f.Add("Mars/Olympus", "mon-fry", "x", "x", "x", int64(1<<40))
	f.Fuzz(func(t *testing.T, tz, day, rng, holiday, workday string, unix int64) {
		var holidays, workdays []string
		if holiday != "" {
			holidays = []string{holiday}
		}
		if workday != "" {
			workdays = []string{workday}
		}
		s, errs := New(tz, map[string][]string{day: {rng}}, holidays, workdays)
		if len(errs) > 0 {
			if s != nil {
				t.Fatalf("a schedule and %d problems", len(errs))
			}
			for _, e := range errs {
				if e.Err == nil || e.Error() == "" {
					t.Fatalf("empty problem %+v", e)
				}
			}
			return
		}
		if s == nil {
			t.Fatal("no schedule and no problem")
		}
		at := time.Unix(unix%(1<<36), 0)
		open := s.Open(at)
		if s.Open(at) != open {
			t.Fatal("Open is not deterministic")
		}
	})
}
