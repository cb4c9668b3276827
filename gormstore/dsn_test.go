package gormstore

import (
	"net/url"
	"strings"
	"testing"
)

// mysqlDSN adds dingdesk's defaults without overriding the admin's, and
// turns client-side argument escaping on only for charsets where it is safe.
func TestMySQLDSNDefaults(t *testing.T) {
	for _, c := range []struct {
		dsn, key, want string
	}{
		{"root@tcp(db:3306)/dingdesk", "interpolateParams", "true"},
		{"root@tcp(db:3306)/dingdesk", "charset", "utf8mb4"},
		{"root@tcp(db:3306)/dingdesk", "parseTime", "true"},
		{"root@tcp(db:3306)/dingdesk?charset=utf8mb4,utf8", "interpolateParams", "true"},
		{"root@tcp(db:3306)/dingdesk?charset=gbk", "interpolateParams", ""},
		{"root@tcp(db:3306)/dingdesk?charset=utf8mb4,big5", "interpolateParams", ""},
		{"root@tcp(db:3306)/dingdesk?interpolateParams=false", "interpolateParams", "false"},
		{"root@tcp(db:3306)/dingdesk?loc=Asia%2FShanghai", "loc", "Asia/Shanghai"},
	} {
		out := mysqlDSN(c.dsn)
		_, query, _ := strings.Cut(out, "?")
		q, err := url.ParseQuery(query)
		if err != nil {
			t.Fatalf("%s -> %s: %v", c.dsn, out, err)
		}
		if got := q.Get(c.key); got != c.want {
			t.Errorf("%s -> %s: %s = %q, want %q", c.dsn, out, c.key, got, c.want)
		}
	}
}
