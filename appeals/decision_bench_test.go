package appeals_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/internal/pgtest"
)

// runConcurrent runs op n times across writers goroutines and returns ops/s.
func runConcurrent(b *testing.B, writers, n int, op func(i int) error) float64 {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := op(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds()
}

func benchDecision() appeals.DecisionInput {
	yes := true
	return appeals.DecisionInput{AdvertiserID: "acme", AdID: "ad-1", Action: "ad_removal", PolicyCode: "crypto",
		Ground: "terms", Explanation: "The ad promotes a token sale, which the policy forbids.",
		Facts: "Ad ad-1 showed a token sale on 2026-11-20.", Source: "voluntary",
		AutomatedDetection: &yes, AutomatedDecision: "partial", TerritorialScope: []string{"DE", "FR"}}
}

// BenchmarkRecordDecision records decisions through the domain API (row,
// audit entry, one transaction) beside plain single-row INSERTs of the
// same row into a copy of the table, committed one per statement, at the
// same concurrency, and reports the ratio. The integrator is not running
// here; see the audit package's benchmarks for integration.
func BenchmarkRecordDecision(b *testing.B) {
	for _, writers := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db := pgtest.New(b)
			ctx := context.Background()
			store := appeals.NewStore(db, appeals.Options{})
			admin := appeals.Actor{Role: appeals.RoleAdmin, Name: "bench"}
			_, err := store.PutPolicy(ctx, admin, "crypto", appeals.PolicyInput{Title: "Crypto", Text: "No crypto ads."})
			require.NoError(b, err)
			_, err = db.Exec(`CREATE TABLE plain_decisions (LIKE decisions INCLUDING ALL)`)
			require.NoError(b, err)
			d, err := store.RecordDecision(ctx, admin, benchDecision())
			require.NoError(b, err)
			n := max(b.N, writers*20)
			b.ResetTimer()
			service := runConcurrent(b, writers, n, func(int) error {
				_, err := store.RecordDecision(ctx, admin, benchDecision())
				return err
			})
			raw := runConcurrent(b, writers, n, func(i int) error {
				row := d
				row.ID = fmt.Sprintf("%s-%d", d.ID, i)
				return plainInsert(ctx, db, row)
			})
			b.StopTimer()
			b.ReportMetric(service, "decisions/s")
			b.ReportMetric(raw, "inserts/s")
			b.ReportMetric(service/raw, "ratio")
		})
	}
}

func plainInsert(ctx context.Context, db *sqlx.DB, d appeals.Decision) error {
	_, err := db.NamedExecContext(ctx, `INSERT INTO plain_decisions (id, advertiser_id, ad_id, action, policy_code,
		policy_version, policy_text_sha256, ground, legal_reference, explanation, facts, source, automated_detection,
		automated_decision, territorial_scope, content_type, ends_at, status, decided_by, decided_at, appeal_deadline)
		VALUES (:id, :advertiser_id, :ad_id, :action, :policy_code, :policy_version, :policy_text_sha256, :ground,
		:legal_reference, :explanation, :facts, :source, :automated_detection, :automated_decision, :territorial_scope,
		:content_type, :ends_at, :status, :decided_by, :decided_at, :appeal_deadline)`, d)
	return err
}
