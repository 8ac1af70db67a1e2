package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/pgtest"
	"github.com/docket-dev/docket/notify"
)

// With no NATS URL, startNotify runs the embedded server and the relay
// publishes; `docket events` finds that server by its default address
// and prints the entries.
func TestEmbeddedNotifyAndEvents(t *testing.T) {
	db := pgtest.New(t)
	natsAddr := freeAddr(t)
	cfg := config{DataDir: t.TempDir(), EmbeddedNATSAddr: natsAddr, LogOrigin: "test.local/audit", StreamReplicas: 1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	relay, stop, err := startNotify(ctx, cfg, db, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer stop()

	const n = 20
	for i := range n {
		tx := db.MustBegin()
		_, err := audit.Append(ctx, tx, audit.Entry{Type: []string{"decision.recorded", "decision.reversed"}[i%2],
			Time: time.Now(), Actor: "enforcer:t", Subject: audit.Subject{Kind: "decision", ID: fmt.Sprint(i)}})
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
	}
	// The real integrator gives them their indices.
	_, integrated, err := startAuditLog(ctx, config{DataDir: cfg.DataDir, LogOrigin: cfg.LogOrigin}, db, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer func() { cancel(); <-integrated }()
	require.Eventually(t, func() bool { return relay.Status().NextIndex == n }, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, int64(0), relay.Status().LagEntries)

	out := &syncBuffer{}
	ectx, ecancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	// The data directory's reader credentials are found by default.
	env := map[string]string{"DOCKET_EMBEDDED_NATS_ADDR": natsAddr, "DOCKET_DATA_DIR": cfg.DataDir}
	go func() {
		done <- run(ectx, []string{"docket", "events", "--from-index", "3", "--subject", "decision.reversed", "--json"},
			func(k string) string { return env[k] }, strings.NewReader(""), out, io.Discard)
	}()
	want := 0
	for i := 3; i < n; i++ {
		if i%2 == 1 {
			want++
		}
	}
	require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") >= want }, 20*time.Second, 10*time.Millisecond)
	ecancel()
	require.NoError(t, <-done)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, want)
	for k, l := range lines {
		var ev struct {
			Index   int64           `json:"index"`
			Subject string          `json:"subject"`
			Entry   json.RawMessage `json:"entry"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &ev), l)
		require.Equal(t, int64(3+2*k), ev.Index)
		require.Equal(t, "docket.decision.reversed", ev.Subject)
		require.Contains(t, string(ev.Entry), `"type":"decision.reversed"`)
	}
}

// The end-to-end case: `docket serve` with no NATS URL runs the
// embedded server and publishes; `docket events` reads a decision.
func TestServeEmbeddedNATSAndEvents(t *testing.T) {
	t.Parallel()
	natsAddr := freeAddr(t)
	s := startServer(t, map[string]string{"DOCKET_EMBEDDED_NATS_ADDR": natsAddr})
	resp, err := http.Get(s.url + "/readyz")
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(raw), `"notify"`, "docket serve runs the NATS relay and reports it in /readyz")
	admin := s.token("--role", "admin", "--name", "alice")
	enforcer := s.token("--role", "enforcer", "--name", "ads-pipeline")
	status, p := s.call("PUT", "/v1/policies/crypto-ads", admin, `{"title": "No crypto", "text": "No token sales."}`)
	require.Equal(t, 201, status, "%v", p)
	status, d := s.call("POST", "/v1/decisions", enforcer, `{"advertiser_id": "acme", "ad_id": "ad-1", "action": "ad_removal",
		"policy_code": "crypto-ads", "ground": "terms", "explanation": "e", "facts": "f", "source": "voluntary",
		"automated_detection": true, "automated_decision": "none"}`)
	require.Equal(t, 201, status, "%v", d)

	// serve generated the embedded server's credentials, readable by
	// their owner only; events reads with the read-only one.
	dataDir := s.getenv("DOCKET_DATA_DIR")
	for _, p := range []string{notify.PublisherSeedFile(dataDir), notify.ReaderSeedFile(dataDir)} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), p)
	}
	// Without credentials the embedded server refuses the client.
	err = run(context.Background(), []string{"docket", "events", "--data-dir", t.TempDir()},
		func(k string) string { return map[string]string{"DOCKET_EMBEDDED_NATS_ADDR": natsAddr}[k] }, strings.NewReader(""), io.Discard, io.Discard)
	require.ErrorIs(t, err, nats.ErrAuthorization)

	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"docket", "events", "--from-index", "0", "--subject", "decision.recorded", "--creds", notify.ReaderSeedFile(dataDir)},
			func(k string) string { return map[string]string{"DOCKET_EMBEDDED_NATS_ADDR": natsAddr}[k] }, strings.NewReader(""), out, io.Discard)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), d["id"].(string)) }, time.Minute, 20*time.Millisecond,
		"events printed:\n%s\nserver log:\n%s", out.String(), s.log.String())
	cancel()
	require.NoError(t, <-done)
	require.True(t, strings.HasPrefix(out.String(), "0 docket.") || strings.Contains(out.String(), " docket.decision.recorded {"), out.String())
}

// TestReaderAuth: the watchers' (events, bench) credentials are the file
// named, else the data directory's reader identity when asked to look
// there and it exists, else none.
func TestReaderAuth(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	auth, err := readerAuth("", dataDir, true)
	require.NoError(t, err)
	require.Empty(t, auth, "no reader identity in the data directory: no credentials")

	user, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := user.Seed()
	require.NoError(t, err)
	reader := notify.ReaderSeedFile(dataDir)
	require.NoError(t, os.MkdirAll(filepath.Dir(reader), 0o700))
	require.NoError(t, os.WriteFile(reader, seed, 0o600))
	auth, err = readerAuth("", dataDir, true)
	require.NoError(t, err)
	require.Len(t, auth, 1, "the data directory's reader identity")
	auth, err = readerAuth("", dataDir, false)
	require.NoError(t, err)
	require.Empty(t, auth, "not looked for unless asked")

	bad := filepath.Join(t.TempDir(), "bad.creds")
	require.NoError(t, os.WriteFile(bad, []byte("not a seed"), 0o600))
	_, err = readerAuth(bad, dataDir, true)
	require.ErrorContains(t, err, bad, "the file named wins over the data directory's")
	require.NoError(t, os.WriteFile(reader, []byte("not a seed"), 0o600))
	_, err = readerAuth("", dataDir, true)
	require.ErrorContains(t, err, reader)
}
