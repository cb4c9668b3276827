package dingtalk

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/dingdesk/dingdesk/adapter/dingtalk/dingtalktest"
)

const testRedirect = "http://127.0.0.1:1/auth/dingtalk/callback"

func newLoginFake(t *testing.T) (*dingtalktest.Server, *Login) {
	t.Helper()
	fake := newFake(t)
	cfg := testConfig(fake, "stream")
	cfg.OAPIBase, cfg.LoginBase, cfg.CorpID = fake.URL, fake.URL, fake.CorpID
	l, err := NewLogin(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fake.AllowRedirect(testRedirect)
	fake.AddLoginUser(dingtalktest.LoginUser{UserID: "agent1", Nick: "小王"})
	fake.AddLoginUser(dingtalktest.LoginUser{UserID: "ext1", ContactType: 1})
	fake.AddLoginUser(dingtalktest.LoginUser{UserID: "gone", NotInOrg: true})
	return fake, l
}

// authorize follows the login page like a browser and returns the
// callback's query.
func authorize(t *testing.T, l *Login, state string) url.Values {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(l.AuthorizeURL(testRedirect+"?next=%2Fdesk", state))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login page answered %d", resp.StatusCode)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestLoginOAuth(t *testing.T) {
	fake, l := newLoginFake(t)
	ctx := context.Background()

	fake.SelectLoginUser("agent1")
	q := authorize(t, l, "st-1")
	if q.Get("state") != "st-1" || q.Get("next") != "/desk" || q.Get("authCode") == "" || q.Get("code") != q.Get("authCode") {
		t.Fatalf("callback query %v", q)
	}
	u, err := l.ByAuthCode(ctx, q.Get("authCode"))
	if err != nil || u.UserID != "agent1" || u.Name != "小王" {
		t.Fatalf("got %+v, %v", u, err)
	}
	if _, err := l.ByAuthCode(ctx, q.Get("authCode")); !errors.Is(err, ErrLoginCode) {
		t.Fatalf("reused code: %v, want ErrLoginCode", err)
	}
	if _, err := l.ByAuthCode(ctx, "nonsense"); !errors.Is(err, ErrLoginCode) {
		t.Fatalf("unknown code: %v", err)
	}
	// An OAuth code is not a 免登 code.
	code := authorize(t, l, "s").Get("authCode")
	if _, err := l.ByJSAPICode(ctx, code); !errors.Is(err, ErrLoginCode) {
		t.Fatalf("OAuth code as 免登 code: %v, want ErrLoginCode", err)
	}
	fake.ExpireLoginCodes()
	if _, err := l.ByAuthCode(ctx, code); !errors.Is(err, ErrLoginCode) {
		t.Fatalf("expired code: %v", err)
	}

	for _, who := range []string{"ext1", "gone"} {
		fake.SelectLoginUser(who)
		if _, err := l.ByAuthCode(ctx, authorize(t, l, "s").Get("authCode")); !errors.Is(err, ErrLoginRefused) {
			t.Fatalf("%s: %v, want ErrLoginRefused", who, err)
		}
	}

	fake.SelectLoginUser("agent1")
	fake.SetLoginCorp("another-corp")
	if _, err := l.ByAuthCode(ctx, authorize(t, l, "s").Get("authCode")); !errors.Is(err, ErrLoginRefused) {
		t.Fatalf("other corp: %v, want ErrLoginRefused", err)
	}
	fake.SetLoginCorp("")

	fake.SetContactPermission(false)
	if _, err := l.ByAuthCode(ctx, authorize(t, l, "s").Get("authCode")); err == nil || errors.Is(err, ErrLoginRefused) {
		t.Fatalf("without Contact.User.Read: %v", err)
	}
	fake.SetContactPermission(true)

	fake.DenyLogin(true)
	if q := authorize(t, l, "s"); q.Get("error") != "access_denied" || q.Get("authCode") != "" {
		t.Fatalf("denied: %v", q)
	}
}

func TestLoginRefusesUnregisteredRedirect(t *testing.T) {
	fake, l := newLoginFake(t)
	fake.SelectLoginUser("agent1")
	resp, err := http.Get(l.AuthorizeURL("http://evil.example/cb", "s"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unregistered redirect: %d, want 400 (no redirect)", resp.StatusCode)
	}
}

func TestLoginJSAPI(t *testing.T) {
	fake, l := newLoginFake(t)
	ctx := context.Background()
	code := fake.MintJSAPICode("agent1")
	u, err := l.ByJSAPICode(ctx, code)
	if err != nil || u.UserID != "agent1" {
		t.Fatalf("got %+v, %v", u, err)
	}
	if _, err := l.ByJSAPICode(ctx, code); !errors.Is(err, ErrLoginCode) {
		t.Fatalf("reused 免登 code: %v", err)
	}
}

func TestLoginUserDetail(t *testing.T) {
	fake, l := newLoginFake(t)
	fake.AddLoginUser(dingtalktest.LoginUser{UserID: "u1", Nick: "张三", Title: "工程师", Mobile: "13800000000"})
	d, err := l.UserDetail(context.Background(), "u1")
	if err != nil || d.Name != "张三" || d.Title != "工程师" || d.Mobile != "13800000000" {
		t.Fatalf("got %+v, %v", d, err)
	}
	if _, err := l.UserDetail(context.Background(), "nobody"); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("unknown user: %v", err)
	}
}
