package appeals

import (
	"context"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/pgtest"
)

// TestBulkReversalResumesAfterCrash stops a bulk reversal after two
// committed batches, as a crash would, then re-runs it: the re-run reverses
// only the rest, a third run nothing, and every decision has exactly one
// decision.reversed entry.
func TestBulkReversalResumesAfterCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	s := NewStore(db, Options{Now: func() time.Time { return now }})
	admin := docket.Actor{Role: docket.RoleAdmin, Name: "ada"}
	enforcer := docket.Actor{Role: docket.RoleEnforcer, Name: "pipeline"}
	yes := true
	in := DecisionInput{AdvertiserID: "acme", AdID: "ad-1", Action: ActionAdRemoval, PolicyCode: "crypto",
		Ground: "terms", Explanation: "e", Facts: "f", Source: "voluntary", AutomatedDetection: &yes, AutomatedDecision: "none"}
	counts := map[int]int{1: 25, 2: 5, 3: 3}
	var appealed string
	for v := 1; v <= 3; v++ {
		_, err := s.PutPolicy(ctx, admin, "crypto", PolicyInput{Title: "Crypto", Text: "No crypto ads, take " + string(rune('0'+v))})
		require.NoError(t, err)
		for i := 0; i < counts[v]; i++ {
			d, err := s.RecordDecision(ctx, enforcer, in)
			require.NoError(t, err)
			if appealed == "" {
				appealed = d.ID
			}
		}
	}
	a, err := s.FileAppeal(ctx, docket.Actor{Role: docket.RoleAdvertiser, Name: "o", AdvertiserID: "acme"}, appealed, AppealInput{Statement: "No."})
	require.NoError(t, err)

	req := ReversalInput{Versions: []int{2, 1}, Rationale: "The platform no longer bans crypto ads."}
	crash := errors.New("crash")
	_, err = s.reversePolicyVersions(ctx, admin, "crypto", req, 10, func(reversed int) error {
		if reversed >= 20 {
			return crash
		}
		return nil
	}, nil)
	require.ErrorIs(t, err, crash)
	reversedCount := func() int {
		var n int
		require.NoError(t, db.Get(&n, `SELECT count(*) FROM decisions WHERE status = 'reversed'`))
		return n
	}
	require.Equal(t, 20, reversedCount())

	rep, err := s.ReversePolicyVersions(ctx, admin, "crypto", req)
	require.NoError(t, err)
	require.Equal(t, 10, rep.Reversed)
	require.Equal(t, 30, rep.TotalReversed)
	require.Equal(t, 30, reversedCount())
	require.NotNil(t, rep.CompletedAt)
	require.Equal(t, "admin:ada", rep.RequestedBy)

	// The same request, versions in another order, is the same job.
	rep, err = s.ReversePolicyVersions(ctx, admin, "crypto", ReversalInput{Versions: []int{1, 2}, Rationale: req.Rationale})
	require.NoError(t, err)
	require.Zero(t, rep.Reversed)
	require.Equal(t, 30, rep.TotalReversed)

	var perDecision []int
	require.NoError(t, db.Select(&perDecision, `SELECT count(*) FROM audit_staging WHERE type = 'decision.reversed' GROUP BY subject_id`))
	require.Len(t, perDecision, 30)
	for _, n := range perDecision {
		require.Equal(t, 1, n)
	}
	var v3 int
	require.NoError(t, db.Get(&v3, `SELECT count(*) FROM decisions WHERE policy_version = 3 AND status = 'in_effect'`))
	require.Equal(t, 3, v3)

	// The open appeal of a reversed decision was answered by the reversal.
	got, err := s.Appeal(ctx, admin, a.ID)
	require.NoError(t, err)
	require.Equal(t, AppealReversed, got.State)
	require.Equal(t, req.Rationale, *got.Rationale)
	var resolved int
	require.NoError(t, db.Get(&resolved, `SELECT count(*) FROM audit_staging WHERE type = 'appeal.resolved'`))
	require.Equal(t, 1, resolved)

	// Refusals.
	_, err = s.ReversePolicyVersions(ctx, docket.Actor{Role: docket.RoleReviewer, Name: "rita"}, "crypto", req)
	require.Equal(t, docket.Forbidden, docket.ErrorCode(err))
	_, err = s.ReversePolicyVersions(ctx, admin, "crypto", ReversalInput{Versions: []int{9}, Rationale: "x"})
	require.Equal(t, docket.Invalid, docket.ErrorCode(err))
	require.ErrorContains(t, err, "versions[0]")
	_, err = s.ReversePolicyVersions(ctx, admin, "nope", ReversalInput{Versions: []int{1}, Rationale: "x"})
	require.Equal(t, docket.NotFound, docket.ErrorCode(err))
	_, err = s.ReversePolicyVersions(ctx, admin, "crypto", ReversalInput{Versions: []int{1, 1, 0}})
	require.Equal(t, docket.Invalid, docket.ErrorCode(err))
	require.ErrorContains(t, err, "versions[1]: repeats 1")
	require.ErrorContains(t, err, "rationale: is required")
}

// A reversal under way in one run and another run at the same time never
// reverse one decision twice.
func TestBulkReversalConcurrentRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	s := NewStore(db, Options{})
	admin := docket.Actor{Role: docket.RoleAdmin, Name: "ada"}
	_, err := s.PutPolicy(ctx, admin, "crypto", PolicyInput{Title: "Crypto", Text: "No crypto ads."})
	require.NoError(t, err)
	yes := true
	in := DecisionInput{AdvertiserID: "acme", Action: ActionAdvertiserBan, PolicyCode: "crypto",
		Ground: "terms", Explanation: "e", Facts: "f", Source: "voluntary", AutomatedDetection: &yes, AutomatedDecision: "none"}
	for i := 0; i < 60; i++ {
		_, err := s.RecordDecision(ctx, admin, in)
		require.NoError(t, err)
	}
	req := ReversalInput{Versions: []int{1}, Rationale: "Withdrawn."}
	reps := make([]ReversalReport, 3)
	errs := make([]error, 3)
	done := make(chan int)
	for i := range reps {
		go func() { reps[i], errs[i] = s.reversePolicyVersions(ctx, admin, "crypto", req, 7, nil, nil); done <- i }()
	}
	for range reps {
		<-done
	}
	sum := 0
	for i := range reps {
		require.NoError(t, errs[i])
		sum += reps[i].Reversed
		require.Equal(t, 60, reps[i].TotalReversed)
	}
	require.Equal(t, 60, sum)
	var entries int
	require.NoError(t, db.Get(&entries, `SELECT count(*) FROM audit_staging WHERE type = 'decision.reversed'`))
	require.Equal(t, 60, entries)
}

// TestQueueStatementsReadTheirRows guards the queue's statements against
// plans that read the appeals' history: each finds its rows by index, with
// statistics taken while the queue was new and in the generic plans that
// prepared statements come to use, where the planner cannot know how many
// ids an array holds. (Resolutions, and the release sweep, once walked
// every lease ever granted, through an index that kept them all.)
func TestQueueStatementsReadTheirRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, now := queueFixture(t, 5000, 0, "")
	_, err := db.Exec(`ANALYZE appeals`)
	require.NoError(t, err)
	// History the statistics do not know of: most appeals claimed and
	// resolved (as the store does, leases kept), a few through the store.
	_, err = db.Exec(`UPDATE appeals SET state = 'upheld', outcome = 'upheld', rationale = 'ok',
		assigned_to = 'reviewer:rita', claimed_at = $1, lease_until = $1::timestamptz + interval '30 minutes',
		resolved_by = 'reviewer:rita', resolved_at = $1 WHERE id <= 'a-004980'`, now)
	require.NoError(t, err)
	rita := docket.Actor{Role: docket.RoleReviewer, Name: "rita"}
	for range 10 {
		a, err := s.Claim(ctx, rita)
		require.NoError(t, err)
		require.NotNil(t, a)
		_, err = s.Resolve(ctx, rita, a.ID, ResolveInput{Outcome: AppealUpheld, Rationale: "Checked."})
		require.NoError(t, err)
	}
	a, err := s.Claim(ctx, rita)
	require.NoError(t, err)
	require.NotNil(t, a)

	entry, err := audit.StageArrays([]audit.Entry{appealEntry(EntryAppealResolved, rita, now, *a, nil)})
	require.NoError(t, err)
	one := pq.StringArray{a.ID}
	var seen string
	require.NoError(t, db.Get(&seen, `SELECT xmin::text FROM appeals WHERE id = $1`, a.ID))
	for _, c := range []struct {
		name, query string
		args        []any
		custom      bool // not prepared by the store, so planned for its values
	}{
		{"read", readAppealsQuery, []any{one}, false},
		{"lock", lockAppealsQuery, []any{one}, false},
		{"resolve", applyResolutionsQuery(), append([]any{one, pq.StringArray{"upheld"}, pq.StringArray{"ok"},
			pq.StringArray{rita.String()}, now, pq.StringArray{seen}}, entry...), false},
		{"candidates", candidatesQuery(false), []any{now, 9}, false},
		{"peek", peekQuery(false), []any{now, 9}, false},
		{"next", nextQuery(false), []any{now, "rita", one}, true},
		// An hour on, every lease of the history has lapsed too; the sweep
		// must not read them (the first lease index held them all).
		{"lapsed", lapsedQuery, []any{now.Add(time.Hour), releaseBatch}, true},
		{"claim", applyClaimsQuery(), append([]any{one, pq.StringArray{"in_review"}, pq.StringArray{rita.String()},
			now, now, pq.StringArray{seen}}, entry...), false},
	} {
		removed, scanned := explain(t, db, !c.custom, c.name, c.query, c.args...)
		require.False(t, scanned, "%s: sequential scan of appeals", c.name)
		require.LessOrEqual(t, removed, 5, "%s: read past %d rows", c.name, removed)
	}
}

// explain runs query as a prepared statement, named name, forced to its
// generic plan when generic, in a transaction it rolls back, and reports
// the rows its plan read and dropped, and whether it scanned the appeals
// table whole.
func explain(t *testing.T, db *sqlx.DB, generic bool, name, query string, args ...any) (removed int, seqScan bool) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback()
	if generic {
		_, err = tx.Exec(`SET LOCAL plan_cache_mode = force_generic_plan`)
		require.NoError(t, err)
	}
	// A prepared statement outlives the transaction, on its connection.
	_, err = tx.Exec(`PREPARE ` + name + ` AS ` + query)
	require.NoError(t, err)
	defer tx.Exec(`DEALLOCATE ` + name)
	// EXECUTE takes no bind parameters: the arguments go in as literals.
	params := make([]string, len(args))
	for i, a := range args {
		if v, ok := a.(driver.Valuer); ok {
			a, err = v.Value()
			require.NoError(t, err)
		}
		switch a := a.(type) {
		case string:
			params[i] = pq.QuoteLiteral(a)
		case []byte:
			params[i] = pq.QuoteLiteral(`\x` + hex.EncodeToString(a))
		case time.Time:
			params[i] = pq.QuoteLiteral(a.Format(time.RFC3339Nano))
		default:
			params[i] = fmt.Sprint(a)
		}
	}
	var plan []byte
	require.NoError(t, tx.GetContext(ctx, &plan, `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE `+name+`(`+strings.Join(params, ", ")+`)`))
	var nodes any
	require.NoError(t, json.Unmarshal(plan, &nodes))
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["Rows Removed by Filter"].(float64); ok {
				removed += int(r)
			}
			if v["Node Type"] == "Seq Scan" && v["Relation Name"] == "appeals" {
				seqScan = true
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(nodes)
	if removed > 5 || seqScan {
		t.Logf("plan:\n%s", plan)
	}
	return removed, seqScan
}
