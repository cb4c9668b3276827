package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
)

// binary builds the real dingdesk once per test run, without the race
// detector (an instrumented service starts ten times slower on a busy
// machine), for the crash drills to run and kill.
// DINGDESK_DRILL_BINARY runs the drills against another build instead
// (to compare versions).
var binary = sync.OnceValues(func() (string, error) {
	if bin := os.Getenv("DINGDESK_DRILL_BINARY"); bin != "" {
		return bin, nil
	}
	dir, err := os.MkdirTemp("", "dingdesk-drill")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "dingdesk")
	out, err := exec.Command("go", "build", "-o", path, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return path, nil
})

// child is one `serve` process.
type child struct {
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

var listenLine = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startChild runs `dingdesk serve -c cfgPath` and waits until it listens.
func startChild(t *testing.T, cfgPath string) *child {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "-c", cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.logs.WriteString(line + "\n")
			c.mu.Unlock()
			if m := listenLine.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("serve pid %d log (tail):\n%s", cmd.Process.Pid, c.tail(60))
		}
	})
	select {
	case a := <-addr:
		c.url = "http://" + a
	case <-c.done:
		t.Fatalf("serve exited before listening:\n%s", c.tail(40))
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not listen within 60s:\n%s", c.tail(40))
	}
	return c
}

func (c *child) tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(c.logs.String()), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// kill9 sends SIGKILL and waits for the process to be gone.
func (c *child) kill9(t *testing.T) {
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

// loadGen plays DingTalk delivering users' messages: each message is
// POSTed, signed, until it gets a 200 (a refused or failed delivery is
// delivered again, to whichever replica is up), as DingTalk redelivers.
type loadGen struct {
	fake    *dingtalktest.Server
	targets atomic.Pointer[[]string] // base URLs to deliver to, round robin
	next    atomic.Int64

	mu       sync.Mutex
	accepted map[string]int // user → messages acknowledged
	total    int
}

func (g *loadGen) setTargets(urls ...string) { g.targets.Store(&urls) }

// deliver POSTs the payload until a replica acknowledges it.
func (g *loadGen) deliver(user string, body []byte) {
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		urls := *g.targets.Load()
		u := urls[int(g.next.Add(1))%len(urls)] + "/dingtalk/callback"
		now := time.Now()
		req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("timestamp", fmt.Sprint(now.UnixMilli()))
		req.Header.Set("sign", dingtalktest.Sign(g.fake.ClientSecret, now.UnixMilli()))
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				g.mu.Lock()
				g.accepted[user]++
				g.total++
				g.mu.Unlock()
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run starts users that each ask a question every interval until stop is
// closed; the returned group ends when every message was acknowledged.
func (g *loadGen) run(users int, interval time.Duration, stop chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for u := 0; u < users; u++ {
		wg.Add(1)
		go func(user string) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, body := g.fake.Payload(dingtalktest.Msg{SenderStaffID: user, SenderNick: "用户" + user, Text: "VPN 连不上怎么办"})
				g.deliver(user, body)
				time.Sleep(interval)
			}
		}(fmt.Sprintf("k%02d", u))
	}
	return &wg
}

// answers counts the answers each user received.
func answers(fake *dingtalktest.Server) map[string]int {
	out := map[string]int{}
	for _, x := range fake.Sent() {
		if !strings.Contains(x.Text, "VPN答案") {
			continue
		}
		for _, u := range append(slices.Clone(x.UserIDs), strings.TrimPrefix(x.ConversationID, "cid-private-")) {
			if strings.HasPrefix(u, "k") {
				out[u]++
				break
			}
		}
	}
	return out
}

// The crash drill: load on the service while DingTalk answers 503,
// kill -9 mid-load, start again. Every acknowledged message is answered
// within 30 s of the restart (in practice within storage.replica_timeout
// and a retry or two), and nothing is answered twice: the sends in flight
// at the crash were failing. With two replicas on MySQL, killing one
// without restarting it, the other takes its work over as fast.
func TestKill9MidLoadEveryAcceptedMessageAnswered(t *testing.T) {
	if testing.Short() {
		t.Skip("crash drill: starts and kills processes")
	}
	type drill struct {
		name, driver string
		replicas     int
	}
	drills := []drill{{"sqlite restart", "sqlite", 1}}
	if slices.Contains(gormstoretest.Drivers(t), "mysql") {
		drills = append(drills, drill{"mysql restart", "mysql", 1}, drill{"mysql two replicas", "mysql", 2})
	}
	for _, d := range drills {
		t.Run(d.name, func(t *testing.T) {
			fake := dingtalktest.NewServer()
			t.Cleanup(fake.Close)
			st := gormstoretest.NewStorage(t, d.driver)
			if !strings.Contains(serviceOpts{driver: d.driver}.yaml(fake, st.DSN.Reveal()), "driver: "+d.driver) {
				t.Fatal("config does not name the driver")
			}
			dir := t.TempDir()
			kb, err := os.ReadFile("testdata/kb.yaml")
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "kb.yaml"), string(kb))
			cfgPath := filepath.Join(dir, "dingdesk.yaml")
			writeFile(t, cfgPath, strings.Replace(serviceOpts{driver: d.driver}.yaml(fake, st.DSN.Reveal()), "log: { level: debug, format: text }", "log: { level: info, format: text }", 1))

			kids := []*child{startChild(t, cfgPath)}
			for len(kids) < d.replicas {
				kids = append(kids, startChild(t, cfgPath))
			}
			g := &loadGen{fake: fake, accepted: map[string]int{}}
			urls := make([]string, len(kids))
			for i, k := range kids {
				urls[i] = k.url
			}
			g.setTargets(urls...)
			stop := make(chan struct{})
			load := g.run(20, 40*time.Millisecond, stop)

			time.Sleep(1500 * time.Millisecond)
			fake.Unavailable(true) // DingTalk answers 503 from here…
			time.Sleep(700 * time.Millisecond)
			kids[0].kill9(t)
			crash := time.Now()
			g.mu.Lock()
			pendingAtCrash := g.total
			g.mu.Unlock()
			for _, n := range answers(fake) {
				pendingAtCrash -= n
			}
			if pendingAtCrash <= 0 {
				t.Fatalf("nothing was left unanswered at the crash (%d): the drill tests nothing", pendingAtCrash)
			}
			var restart time.Time
			if d.replicas == 1 {
				k := startChild(t, cfgPath)
				g.setTargets(k.url)
				restart = time.Now()
				if testing.Verbose() {
					t.Logf("restarted serve's log:\n%s", k.tail(30))
				}
			} else {
				g.setTargets(urls[1:]...) // the load balancer drops the dead one
				restart = crash
			}
			time.Sleep(2 * time.Second)
			fake.Unavailable(false) // …to here: about 3 s around the crash
			time.Sleep(time.Second)
			close(stop)
			load.Wait()

			g.mu.Lock()
			want := map[string]int{}
			for u, n := range g.accepted {
				want[u] = n
			}
			total := g.total
			g.mu.Unlock()
			deadline := restart.Add(30 * time.Second)
			var got map[string]int
			for {
				got = answers(fake)
				missing := 0
				for u, n := range want {
					missing += max(0, n-got[u])
				}
				if missing == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d acknowledged messages unanswered 30 s after the restart (answers %v, acknowledged %v)", missing, total, got, want)
				}
				time.Sleep(100 * time.Millisecond)
			}
			answeredIn := time.Since(restart)
			time.Sleep(time.Second) // anything sent twice shows up now
			got = answers(fake)
			dup := 0
			for u, n := range got {
				dup += max(0, n-want[u])
			}
			t.Logf("%s: %d messages acknowledged, %d of them unanswered at the crash; crash %.1fs before the %s; all answered %.1fs after it; %d answered twice",
				d.name, total, pendingAtCrash, restart.Sub(crash).Seconds(), map[bool]string{true: "restart", false: "kill"}[d.replicas == 1], answeredIn.Seconds(), dup)
			if dup > 0 {
				t.Errorf("%d messages answered twice; no send was in flight successfully at the crash (DingTalk answered 503)", dup)
			}
		})
	}
}
