package audit_test

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/pgtest"
)

// stageSeries stages n decision-sized entries (about 600 bytes) in
// transactions of at most 100,000 rows, the fast way to a large log. Each
// has two index keys, as a writer would give them: tenant (one of 100)
// and rule (one of 7).
func stageSeries(tb testing.TB, db *sqlx.DB, n int) {
	tb.Helper()
	for done := 0; done < n; {
		k := min(n-done, 100_000)
		_, err := db.Exec(`
			INSERT INTO audit_staging (type, actor, subject_kind, subject_id, entry, keys)
			SELECT 'decision.recorded', 'enforcer:bench', 'decision', 'd-' || g,
				convert_to(json_build_object(
					'type', 'decision.recorded',
					'time', to_char(timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
					'actor', 'enforcer:bench',
					'subject', json_build_object('kind', 'decision', 'id', 'd-' || g),
					'record', json_build_object('id', 'd-' || g, 'tenant', 'adv-' || (g % 100), 'ad_id', 'ad-' || g,
						'action', 'ad_removal', 'rule', 'policy-' || (g % 7), 'policy_version', 1,
						'ground', 'terms', 'explanation', 'The ad promotes a product this policy prohibits in every market.',
						'facts', 'Ad ' || g || ' showed the product in its image and text on the landing page.',
						'source', 'voluntary', 'automated_detection', true, 'automated_decision', 'partial',
						'status', 'in_effect', 'decided_by', 'enforcer:bench'))::text, 'UTF8'),
				jsonb_build_object('tenant', 'adv-' || (g % 100), 'rule', 'policy-' || (g % 7))
			FROM generate_series($1::bigint, $2::bigint - 1) g`, done, done+k)
		require.NoError(tb, err)
		done += k
	}
}

// integrateTimed integrates everything staged and returns the time spent
// inside integration batches (not waiting for other transactions in the
// cluster to end).
func integrateTimed(tb testing.TB, l *audit.Log, want int) time.Duration {
	tb.Helper()
	var spent time.Duration
	for got := 0; got < want; {
		start := time.Now()
		n, err := l.IntegrateOnce(context.Background())
		require.NoError(tb, err)
		if n == 0 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		spent += time.Since(start)
		got += n
	}
	return spent
}

// BenchmarkIntegrate measures leaves integrated per second: reading the
// staged bytes, hashing, extending the tree, storing leaves and nodes and
// a checkpoint per batch.
func BenchmarkIntegrate(b *testing.B) {
	db := pgtest.New(b)
	signer, vkey := testKeys(b)
	l := newTestLog(b, db, signer, vkey, audit.Options{})
	integrateTimed(b, l, 0)
	stageSeries(b, db, b.N)
	b.ResetTimer()
	spent := integrateTimed(b, l, b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/spent.Seconds(), "leaves/s")
}

// BenchmarkInclusionProof measures serving one inclusion proof (one query
// for the nodes, rehashing) at a large tree: 100,000 entries, or 1,000,000
// with DOCKET_BENCH_LARGE=1.
func BenchmarkInclusionProof(b *testing.B) {
	size := 100_000
	if os.Getenv("DOCKET_BENCH_LARGE") == "1" {
		size = 1_000_000
	}
	ctx := context.Background()
	db := pgtest.New(b)
	signer, vkey := testKeys(b)
	l := newTestLog(b, db, signer, vkey, audit.Options{BatchSize: 50_000})
	start := time.Now()
	stageSeries(b, db, size)
	b.Logf("staged %d entries in %v", size, time.Since(start))
	spent := integrateTimed(b, l, size)
	b.Logf("integrated %d entries in %v (%.0f leaves/s)", size, spent, float64(size)/spent.Seconds())
	_, err := db.Exec(`ANALYZE audit_leaves; ANALYZE audit_nodes`)
	require.NoError(b, err)
	cp, err := l.LatestCheckpoint(ctx)
	require.NoError(b, err)
	require.EqualValues(b, size, cp.Size)

	rnd := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for b.Loop() {
		i := rnd.Uint64N(cp.Size)
		p, err := l.InclusionProof(ctx, i, cp.Size)
		if err != nil {
			b.Fatal(err)
		}
		if len(p) == 0 {
			b.Fatal("empty proof")
		}
	}
	b.StopTimer()
	e, err := l.Entry(ctx, 12345)
	require.NoError(b, err)
	p, err := l.InclusionProof(ctx, 12345, cp.Size)
	require.NoError(b, err)
	require.NoError(b, proof.VerifyInclusion(rfc6962.DefaultHasher, 12345, cp.Size, rfc6962.DefaultHasher.HashLeaf(e.Data), p, cp.Root))
}

// BenchmarkVerify measures database verification, in entries per second.
func BenchmarkVerify(b *testing.B) {
	const size = 100_000
	db := pgtest.New(b)
	signer, vkey := testKeys(b)
	l := newTestLog(b, db, signer, vkey, audit.Options{BatchSize: 10_000})
	stageSeries(b, db, size)
	integrateTimed(b, l, size)
	b.ResetTimer()
	for b.Loop() {
		rep, err := audit.Verify(context.Background(), db, vkey, audit.VerifyOptions{Origin: testOrigin})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Leaves != size {
			b.Fatalf("verified %d leaves", rep.Leaves)
		}
	}
	b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
