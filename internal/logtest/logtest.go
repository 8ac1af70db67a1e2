// Package logtest holds the audit log fixtures every package's tests
// share: a signed log on a test database, integration until every
// committed entry is a leaf, and entry counts by type. It is the one
// place that knows how long to wait for the integrator: a batch takes
// nothing while any older transaction in the Postgres cluster (another
// test's, too) is still running, so draining retries, within a bound.
package logtest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket/audit"
)

// Origin is the origin of the logs New makes.
const Origin = "docket.test/audit"

// bound is the longest Drain waits for the integrator to catch up.
const bound = 2 * time.Minute

// Key makes a signing key pair named Origin.
func Key(t testing.TB) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, Origin)
	require.NoError(t, err)
	signer, err := note.NewSigner(skey)
	require.NoError(t, err)
	return signer, vkey
}

// New opens a log on db with a new key. Unless opts say otherwise it signs
// a checkpoint after every batch, so that a drained log is a signed one.
func New(t testing.TB, db *sqlx.DB, opts audit.Options) *audit.Log {
	t.Helper()
	signer, vkey := Key(t)
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = -1
	}
	l, err := audit.NewLog(db, signer, vkey, Origin, opts)
	require.NoError(t, err)
	return l
}

// Unintegrated counts the committed entries that are not leaves yet.
func Unintegrated(t testing.TB, q sqlx.QueryerContext) int64 {
	t.Helper()
	var n int64
	require.NoError(t, sqlx.GetContext(context.Background(), q, &n,
		`SELECT count(*) FROM audit_staging s WHERE NOT EXISTS (SELECT 1 FROM audit_leaves l WHERE l.staging_id = s.id)`))
	return n
}

// Drain runs the integrator until every committed entry is a leaf, and
// returns how many it integrated.
func Drain(t testing.TB, l *audit.Log) int {
	t.Helper()
	total := 0
	deadline := time.Now().Add(bound)
	for {
		n, err := l.IntegrateOnce(context.Background())
		require.NoError(t, err)
		total += n
		if n > 0 {
			continue
		}
		if Unintegrated(t, l.DB()) == 0 {
			return total
		}
		require.True(t, time.Now().Before(deadline), "the integrator did not catch up within %s", bound)
		// Waiting for other transactions of the cluster to end: there is
		// no event to wait on.
		time.Sleep(2 * time.Millisecond)
	}
}

// DrainSigned is Drain, then also a checkpoint over the whole tree.
func DrainSigned(t testing.TB, l *audit.Log) int {
	t.Helper()
	total := Drain(t, l)
	size, err := l.Size(context.Background())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		if _, err := l.IntegrateOnce(context.Background()); err != nil {
			return false
		}
		cp, err := l.LatestCheckpoint(context.Background())
		return err == nil && cp.Size >= size
	}, bound, 5*time.Millisecond, "no checkpoint covers the %d leaves", size)
	return total
}

// EntryTypes counts the committed entries by type.
func EntryTypes(t testing.TB, q sqlx.QueryerContext) map[string]int {
	t.Helper()
	var rows []struct {
		Type string `db:"type"`
		N    int    `db:"n"`
	}
	require.NoError(t, sqlx.SelectContext(context.Background(), q, &rows, `SELECT type, count(*) AS n FROM audit_staging GROUP BY type`))
	m := map[string]int{}
	for _, r := range rows {
		m[r.Type] = r.N
	}
	return m
}
