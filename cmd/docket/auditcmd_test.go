package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/pgtest"
)

// runCLI runs one docket command with vars as its environment.
func runCLI(vars map[string]string, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"docket"}, args...), func(k string) string { return vars[k] },
		strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

func TestKeysGenerate(t *testing.T) {
	t.Parallel()
	out, _, err := runCLI(map[string]string{"DOCKET_LOG_ORIGIN": "example.com/log"}, "keys", "generate")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	require.True(t, strings.HasPrefix(lines[0], "PRIVATE+KEY+example.com/log+"))
	_, vkey, err := audit.ParseSignerKey(lines[0])
	require.NoError(t, err)
	require.Equal(t, lines[1], vkey)

	file := filepath.Join(t.TempDir(), "k", "signer.key")
	out, _, err = runCLI(nil, "keys", "generate", "--name", "other.example/log", "--out", file)
	require.NoError(t, err)
	_, vkey, err = audit.LoadSignerKey(file)
	require.NoError(t, err)
	require.Equal(t, vkey, strings.TrimSpace(out))
	pub, err := os.ReadFile(file + ".pub")
	require.NoError(t, err)
	require.Equal(t, vkey, strings.TrimSpace(string(pub)))
	st, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	_, _, err = runCLI(nil, "keys", "generate", "--out", file)
	require.Error(t, err, "an existing key is never overwritten")
}

// TestVerifyCommand runs `docket verify` on a log the serve helper
// integrated, in database and remote mode, then tampers with it.
func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewURL(t)
	vars := map[string]string{"DATABASE_URL": dsn, "DOCKET_DATA_DIR": t.TempDir(), "DOCKET_LOG_ORIGIN": "docket.test/cli"}
	_, _, err := runCLI(vars, "migrate", "up")
	require.NoError(t, err)
	db, err := sqlx.Open("postgres", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })

	// No key configured: serve's helper generates one and says so.
	logs := &syncBuffer{}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	cfg := config{DataDir: vars["DOCKET_DATA_DIR"], LogOrigin: vars["DOCKET_LOG_ORIGIN"], CheckpointInterval: 10 * time.Millisecond}
	l, integrated, err := startAuditLog(runCtx, cfg, db, slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	require.Contains(t, logs.String(), "generated a new key")
	require.FileExists(t, filepath.Join(cfg.DataDir, signerKeyFileName))
	for i := 0; i < 25; i++ {
		tx, err := db.BeginTxx(ctx, nil)
		require.NoError(t, err)
		_, err = audit.Append(ctx, tx, audit.Entry{Type: "token.created", Time: time.Now(), Actor: "system:test",
			Subject: audit.Subject{Kind: "token", ID: fmt.Sprint(i)}})
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
	}
	require.Eventually(t, func() bool {
		cp, err := l.LatestCheckpoint(ctx)
		return err == nil && cp.Size == 25
	}, 30*time.Second, 10*time.Millisecond)
	stop()
	<-integrated

	out, _, err := runCLI(vars, "verify")
	require.NoError(t, err)
	require.Contains(t, out, "ok: 25 entries")

	// Remote: a saved checkpoint against the live API.
	cp, err := l.LatestCheckpoint(ctx)
	require.NoError(t, err)
	saved := filepath.Join(t.TempDir(), "cp")
	require.NoError(t, os.WriteFile(saved, cp.Note, 0o644))
	srv := httptest.NewServer(api.New(api.Config{Store: appeals.NewStore(db, appeals.Options{}), Audit: l}))
	defer srv.Close()
	out, _, err = runCLI(vars, "verify", "--remote", srv.URL, "--checkpoint", saved, "--key", l.VerifierKey())
	require.NoError(t, err)
	require.Contains(t, out, "extends the saved checkpoint at 25")

	// An entry edited behind the triggers' back.
	_, err = db.Exec(`
		ALTER TABLE audit_staging DISABLE TRIGGER audit_staging_append_only;
		UPDATE audit_staging SET entry = convert_to(replace(convert_from(entry, 'UTF8'), 'system:test', 'system:evil'), 'UTF8')
		WHERE id = (SELECT staging_id FROM audit_leaves WHERE idx = 11);
		ALTER TABLE audit_staging ENABLE ALWAYS TRIGGER audit_staging_append_only`)
	require.NoError(t, err)
	_, _, err = runCLI(vars, "verify")
	require.ErrorContains(t, err, "index 11")
}
