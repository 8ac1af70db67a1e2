package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/pgtest"
)

// BenchmarkAppendKeys measures what the index keys a writer hands an
// entry cost on the write path: the same decision-sized entry staged by
// Append, one autocommitted statement each, with the two keys the domain
// gives a decision (advertiser and policy) and with none. The two run in
// alternating rounds at the same concurrency, since this machine's speed
// drifts, and the benchmark reports each rate and their ratio (keyed over
// unkeyed: 1 means the keys are free).
func BenchmarkAppendKeys(b *testing.B) {
	const writers, rounds = 8, 6
	db := pgtest.New(b)
	ctx := context.Background()
	record := json.RawMessage(`{"id":"d-1","advertiser_id":"acme","ad_id":"ad-1","action":"ad_removal","policy_code":"crypto",` +
		`"policy_version":1,"ground":"terms","explanation":"The ad promotes a token sale, which the policy forbids.",` +
		`"facts":"Ad ad-1 showed a token sale on 2026-11-20.","source":"voluntary","automated_detection":true,` +
		`"automated_decision":"partial","status":"in_effect","decided_by":"enforcer:bench"}`)
	entry := func(i int64, keyed bool) audit.Entry {
		e := audit.Entry{Type: "decision.recorded", Time: time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), Actor: "enforcer:bench",
			Subject: audit.Subject{Kind: "decision", ID: fmt.Sprintf("d-%d", i)}, Record: record}
		if keyed {
			e.Keys = map[string]string{"advertiser": fmt.Sprintf("adv-%d", i%100), "policy": "crypto"}
		}
		return e
	}
	var seq atomic.Int64
	// round stages n entries across the writers and returns entries/s.
	round := func(n int, keyed bool) float64 {
		var left atomic.Int64
		left.Store(int64(n))
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		start := time.Now()
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					if _, err := audit.Append(ctx, db, entry(seq.Add(1), keyed)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(b, err)
		}
		return float64(n) / time.Since(start).Seconds()
	}
	round(200, true) // warm the pool and the plans
	n := max(b.N/rounds, 500)
	b.ResetTimer()
	var keyed, plain float64
	for r := range rounds {
		// A then B, then B then A: neither always runs on a warmer table.
		if r%2 == 0 {
			keyed += round(n, true)
			plain += round(n, false)
		} else {
			plain += round(n, false)
			keyed += round(n, true)
		}
	}
	b.StopTimer()
	b.ReportMetric(keyed/rounds, "keyed/s")
	b.ReportMetric(plain/rounds, "unkeyed/s")
	b.ReportMetric(keyed/plain, "ratio")
}
