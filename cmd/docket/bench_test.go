package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/loadgen"
)

// TestBench runs `docket bench` briefly against the real program and
// checks that it measured something and that nothing failed server-side.
// It asserts no times: the machine is shared.
func TestBench(t *testing.T) {
	t.Parallel()
	natsAddr := freeAddr(t)
	s := startServer(t, map[string]string{"USER": "bench-test", "DOCKET_EMBEDDED_NATS_ADDR": natsAddr})
	url, getenv := s.url, s.getenv

	// The notification lag is read with the data directory's read-only
	// credentials (DOCKET_DATA_DIR): the embedded server admits no one else.
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"docket", "bench", "--url", url, "--duration", "2s", "--clients", "4",
		"--mix", loadgen.StandardMix, "--json", "--log-level", "warn", "--nats-url", "nats://" + natsAddr}, getenv, strings.NewReader(""), &out, &errb)
	require.NoError(t, err, "bench: %s", errb.String())

	var rep loadgen.Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
	t.Logf("notes: %q", rep.Notes)
	d, ok := rep.Op("decision")
	require.True(t, ok, "no decisions in %s", out.String())
	require.Positive(t, d.Requests)
	for _, o := range rep.Ops {
		require.Positive(t, o.Requests, o.Op)
		for code, n := range o.Status {
			require.False(t, code == "0" || code >= "500", "%s: %d answers with status %s", o.Op, n, code)
		}
	}
	// Separation of duties held and every bench write succeeded: the bench
	// only appeals undecided decisions of its own and resolves what it claimed.
	for _, o := range rep.Ops {
		require.Zero(t, o.Errors, "%s: %v", o.Op, o.Status)
	}

	// The log is wired in: the lag was measured through the public checkpoint.
	require.NotNil(t, rep.Integration, "notes: %q", rep.Notes)
	require.Positive(t, rep.Integration.Samples)
	require.NotNil(t, rep.Notification, "notes: %q", rep.Notes)
	require.Positive(t, rep.Notification.Samples)

	// The bench's tokens are revoked at the end.
	var lst bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"docket", "token", "list"}, getenv, strings.NewReader(""), &lst, io.Discard))
	for _, line := range strings.Split(lst.String(), "\n") {
		if strings.Contains(line, "bench-") {
			require.False(t, strings.HasSuffix(strings.TrimSpace(line), "-"), "token not revoked: %s", line)
		}
	}
}

func TestBenchRefusesRemoteHosts(t *testing.T) {
	t.Parallel()
	getenv := func(string) string { return "" }
	err := run(context.Background(), []string{"docket", "bench", "--url", "http://example.com"}, getenv, nil, io.Discard, io.Discard)
	require.ErrorContains(t, err, "not a loopback")
	err = run(context.Background(), []string{"docket", "bench", "--url", "http://127.0.0.1:1", "--database-url", "postgres://u@db.example.com/x"}, getenv, nil, io.Discard, io.Discard)
	require.ErrorContains(t, err, "not a loopback")
	err = run(context.Background(), []string{"docket", "bench", "--mix", "decisions=1,frobs=2"}, getenv, nil, io.Discard, io.Discard)
	require.ErrorContains(t, err, "unknown operation")
}
