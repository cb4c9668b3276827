package report_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/report"
)

type memStore struct {
	sessions []report.Session
	turns    []report.Turn
}

func (m memStore) Sessions(_ context.Context, _, _ time.Time, fn func(report.Session) error) error {
	for _, s := range m.sessions {
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

func (m memStore) Turns(_ context.Context, _, _ time.Time, fn func(report.Turn) error) error {
	for _, t := range m.turns {
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkBuildMonth: a month of a busy service — 300 000 bot turns and
// 30 000 sessions over 4 groups and 40 agents — by day × group × agent
// (the storage reads are not included).
func BenchmarkBuildMonth(b *testing.B) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, shanghai)
	var st memStore
	for i := 0; i < 300000; i++ {
		st.turns = append(st.turns, report.Turn{UserKey: fmt.Sprintf("u%d", i%20000), Outcome: []string{"answer", "clarify", "none"}[i%3], At: base.Add(time.Duration(i) * 8 * time.Second)})
	}
	for i := 0; i < 30000; i++ {
		at := base.Add(time.Duration(i) * 80 * time.Second)
		st.sessions = append(st.sessions, report.Session{ID: int64(i), UserKey: fmt.Sprintf("u%d", i%20000), Group: fmt.Sprintf("g%d", i%4),
			Agent: fmt.Sprintf("a%d", i%40), Reason: "no_answer", CreatedAt: at, AssignedAt: at.Add(30 * time.Second),
			FirstReplyAt: at.Add(time.Minute), EndedAt: at.Add(10 * time.Minute), Prompted: true, Score: i%5 + 1})
	}
	o := report.Options{From: base, To: base.AddDate(0, 1, -1), Location: shanghai, Period: report.Day, ByGroup: true, ByAgent: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := report.Build(context.Background(), st, o); err != nil {
			b.Fatal(err)
		}
	}
}
