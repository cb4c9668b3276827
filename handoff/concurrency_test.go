package handoff_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/handoff"
	"github.com/dingdesk/dingdesk/handoff/clocktest"
)

const crowdYAML = `
dingtalk: { mode: webhook, client_secret: test-secret }
routing: { skill_group: g }
service_rules:
  - name: r
    hours: { mon-sun: ["00:00-24:00"] }
skill_groups:
  - name: g
    members:
      - { staff_id: a1, max_chats: 3 }
      - { staff_id: a2, max_chats: 3 }
      - { staff_id: a3, max_chats: 3 }
      - { staff_id: a4, max_chats: 3 }
      - { staff_id: a5, max_chats: 3 }
`

var positionRE = regexp.MustCompile(`当前排第 (\d+) 位`)

// TestConcurrentHandoffs: two replicas on one MariaDB database, 200 users
// asking for a person at once, 5 agents × 3 chats.
func TestConcurrentHandoffs(t *testing.T) {
	if os.Getenv(gormstoretest.EnvMySQL) == "" {
		t.Skipf("set %s to run the MariaDB concurrency test", gormstoretest.EnvMySQL)
	}
	const users, agents, maxChats = 200, 5, 3
	cfg := gormstoretest.NewStorage(t, "mysql")
	clock := clocktest.New(wed10)
	hs := []*harness{
		newHarnessOn(t, gormstoretest.OpenStorage(t, cfg), crowdYAML, clock),
		newHarnessOn(t, gormstoretest.OpenStorage(t, cfg), crowdYAML, clock),
	}
	hs[1].shareKicks(hs[0])
	h := hs[0]
	for i := 1; i <= agents; i++ {
		h.presence(fmt.Sprintf("a%d", i), handoff.Online)
	}
	msgs := make([]adapter.Message, users)
	for i := range msgs {
		msgs[i] = h.msg(fmt.Sprintf("cid-c%03d", i), fmt.Sprintf("c%03d", i), "转人工")
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, m := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := hs[i%2].e.Handle(h.ctx, m); err != nil {
				t.Errorf("Handle %s: %v", m.SenderID, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	st := gormstore.NewHandoffStore(h.db, nil)
	checkCapacity := func() int {
		t.Helper()
		total := 0
		for i := 1; i <= agents; i++ {
			a := fmt.Sprintf("a%d", i)
			open, err := st.ActiveSessions(h.ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			row, _ := st.Agent(h.ctx, a)
			if len(open) > maxChats || row.OpenChats != len(open) {
				t.Fatalf("%s has %d sessions, counter %d (max %d)", a, len(open), row.OpenChats, maxChats)
			}
			total += len(open)
		}
		return total
	}
	if n := checkCapacity(); n != agents*maxChats {
		t.Fatalf("%d sessions assigned, want %d", n, agents*maxChats)
	}

	// Everyone got exactly one message: assigned, or queued with the
	// position that is their place in the queue (arrival order = the order
	// they took the group lock).
	sent, err := gormstore.NewOutboxStore(h.db).After(h.ctx, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	told := map[string]int{} // user → position (0 = assigned)
	for _, row := range sent {
		r := row.Reply
		if r.UserID[0] != 'c' {
			continue
		}
		if _, dup := told[r.UserID]; dup {
			t.Fatalf("%s got two messages", r.UserID)
		}
		if m := positionRE.FindStringSubmatch(r.Text); m != nil {
			told[r.UserID], _ = strconv.Atoi(m[1])
		} else {
			told[r.UserID] = 0
		}
	}
	if len(told) != users {
		t.Fatalf("%d users were answered, want %d", len(told), users)
	}
	queue, err := st.Queue(h.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(queue) != users-agents*maxChats {
		t.Fatalf("%d queued, want %d", len(queue), users-agents*maxChats)
	}
	order := make([]string, len(queue))
	for i, s := range queue {
		order[i] = s.UserID
		if told[s.UserID] != i+1 {
			t.Fatalf("%s is %d. in the queue but was told %d", s.UserID, i+1, told[s.UserID])
		}
	}

	// Drain: in rounds, every agent ends all sessions at once, on both
	// replicas; the queue must be served strictly in order.
	served := 0
	for round := 0; served < len(order); round++ {
		if round > 20 {
			t.Fatal("the queue does not drain")
		}
		var open []handoff.Session
		for i := 1; i <= agents; i++ {
			v := h.view(fmt.Sprintf("a%d", i))
			open = append(open, v.Sessions...)
		}
		clock.Advance(time.Second)
		var wg sync.WaitGroup
		for i, s := range open {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := hs[i%2].e.End(h.ctx, s.Agent, s.No); err != nil {
					t.Errorf("End %s #%d: %v", s.Agent, s.No, err)
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		active := checkCapacity()
		pulled := min(len(open), len(order)-served)
		served += pulled
		if active != pulled {
			t.Fatalf("round %d: %d active, want %d", round, active, pulled)
		}
		// The first `served` of the queue are being (or were) served, the
		// rest still queue, in their order.
		still, _ := st.Queue(h.ctx, "")
		rest := make([]string, len(still))
		for i, s := range still {
			rest[i] = s.UserID
		}
		if !slices.Equal(rest, order[min(served, len(order)):]) {
			t.Fatalf("round %d: queue is %v, want %v", round, rest, order[served:])
		}
	}
	// Nothing lost: every user had exactly one session, all are back with
	// the bot or with a person.
	perUser, err := st.SessionCounts(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(perUser) != users {
		t.Fatalf("%d users have sessions, want %d", len(perUser), users)
	}
	for key, n := range perUser {
		if n != 1 {
			t.Fatalf("%s has %d sessions", key, n)
		}
	}
}

// TestTimersFireOnce: two replicas scan the same due timers at once; each
// timeout fires once.
func TestTimersFireOnce(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		cfg := gormstoretest.NewStorage(t, driver)
		clock := clocktest.New(wed10)
		yaml := strings.Replace(queueConfig(), "customer_idle_timeout: 10m", "customer_idle_timeout: 0s", 1)
		h1 := newHarnessOn(t, gormstoretest.OpenStorage(t, cfg), yaml, clock)
		h2 := newHarnessOn(t, gormstoretest.OpenStorage(t, cfg), yaml, clock)
		h2.shareKicks(h1)
		h1.presence("a1", handoff.Online)
		const n = 30
		for i := 0; i <= n; i++ { // the first is served, n queue
			h1.say(fmt.Sprintf("t%02d", i), "转人工")
		}
		h1.sent()
		clock.Advance(15 * time.Minute)
		var wg sync.WaitGroup
		fired := make([]int, 2)
		for i, h := range []*harness{h1, h2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				fired[i], err = h.e.FireDue(h.ctx)
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if fired[0]+fired[1] != n {
			t.Fatalf("fired %v, want %d in all", fired, n)
		}
		r := h1.sent()
		for i := 1; i <= n; i++ {
			// Users timing out together are not told they moved up.
			expectTexts(t, r, fmt.Sprintf("t%02d", i), "等待较长时间")
		}
	})
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatal(err)
	}
}
