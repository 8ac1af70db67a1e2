package audit_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/logtest"
)

// extends reports whether the log's latest checkpoint, opened with vkey,
// extends saved: what a remote verifier (api/client's VerifyRemote) checks
// over the public API, here without HTTP.
func extends(t *testing.T, l *audit.Log, vkey string, saved []byte) error {
	t.Helper()
	ctx := context.Background()
	v, err := note.NewVerifier(vkey)
	require.NoError(t, err)
	old, err := audit.OpenCheckpoint(saved, v, "")
	if err != nil {
		return err
	}
	cp, err := l.LatestCheckpoint(ctx)
	require.NoError(t, err)
	var latest log.Checkpoint
	if latest, err = audit.OpenCheckpoint(cp.Note, v, old.Origin); err != nil {
		return err
	}
	hashes, err := l.ConsistencyProof(ctx, old.Size, latest.Size)
	require.NoError(t, err)
	return proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, latest.Size, hashes, old.Hash, latest.Hash)
}

// TestOnlyASavedCheckpointCatchesACompleteResigning: a log that grows
// extends a checkpoint saved earlier; a rewrite re-signed with the real key
// over every checkpoint from the entry on leaves the database
// self-consistent, and only the checkpoint kept outside catches it.
func TestOnlyASavedCheckpointCatchesACompleteResigning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tl := newTamperedLog(t) // 40 entries, checkpoints every 4

	cp, err := tl.l.LatestCheckpoint(ctx)
	require.NoError(t, err)
	saved := cp.Note
	require.NoError(t, extends(t, tl.l, tl.vkey, saved))

	appendTx(t, tl.db, true, entries("later", 9)...)
	logtest.Drain(t, tl.l)
	require.NoError(t, extends(t, tl.l, tl.vkey, saved))

	tl.exec(t, "audit_staging", fmt.Sprintf(editEntry, tl.stagingID(t, 13)))
	tl.exec(t, "audit_leaves", `UPDATE audit_leaves l SET leaf_hash = sha256('\x00'::bytea || s.entry) FROM audit_staging s WHERE s.id = l.staging_id AND l.idx = 13`)
	tl.rebuildNodes(t)
	var sizes []int
	require.NoError(t, tl.db.Select(&sizes, `SELECT size FROM audit_checkpoints WHERE size > 13 ORDER BY size`))
	tl.resign(t, tl.signer, sizes...)
	_, err = audit.Verify(ctx, tl.db, tl.vkey, audit.VerifyOptions{Origin: testOrigin})
	require.NoError(t, err, "nothing inside the database contradicts a complete re-signing")
	require.Error(t, extends(t, tl.l, tl.vkey, saved), "the saved checkpoint is no prefix of the rewritten log")

	// A checkpoint from another key is refused outright.
	_, otherKey := testKeys(t)
	require.ErrorContains(t, extends(t, tl.l, otherKey, saved), "signature")
}
