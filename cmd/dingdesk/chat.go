package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/adapter/terminal"
	"github.com/dingdesk/dingdesk/config"
)

const chatHelp = `dingdesk chat — type as a user or as an agent; replies are printed.
  <text>             the current user says text (private chat)
  u: <text>          the same
  a: <text>          the current agent says text in their desk chat (try "a: 上线")
  /user <name>       switch user (e.g. /user 张三)
  /agent <staff_id>  switch agent (default: the first member of the first group)
  /group <cid>       the current user now writes in group <cid>; /group - back to private
  /help, /quit
`

func runChat(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var keep *bool
	cfg, _, code := loadConfigArgs("chat", args, stderr, func(fs *flag.FlagSet) {
		keep = fs.Bool("db", false, "use the configured storage (default: a temporary SQLite file, so trying things out never touches real data)")
	})
	if code != 0 {
		return code
	}
	// The simulator needs no DingTalk and no HTTP port of its own.
	c := *cfg
	c.Server.Listen = "127.0.0.1:0"
	c.DingTalk.Mode = "webhook"
	if !*keep {
		dir, err := mkdirTemp()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		c.Storage.Driver, c.Storage.DSN = "sqlite", config.Secret(filepath.Join(dir, "chat.db"))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	term := terminal.New(stdout)
	m := NewMain(&c, log)
	m.Platform = term
	ctx := context.Background()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "start:", err)
		m.Close(ctx)
		return 1
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		m.Close(closeCtx)
	}()

	user := terminal.Speaker{StaffID: "user-张三", Nick: "张三"}
	agent := terminal.Speaker{}
	if len(c.SkillGroups) > 0 && len(c.SkillGroups[0].Members) > 0 {
		mem := c.SkillGroups[0].Members[0]
		agent = terminal.Speaker{StaffID: mem.StaffID, Nick: mem.Name}
	}
	fmt.Fprint(stdout, chatHelp)
	fmt.Fprintf(stdout, "当前用户 %s，当前客服 %s（%s）\n", user.Nick, agent.Nick, agent.StaffID)
	sc := bufio.NewScanner(stdin)
	for {
		fmt.Fprint(stdout, "> ")
		if !sc.Scan() {
			break
		}
		line := strings.TrimSpace(sc.Text())
		var sp terminal.Speaker
		switch {
		case line == "":
			continue
		case line == "/quit":
			return 0
		case line == "/help":
			fmt.Fprint(stdout, chatHelp)
			continue
		case strings.HasPrefix(line, "/user "):
			name := strings.TrimSpace(strings.TrimPrefix(line, "/user "))
			user = terminal.Speaker{StaffID: "user-" + name, Nick: name}
			fmt.Fprintf(stdout, "当前用户：%s\n", name)
			continue
		case strings.HasPrefix(line, "/agent "):
			id := strings.TrimSpace(strings.TrimPrefix(line, "/agent "))
			agent = terminal.Speaker{StaffID: id, Nick: memberName(&c, id)}
			fmt.Fprintf(stdout, "当前客服：%s（%s）\n", agent.Nick, id)
			continue
		case strings.HasPrefix(line, "/group "):
			g := strings.TrimSpace(strings.TrimPrefix(line, "/group "))
			if g == "-" {
				g = ""
			}
			user.GroupID = g
			continue
		case strings.HasPrefix(line, "a:"):
			if agent.StaffID == "" {
				fmt.Fprintln(stdout, "没有配置客服（skill_groups[].members）")
				continue
			}
			sp, line = agent, strings.TrimSpace(line[2:])
		case strings.HasPrefix(line, "u:"):
			sp, line = user, strings.TrimSpace(line[2:])
		default:
			sp = user
		}
		before := term.Sent()
		if err := term.Say(ctx, sp, line); err != nil {
			fmt.Fprintln(stdout, "error:", err)
			continue
		}
		waitQuiet(term, before)
	}
	return 0
}

// waitQuiet waits for the replies to a line: until something was printed
// and then nothing more for a moment, at most 3 seconds.
func waitQuiet(term *terminal.Adapter, before int64) {
	deadline := time.Now().Add(3 * time.Second)
	last, quietSince := before, time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n := term.Sent()
		if n != last {
			last, quietSince = n, time.Now()
		}
		if n > before && time.Since(quietSince) > 250*time.Millisecond {
			return
		}
	}
}

func memberName(c *config.Config, staffID string) string {
	for _, g := range c.SkillGroups {
		for _, m := range g.Members {
			if m.StaffID == staffID {
				return m.Name
			}
		}
	}
	return staffID
}
