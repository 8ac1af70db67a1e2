package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/internal/pgtest"
)

func TestClientKey(t *testing.T) {
	t.Parallel()
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 192.168.1.1 fd00::/8")
	require.NoError(t, err)
	for name, c := range map[string]struct {
		remote  string
		xff     []string
		trusted bool
		want    string
	}{
		"direct, no proxies trusted":       {remote: "203.0.113.5:4000", xff: []string{"198.51.100.1"}, want: "203.0.113.5"},
		"untrusted peer's header ignored":  {remote: "203.0.113.5:4000", xff: []string{"198.51.100.1"}, trusted: true, want: "203.0.113.5"},
		"one trusted proxy":                {remote: "10.1.2.3:4000", xff: []string{"198.51.100.1"}, trusted: true, want: "198.51.100.1"},
		"forged hops left of the real one": {remote: "10.1.2.3:4000", xff: []string{"1.1.1.1, 2.2.2.2, 198.51.100.1"}, trusted: true, want: "198.51.100.1"},
		"a chain of trusted proxies":       {remote: "10.1.2.3:4000", xff: []string{"7.7.7.7, 198.51.100.1, 192.168.1.1", "10.9.9.9"}, trusted: true, want: "198.51.100.1"},
		"every hop trusted":                {remote: "10.1.2.3:4000", xff: []string{"10.4.4.4"}, trusted: true, want: "10.4.4.4"},
		"no header from a trusted proxy":   {remote: "10.1.2.3:4000", trusted: true, want: "10.1.2.3"},
		"garbage stops the walk":           {remote: "10.1.2.3:4000", xff: []string{"198.51.100.1, not-an-ip"}, trusted: true, want: "10.1.2.3"},
		"hop with a port":                  {remote: "10.1.2.3:4000", xff: []string{"198.51.100.1:5555"}, trusted: true, want: "198.51.100.1"},
		"IPv6 keyed by its /64":            {remote: "[2001:db8:1:2:aaaa::1]:4000", want: "2001:db8:1:2::/64"},
		"IPv6 hop behind a v6 proxy":       {remote: "[fd00::1]:4000", xff: []string{"2001:db8:1:2::77"}, trusted: true, want: "2001:db8:1:2::/64"},
		"IPv4-mapped is IPv4":              {remote: "[::ffff:203.0.113.5]:4000", want: "203.0.113.5"},
	} {
		var trusted = proxies
		if !c.trusted {
			trusted = nil
		}
		require.Equal(t, c.want, clientKey(c.remote, c.xff, trusted), name)
	}
	_, err = ParseTrustedProxies("10.0.0.0/8,nonsense")
	require.ErrorContains(t, err, "nonsense")
}

func TestKeyedLimitersStayBoundedUnderChurn(t *testing.T) {
	t.Parallel()
	k := newKeyedLimiters(0.001, 1, 100)
	now := time.Now()
	require.True(t, k.spend("attacker", now), "one failure with a burst of 1 blocks")
	for i := range 10_000 {
		k.spend(fmt.Sprintf("churn-%d", i), now)
		if i%50 == 0 {
			require.Positive(t, k.blocked("attacker", now), "a key that keeps coming back is not forgotten")
		}
	}
	require.Equal(t, 100, k.len(), "the table never outgrows its bound")
	require.Zero(t, k.blocked("churn-0", now), "the least recently seen keys were forgotten")
}

// TestBlockedClientIsRefusedBeforeTheLookUp counts the real store's token
// look-ups: once an address is over its failure limit no request of it,
// with a good token or a bad one, reaches the database.
func TestBlockedClientIsRefusedBeforeTheLookUp(t *testing.T) {
	t.Parallel()
	store := appeals.NewStore(pgtest.New(t), appeals.Options{})
	_, good, err := store.CreateToken(context.Background(), docket.Actor{Role: docket.RoleSystem, Name: "test"},
		appeals.TokenInput{Name: "ada", Role: docket.RoleAdmin})
	require.NoError(t, err)
	s := New(Config{Store: store, AuthCacheTTL: -1, Limits: Limits{AuthFailureRate: 0.001, AuthFailureBurst: 3}})
	var lookups atomic.Int64
	real := s.auth.look
	s.auth.look = func(ctx context.Context, secret string) (docket.Actor, error) {
		lookups.Add(1)
		return real(ctx, secret)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	get := func(token string) int {
		req, err := http.NewRequest("GET", ts.URL+"/v1/policies", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := ts.Client().Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 200, get(good))
	for i := range 3 {
		require.Equal(t, 401, get(fmt.Sprintf("guess-%d", i)))
	}
	require.EqualValues(t, 4, lookups.Load())
	for i := range 20 {
		require.Equal(t, 429, get(fmt.Sprintf("guess-more-%d", i)))
	}
	require.Equal(t, 429, get(good), "a blocked address is blocked whatever token it shows")
	require.EqualValues(t, 4, lookups.Load(), "refused requests cost no look-up")
}

// TestStreamOutlivesReadAndWriteTimeouts runs a slow stream through the
// real http.Server configuration: with 1 s timeouts, a reply streamed over
// several seconds must arrive whole, because the write deadline is pushed
// forward before each chunk (and net/http lifts the read deadline once the
// request is read, so its context is not cancelled either).
func TestStreamOutlivesReadAndWriteTimeouts(t *testing.T) {
	t.Parallel()
	s := New(Config{Store: &appeals.Store{}, Limits: Limits{ReadTimeout: time.Second, WriteTimeout: time.Second}})
	const chunks = 8
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	s.mux.HandleFunc("GET /test/slow-stream", func(w http.ResponseWriter, r *http.Request) {
		sw := newStreamWriter(w, s.limits.WriteTimeout)
		for range chunks {
			if _, err := sw.Write(chunk); err != nil {
				_ = s.failStream(r, sw, err)
			}
			// The pace of a slow export (a big table, a busy database).
			select {
			case <-r.Context().Done():
				_ = s.failStream(r, sw, r.Context().Err())
			case <-time.After(400 * time.Millisecond):
			}
		}
		if err := sw.end(); err != nil {
			_ = s.failStream(r, sw, err)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hs := s.HTTPServer()
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })

	start := time.Now()
	resp, err := http.Get("http://" + ln.Addr().String() + "/test/slow-stream")
	require.NoError(t, err)
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	require.NoError(t, err, "the stream was cut after %s", time.Since(start))
	require.EqualValues(t, chunks*len(chunk), n)
	require.Greater(t, time.Since(start), 2*time.Second, "the stream outlived both timeouts")
}

// TestOutageIsNotAClientFailure: look-ups failing for want of the database
// answer 503 with Retry-After (the database is unavailable, not the
// client wrong) and never add up to a 429 that would outlast the outage.
func TestOutageIsNotAClientFailure(t *testing.T) {
	t.Parallel()
	s := New(Config{Store: &appeals.Store{}, AuthCacheTTL: -1, Limits: Limits{AuthFailureRate: 0.001, AuthFailureBurst: 2}})
	s.auth.look = func(context.Context, string) (docket.Actor, error) {
		return docket.Actor{}, fmt.Errorf("appeals: authenticate: %w", net.ErrClosed)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	for range 10 {
		req, err := http.NewRequest("GET", ts.URL+"/v1/policies", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer good-but-unreachable")
		resp, err := ts.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 503, resp.StatusCode)
		require.Equal(t, "2", resp.Header.Get("Retry-After"))
	}
}

// viaTLS believes X-Forwarded-Proto only from a trusted proxy.
func TestViaTLS(t *testing.T) {
	t.Parallel()
	proxies, err := ParseTrustedProxies("10.0.0.0/8")
	require.NoError(t, err)
	for name, c := range map[string]struct {
		remote string
		proto  []string
		tls    bool
		want   bool
	}{
		"TLS to this server":               {remote: "203.0.113.5:4000", tls: true, want: true},
		"plain, no header":                 {remote: "203.0.113.5:4000"},
		"untrusted peer says https":        {remote: "203.0.113.5:4000", proto: []string{"https"}},
		"trusted proxy says https":         {remote: "10.1.2.3:4000", proto: []string{"https"}, want: true},
		"trusted proxy says HTTPS":         {remote: "10.1.2.3:4000", proto: []string{"HTTPS"}, want: true},
		"trusted proxy says http":          {remote: "10.1.2.3:4000", proto: []string{"http"}},
		"trusted proxy, no header":         {remote: "10.1.2.3:4000"},
		"the TLS hop in a list":            {remote: "10.1.2.3:4000", proto: []string{"https, http"}, want: true},
		"the TLS hop in a repeated header": {remote: "10.1.2.3:4000", proto: []string{"http", "https"}, want: true},
		"unparsable peer":                  {remote: "pipe", proto: []string{"https"}},
	} {
		r := httptest.NewRequest("GET", "/ui/", nil)
		r.RemoteAddr = c.remote
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		for _, p := range c.proto {
			r.Header.Add("X-Forwarded-Proto", p)
		}
		require.Equal(t, c.want, viaTLS(r, proxies), name)
	}
	r := httptest.NewRequest("GET", "/ui/", nil)
	r.RemoteAddr = "10.1.2.3:4000"
	r.Header.Set("X-Forwarded-Proto", "https")
	require.False(t, viaTLS(r, nil), "no proxies trusted: the header is ignored")
}
