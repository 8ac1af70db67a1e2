package appeals

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/pgtest"
)

// TestBatcherAnswersEveryCallOnce runs many concurrent calls through a
// batcher whose batches take a while: every call gets its own answer,
// batches never exceed the bound, only one runs at a time, and calls that
// arrive during a batch share the next one.
func TestBatcherAnswersEveryCallOnce(t *testing.T) {
	t.Parallel()
	var running, batches, biggest atomic.Int64
	b := newBatcher(5, func(_ context.Context, reqs []int) []outcome[string] {
		assert.Equal(t, int64(1), running.Add(1), "one batch at a time")
		defer running.Add(-1)
		batches.Add(1)
		if n := int64(len(reqs)); n > biggest.Load() {
			biggest.Store(n)
		}
		time.Sleep(2 * time.Millisecond)
		out := make([]outcome[string], len(reqs))
		for i, r := range reqs {
			if r%7 == 0 {
				out[i].err = fmt.Errorf("no %d", r)
			} else {
				out[i].val = fmt.Sprint(r)
			}
		}
		return out
	})
	const calls = 200
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A cancelled caller still gets the batch's answer.
			ctx, cancel := context.WithCancel(context.Background())
			if i%3 == 0 {
				cancel()
			}
			defer cancel()
			v, err := b.do(ctx, i)
			if i%7 == 0 {
				assert.EqualError(t, err, fmt.Sprintf("no %d", i))
				return
			}
			assert.NoError(t, err)
			assert.Equal(t, fmt.Sprint(i), v)
		}()
	}
	wg.Wait()
	require.LessOrEqual(t, biggest.Load(), int64(5))
	require.Greater(t, biggest.Load(), int64(1), "concurrent calls were batched")
	require.Less(t, batches.Load(), int64(calls))
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(t, b.queue)
	require.False(t, b.busy)
}

// TestBatcherSurvivesAPanic: a batch that panics answers its calls with
// an error, and the next batch runs.
func TestBatcherSurvivesAPanic(t *testing.T) {
	t.Parallel()
	b := newBatcher(4, func(_ context.Context, reqs []int) []outcome[int] {
		if reqs[0] < 0 {
			panic("boom")
		}
		return make([]outcome[int], len(reqs))
	})
	_, err := b.do(context.Background(), -1)
	require.ErrorContains(t, err, "boom")
	_, err = b.do(context.Background(), 1)
	require.NoError(t, err)
}

// queueFixture is a store over a queue of n appeals a-000001... filed
// directly, due one second apart, the first byFirst decided by
// firstDecider and the rest by pipeline. Autovacuum is off for appeals, so
// its statistics are what the test makes them.
func queueFixture(t *testing.T, n, byFirst int, firstDecider string) (*Store, *sqlx.DB, time.Time) {
	t.Helper()
	ctx := context.Background()
	db := pgtest.New(t)
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	s := NewStore(db, Options{Now: func() time.Time { return now }})
	_, err := s.PutPolicy(ctx, Actor{Role: RoleAdmin, Name: "ada"}, "crypto", PolicyInput{Title: "Crypto", Text: "No crypto ads."})
	require.NoError(t, err)
	yes := true
	d, err := s.RecordDecision(ctx, Actor{Role: RoleEnforcer, Name: "pipeline"}, DecisionInput{AdvertiserID: "acme",
		AdID: "ad-1", Action: ActionAdRemoval, PolicyCode: "crypto", Ground: "terms", Explanation: "e", Facts: "f",
		Source: "voluntary", AutomatedDetection: &yes, AutomatedDecision: "none"})
	require.NoError(t, err)
	// The unique index on open appeals allows one per decision; these
	// tests are about the queue, not filing, so they sidestep it.
	_, err = db.Exec(`ALTER TABLE appeals SET (autovacuum_enabled = false); DROP INDEX appeals_one_open`)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO appeals (id, decision_id, advertiser_id, decider_name, state, statement, filed_by, filed_at, due_at)
		SELECT 'a-' || lpad(i::text, 6, '0'), $1, 'acme', CASE WHEN i <= $4 THEN $5 ELSE 'pipeline' END, 'pending', 's',
			'advertiser:acme-owner', $2::timestamptz, $2::timestamptz + i * interval '1 second'
		FROM generate_series(1, $3::int) i`, d.ID, now, n, byFirst, firstDecider)
	require.NoError(t, err)
	return s, db, now
}

func entriesOf(t *testing.T, db *sqlx.DB, typ string) []string {
	t.Helper()
	var ids []string
	require.NoError(t, db.Select(&ids, `SELECT subject_id FROM audit_staging WHERE type = $1 ORDER BY id`, typ))
	return ids
}

// TestBatchedClaimsSkipOwnDecisions claims for a reviewer whose decisions
// fill every candidate the batch locked, beside one who may take them: the
// first gets the first appeal it may review, beyond the candidates; the
// other the head of the queue; each claim has its entry.
func TestBatchedClaimsSkipOwnDecisions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, now := queueFixture(t, 14, 12, "dora")
	dora := Actor{Role: RoleReviewer, Name: "dora"}
	rita := Actor{Role: RoleReviewer, Name: "rita"}
	reqs := []claimReq{{by: dora}, {by: rita}, {by: dora}}
	require.Less(t, len(reqs)+claimSlack, 12, "the candidates must all be dora's")

	got, err := write(ctx, s, func(tx *sqlx.Tx, now time.Time) ([]*Appeal, error) { return s.claimIn(ctx, tx, now, reqs) })
	require.NoError(t, err)
	require.Equal(t, "a-000013", got[0].ID)
	require.Equal(t, "a-000001", got[1].ID)
	require.Equal(t, "a-000014", got[2].ID)
	for i, a := range got {
		require.Equal(t, AppealInReview, a.State)
		require.Equal(t, reqs[i].by.String(), *a.AssignedTo)
		require.Equal(t, now.Add(s.opts.ClaimLease), *a.LeaseUntil)
	}
	require.Equal(t, []string{"a-000013", "a-000001", "a-000014"}, entriesOf(t, db, EntryAppealClaimed))

	// Nothing left that dora may take; rita still finds the rest.
	got, err = write(ctx, s, func(tx *sqlx.Tx, now time.Time) ([]*Appeal, error) {
		return s.claimIn(ctx, tx, now, []claimReq{{by: dora}, {by: rita}})
	})
	require.NoError(t, err)
	require.Nil(t, got[0])
	require.Equal(t, "a-000002", got[1].ID)
}

// TestBatchedResolutionsCheckEachInOrder resolves, in one batch, an appeal
// twice, one another reviewer holds, one that does not exist, and one by
// its decider: each is checked against the appeal as the batch left it.
func TestBatchedResolutionsCheckEachInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, _ := queueFixture(t, 4, 1, "dora")
	rita := Actor{Role: RoleReviewer, Name: "rita"}
	bob := Actor{Role: RoleReviewer, Name: "bob"}
	dora := Actor{Role: RoleSeniorReviewer, Name: "dora"}
	for _, by := range []Actor{rita, rita, bob} {
		_, ok, err := s.Claim(ctx, by)
		require.NoError(t, err)
		require.True(t, ok)
	}
	// rita holds a-000001 (dora's decision) and a-000002, bob a-000003.
	upheld := ResolveInput{Outcome: AppealUpheld, Rationale: "Checked."}
	reqs := []resolveReq{
		{by: rita, id: "a-000002", in: upheld},
		{by: rita, id: "a-000002", in: upheld},
		{by: rita, id: "a-000003", in: upheld},
		{by: rita, id: "a-000404", in: upheld},
		{by: dora, id: "a-000001", in: upheld},
		{by: bob, id: "a-000003", in: upheld},
	}
	got, err := write(ctx, s, func(tx *sqlx.Tx, now time.Time) ([]outcome[Appeal], error) {
		return s.resolveIn(ctx, tx, now, reqs, false)
	})
	require.NoError(t, err)
	require.NoError(t, got[0].err)
	require.Equal(t, AppealUpheld, got[0].val.State)
	require.Equal(t, Conflict, ErrorCode(got[1].err))
	require.Contains(t, got[1].err.Error(), "is upheld")
	require.Equal(t, Conflict, ErrorCode(got[2].err))
	require.Contains(t, got[2].err.Error(), "assigned to reviewer:bob")
	require.Equal(t, NotFound, ErrorCode(got[3].err))
	require.Equal(t, Forbidden, ErrorCode(got[4].err))
	require.NoError(t, got[5].err)
	require.Equal(t, []string{"a-000002", "a-000003"}, entriesOf(t, db, EntryAppealResolved))
	var states []string
	require.NoError(t, db.Select(&states, `SELECT state FROM appeals ORDER BY id`))
	require.Equal(t, []string{AppealInReview, AppealUpheld, AppealUpheld, AppealPending}, states)
}

// TestBusyAppealDoesNotHoldTheBatch: while another transaction holds one
// appeal, resolving it waits, alone, and resolutions of other appeals go
// through; when the holder commits, the waiting one completes.
func TestBusyAppealDoesNotHoldTheBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, _ := queueFixture(t, 3, 0, "")
	rita := Actor{Role: RoleReviewer, Name: "rita"}
	for range 2 {
		_, ok, err := s.Claim(ctx, rita)
		require.NoError(t, err)
		require.True(t, ok)
	}
	holder, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer holder.Rollback()
	_, err = holder.Exec(`SELECT 1 FROM appeals WHERE id = 'a-000001' FOR UPDATE`)
	require.NoError(t, err)

	upheld := ResolveInput{Outcome: AppealUpheld, Rationale: "Checked."}
	type result struct {
		a   Appeal
		err error
	}
	busy := make(chan result, 1)
	go func() {
		a, err := s.Resolve(ctx, rita, "a-000001", upheld)
		busy <- result{a, err}
	}()
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, db.Get(&n, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`))
		return n == 1
	}, 30*time.Second, 10*time.Millisecond, "the busy resolution waits for the lock")

	other := make(chan result, 1)
	go func() {
		a, err := s.Resolve(ctx, rita, "a-000002", upheld)
		other <- result{a, err}
	}()
	select {
	case r := <-other:
		require.NoError(t, r.err)
		require.Equal(t, AppealUpheld, r.a.State)
	case <-time.After(30 * time.Second):
		t.Fatal("a resolution waited behind another appeal's lock")
	}
	require.Empty(t, busy, "still waiting for a-001")
	require.NoError(t, holder.Commit())
	r := <-busy
	require.NoError(t, r.err)
	require.Equal(t, AppealUpheld, r.a.State)
}
