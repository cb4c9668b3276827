// Command dingdesk runs the DingTalk support bot with hand-off to human
// agents, and the admin tools around it.
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `dingdesk — DingTalk support bot with hand-off to human agents

Usage:
  dingdesk serve   [-c dingdesk.yaml]   run the service
  dingdesk check   [-c dingdesk.yaml]   validate the config and knowledge files
  dingdesk kb match [-c dingdesk.yaml]  match questions from stdin, one JSON line each
  dingdesk kb check [-c dingdesk.yaml]  validate the knowledge files
  dingdesk kb import|export FILE.xlsx   Excel import (preview, then apply) and export
  dingdesk report  [-c dingdesk.yaml]   service report (--from, --to, --by, --format csv|table)
  dingdesk chat    [-c dingdesk.yaml]   try the bot and the agent desk in the terminal
  dingdesk login-link [-c dingdesk.yaml] --staff STAFFID
                                        print a one-time workbench login URL
  dingdesk version                      print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:], stderr)
	case "check":
		return runCheck(args[1:], stdout, stderr)
	case "kb":
		return runKB(args[1:], stdin, stdout, stderr)
	case "report":
		return runReport(args[1:], stdout, stderr)
	case "chat":
		return runChat(args[1:], stdin, stdout, stderr)
	case "login-link":
		return runLoginLink(args[1:], stdout, stderr)
	case "version", "-v", "--version":
		fmt.Fprintln(stdout, "dingdesk", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
