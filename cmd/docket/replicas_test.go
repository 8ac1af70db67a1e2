package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket/internal/pgtest"
)

// TestReplicasShareOneKey runs two serves on one database with the key
// given by configuration and their own data directories: the first signs,
// the second takes over when it stops, and every checkpoint verifies with
// the one key; neither generates a key of its own.
func TestReplicasShareOneKey(t *testing.T) {
	t.Parallel()
	key := filepath.Join(t.TempDir(), "docket.key")
	_, _, err := runCLI(nil, "keys", "generate", "--name", defaultOrigin, "--out", key)
	require.NoError(t, err)
	shared := map[string]string{"DATABASE_URL": pgtest.NewURL(t), "DOCKET_SIGNER_KEY_FILE": key, "DOCKET_CHECKPOINT_INTERVAL": "10ms"}
	withDir := func(dir string) map[string]string {
		vars := map[string]string{"DOCKET_DATA_DIR": dir}
		for k, v := range shared {
			vars[k] = v
		}
		return vars
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startServer(t, withDir(dirA))
	db := a.db()
	signedAll := func(who string) {
		t.Helper()
		var staged int64
		require.NoError(t, db.Get(&staged, `SELECT count(*) FROM audit_staging`))
		require.Eventually(t, func() bool {
			var size int64
			return db.Get(&size, `SELECT coalesce(max(size), 0) FROM audit_checkpoints`) == nil && size == staged
		}, 30*time.Second, 10*time.Millisecond, "%s never signed the entries", who)
	}
	a.token("--role", "admin", "--name", "alice")
	signedAll("the first replica")

	b := startServer(t, withDir(dirB)) // a standby: a holds the integrator's lock
	require.NoError(t, a.stop())
	b.token("--role", "admin", "--name", "bob")
	signedAll("the replica that took over")

	pub, err := os.ReadFile(key + ".pub")
	require.NoError(t, err)
	v, err := note.NewVerifier(strings.TrimSpace(string(pub)))
	require.NoError(t, err)
	requireAllSignedBy(t, db, v)
	for _, dir := range []string{dirA, dirB} {
		_, err := os.Stat(filepath.Join(dir, signerKeyFileName))
		require.ErrorIs(t, err, os.ErrNotExist, "a replica generated a key of its own in %s", dir)
	}
	_, err = os.Stat(filepath.Join(dirB, "checkpoint.pin"))
	require.NoError(t, err, "the replica that took over pins what it signed")
	out, _, err := runCLI(withDir(dirB), "verify", "--key", key+".pub")
	require.NoError(t, err)
	require.Contains(t, out, "ok: ")
}

// requireAllSignedBy checks every checkpoint's note against v alone.
func requireAllSignedBy(t *testing.T, db *sqlx.DB, v note.Verifier) {
	t.Helper()
	var notes []string
	require.NoError(t, db.Select(&notes, `SELECT note FROM audit_checkpoints ORDER BY size`))
	require.GreaterOrEqual(t, len(notes), 2)
	for _, n := range notes {
		_, err := note.Open([]byte(n), note.VerifierList(v))
		require.NoError(t, err, "checkpoint not signed by the shared key:\n%s", n)
	}
}
