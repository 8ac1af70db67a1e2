package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/pgtest"
)

// missingDB is the URL of a database that does not exist, and a check
// that it still does not.
func missingDB(t *testing.T) (string, func()) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "docket_typo_" + hex.EncodeToString(b[:])
	url := strings.Replace(pgtest.BaseURL(), "/postgres?", "/"+name+"?", 1)
	require.Contains(t, url, name, "pgtest.BaseURL() is not of the form .../postgres?...: %s", pgtest.BaseURL())
	return url, func() {
		t.Helper()
		db, err := sqlx.Open("postgres", pgtest.BaseURL())
		require.NoError(t, err)
		defer db.Close()
		var exists bool
		require.NoError(t, db.Get(&exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name))
		require.False(t, exists, "database %s was created", name)
	}
}

// TestHelpExitsZeroEverywhere: --help and -h print the usage and exit 0 for
// every command and subcommand, before or after the subcommand, and do
// nothing else (migrate up --help migrates nothing).
func TestHelpExitsZeroEverywhere(t *testing.T) {
	t.Parallel()
	dsn, stillMissing := missingDB(t)
	vars := map[string]string{"DATABASE_URL": dsn}
	for _, args := range [][]string{
		{"serve"}, {"migrate"}, {"migrate", "up"}, {"migrate", "status"}, {"token"}, {"token", "create"},
		{"token", "revoke"}, {"token", "list"}, {"keys"}, {"keys", "generate"}, {"verify"}, {"log"},
		{"log", "succeed"}, {"events"}, {"export"}, {"report"}, {"bench"},
	} {
		for _, h := range []string{"--help", "-h"} {
			_, errOut, err := runCLI(vars, append(args, h)...)
			require.Equal(t, 0, exitCode(err), "docket %v %s: %v", args, h, err)
			require.Contains(t, errOut, "Usage: docket "+args[0], "docket %v %s", args, h)
		}
	}
	_, errOut, err := runCLI(vars, "migrate", "--help", "up")
	require.Equal(t, 0, exitCode(err))
	require.Contains(t, errOut, "Usage: docket migrate")
	stillMissing()

	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, _, err := runCLI(nil, args...)
		require.Equal(t, 0, exitCode(err))
		require.Contains(t, out, "Usage: docket <command>")
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, _, err := runCLI(nil, args...)
		require.Equal(t, 0, exitCode(err), "%v", args)
		require.True(t, strings.HasPrefix(out, "docket "), "%v: %q", args, out)
	}
	_, _, err = runCLI(nil, "frobnicate")
	require.Equal(t, 1, exitCode(err))
	_, _, err = runCLI(nil, "token", "frobnicate")
	require.Equal(t, 1, exitCode(err))
	require.ErrorContains(t, err, `want create or revoke or list, got "frobnicate"`)
	_, _, err = runCLI(nil, "report", "stray")
	require.ErrorContains(t, err, `unexpected argument "stray"`)
}

// TestFlagsAfterTheSubcommand: `migrate up --database-url X` migrates X,
// not DATABASE_URL's database, as does `migrate --database-url X up`.
func TestFlagsAfterTheSubcommand(t *testing.T) {
	t.Parallel()
	other, stillMissing := missingDB(t)
	vars := map[string]string{"DATABASE_URL": other}
	for _, args := range [][]string{
		{"migrate", "up", "--database-url", "X"},
		{"migrate", "--database-url", "X", "up"},
	} {
		target := pgtest.NewURL(t)
		for i := range args {
			if args[i] == "X" {
				args[i] = target
			}
		}
		out, _, err := runCLI(vars, args...)
		require.NoError(t, err, "%v", args)
		require.Contains(t, out, "migrations applied")
		out, _, err = runCLI(vars, "token", "list", "--database-url", target)
		require.NoError(t, err, "the target is migrated")
		require.Contains(t, out, "ID")
	}
	stillMissing()
	out, _, err := runCLI(map[string]string{"DATABASE_URL": pgtest.NewURL(t)}, "migrate", "up")
	require.NoError(t, err)
	require.Contains(t, out, "migrations applied")
}

// TestOnlyServeAndMigrateMakeADatabase: every other command fails on a
// mistyped database, naming it and what to run, and creates nothing; one
// that exists but is not migrated is refused too.
func TestOnlyServeAndMigrateMakeADatabase(t *testing.T) {
	t.Parallel()
	dsn, stillMissing := missingDB(t)
	name := databaseName(dsn)
	vars := map[string]string{"DATABASE_URL": dsn}
	keyOut, _, err := runCLI(nil, "keys", "generate")
	require.NoError(t, err)
	vkey := strings.Fields(keyOut)[1]
	for _, args := range [][]string{
		{"token", "list"}, {"token", "create", "--role", "admin", "--name", "x"}, {"token", "revoke", "x"},
		{"report"}, {"export"}, {"verify", "--key", vkey}, {"migrate", "status"},
	} {
		out, _, err := runCLI(vars, args...)
		require.Equal(t, 1, exitCode(err), "%v", args)
		require.ErrorContains(t, err, `database "`+name+`" does not exist; run 'docket migrate up'`, "%v", args)
		require.Empty(t, out, "%v printed a result", args)
	}
	stillMissing()

	empty := map[string]string{"DATABASE_URL": pgtest.NewURL(t)}
	_, _, err = runCLI(empty, "report")
	require.ErrorContains(t, err, "migrations; run 'docket migrate up'")
}

// TestTimeArgumentsSayTheirFormats: a bad time names the formats it takes
// by example, never Go's reference layout.
func TestTimeArgumentsSayTheirFormats(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"report", "--from", "garbage"}, {"report", "--to", "garbage"}, {"export", "--from", "garbage"}} {
		_, _, err := runCLI(nil, args...)
		require.Equal(t, 1, exitCode(err))
		require.ErrorContains(t, err, "2026-01-31T12:00:00Z", "%v", args)
		require.ErrorContains(t, err, `"garbage"`)
		require.NotContains(t, err.Error(), "2006-01-02", "%v", args)
	}
	_, _, err := runCLI(nil, "export", "--to", "-3")
	require.ErrorContains(t, err, "leaf index")
}

// TestTakenEmbeddedNATSPortFailsAtOnce: serve names the taken address and
// what to set, instead of waiting out the server's start.
func TestTakenEmbeddedNATSPortFailsAtOnce(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	vars := map[string]string{"DATABASE_URL": pgtest.NewURL(t), "DOCKET_DATA_DIR": t.TempDir(),
		"DOCKET_ADDR": freeAddr(t), "DOCKET_EMBEDDED_NATS_ADDR": ln.Addr().String()}
	// The bound is below the server's own 30 s start wait, which is what
	// a taken port used to cost.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var errb bytes.Buffer
	err = run(ctx, []string{"docket", "serve"}, func(k string) string { return vars[k] }, strings.NewReader(""), io.Discard, &errb)
	require.Equal(t, 1, exitCode(err))
	require.ErrorContains(t, err, "cannot listen on "+ln.Addr().String())
	require.ErrorContains(t, err, "DOCKET_EMBEDDED_NATS_ADDR")
	require.NotContains(t, errb.String(), "Server is ready")
}

// TestTakenHTTPPortStopsTheBackground: when serve fails after its
// background work started (the HTTP address is taken), it returns only
// once that work stopped as on a normal shutdown: the embedded NATS
// server is gone, its port free again, and nothing logs any more.
func TestTakenHTTPPortStopsTheBackground(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	natsAddr := freeAddr(t)
	vars := map[string]string{"DATABASE_URL": pgtest.NewURL(t), "DOCKET_DATA_DIR": t.TempDir(),
		"DOCKET_ADDR": ln.Addr().String(), "DOCKET_EMBEDDED_NATS_ADDR": natsAddr, "DOCKET_CHECKPOINT_INTERVAL": "10ms"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errb syncBuffer
	err = run(ctx, []string{"docket", "serve"}, func(k string) string { return vars[k] }, strings.NewReader(""), io.Discard, &errb)
	require.Equal(t, 1, exitCode(err))
	require.ErrorContains(t, err, "serve: listen")
	logged := errb.String()
	require.Contains(t, logged, "embedded NATS started", "the background had started")
	require.NotContains(t, logged, "docket serving")

	nl, err := net.Listen("tcp", natsAddr)
	require.NoError(t, err, "the embedded NATS server still holds its port")
	require.NoError(t, nl.Close())
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, logged, errb.String(), "background work logged after serve returned")
}

// TestLogFormatSetting: text or JSON logs by setting; a bad level or
// format is refused, naming the setting.
func TestLogFormatSetting(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	l, err := newLogger(&b, "info", "text")
	require.NoError(t, err)
	l.Info("hello", "k", "v")
	require.Contains(t, b.String(), "level=INFO msg=hello k=v")
	b.Reset()
	l, err = newLogger(&b, "debug", "json")
	require.NoError(t, err)
	l.Debug("hello")
	require.Contains(t, b.String(), `"msg":"hello"`)
	_, err = newLogger(&b, "info", "xml")
	require.ErrorContains(t, err, "DOCKET_LOG_FORMAT")
	_, err = newLogger(&b, "loud", "json")
	require.ErrorContains(t, err, "DOCKET_LOG_LEVEL")
}
