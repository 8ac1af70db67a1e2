package audit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/logtest"
	"github.com/docket-dev/docket/internal/pgtest"
)

const testOrigin = "docket.test/log"

// testKeys makes a fresh signer for a test log.
func testKeys(t testing.TB) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := audit.GenerateKey(testOrigin)
	require.NoError(t, err)
	signer, derived, err := audit.ParseSignerKey(skey)
	require.NoError(t, err)
	require.Equal(t, vkey, derived)
	return signer, vkey
}

// newTestLog opens a log over db; with no options it checkpoints every batch.
func newTestLog(t testing.TB, db *sqlx.DB, signer note.Signer, vkey string, opts audit.Options) *audit.Log {
	t.Helper()
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = -1
	}
	l, err := audit.NewLog(db, signer, vkey, testOrigin, opts)
	require.NoError(t, err)
	return l
}

func testEntry(tag string, n int) audit.Entry {
	return audit.Entry{
		Type:    "decision.recorded",
		Time:    time.Date(2026, 3, 1, 12, 0, 0, n*1000, time.UTC),
		Actor:   "enforcer:test",
		Subject: audit.Subject{Kind: "decision", ID: fmt.Sprintf("%s-%d", tag, n)},
		Record:  map[string]any{"n": n, "tag": tag, "note": "bytes \u2014 kept \"verbatim\""},
	}
}

// appendTx stages entries in one transaction, committing or rolling back,
// and returns the staged bytes.
func appendTx(t testing.TB, db *sqlx.DB, commit bool, es ...audit.Entry) [][]byte {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback()
	var ids []int64
	for _, e := range es {
		id, err := audit.Append(ctx, tx, e)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	var data [][]byte
	for _, id := range ids {
		var b []byte
		require.NoError(t, tx.Get(&b, `SELECT entry FROM audit_staging WHERE id = $1`, id))
		data = append(data, b)
	}
	if commit {
		require.NoError(t, tx.Commit())
		return data
	}
	return nil
}

// openCheckpoint verifies a served checkpoint the way a client does.
func openCheckpoint(t require.TestingT, cp audit.Checkpoint, vkey string) *log.Checkpoint {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	v, err := note.NewVerifier(vkey)
	require.NoError(t, err)
	c, _, _, err := log.ParseCheckpoint(cp.Note, testOrigin, v)
	require.NoError(t, err)
	require.Equal(t, cp.Size, c.Size)
	require.Equal(t, cp.Root, c.Hash)
	return c
}

// checkAllProofs verifies every inclusion proof in the checkpoint's tree
// and a consistency proof from every earlier size in sizes.
func checkAllProofs(t testing.TB, l *audit.Log, c *log.Checkpoint, data [][]byte, sizes map[uint64][]byte) {
	t.Helper()
	ctx := context.Background()
	for i := uint64(0); i < c.Size; i++ {
		p, err := l.InclusionProof(ctx, i, c.Size)
		require.NoError(t, err)
		require.NoError(t, proof.VerifyInclusion(rfc6962.DefaultHasher, i, c.Size, rfc6962.DefaultHasher.HashLeaf(data[i]), p, c.Hash), "index %d size %d", i, c.Size)
	}
	for s, root := range sizes {
		if s > c.Size {
			continue
		}
		p, err := l.ConsistencyProof(ctx, s, c.Size)
		require.NoError(t, err)
		require.NoError(t, proof.VerifyConsistency(rfc6962.DefaultHasher, s, c.Size, p, root, c.Hash), "from %d to %d", s, c.Size)
	}
}

func TestIntegrateProofsAndEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	signer, vkey := testKeys(t)
	l := newTestLog(t, db, signer, vkey, audit.Options{BatchSize: 7})

	// The first pass signs the empty tree, so the checkpoint always answers.
	n, err := l.IntegrateOnce(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	cp, err := l.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.Zero(t, cp.Size)
	require.Equal(t, rfc6962.DefaultHasher.EmptyRoot(), openCheckpoint(t, cp, vkey).Hash)

	var data [][]byte
	sizes := map[uint64][]byte{0: cp.Root}
	for round, k := range []int{1, 2, 3, 7, 8, 15, 16, 17, 0, 31} {
		// one transaction of k entries, one rolled back, k singles
		data = append(data, appendTx(t, db, true, entries(fmt.Sprintf("r%d", round), k)...)...)
		appendTx(t, db, false, testEntry("rolled-back", round))
		for i := 0; i < k; i++ {
			data = append(data, appendTx(t, db, true, testEntry(fmt.Sprintf("r%d-single", round), i))...)
		}
		require.Equal(t, 2*k, logtest.Drain(t, l))
		cp, err := l.LatestCheckpoint(ctx)
		require.NoError(t, err)
		require.EqualValues(t, len(data), cp.Size)
		c := openCheckpoint(t, cp, vkey)
		checkAllProofs(t, l, c, data, sizes)
		sizes[c.Size] = c.Hash
	}

	leaves, err := l.Entries(ctx, 0, 1000)
	require.NoError(t, err)
	require.Len(t, leaves, len(data))
	for i, lf := range leaves {
		require.EqualValues(t, i, lf.Index)
		require.Equal(t, data[i], lf.Data, "bytes of %d", i)
	}
	e, err := l.Entry(ctx, 5)
	require.NoError(t, err)
	require.Equal(t, data[5], e.Data)
	_, err = l.Entry(ctx, uint64(len(data)))
	require.ErrorIs(t, err, audit.ErrNotFound)
	_, err = l.InclusionProof(ctx, 3, uint64(len(data))+1)
	require.ErrorIs(t, err, audit.ErrNotFound)
	_, err = l.InclusionProof(ctx, 3, 3)
	require.ErrorIs(t, err, audit.ErrInvalid)
	_, err = l.ConsistencyProof(ctx, 4, 3)
	require.ErrorIs(t, err, audit.ErrInvalid)

	// A second log over the same database rebuilds the tree and carries on.
	l2 := newTestLog(t, db, signer, vkey, audit.Options{})
	data = append(data, appendTx(t, db, true, entries("after-restart", 5)...)...)
	require.Equal(t, 5, logtest.Drain(t, l2))
	cp, err = l2.LatestCheckpoint(ctx)
	require.NoError(t, err)
	checkAllProofs(t, l2, openCheckpoint(t, cp, vkey), data, sizes)

	rep, err := audit.Verify(ctx, db, vkey, audit.VerifyOptions{Origin: testOrigin, BatchSize: 13})
	require.NoError(t, err)
	require.EqualValues(t, len(data), rep.Leaves)
	require.Equal(t, cp.Root, rep.Root)
}

func entries(tag string, k int) []audit.Entry {
	es := make([]audit.Entry, k)
	for i := range es {
		es[i] = testEntry(tag, i)
	}
	return es
}

func TestCheckpointInterval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	signer, vkey := testKeys(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newTestLog(t, db, signer, vkey, audit.Options{CheckpointInterval: time.Second, Now: func() time.Time { return now }})
	logtest.Drain(t, l) // the empty checkpoint
	appendTx(t, db, true, entries("a", 3)...)
	require.Equal(t, 3, logtest.Drain(t, l))
	cp, err := l.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.Zero(t, cp.Size, "no second checkpoint within the interval")
	now = now.Add(time.Second)
	n, err := l.IntegrateOnce(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	cp, err = l.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, cp.Size, "the pending leaves get their checkpoint once it is due")
}

func TestNewLogRejectsForeignKey(t *testing.T) {
	t.Parallel()
	signer, _ := testKeys(t)
	_, other := testKeys(t)
	_, err := audit.NewLog(nil, signer, other, testOrigin, audit.Options{})
	require.Error(t, err)
}
