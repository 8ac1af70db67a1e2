package appeals

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals/groupcommit"
	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/pgtest"
)

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
	_, err := s.PutPolicy(ctx, docket.Actor{Role: docket.RoleAdmin, Name: "ada"}, "crypto", PolicyInput{Title: "Crypto", Text: "No crypto ads."})
	require.NoError(t, err)
	yes := true
	d, err := s.RecordDecision(ctx, docket.Actor{Role: docket.RoleEnforcer, Name: "pipeline"}, DecisionInput{AdvertiserID: "acme",
		AdID: "ad-1", Action: ActionAdRemoval, PolicyCode: "crypto", Ground: "terms", Explanation: "e", Facts: "f",
		Source: "voluntary", AutomatedDetection: &yes, AutomatedDecision: "none"})
	require.NoError(t, err)
	// The unique index on open appeals allows one per decision; these
	// tests are about the queue, not filing, so they sidestep it.
	_, err = db.Exec(`ALTER TABLE appeals SET (autovacuum_enabled = false); DROP INDEX appeals_one_open`)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO appeals (id, decision_id, advertiser_id, decider_name, policy_code, state, statement, filed_by, filed_at, due_at)
		SELECT 'a-' || lpad(i::text, 6, '0'), $1, 'acme', CASE WHEN i <= $4 THEN $5 ELSE 'pipeline' END, 'crypto', 'pending', 's',
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

// claimed unwraps claimIn's answers, failing on the first error.
func claimed(outs []groupcommit.Result[*Appeal], err error) ([]*Appeal, error) {
	if err != nil {
		return nil, err
	}
	got := make([]*Appeal, len(outs))
	for i, o := range outs {
		if o.Err != nil {
			return nil, o.Err
		}
		got[i] = o.Val
	}
	return got, nil
}

// TestBatchedClaimsSkipOwnDecisions runs the locking claim (the way a
// claim goes alone) for a reviewer whose decisions fill every candidate it
// locked, beside one who may take them: the first gets the first appeal it
// may review, beyond the candidates its own transaction holds; the other
// the head of the queue; each claim has its entry.
func TestBatchedClaimsSkipOwnDecisions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, now := queueFixture(t, 14, 12, "dora")
	dora := docket.Actor{Role: docket.RoleReviewer, Name: "dora"}
	rita := docket.Actor{Role: docket.RoleReviewer, Name: "rita"}
	reqs := []claimReq{{by: dora}, {by: rita}, {by: dora}}
	require.Less(t, len(reqs)+claimSlack, 12, "the candidates must all be dora's")

	got, err := write(ctx, s, nil, func(tx *sqlx.Tx, now time.Time) ([]*Appeal, error) {
		return claimed(s.claimIn(ctx, on{tx: tx}, now, reqs))
	})
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
	got, err = write(ctx, s, nil, func(tx *sqlx.Tx, now time.Time) ([]*Appeal, error) {
		return claimed(s.claimIn(ctx, on{tx: tx}, now, []claimReq{{by: dora}, {by: rita}}))
	})
	require.NoError(t, err)
	require.Nil(t, got[0])
	require.Equal(t, "a-000002", got[1].ID)
}

// TestClaimLooksPastItsOwnDecisions: through the batch, a reviewer whose
// decisions fill every candidate read is not told the queue is empty: the
// claim goes alone, past them, and takes the first appeal it may review.
func TestClaimLooksPastItsOwnDecisions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, _ := queueFixture(t, 14, 12, "dora")
	a, err := s.Claim(ctx, docket.Actor{Role: docket.RoleReviewer, Name: "dora"})
	require.NoError(t, err)
	require.NotNil(t, a)
	require.Equal(t, "a-000013", a.ID)
	require.Equal(t, []string{"a-000013"}, entriesOf(t, db, EntryAppealClaimed))
}

// TestBatchedResolutionsCheckEachInOrder resolves, in one batch, an appeal
// twice, one another reviewer holds, one that does not exist, and one by
// its decider: each is checked against the appeal as the batch left it.
func TestBatchedResolutionsCheckEachInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, _ := queueFixture(t, 4, 1, "dora")
	rita := docket.Actor{Role: docket.RoleReviewer, Name: "rita"}
	bob := docket.Actor{Role: docket.RoleReviewer, Name: "bob"}
	dora := docket.Actor{Role: docket.RoleSeniorReviewer, Name: "dora"}
	for _, by := range []docket.Actor{rita, rita, bob} {
		got, err := s.Claim(ctx, by)
		require.NoError(t, err)
		require.NotNil(t, got)
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
	got, err := write(ctx, s, nil, func(tx *sqlx.Tx, now time.Time) ([]groupcommit.Result[Appeal], error) {
		return s.resolveIn(ctx, on{tx: tx}, now, reqs)
	})
	require.NoError(t, err)
	require.NoError(t, got[0].Err)
	require.Equal(t, AppealUpheld, got[0].Val.State)
	require.Equal(t, docket.Conflict, docket.ErrorCode(got[1].Err))
	require.Contains(t, got[1].Err.Error(), "is upheld")
	require.Equal(t, docket.Conflict, docket.ErrorCode(got[2].Err))
	require.Contains(t, got[2].Err.Error(), "assigned to reviewer:bob")
	require.Equal(t, docket.NotFound, docket.ErrorCode(got[3].Err))
	require.Equal(t, docket.Forbidden, docket.ErrorCode(got[4].Err))
	require.NoError(t, got[5].Err)
	require.Equal(t, []string{"a-000002", "a-000003"}, entriesOf(t, db, EntryAppealResolved))
	var states []AppealState
	require.NoError(t, db.Select(&states, `SELECT state FROM appeals ORDER BY id`))
	require.Equal(t, []AppealState{AppealInReview, AppealUpheld, AppealUpheld, AppealPending}, states)
}

// TestEveryCallAboutASkippedAppealIsBusy: when a batch's change skips an
// appeal another transaction holds, each call about it in the batch is
// busy, the later ones too, since they were checked against a resolution
// that did not happen (the second would otherwise be a 409, "is upheld");
// the other appeal of the batch is resolved, with its entry only.
func TestEveryCallAboutASkippedAppealIsBusy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, now := queueFixture(t, 2, 0, "")
	rita := docket.Actor{Role: docket.RoleReviewer, Name: "rita"}
	for range 2 {
		got, err := s.Claim(ctx, rita)
		require.NoError(t, err)
		require.NotNil(t, got)
	}
	holder, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer holder.Rollback()
	_, err = holder.Exec(`SELECT 1 FROM appeals WHERE id = 'a-000001' FOR UPDATE`)
	require.NoError(t, err)

	upheld := ResolveInput{Outcome: AppealUpheld, Rationale: "Checked."}
	t.Cleanup(s.resolveLane.Drop)
	got, err := s.resolveIn(ctx, on{lane: s.resolveLane}, now, []resolveReq{
		{by: rita, id: "a-000001", in: upheld},
		{by: rita, id: "a-000001", in: upheld},
		{by: rita, id: "a-000002", in: upheld},
	})
	require.NoError(t, err)
	require.ErrorIs(t, got[0].Err, errBusy)
	require.ErrorIs(t, got[1].Err, errBusy)
	require.NoError(t, got[2].Err)
	require.Equal(t, AppealUpheld, got[2].Val.State)
	require.Equal(t, []string{"a-000002"}, entriesOf(t, db, EntryAppealResolved))
}

// TestBusyAppealDoesNotHoldTheBatch: while another transaction holds one
// appeal, resolving it waits, alone, and resolutions of other appeals go
// through; when the holder commits, the waiting one completes.
func TestBusyAppealDoesNotHoldTheBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, _ := queueFixture(t, 3, 0, "")
	rita := docket.Actor{Role: docket.RoleReviewer, Name: "rita"}
	for range 2 {
		got, err := s.Claim(ctx, rita)
		require.NoError(t, err)
		require.NotNil(t, got)
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

// TestBatchedClaimPassesAHeldAppeal: while another transaction holds the
// head of the queue, a claim neither waits for it nor takes it: it gets
// the next appeal, and the log records that claim only.
func TestBatchedClaimPassesAHeldAppeal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, _ := queueFixture(t, 3, 0, "")
	holder, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer holder.Rollback()
	_, err = holder.Exec(`SELECT 1 FROM appeals WHERE id = 'a-000001' FOR UPDATE`)
	require.NoError(t, err)

	type result struct {
		a   Appeal
		err error
	}
	got := make(chan result, 1)
	go func() {
		a, err := s.Claim(ctx, docket.Actor{Role: docket.RoleReviewer, Name: "rita"})
		if a == nil {
			a = &Appeal{}
		}
		got <- result{*a, err}
	}()
	select {
	case r := <-got:
		require.NoError(t, r.err)
		require.Equal(t, "a-000002", r.a.ID)
	case <-time.After(30 * time.Second):
		t.Fatal("a claim waited for an appeal another transaction holds")
	}
	require.NoError(t, holder.Rollback())
	require.Equal(t, []string{"a-000002"}, entriesOf(t, db, EntryAppealClaimed))
	var state AppealState
	require.NoError(t, db.Get(&state, `SELECT state FROM appeals WHERE id = 'a-000001'`))
	require.Equal(t, AppealPending, state)
}

// TestBatchChangesOnlyRowsAsRead: a batch's changes name the row version
// its checks read; when the row has changed since, nothing is changed and
// no entry is staged, for a claim as for a resolution. With the row as
// read, both go through.
func TestBatchChangesOnlyRowsAsRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, now := queueFixture(t, 1, 0, "")
	rita := docket.Actor{Role: docket.RoleReviewer, Name: "rita"}
	w := on{lane: s.claimLane}
	t.Cleanup(s.claimLane.Drop)
	version := func() string {
		var seen string
		require.NoError(t, db.Get(&seen, `SELECT xmin::text FROM appeals WHERE id = 'a-000001'`))
		return seen
	}
	touch := func() {
		_, err := db.Exec(`UPDATE appeals SET statement = statement WHERE id = 'a-000001'`)
		require.NoError(t, err)
	}
	var a Appeal
	require.NoError(t, db.Get(&a, `SELECT `+appealColumns+` FROM appeals WHERE id = 'a-000001'`))
	one := []string{"a-000001"}
	who := []string{rita.String()}

	claim := func(seen string) []string {
		entries := []audit.Entry{appealEntry(EntryAppealClaimed, rita, now, a, nil)}
		done, err := s.apply(ctx, w, qApplyClaims, entries, pq.StringArray(one), pq.StringArray{string(AppealInReview)},
			pq.StringArray(who), now, now.Add(time.Hour), pq.StringArray{seen})
		require.NoError(t, err)
		return done
	}
	stale := version()
	touch()
	require.Empty(t, claim(stale))
	require.Empty(t, entriesOf(t, db, EntryAppealClaimed))
	require.Equal(t, one, claim(version()))
	require.Equal(t, one, entriesOf(t, db, EntryAppealClaimed))

	resolve := func(seen string) []string {
		entries := []audit.Entry{appealEntry(EntryAppealResolved, rita, now, a, nil)}
		done, err := s.apply(ctx, w, qApplyResolutions, entries, pq.StringArray(one), pq.StringArray{string(AppealUpheld)},
			pq.StringArray{"Checked."}, pq.StringArray(who), now, pq.StringArray{seen})
		require.NoError(t, err)
		return done
	}
	stale = version()
	touch()
	require.Empty(t, resolve(stale))
	require.Empty(t, entriesOf(t, db, EntryAppealResolved))
	var state AppealState
	require.NoError(t, db.Get(&state, `SELECT state FROM appeals WHERE id = 'a-000001'`))
	require.Equal(t, AppealInReview, state)
	require.Equal(t, one, resolve(version()))
	require.Equal(t, one, entriesOf(t, db, EntryAppealResolved))
}

// TestLaneKeepsItsSessionToItself: a lane plans generically on its own
// connection; when that connection dies while idle, the next batch opens
// another; and a lane whose batch fails closes its connection instead of
// handing the setting to the pool.
func TestLaneKeepsItsSessionToItself(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, _ := queueFixture(t, 4, 0, "")
	rita := docket.Actor{Role: docket.RoleReviewer, Name: "rita"}
	session := func(l *lane) (pid int, mode string) {
		t.Helper()
		require.NotNil(t, l.Conn(), "the lane has a connection")
		require.NoError(t, l.Conn().QueryRowxContext(ctx, `SELECT pg_backend_pid(), current_setting('plan_cache_mode')`).Scan(&pid, &mode))
		return pid, mode
	}
	alive := func(pid int) bool {
		var n int
		require.NoError(t, db.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid))
		return n == 1
	}

	got, err := s.Claim(ctx, rita)
	require.NoError(t, err)
	require.NotNil(t, got)
	pid, mode := session(s.claimLane)
	require.Equal(t, "force_generic_plan", mode)
	var poolMode string
	require.NoError(t, db.Get(&poolMode, `SELECT current_setting('plan_cache_mode')`))
	require.Equal(t, "auto", poolMode)

	_, err = db.Exec(`SELECT pg_terminate_backend($1)`, pid)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !alive(pid) }, 30*time.Second, 10*time.Millisecond)
	got, err = s.Claim(ctx, rita)
	require.NoError(t, err, "a lane whose connection died reads again on a new one")
	require.NotNil(t, got)
	pid, _ = session(s.claimLane)

	_, err = inLane(s.claimLane, func(w on) ([]groupcommit.Result[int], error) {
		return nil, fmt.Errorf("boom")
	})
	require.EqualError(t, err, "boom")
	require.Nil(t, s.claimLane.Conn())
	require.Eventually(t, func() bool { return !alive(pid) }, 30*time.Second, 10*time.Millisecond,
		"a failed lane's connection is closed, not pooled")
}
