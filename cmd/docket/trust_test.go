package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/audittest"
	"github.com/docket-dev/docket/internal/pgtest"
)

// signedServer runs serve on a database and data directory of the test's,
// writes a few entries, waits until a checkpoint covers them all, and stops.
func signedServer(t *testing.T, vars map[string]string) (*server, *sqlx.DB, int64) {
	t.Helper()
	s := startServer(t, vars)
	for _, name := range []string{"alice", "bob", "carol"} {
		s.token("--role", "admin", "--name", name)
	}
	db := s.db()
	var staged int64
	require.NoError(t, db.Get(&staged, `SELECT count(*) FROM audit_staging`))
	require.Eventually(t, func() bool {
		var size int64
		return db.Get(&size, `SELECT coalesce(max(size), 0) FROM audit_checkpoints`) == nil && size == staged
	}, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, s.stop())
	return s, db, staged
}

// saveCheckpoint keeps the checkpoint of size in a file, as an auditor
// would; it returns the file and the note.
func saveCheckpoint(t *testing.T, db *sqlx.DB, size int64) (string, string) {
	t.Helper()
	var note string
	require.NoError(t, db.Get(&note, `SELECT note FROM audit_checkpoints WHERE size = $1`, size))
	file := filepath.Join(t.TempDir(), "checkpoint.txt")
	require.NoError(t, os.WriteFile(file, []byte(note), 0o644))
	return file, note
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestServeHaltsOnRewrittenLog rewrites the log behind serve's back as a
// database owner would (entries, leaf hashes and nodes consistent; in one
// variant the checkpoints deleted too), adds an entry and restarts serve on
// the same database and data directory: it signs nothing, /readyz says
// why, the metric says so, and `docket verify` fails naming why.
func TestServeHaltsOnRewrittenLog(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		dropCheckpoints bool
		verifyWhy       string
	}{
		{name: "checkpoints kept", verifyWhy: "the signed root is not the root of the entries"},
		{name: "checkpoints deleted", dropCheckpoints: true, verifyWhy: "rewritten: at size "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"DATABASE_URL": pgtest.NewURL(t), "DOCKET_DATA_DIR": t.TempDir(), "DOCKET_CHECKPOINT_INTERVAL": "10ms"}
			s, db, _ := signedServer(t, vars)
			require.FileExists(t, filepath.Join(vars["DOCKET_DATA_DIR"], audit.PinFileName))
			audittest.Rewrite(t, db, 0, func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("alice"), []byte("mallory")) })
			if tc.dropCheckpoints {
				audittest.Exec(t, db, `DELETE FROM audit_checkpoints`, `DELETE FROM audit_log_identity`)
			}
			var before int
			require.NoError(t, db.Get(&before, `SELECT count(*) FROM audit_checkpoints`))
			s.token("--role", "admin", "--name", "dave")

			s2 := launchServer(t, vars)
			var body string
			require.Eventually(t, func() bool {
				var status int
				status, body = get(t, s2.url+"/readyz")
				return status == http.StatusServiceUnavailable && strings.Contains(body, "fork")
			}, 30*time.Second, 20*time.Millisecond, "log:\n%s", s2.log.String())
			t.Logf("/readyz: %s", body)
			require.Contains(t, body, "checkpoint at size ")
			require.Contains(t, body, "the tree at size ")
			_, metrics := get(t, s2.url+"/metrics")
			require.Contains(t, metrics, "\ndocket_audit_fork_detected 1\n")
			require.Contains(t, s2.log.String(), `"level":"ERROR","msg":"audit integrator halted`)

			var after int
			require.NoError(t, db.Get(&after, `SELECT count(*) FROM audit_checkpoints`))
			require.Equal(t, before, after, "no checkpoint signed over the rewritten log")
			require.NoError(t, s2.stop())
			require.NoError(t, db.Get(&after, `SELECT count(*) FROM audit_checkpoints`))
			require.Equal(t, before, after, "nor on the way out")

			_, _, err := runCLI(vars, "verify")
			t.Logf("verify: %v", err)
			require.ErrorContains(t, err, tc.verifyWhy)
			require.ErrorContains(t, err, "checkpoint at size ")
		})
	}
}

// TestServeRefusesAnotherKey: serve on a log signed by another key, or
// under another origin, or with no key at all, refuses to start, naming
// both keys and what to set; it generates no key for a signed log.
func TestServeRefusesAnotherKey(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewURL(t)
	first := map[string]string{"DATABASE_URL": dsn, "DOCKET_DATA_DIR": t.TempDir(), "DOCKET_CHECKPOINT_INTERVAL": "10ms"}
	signedServer(t, first)
	_, logKey, err := audit.LoadSignerKey(filepath.Join(first["DOCKET_DATA_DIR"], signerKeyFileName))
	require.NoError(t, err)

	other := filepath.Join(t.TempDir(), "other.key")
	_, _, err = runCLI(nil, "keys", "generate", "--name", defaultOrigin, "--out", other)
	require.NoError(t, err)
	_, otherKey, err := audit.LoadSignerKey(other)
	require.NoError(t, err)

	serve := func(t *testing.T, vars map[string]string) error {
		t.Helper()
		vars["DOCKET_ADDR"] = freeAddr(t)
		vars["DOCKET_EMBEDDED_NATS_ADDR"] = "127.0.0.1:0"
		// A serve that wrongly starts returns only when told to stop.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var errb bytes.Buffer
		return run(ctx, []string{"docket", "serve"}, func(k string) string { return vars[k] }, strings.NewReader(""), io.Discard, &errb)
	}

	t.Run("another key", func(t *testing.T) {
		t.Parallel()
		err := serve(t, map[string]string{"DATABASE_URL": dsn, "DOCKET_DATA_DIR": t.TempDir(), "DOCKET_SIGNER_KEY_FILE": other})
		require.Error(t, err)
		require.Contains(t, err.Error(), audit.KeyID(logKey))
		require.Contains(t, err.Error(), audit.KeyID(otherKey))
		require.Contains(t, err.Error(), "DOCKET_SIGNER_KEY_FILE")
		require.Contains(t, err.Error(), "DOCKET_LOG_ORIGIN")
	})
	t.Run("another origin", func(t *testing.T) {
		t.Parallel()
		err := serve(t, map[string]string{"DATABASE_URL": dsn, "DOCKET_DATA_DIR": t.TempDir(),
			"DOCKET_SIGNER_KEY_FILE": filepath.Join(first["DOCKET_DATA_DIR"], signerKeyFileName), "DOCKET_LOG_ORIGIN": "elsewhere.example/log"})
		require.ErrorContains(t, err, `with origin "docket.local/audit"`)
		require.ErrorContains(t, err, "DOCKET_LOG_ORIGIN")
	})
	t.Run("no key", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		err := serve(t, map[string]string{"DATABASE_URL": dsn, "DOCKET_DATA_DIR": dir})
		require.ErrorContains(t, err, "the log already has checkpoints, signed by key "+audit.KeyID(logKey))
		require.ErrorContains(t, err, "DOCKET_SIGNER_KEY_FILE")
		require.NoFileExists(t, filepath.Join(dir, signerKeyFileName), "no key generated for a signed log")
	})
	t.Run("the log's key", func(t *testing.T) {
		t.Parallel()
		// Another replica, its own data directory, the shared key: fine.
		vars := map[string]string{"DATABASE_URL": dsn, "DOCKET_DATA_DIR": t.TempDir(),
			"DOCKET_SIGNER_KEY_FILE": filepath.Join(first["DOCKET_DATA_DIR"], signerKeyFileName)}
		s := startServer(t, vars)
		require.NoError(t, s.stop())
	})
}

// TestVerifyCommandSavedCheckpoints: `docket verify` fails on a truncated
// log given a checkpoint saved before (and by default the data
// directory's pin), and on a log whose checkpoints are gone.
func TestVerifyCommandSavedCheckpoints(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": pgtest.NewURL(t), "DOCKET_DATA_DIR": t.TempDir(), "DOCKET_CHECKPOINT_INTERVAL": "10ms"}
	_, db, size := signedServer(t, vars)
	saved, _ := saveCheckpoint(t, db, size)
	out, _, err := runCLI(vars, "verify", "--checkpoint", saved)
	require.NoError(t, err)
	require.Contains(t, out, "extends 2 saved checkpoints") // the file and the pin

	keep := size - 1
	audittest.Exec(t, db,
		`CREATE TEMP TABLE gone AS SELECT staging_id FROM audit_leaves WHERE idx >= `+itoa(keep),
		`DELETE FROM audit_leaves WHERE idx >= `+itoa(keep),
		`DELETE FROM audit_staging WHERE id IN (SELECT staging_id FROM gone)`,
		`DELETE FROM audit_nodes WHERE (idx + 1) * (1::bigint << level) > `+itoa(keep),
		`DELETE FROM audit_checkpoints WHERE size > `+itoa(keep))
	pub := filepath.Join(vars["DOCKET_DATA_DIR"], signerKeyFileName+".pub")
	_, _, err = runCLI(vars, "verify", "--checkpoint", saved, "--data-dir", t.TempDir(), "--key", pub)
	require.ErrorContains(t, err, "truncated: the log has "+itoa(keep)+" leaves but the saved checkpoint "+saved+" covers "+itoa(size))
	_, _, err = runCLI(vars, "verify") // the pin alone
	require.ErrorContains(t, err, "truncated: the log has "+itoa(keep)+" leaves")

	audittest.Exec(t, db, `DELETE FROM audit_checkpoints`)
	_, _, err = runCLI(vars, "verify", "--data-dir", t.TempDir(), "--key", pub)
	require.ErrorContains(t, err, "but no checkpoint")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestSuccessorLogRecordsItsPredecessor walks the compromised-key steps:
// the old log's final checkpoint becomes the new log's first entry, which
// the new log's first checkpoint covers; a checkpoint that does not verify
// with the old key, the old origin, or a log with entries already are
// refused.
func TestSuccessorLogRecordsItsPredecessor(t *testing.T) {
	t.Parallel()
	old := map[string]string{"DATABASE_URL": pgtest.NewURL(t), "DOCKET_DATA_DIR": t.TempDir(), "DOCKET_CHECKPOINT_INTERVAL": "10ms"}
	_, oldDB, size := signedServer(t, old)
	final, finalNote := saveCheckpoint(t, oldDB, size)
	oldKey := filepath.Join(old["DOCKET_DATA_DIR"], signerKeyFileName+".pub")

	next := map[string]string{"DATABASE_URL": pgtest.NewURL(t), "DOCKET_DATA_DIR": t.TempDir(),
		"DOCKET_CHECKPOINT_INTERVAL": "10ms", "DOCKET_LOG_ORIGIN": "docket.local/audit-2"}
	_, _, err := runCLI(next, "log", "succeed", "--checkpoint", final, "--key", oldKey)
	require.ErrorContains(t, err, "run 'docket migrate up'", "only serve and migrate make a database")
	_, _, err = runCLI(next, "migrate", "up")
	require.NoError(t, err)
	stranger := filepath.Join(t.TempDir(), "stranger.key")
	_, _, err = runCLI(nil, "keys", "generate", "--name", defaultOrigin, "--out", stranger)
	require.NoError(t, err)
	_, _, err = runCLI(next, "log", "succeed", "--checkpoint", final, "--key", stranger+".pub")
	require.ErrorContains(t, err, "predecessor's checkpoint: signature")
	sameOrigin := map[string]string{"DATABASE_URL": next["DATABASE_URL"]}
	_, _, err = runCLI(sameOrigin, "log", "succeed", "--checkpoint", final, "--key", oldKey)
	require.ErrorContains(t, err, "needs its own origin")

	out, _, err := runCLI(next, "log", "succeed", "--checkpoint", final, "--key", oldKey, "--reason", "signer key leaked")
	require.NoError(t, err)
	require.Contains(t, out, "succeeds "+defaultOrigin+" at size "+itoa(size))
	_, _, err = runCLI(next, "log", "succeed", "--checkpoint", final, "--key", oldKey)
	require.ErrorContains(t, err, "already has entries")

	_, db, _ := signedServer(t, next)
	var first struct {
		Type  string `db:"type"`
		Entry []byte `db:"entry"`
	}
	require.NoError(t, db.Get(&first, `SELECT s.type, s.entry FROM audit_leaves l JOIN audit_staging s ON s.id = l.staging_id WHERE l.idx = 0`))
	require.Equal(t, audit.EntryPredecessor, first.Type)
	var e struct {
		Record audit.Predecessor `json:"record"`
	}
	require.NoError(t, json.Unmarshal(first.Entry, &e))
	require.Equal(t, finalNote, e.Record.Checkpoint)
	require.Equal(t, uint64(size), e.Record.Size)
	require.Equal(t, "signer key leaked", e.Record.Reason)
	out, _, err = runCLI(next, "verify")
	require.NoError(t, err, "the new log verifies with its own key")
	require.Contains(t, out, "ok: ")
}
