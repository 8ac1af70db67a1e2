package audit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/pgtest"
)

// TestIntegratorResumesAfterAnotherSigned: an integrator that added
// leaves without signing them, then lost its turn, must not sign that
// size again when it resumes after another integrator did. Found by
// TestConcurrentWritersAndIntegrators on a clean clone ("duplicate key
// value violates unique constraint audit_checkpoints_pkey"): the first
// trusted its tree in memory because the database's size agreed, and
// its idea of the latest checkpoint was stale.
func TestIntegratorResumesAfterAnotherSigned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	signer, vkey := testKeys(t)
	var mu sync.Mutex
	clock := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func() { mu.Lock(); defer mu.Unlock(); clock = clock.Add(2 * time.Minute) }
	opts := audit.Options{CheckpointInterval: time.Minute, Now: now}
	first, second := newTestLog(t, db, signer, vkey, opts), newTestLog(t, db, signer, vkey, opts)
	stage := func(n int) {
		t.Helper()
		_, err := audit.Append(ctx, db, testEntry("resume", n))
		require.NoError(t, err)
	}
	// leaves integrates with l until it has added want leaves: a staged
	// row waits for every older transaction in the cluster (other tests'
	// included) to end.
	leaves := func(l *audit.Log, want int) {
		t.Helper()
		got := 0
		require.Eventually(t, func() bool {
			n, err := l.IntegrateOnce(ctx)
			require.NoError(t, err)
			got += n
			return got >= want
		}, 30*time.Second, 5*time.Millisecond)
		require.Equal(t, want, got)
	}
	latest := func() int64 {
		t.Helper()
		cp, err := first.LatestCheckpoint(ctx)
		require.NoError(t, err)
		return int64(cp.Size)
	}

	stage(0)
	leaves(first, 1)
	if latest() != 1 {
		// An empty tree was signed before the leaf's turn came.
		advance()
		_, err := first.IntegrateOnce(ctx)
		require.NoError(t, err)
	}
	require.EqualValues(t, 1, latest())
	stage(1)
	leaves(first, 1) // a leaf, its checkpoint not due yet
	require.EqualValues(t, 1, latest())

	advance()
	n, err := second.IntegrateOnce(ctx) // no leaf, but the checkpoint is due
	require.NoError(t, err)
	require.Zero(t, n)
	require.EqualValues(t, 2, latest(), "the second integrator signed the size the first left unsigned")

	advance()
	n, err = first.IntegrateOnce(ctx)
	require.NoError(t, err, "the first resumed as if it were still the last to sign")
	require.Zero(t, n)
	stage(2)
	advance()
	leaves(first, 1)
	require.EqualValues(t, 3, latest(), "and it signs the next size")
}
