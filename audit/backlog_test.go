package audit_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/logtest"
	"github.com/docket-dev/docket/internal/pgtest"
)

// TestBacklogCountsWhatTheIntegratorHasNotTaken: the operator's figures
// (docket_audit_staged_entries and the oldest's age, the checkpoint's age
// and size) read the entries past the watermark and the latest checkpoint.
func TestBacklogCountsWhatTheIntegratorHasNotTaken(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	b, err := audit.ReadBacklog(ctx, db)
	require.NoError(t, err)
	require.Equal(t, audit.Backlog{}, b, "an empty log has no backlog and no checkpoint")

	appendTx(t, db, true, testEntry("backlog", 1), testEntry("backlog", 2), testEntry("backlog", 3))
	b, err = audit.ReadBacklog(ctx, db)
	require.NoError(t, err)
	require.EqualValues(t, 3, b.Staged)
	require.False(t, b.OldestStaged.IsZero())
	require.True(t, b.CheckpointAt.IsZero())

	logtest.DrainSigned(t, logtest.New(t, db, audit.Options{}))
	b, err = audit.ReadBacklog(ctx, db)
	require.NoError(t, err)
	require.Zero(t, b.Staged)
	require.True(t, b.OldestStaged.IsZero())
	require.EqualValues(t, 3, b.CheckpointSize)
	require.False(t, b.CheckpointAt.IsZero())
}
