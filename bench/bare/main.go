// Command bare serves the baseline handler (package baseline) so that
// bench/webhookload can measure it beside a running dingdesk.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/dingdesk/dingdesk/bench/baseline"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18081", "address")
	secret := flag.String("secret", "test-secret-0123456789", "app secret (the fake's default)")
	flag.Parse()
	log.Printf("baseline handler on %s/dingtalk/callback", *listen)
	log.Fatal(http.ListenAndServe(*listen, baseline.Handler("/dingtalk/callback", *secret)))
}
