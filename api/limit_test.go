package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/internal/pgtest"
)

// limitEnv is a server on the real http.Server configuration (HTTPServer),
// with an admin and an auditor token.
type limitEnv struct {
	*env
	addr string // host:port, for raw TCP clients
}

func setupLimits(t *testing.T, limits api.Limits, logger *slog.Logger) *limitEnv {
	t.Helper()
	db := pgtest.New(t)
	store := appeals.NewStore(db, appeals.Options{})
	// Hundreds of concurrent requests share the test pool's 24
	// connections; on a loaded machine some wait past the default
	// database bound and would answer 503, which is not what these
	// tests are about (limits and throttling).
	s := api.New(api.Config{Store: store, Logger: logger, Limits: limits, DBTimeout: time.Minute})
	ts := httptest.NewUnstartedServer(s)
	ts.Config = s.HTTPServer()
	ts.Start()
	t.Cleanup(ts.Close)
	validateTraffic(t, ts)
	e := &env{t: t, db: db, store: store, srv: ts, tokens: map[string]string{}}
	e.tokens["admin"] = e.token(appeals.TokenInput{Name: "ada", Role: docket.RoleAdmin})
	e.tokens["auditor"] = e.token(appeals.TokenInput{Name: "audrey", Role: docket.RoleAuditor})
	return &limitEnv{env: e, addr: ts.Listener.Addr().String()}
}

// cutWithin reads from conn until the server answers or closes, failing
// when neither happens within bound. It returns the status, 0 for a cut.
func cutWithin(t *testing.T, conn net.Conn, bound time.Duration) int {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(bound)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server neither answered nor cut the connection within %s", bound)
	if err != nil {
		return 0 // closed or reset: cut
	}
	resp.Body.Close()
	return resp.StatusCode
}

// trickle writes one byte of s every 100 ms until it is written or stop closes.
func trickle(conn net.Conn, s string, stop <-chan struct{}) {
	for i := range len(s) {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := conn.Write([]byte{s[i]}); err != nil {
			return
		}
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestTrickledRequestsAreCut(t *testing.T) {
	t.Parallel()
	t.Run("body", func(t *testing.T) {
		t.Parallel()
		e := setupLimits(t, api.Limits{ReadTimeout: time.Second}, nil)
		conn := dial(t, e.addr)
		body := `{"title": "A policy", "text": "` + strings.Repeat("x", 500) + `"}`
		_, err := fmt.Fprintf(conn, "PUT /v1/policies/slow HTTP/1.1\r\nHost: docket\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", e.tokens["admin"], len(body))
		require.NoError(t, err)
		stop := make(chan struct{})
		defer close(stop)
		go trickle(conn, body, stop) // 50 s at this pace
		status := cutWithin(t, conn, 10*time.Second)
		require.True(t, status == 0 || status == 400 || status == 408, "status %d", status)
	})
	t.Run("headers", func(t *testing.T) {
		t.Parallel()
		// ReadTimeout off, so that only the header bound can cut it.
		e := setupLimits(t, api.Limits{ReadHeaderTimeout: time.Second, ReadTimeout: -1}, nil)
		conn := dial(t, e.addr)
		stop := make(chan struct{})
		defer close(stop)
		go trickle(conn, "GET /healthz HTTP/1.1\r\nHost: docket\r\nX-Padding: "+strings.Repeat("y", 500)+"\r\n\r\n", stop)
		status := cutWithin(t, conn, 10*time.Second)
		require.True(t, status == 0 || status == 400 || status == 408, "status %d", status)
	})
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	t.Parallel()
	e := setupLimits(t, api.Limits{IdleTimeout: time.Second}, nil)
	conn := dial(t, e.addr)
	_, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: docket\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = br.ReadByte()
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "an idle connection is still open after 10 s")
	require.Error(t, err, "the server closes the idle connection")
}

func TestOversizedHeadersAreRefused(t *testing.T) {
	t.Parallel()
	e := setupLimits(t, api.Limits{MaxHeaderBytes: 4 << 10}, nil)
	r := e.do("GET", "/healthz", "", nil, "X-Padding", strings.Repeat("z", 16<<10))
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, r.Status)
	r = e.do("GET", "/healthz", "", nil, "X-Padding", strings.Repeat("z", 1<<10))
	require.Equal(t, 200, r.Status)
}

// requireRateLimited checks a reply is the 429 of the contract.
func requireRateLimited(t *testing.T, r reply) {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, r.Status, "%s", r.Body)
	require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After is whole seconds")
	require.GreaterOrEqual(t, secs, 1)
	var p api.Problem
	require.NoError(t, json.Unmarshal(r.Body, &p))
	require.Equal(t, 429, p.Status)
	require.Equal(t, "urn:docket:problem:rate_limited", p.Type)
}

func TestAuthFailuresAreLimitedPerClientAddress(t *testing.T) {
	t.Parallel()
	// The test client is the trusted proxy; X-Forwarded-For names the clients.
	e := setupLimits(t, api.Limits{AuthFailureRate: 0.01, AuthFailureBurst: 5,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, nil)
	const attacker, other = "203.0.113.9", "198.51.100.7"
	var refused reply
	for i := range 50 {
		r := e.do("GET", "/v1/policies", fmt.Sprintf("guess-%d", i), nil, "X-Forwarded-For", attacker)
		if r.Status == 429 {
			refused = r
			require.GreaterOrEqual(t, i, 5, "the first failures, up to the burst, are answered 401")
			break
		}
		require.Equal(t, 401, r.Status)
	}
	requireRateLimited(t, refused)
	requireRateLimited(t, e.do("GET", "/v1/policies", "admin", nil, "X-Forwarded-For", attacker))
	requireRateLimited(t, e.do("GET", "/v1/policies", "guess-x", nil, "X-Forwarded-For", other+", "+attacker))

	require.Equal(t, 200, e.do("GET", "/v1/policies", "admin", nil, "X-Forwarded-For", other).Status,
		"another address is not held back by the attacker")
	require.Equal(t, 401, e.do("GET", "/v1/policies", "guess-y", nil, "X-Forwarded-For", other).Status)
	require.Equal(t, 401, e.do("GET", "/v1/policies", "", nil, "X-Forwarded-For", attacker).Status,
		"a request without a token guesses nothing and is not refused")
}

// TestDefaultsNeverThrottleLegitimateClients sends, with the default limits,
// many more requests from one address than any limit's burst, as `docket
// bench` does (256 clients, a few tokens, one address): only failures
// count, and tokens are not limited by default.
func TestDefaultsNeverThrottleLegitimateClients(t *testing.T) {
	t.Parallel()
	e := setupLimits(t, api.Limits{}, nil)
	// A client that mistypes its token now and then.
	for i := range 3 {
		require.Equal(t, 401, e.do("GET", "/v1/policies", fmt.Sprintf("typo-%d", i), nil).Status)
	}
	var wg sync.WaitGroup
	statuses := make(chan int, 512)
	for w := range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			who := []string{"admin", "auditor"}[w%2]
			for range 2 {
				statuses <- e.do("GET", "/v1/policies", who, nil).Status
			}
		}()
	}
	wg.Wait()
	close(statuses)
	n := 0
	for st := range statuses {
		require.Equal(t, 200, st)
		n++
	}
	require.Equal(t, 512, n)
}

func TestRequestsPerTokenCanBeLimited(t *testing.T) {
	t.Parallel()
	e := setupLimits(t, api.Limits{TokenRate: 0.01, TokenBurst: 3}, nil)
	for range 3 {
		require.Equal(t, 200, e.do("GET", "/v1/policies", "admin", nil).Status)
	}
	requireRateLimited(t, e.do("GET", "/v1/policies", "admin", nil))
	require.Equal(t, 200, e.do("GET", "/v1/policies", "auditor", nil).Status, "each token has its own budget")
}

// TestFailedAuthenticationsAreQuietAndSecret: a flood of bad tokens writes
// no INFO line per attempt (one WARN for the refused address at most), and
// no token appears in the log at any level.
func TestFailedAuthenticationsAreQuietAndSecret(t *testing.T) {
	t.Parallel()
	var info, debug syncBuffer
	logger := slog.New(teeHandler{
		slog.NewJSONHandler(&info, &slog.HandlerOptions{Level: slog.LevelInfo}),
		slog.NewJSONHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug}),
	})
	e := setupLimits(t, api.Limits{AuthFailureRate: 0.01, AuthFailureBurst: 5}, logger)
	var secrets []string
	for i := range 30 {
		secret := fmt.Sprintf("secret-guess-%d", i)
		secrets = append(secrets, secret)
		require.Contains(t, []int{401, 429}, e.do("GET", "/v1/policies", secret, nil).Status)
	}
	secrets = append(secrets, e.tokens["admin"])
	e.do("GET", "/v1/policies", "admin", nil)

	lines := strings.Split(strings.TrimSpace(info.String()), "\n")
	require.LessOrEqual(t, len(lines), 2, "INFO log: %s", info.String())
	require.Contains(t, info.String(), "refusing authentication")
	require.Contains(t, debug.String(), `"status":401`, "the attempts are there at DEBUG")
	for _, s := range secrets {
		require.NotContains(t, debug.String(), s)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}

func TestOpenAPIDocumentsRateLimits(t *testing.T) {
	t.Parallel()
	e := setupLimits(t, api.Limits{}, nil)
	r := e.do("GET", "/openapi.json", "", nil)
	require.Equal(t, 200, r.Status)
	var doc struct {
		Paths map[string]map[string]struct {
			XRoles    []string `json:"x-roles"`
			Responses map[string]struct {
				Headers map[string]any `json:"headers"`
			} `json:"responses"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &doc))
	authed := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			_, has := op.Responses["429"]
			if op.XRoles == nil {
				require.False(t, has, "%s %s is public: no token, no 429", method, path)
				continue
			}
			authed++
			require.True(t, has, "%s %s documents no 429", method, path)
			require.Contains(t, op.Responses["429"].Headers, "Retry-After", "%s %s", method, path)
		}
	}
	require.Positive(t, authed)
}

// TestSlowWorkOutlivesTheWriteTimeout: the write timeout is for stalled
// readers, so handlers whose own work may be long (a bulk reversal, the
// figures) lift it. A 1 ns timeout has always passed by the time a
// handler writes: an ordinary route is cut, those two answer.
func TestSlowWorkOutlivesTheWriteTimeout(t *testing.T) {
	t.Parallel()
	e := setupLimits(t, api.Limits{WriteTimeout: time.Nanosecond}, nil)
	_, err := e.store.PutPolicy(context.Background(), docket.Actor{Role: docket.RoleAdmin, Name: "ada"}, "crypto",
		appeals.PolicyInput{Title: "Crypto", Text: "No crypto ads."})
	require.NoError(t, err)

	call := func(method, path string, body string) (int, error) {
		req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+e.tokens["admin"])
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if _, err := io.ReadAll(resp.Body); err != nil {
			return 0, err
		}
		return resp.StatusCode, nil
	}
	_, err = call("GET", "/v1/policies", "")
	require.Error(t, err, "an ordinary reply is cut by the write timeout")

	status, err := call("POST", "/v1/policies/crypto/reversals", `{"versions": [1], "rationale": "Allowed now."}`)
	require.NoError(t, err)
	require.Equal(t, 200, status)
	status, err = call("GET", "/v1/reports/appeals", "")
	require.NoError(t, err)
	require.Equal(t, 200, status)
}
