package console_test

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/appeals"
)

// clock is a test's controllable time for the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The server's session lifetimes (DOCKET_SESSION_IDLE, DOCKET_SESSION_MAX)
// reach the console: the cookie lives as long as the absolute lifetime, a
// session used often enough outlives the idle one but not the absolute
// one, and one left idle ends.
func TestSessionLifetimesConfigured(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Now()}
	e := setupServer(t, appeals.Options{Now: clk.Now},
		api.Config{Sessions: appeals.SessionLimits{Idle: time.Minute, Absolute: 3 * time.Minute}})
	signedOut := func(p page) {
		t.Helper()
		require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
		require.True(t, strings.HasPrefix(p.Location, "/ui/signin"), p.Location)
	}

	clk.Set(time.Now()) // the console's cookie counts in real time from here; setup may have been slow
	b := e.browser()
	r := b.signIn("advertiser")
	require.Equal(t, http.StatusSeeOther, r.Status, r.Body)
	require.InDelta(t, 180, sessionCookie(t, r).MaxAge, 5, "the cookie lasts as long as the session may")
	for range 3 { // used every 50 s: alive past the idle minute
		clk.Add(50 * time.Second)
		require.Equal(t, http.StatusOK, b.get("/ui/decisions").Status)
	}
	clk.Add(31 * time.Second) // 181 s: past the absolute 3 minutes, though used 31 s ago
	signedOut(b.get("/ui/decisions"))

	idle := e.browser()
	require.Equal(t, http.StatusSeeOther, idle.signIn("advertiser").Status)
	clk.Add(59 * time.Second)
	require.Equal(t, http.StatusOK, idle.get("/ui/decisions").Status)
	clk.Add(61 * time.Second)
	signedOut(idle.get("/ui/decisions"))
}

// The cookies are Secure when the request came over TLS, to this server
// (TestSessionCookieFlags) or to a TLS-terminating proxy the server
// trusts (DOCKET_TRUSTED_PROXIES) that says so in X-Forwarded-Proto; from
// a peer not trusted the header is ignored.
func TestSecureCookieBehindTrustedProxy(t *testing.T) {
	t.Parallel()
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	elsewhere := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	behind := setupServer(t, appeals.Options{}, api.Config{Limits: api.Limits{TrustedProxies: loopback}})
	notTrusted := setupServer(t, appeals.Options{}, api.Config{Limits: api.Limits{TrustedProxies: elsewhere}})
	for _, c := range []struct {
		name   string
		e      *env
		proto  string
		secure bool
	}{
		{"a trusted proxy that terminated TLS", behind, "https", true},
		{"a trusted proxy over plain HTTP", behind, "http", false},
		{"a trusted proxy that says nothing", behind, "", false},
		{"a peer not trusted", notTrusted, "https", false},
	} {
		cookies := signInVia(t, c.e, c.proto)
		for _, name := range []string{"docket_signin", "docket_session"} {
			ck, ok := cookies[name]
			require.True(t, ok, "%s: %s set", c.name, name)
			require.Equal(t, c.secure, ck.Secure, "%s: %s Secure", c.name, name)
			require.True(t, ck.HttpOnly, c.name)
			require.Equal(t, http.SameSiteStrictMode, ck.SameSite, c.name)
		}
	}
}

// signInVia signs in as the advertiser with every request carrying
// X-Forwarded-Proto: proto (none when empty), as a proxy would send it,
// and returns the cookies the server set, by name. The cookies are sent
// back by hand: a cookie jar keeps Secure ones from a plain-HTTP URL.
func signInVia(t *testing.T, e *env, proto string) map[string]*http.Cookie {
	t.Helper()
	c := *e.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	send := func(method, path string, form url.Values, cookies []*http.Cookie) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(form.Encode()))
		require.NoError(t, err)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		for _, ck := range cookies {
			req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	got := map[string]*http.Cookie{}
	resp := send("GET", "/ui/signin", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, ck := range resp.Cookies() {
		got[ck.Name] = ck
	}
	signin, ok := got["docket_signin"]
	require.True(t, ok, "the sign-in form sets its nonce cookie")
	resp = send("POST", "/ui/signin", url.Values{"csrf": {signin.Value}, "token": {e.tokens["advertiser"]}},
		[]*http.Cookie{signin})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	for _, ck := range resp.Cookies() {
		if ck.Name == "docket_session" {
			got[ck.Name] = ck
		}
	}
	return got
}
