package appeals_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/internal/pgtest"
)

const (
	benchQueue     = 10000
	benchReviewers = 8
)

// BenchmarkClaimAndResolve drains a queue of 10,000 appeals with 8 parallel
// reviewers, each claiming (SKIP LOCKED, lease, audit entry) and upholding
// (assignee and separation checks, audit entry) in turn, beside the
// plain-UPDATE equivalent on a copy of the table: one autocommitted
// claiming UPDATE ... SKIP LOCKED and one resolving UPDATE per pair, no
// audit, no checks, both prepared (the raw database at its best, as the
// store prepares its own hot statements). Each run drains the whole queue once.
func BenchmarkClaimAndResolve(b *testing.B) {
	ctx := context.Background()
	db := pgtest.New(b)
	store := appeals.NewStore(db, appeals.Options{})
	_, err := store.PutPolicy(ctx, admin, "crypto", appeals.PolicyInput{Title: "Crypto", Text: "No crypto ads."})
	require.NoError(b, err)
	d, err := store.RecordDecision(ctx, enforcer, benchDecision())
	require.NoError(b, err)
	f := &fixture{ctx: ctx, db: db, store: store, clk: &clock{t: time.Now().UTC()}}
	fillQueue(b, f, d, benchQueue)
	_, err = db.Exec(`CREATE TABLE plain_appeals (LIKE appeals INCLUDING ALL);
		INSERT INTO plain_appeals SELECT * FROM appeals`)
	require.NoError(b, err)
	_, err = db.Exec(`ANALYZE appeals; ANALYZE plain_appeals`)
	require.NoError(b, err)

	b.ResetTimer()
	service := drain(b, func(by docket.Actor) (bool, error) {
		a, err := store.Claim(ctx, by)
		if err != nil || a == nil {
			return false, err
		}
		_, err = store.Resolve(ctx, by, a.ID, appeals.ResolveInput{Outcome: appeals.AppealUpheld, Rationale: "Checked."})
		return err == nil, err
	})
	claim, err := db.PreparexContext(ctx, `UPDATE plain_appeals SET state = 'in_review', assigned_to = $1,
		claimed_at = now(), lease_until = now() + interval '30 minutes'
		WHERE id = (SELECT id FROM plain_appeals WHERE state = 'pending' ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING id`)
	require.NoError(b, err)
	resolve, err := db.PreparexContext(ctx, `UPDATE plain_appeals SET state = 'upheld', outcome = 'upheld',
		rationale = 'Checked.', resolved_by = $2, resolved_at = now() WHERE id = $1`)
	require.NoError(b, err)
	plain := drain(b, func(by docket.Actor) (bool, error) {
		var ids []string
		if err := claim.SelectContext(ctx, &ids, by.String()); err != nil || len(ids) == 0 {
			return false, err
		}
		_, err := resolve.ExecContext(ctx, ids[0], by.String())
		return err == nil, err
	})
	b.StopTimer()

	var left int
	require.NoError(b, db.Get(&left, `SELECT count(*) FROM appeals WHERE state <> 'upheld'`))
	require.Zero(b, left)
	b.ReportMetric(service, "pairs/s")
	b.ReportMetric(plain, "plain-pairs/s")
	b.ReportMetric(service/plain, "ratio")
}

// drain runs pair on 8 reviewers until the queue is empty and returns pairs/s.
func drain(b *testing.B, pair func(by docket.Actor) (bool, error)) float64 {
	b.Helper()
	var wg sync.WaitGroup
	counts := make([]int, benchReviewers)
	errs := make([]error, benchReviewers)
	start := time.Now()
	for i := range benchReviewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			by := docket.Actor{Role: docket.RoleReviewer, Name: fmt.Sprintf("bench-%d", i)}
			for {
				ok, err := pair(by)
				if err != nil {
					errs[i] = err
					return
				}
				if !ok {
					return
				}
				counts[i]++
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := 0
	for i := range counts {
		require.NoError(b, errs[i])
		total += counts[i]
	}
	require.Equal(b, benchQueue, total)
	return float64(total) / elapsed.Seconds()
}
