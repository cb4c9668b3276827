// Package schedule answers "is this service open now?" for a service rule:
// weekly time ranges in a timezone, several per day, "24:00" as an end,
// overnight ranges, holidays (closed dates) and make-up workdays (调休).
package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DateLayout is how dates are written in the config.
const DateLayout = "2006-01-02"

// Range is an opening window in minutes after local midnight. End may be up
// to 1440 ("24:00"). A range with End <= Start runs overnight: it opens on
// its day at Start and closes at End on the next day.
type Range struct{ Start, End int }

// Overnight reports whether the range crosses midnight.
func (r Range) Overnight() bool { return r.End <= r.Start }

// String renders the range as written in the config.
func (r Range) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", r.Start/60, r.Start%60, r.End/60, r.End%60)
}

// ParseRange reads "09:00-18:00", "00:00-24:00" or overnight "21:00-02:00".
func ParseRange(s string) (Range, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return Range{}, fmt.Errorf("invalid time range %q: want HH:MM-HH:MM", s)
	}
	start, err := parseClock(a, false)
	if err != nil {
		return Range{}, fmt.Errorf("invalid time range %q: %v", s, err)
	}
	end, err := parseClock(b, true)
	if err != nil {
		return Range{}, fmt.Errorf("invalid time range %q: %v", s, err)
	}
	if start == end {
		return Range{}, fmt.Errorf("invalid time range %q: empty (use 00:00-24:00 for all day)", s)
	}
	return Range{Start: start, End: end}, nil
}

func parseClock(s string, isEnd bool) (int, error) {
	s = strings.TrimSpace(s)
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) == 0 || len(h) > 2 || len(m) != 2 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	if hh == 24 && mm == 0 && isEnd {
		return 1440, nil
	}
	if hh > 23 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return hh*60 + mm, nil
}

var dayNames = map[string]time.Weekday{
	"mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday,
	"fri": time.Friday, "sat": time.Saturday, "sun": time.Sunday,
}

// ParseDays reads a day key: "mon", "mon-fri", "fri-mon" (wraps), "sat,sun".
func ParseDays(key string) ([]time.Weekday, error) {
	var out []time.Weekday
	for _, part := range strings.Split(strings.ToLower(strings.TrimSpace(key)), ",") {
		part = strings.TrimSpace(part)
		a, b, isRange := strings.Cut(part, "-")
		from, ok := dayNames[a]
		if !ok {
			return nil, fmt.Errorf("unknown day %q: want mon, tue, wed, thu, fri, sat, sun or a range like mon-fri", part)
		}
		if !isRange {
			out = append(out, from)
			continue
		}
		to, ok := dayNames[b]
		if !ok {
			return nil, fmt.Errorf("unknown day %q: want mon, tue, wed, thu, fri, sat, sun or a range like mon-fri", part)
		}
		// Walk Monday-first so "mon-sun" is the whole week.
		for d := from; ; d = (d + 1) % 7 {
			out = append(out, d)
			if d == to {
				break
			}
		}
	}
	return out, nil
}

// ParseDate reads a 2006-01-02 date.
func ParseDate(s string) (time.Time, error) {
	t, err := time.Parse(DateLayout, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid date %q: want YYYY-MM-DD", s)
	}
	return t, nil
}

// Schedule is a parsed service rule calendar. It is immutable.
type Schedule struct {
	loc      *time.Location
	week     [7][]Range
	holidays map[string]bool
	workdays map[string][]Range
}

// FieldError is a problem at a key below the rule (e.g. "hours.mon-fri[1]").
type FieldError struct {
	Key string
	Err error
}

func (e FieldError) Error() string { return e.Key + ": " + e.Err.Error() }

// New builds a schedule. It returns every problem found, keyed below the
// rule; the schedule is nil when there is any.
func New(timezone string, hours map[string][]string, holidays, workdays []string) (*Schedule, []FieldError) {
	var errs []FieldError
	s := &Schedule{holidays: map[string]bool{}, workdays: map[string][]Range{}}
	if timezone == "" {
		timezone = "Asia/Shanghai"
	}
	loc, err := time.LoadLocation(timezone)
	if err != nil {
		errs = append(errs, FieldError{"timezone", fmt.Errorf("unknown timezone %q", timezone)})
	}
	s.loc = loc
	for key, ranges := range hours {
		days, err := ParseDays(key)
		if err != nil {
			errs = append(errs, FieldError{"hours." + key, err})
			continue
		}
		for i, r := range ranges {
			rg, err := ParseRange(r)
			if err != nil {
				errs = append(errs, FieldError{fmt.Sprintf("hours.%s[%d]", key, i), err})
				continue
			}
			for _, d := range days {
				s.week[d] = append(s.week[d], rg)
			}
		}
	}
	for i, h := range holidays {
		d, err := ParseDate(h)
		if err != nil {
			errs = append(errs, FieldError{fmt.Sprintf("holidays[%d]", i), err})
			continue
		}
		s.holidays[d.Format(DateLayout)] = true
	}
	for i, w := range workdays {
		date, rest, _ := strings.Cut(strings.TrimSpace(w), " ")
		d, err := ParseDate(date)
		if err != nil {
			errs = append(errs, FieldError{fmt.Sprintf("workdays[%d]", i), err})
			continue
		}
		var ranges []Range
		if rest = strings.TrimSpace(rest); rest != "" {
			for _, r := range strings.Split(rest, ",") {
				rg, err := ParseRange(r)
				if err != nil {
					errs = append(errs, FieldError{fmt.Sprintf("workdays[%d]", i), err})
					continue
				}
				ranges = append(ranges, rg)
			}
		} else {
			ranges = s.week[time.Monday]
			if len(ranges) == 0 {
				errs = append(errs, FieldError{fmt.Sprintf("workdays[%d]", i),
					fmt.Errorf("%s takes Monday's hours, but Monday has none: write \"%s 09:00-18:00\"", date, date)})
			}
		}
		s.workdays[d.Format(DateLayout)] = ranges
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// Location is the schedule's timezone.
func (s *Schedule) Location() *time.Location { return s.loc }

// rangesOn are the ranges that start on a local date: none on a holiday,
// the make-up ranges on a workday, else the weekday's.
func (s *Schedule) rangesOn(date time.Time) []Range {
	key := date.Format(DateLayout)
	if s.holidays[key] {
		return nil
	}
	if r, ok := s.workdays[key]; ok {
		return r
	}
	return s.week[date.Weekday()]
}

// Open reports whether the service is open at t. An overnight range belongs
// to the day it starts on: a holiday closes its whole night shift.
func (s *Schedule) Open(t time.Time) bool {
	local := t.In(s.loc)
	minute := local.Hour()*60 + local.Minute()
	today := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, s.loc)
	for _, r := range s.rangesOn(today) {
		end := r.End
		if r.Overnight() {
			end = 1440
		}
		if minute >= r.Start && minute < end {
			return true
		}
	}
	for _, r := range s.rangesOn(today.AddDate(0, 0, -1)) {
		if r.Overnight() && minute < r.End {
			return true
		}
	}
	return false
}
