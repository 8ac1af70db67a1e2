package audit_test

import (
	"context"
	"flag"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"pgregory.net/rapid"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/logtest"
	"github.com/docket-dev/docket/internal/pgtest"
)

// TestMain lowers rapid's default of 100 runs: each step of these runs is
// a round trip to Postgres. -rapid.checks still overrides it.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set && os.Getenv("RAPID_CHECKS") == "" {
		_ = flag.Set("rapid.checks", "25")
	}
	os.Exit(m.Run())
}

// TestPropertyAppendIntegrateProve drives random sequences of appends
// (committed or rolled back), integrations with random batch sizes,
// restarts and proof requests against one database, checking every answer
// against an in-memory RFC 6962 tree of the committed entries. The database
// outlives each rapid run (a fresh one per run would be slow), so the model
// does too.
func TestPropertyAppendIntegrateProve(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	signer, vkey := testKeys(t)
	model := testonly.New(rfc6962.DefaultHasher)
	var data [][]byte
	checkpoints := map[uint64][]byte{} // size -> signed root
	serial := 0
	pending := map[string]bool{} // committed, not yet seen as a leaf

	rapid.Check(t, func(rt *rapid.T) {
		l := newTestLog(t, db, signer, vkey, audit.Options{BatchSize: rapid.IntRange(1, 20).Draw(rt, "batch")})
		rt.Repeat(map[string]func(*rapid.T){
			"append": func(rt *rapid.T) {
				k := rapid.IntRange(1, 6).Draw(rt, "k")
				commit := rapid.Float64().Draw(rt, "p") < 0.8
				es := make([]audit.Entry, k)
				for i := range es {
					serial++
					es[i] = testEntry("prop", serial)
				}
				for _, b := range appendTx(t, db, commit, es...) {
					pending[string(b)] = true
				}
			},
			"integrate": func(rt *rapid.T) {
				n, err := l.IntegrateOnce(ctx)
				require.NoError(rt, err)
				leaves, err := l.Entries(ctx, uint64(len(data)), n)
				require.NoError(rt, err)
				require.Len(rt, leaves, n)
				for _, lf := range leaves {
					require.EqualValues(rt, len(data), lf.Index)
					data = append(data, lf.Data)
					model.AppendData(lf.Data)
					require.Equal(rt, model.LeafHash(uint64(lf.Index)), lf.LeafHash)
					require.True(rt, pending[string(lf.Data)], "leaf %d: not a committed entry, or a second time", lf.Index)
					delete(pending, string(lf.Data))
				}
				cp, err := l.LatestCheckpoint(ctx)
				require.NoError(rt, err)
				c := openCheckpoint(rt, cp, vkey)
				require.Equal(rt, model.HashAt(c.Size), c.Hash)
				checkpoints[c.Size] = c.Hash
			},
			"restart": func(rt *rapid.T) {
				l = newTestLog(t, db, signer, vkey, audit.Options{BatchSize: rapid.IntRange(1, 20).Draw(rt, "batch")})
			},
			"prove inclusion": func(rt *rapid.T) {
				cp, err := l.LatestCheckpoint(ctx)
				if err != nil || cp.Size == 0 {
					rt.Skip("nothing signed yet")
				}
				c := openCheckpoint(rt, cp, vkey)
				i := rapid.Uint64Range(0, c.Size-1).Draw(rt, "index")
				p, err := l.InclusionProof(ctx, i, c.Size)
				require.NoError(rt, err)
				require.NoError(rt, proof.VerifyInclusion(rfc6962.DefaultHasher, i, c.Size, rfc6962.DefaultHasher.HashLeaf(data[i]), p, c.Hash))
			},
			"prove consistency": func(rt *rapid.T) {
				cp, err := l.LatestCheckpoint(ctx)
				if err != nil {
					rt.Skip("nothing signed yet")
				}
				c := openCheckpoint(rt, cp, vkey)
				var sizes []uint64
				for s := range checkpoints {
					sizes = append(sizes, s)
				}
				if len(sizes) == 0 {
					rt.Skip("no earlier checkpoint")
				}
				from := rapid.SampledFrom(sizes).Draw(rt, "from")
				p, err := l.ConsistencyProof(ctx, from, c.Size)
				require.NoError(rt, err)
				require.NoError(rt, proof.VerifyConsistency(rfc6962.DefaultHasher, from, c.Size, p, checkpoints[from], c.Hash),
					"from %d to %d", from, c.Size)
			},
		})
	})
	logtest.Drain(t, newTestLog(t, db, signer, vkey, audit.Options{}))
	var left int
	require.NoError(t, db.Get(&left, `SELECT count(*) FROM audit_leaves`))
	require.Equal(t, len(data)+len(pending), left, "every committed entry became a leaf")
	_, err := audit.Verify(ctx, db, vkey, audit.VerifyOptions{Origin: testOrigin})
	require.NoError(t, err)
}
