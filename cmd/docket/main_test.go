package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/api/client"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/internal/pgtest"
)

// syncBuffer is a goroutine-safe buffer for the server's log.
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

// server is the real program serving on a free port against its own database.
type server struct {
	t      *testing.T
	url    string
	getenv func(string) string
	log    *syncBuffer
	// stop sends the shutdown signal (cancels run's context) and waits for
	// run to return; the test's cleanup calls it too.
	stop func() error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// startServer runs `docket serve` through run() until the test ends, and
// waits until it is ready.
func startServer(t *testing.T, extraEnv map[string]string) *server {
	t.Helper()
	s := launchServer(t, extraEnv)
	require.Eventually(t, func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 30*time.Second, 50*time.Millisecond, "never ready; log:\n%s", s.log.String())
	return s
}

// launchServer runs `docket serve` through run() until the test ends,
// without waiting for it to be ready.
func launchServer(t *testing.T, extraEnv map[string]string) *server {
	t.Helper()
	addr := freeAddr(t)
	vars := map[string]string{
		"DATABASE_URL":              pgtest.NewURL(t),
		"DOCKET_ADDR":               addr,
		"DOCKET_DATA_DIR":           t.TempDir(),
		"DOCKET_EMBEDDED_NATS_ADDR": "127.0.0.1:0",
	}
	for k, v := range extraEnv {
		vars[k] = v
	}
	getenv := func(k string) string { return vars[k] }
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"docket", "serve"}, getenv, strings.NewReader(""), io.Discard, logs) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = errors.New("serve did not stop after cancel")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { require.NoError(t, stop(), "serve; log:\n%s", logs.String()) })
	return &server{t: t, url: "http://" + addr, getenv: getenv, log: logs, stop: stop}
}

// db opens the server's database, for checks the API does not offer.
func (s *server) db() *sqlx.DB {
	s.t.Helper()
	db, err := sqlx.Open("postgres", s.getenv("DATABASE_URL"))
	require.NoError(s.t, err)
	s.t.Cleanup(func() { db.Close() })
	return db
}

// cli runs a docket command against the server's database; it returns stdout.
func (s *server) cli(args ...string) string {
	s.t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"docket"}, args...), s.getenv, strings.NewReader(""), &out, &errb)
	require.NoError(s.t, err, "docket %v: %s", args, errb.String())
	return out.String()
}

// token runs `docket token create` and returns the last line of stdout, as
// the README's walk-through does.
func (s *server) token(args ...string) string {
	out := strings.TrimSpace(s.cli(append([]string{"token", "create"}, args...)...))
	lines := strings.Split(out, "\n")
	return lines[len(lines)-1]
}

func (s *server) call(method, path, token, body string) (int, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	require.NoError(s.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

// TestWalkThrough is the README's curl walk-through, on the real program.
func TestWalkThrough(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	admin := s.token("--role", "admin", "--name", "alice")
	enforcer := s.token("--role", "enforcer", "--name", "ads-pipeline")
	advertiser := s.token("--role", "advertiser", "--name", "acme-owner", "--advertiser", "acme")
	require.True(t, strings.HasPrefix(admin, "dkt_"))

	// The policy with curl's request, as the README shows it first.
	status, p := s.call("PUT", "/v1/policies/crypto-ads", admin,
		`{"title": "No cryptocurrency ads", "text": "Ads may not promote cryptocurrencies, tokens or exchanges."}`)
	require.Equal(t, 201, status, "%v", p)

	// The decision with the Go client, as the README shows it beside curl.
	ctx := context.Background()
	ads, err := client.New(s.url, enforcer, nil)
	require.NoError(t, err)
	detected := true
	d, err := ads.CreateDecision(ctx, client.DecisionInput{
		AdvertiserID: "acme", Action: "advertiser_ban", PolicyCode: "crypto-ads",
		Ground: "terms", Explanation: "Repeated ads for a token sale after two removals.",
		Facts:  "Ads 17, 18 and 21 promoted the ACME token between 1 and 20 November.",
		Source: "voluntary", AutomatedDetection: &detected, AutomatedDecision: "partial",
		TerritorialScope: []string{"DE", "FR"}, ContentType: []string{"image", "text"},
	}, client.IdempotencyKey("acme-ban-2026-11"))
	require.NoError(t, err)
	id := d.ID

	got, err := ads.WithToken(advertiser).GetDecision(ctx, id)
	require.NoError(t, err)
	require.Equal(t, appeals.ActionAdvertiserBan, got.Action)
	require.Equal(t, 1, got.PolicyVersion)

	other := s.token("--role", "advertiser", "--name", "globex-owner", "--advertiser", "globex")
	_, err = ads.WithToken(other).GetDecision(ctx, id)
	require.Equal(t, 404, client.StatusOf(err))

	// A revoked token stops working within the auth cache's TTL (1 s).
	require.Contains(t, s.cli("token", "revoke", "globex-owner"), "revoked 1")
	require.Eventually(t, func() bool {
		status, _ := s.call("GET", "/v1/decisions", other, "")
		return status == 401
	}, 10*time.Second, 50*time.Millisecond)
	// The relay announced the entries, and /metrics says so.
	require.Eventually(t, func() bool {
		resp, err := http.Get(s.url + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return regexp.MustCompile(`(?m)^docket_notify_published_total [1-9]`).Match(body)
	}, 30*time.Second, 50*time.Millisecond)
	require.Contains(t, s.cli("token", "list"), "acme-owner")
	require.Contains(t, s.cli("migrate", "status"), "00001")
}

func TestCommandsHaveHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"serve", "--help"}, {"migrate", "--help"}, {"token", "create", "--help"}} {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"docket"}, args...), func(string) string { return "" }, nil, &out, &errb)
		require.Error(t, err) // flag.ErrHelp: main exits 0-like without printing it
		require.Contains(t, errb.String(), "Usage: docket "+strings.Fields(args[0])[0], "%v", args)
	}
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"docket", "version"}, func(string) string { return "" }, nil, &out, io.Discard))
	require.Contains(t, out.String(), "docket ")
	err := run(context.Background(), []string{"docket", "frobnicate"}, func(string) string { return "" }, nil, io.Discard, io.Discard)
	require.ErrorContains(t, err, "unknown command")
}

// TestCommandsTableIsTheUsage: the commands run checks are the ones the
// usage lists (with version, which run answers itself), each with its
// own --help.
func TestCommandsTableIsTheUsage(t *testing.T) {
	t.Parallel()
	listed := map[string]bool{}
	_, section, ok := strings.Cut(usage, "Commands:\n")
	require.True(t, ok)
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "  ") {
			break
		}
		listed[strings.Fields(line)[0]] = true
	}
	require.True(t, listed["version"])
	delete(listed, "version")
	for name := range commands {
		require.True(t, listed[name], "%s runs but the usage does not list it", name)
		var errb bytes.Buffer
		err := run(context.Background(), []string{"docket", name, "--help"}, func(string) string { return "" }, nil, io.Discard, &errb)
		require.ErrorIs(t, err, flag.ErrHelp, name)
		require.Contains(t, errb.String(), "Usage: docket "+name+" ", name)
	}
	require.Len(t, commands, len(listed), "the usage lists a command that run does not know")
}

// TestShutdownFinishesRequestsInFlight sends the shutdown signal while a
// request's body is still arriving: the request completes and is stored,
// and run returns cleanly.
func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	admin := s.token("--role", "admin", "--name", "alice")
	body := `{"title": "No crypto ads", "text": "Ads may not promote tokens."}`
	pr, pw := io.Pipe()
	req, err := http.NewRequest("PUT", s.url+"/v1/policies/crypto-ads", pr)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(body))
	// With 100-continue the client sends the body only once the handler
	// reads it, so the first write below returns with the request inside
	// the handler, in flight.
	req.Header.Set("Expect", "100-continue")
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 30 * time.Second}}
	replied := make(chan *http.Response, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("in-flight request: %v", err)
			replied <- nil
			return
		}
		replied <- resp
	}()
	_, err = pw.Write([]byte(body[:10])) // the request is now in flight
	require.NoError(t, err)

	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	require.Eventually(t, func() bool { return strings.Contains(s.log.String(), "finishing requests in flight") },
		10*time.Second, 10*time.Millisecond)
	_, err = pw.Write([]byte(body[10:]))
	require.NoError(t, err)
	require.NoError(t, pw.Close())

	resp := <-replied
	require.NotNil(t, resp, "log:\n%s", s.log.String())
	resp.Body.Close()
	require.Equal(t, 201, resp.StatusCode)
	require.NoError(t, <-stopped)
	var n int
	require.NoError(t, s.db().Get(&n, `SELECT count(*) FROM policies WHERE code = 'crypto-ads'`))
	require.Equal(t, 1, n)
}
