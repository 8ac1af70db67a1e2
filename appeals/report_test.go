package appeals_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/internal/pgtest"
)

// TestAppealsReport computes the figures on a seeded history and compares
// them with values worked out by hand (see the comments).
func TestAppealsReport(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	store := appeals.NewStore(db, appeals.Options{Now: func() time.Time { return now }})
	admin := docket.Actor{Role: docket.RoleAdmin, Name: "ada"}
	for _, code := range []string{"crypto", "gambling"} {
		_, err := store.PutPolicy(ctx, admin, code, appeals.PolicyInput{Title: code, Text: "Rules on " + code})
		require.NoError(t, err)
	}
	enforcer := docket.Actor{Role: docket.RoleEnforcer, Name: "pipeline"}
	decide := func(at time.Duration, policy string, action appeals.Action, automated appeals.AutomatedDecision, detected bool) string {
		now = t0.Add(at)
		in := appeals.DecisionInput{AdvertiserID: "acme", Action: action, PolicyCode: policy, Ground: "terms",
			Explanation: "e", Facts: "f", Source: "voluntary", AutomatedDetection: &detected, AutomatedDecision: automated}
		if action != appeals.ActionAdvertiserBan {
			in.AdID = "ad-1"
		}
		d, err := store.RecordDecision(ctx, enforcer, in)
		require.NoError(t, err)
		return d.ID
	}
	day := 24 * time.Hour
	d1 := decide(1*time.Hour, "crypto", "ad_removal", "full", true)
	d2 := decide(2*time.Hour, "crypto", "advertiser_ban", "none", false)
	d3 := decide(3*time.Hour, "gambling", "ad_restriction", "partial", true)
	d4 := decide(4*time.Hour, "gambling", "ad_removal", "partial", false)
	d5 := decide(40*day, "crypto", "ad_removal", "full", true) // after the period
	// Notices 10, 30 and 20 minutes after d1, d2, d3; d4 was never notified.
	_, err := db.Exec(`UPDATE decisions SET notified_at = decided_at + CASE id
		WHEN $1 THEN interval '10 minutes' WHEN $2 THEN interval '30 minutes' WHEN $3 THEN interval '20 minutes' END
		WHERE id IN ($1, $2, $3)`, d1, d2, d3)
	require.NoError(t, err)

	appeal := func(id, decision, state string, filed, due time.Duration, resolved *time.Duration) {
		var outcome, rationale, resolvedBy, resolvedAt, withdrawnAt any
		switch state {
		case "upheld", "reversed":
			outcome, rationale, resolvedBy, resolvedAt = state, "because", "reviewer:rita", t0.Add(*resolved)
		case "withdrawn":
			withdrawnAt = t0.Add(*resolved)
		}
		_, err := db.Exec(`INSERT INTO appeals (id, decision_id, advertiser_id, decider_name, policy_code, state, statement, filed_by,
			filed_at, due_at, outcome, rationale, resolved_by, resolved_at, withdrawn_at)
			VALUES ($1, $2, 'acme', 'pipeline', (SELECT policy_code FROM decisions WHERE id = $2), $3, 'unfair', 'advertiser:acme-owner', $4, $5, $6, $7, $8, $9, $10)`,
			id, decision, state, t0.Add(filed), t0.Add(due), outcome, rationale, resolvedBy, resolvedAt, withdrawnAt)
		require.NoError(t, err)
	}
	dur := func(d time.Duration) *time.Duration { return &d }
	appeal("a1", d1, "upheld", 1*day, 8*day, dur(2*day))                // resolved in 1 day
	appeal("a2", d2, "reversed", 1*day, 8*day, dur(1*day+12*time.Hour)) // resolved in 12 hours
	appeal("a3", d3, "reversed", 2*day, 9*day, dur(12*day))             // resolved in 10 days, after its due time
	appeal("a4", d4, "pending", 2*day, 9*day, nil)                      // open past its due time
	appeal("a5", d1, "withdrawn", 3*day, 10*day, dur(4*day))            // a second appeal of d1, withdrawn
	appeal("a6", d5, "pending", 41*day, 48*day, nil)                    // filed after the period
	now = t0.Add(45 * day)

	rep, err := store.AppealsReport(ctx, docket.Actor{Role: docket.RoleAuditor, Name: "audrey"},
		appeals.Period{From: t0, To: t0.Add(20 * day)})
	require.NoError(t, err)
	f := func(v float64) *float64 { return &v }
	counts := func(kv ...any) map[string]int64 {
		m := map[string]int64{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = int64(kv[i+1].(int))
		}
		return m
	}
	outcomes := func(pending, upheld, reversed, withdrawn int) map[string]int64 {
		return counts("pending", pending, "in_review", 0, "escalated", 0, "upheld", upheld, "reversed", reversed, "withdrawn", withdrawn)
	}
	require.Equal(t, appeals.Figures{
		Decisions:          4,
		ByAction:           counts("advertiser_ban", 1, "ad_removal", 2, "ad_restriction", 1),
		ByAutomation:       counts("none", 1, "partial", 2, "full", 1),
		AutomatedDetection: 2, Notified: 3,
		MedianNoticeSeconds: f(1200), // 600, 1200, 1800
		AppealsFiled:        5, Outcomes: outcomes(1, 1, 2, 1), Open: 1,
		ReversalRate:         f(2.0 / 3),
		MedianResolveSeconds: f(86400),  // 43200, 86400, 864000
		P90ResolveSeconds:    f(708480), // 86400 + 0.8 * (864000 - 86400)
		Overdue:              1, ResolvedLate: 1,
	}, rep.Overall)
	require.Equal(t, []appeals.PolicyFigures{
		{Policy: "crypto", Figures: appeals.Figures{
			Decisions: 2, ByAction: counts("advertiser_ban", 1, "ad_removal", 1, "ad_restriction", 0),
			ByAutomation: counts("none", 1, "partial", 0, "full", 1), AutomatedDetection: 1, Notified: 2,
			MedianNoticeSeconds: f(1200), // 600, 1800
			AppealsFiled:        3, Outcomes: outcomes(0, 1, 1, 1), Open: 0, ReversalRate: f(0.5),
			MedianResolveSeconds: f(64800), // 43200, 86400
			P90ResolveSeconds:    f(82080), // 43200 + 0.9 * 43200
		}},
		{Policy: "gambling", Figures: appeals.Figures{
			Decisions: 2, ByAction: counts("advertiser_ban", 0, "ad_removal", 1, "ad_restriction", 1),
			ByAutomation: counts("none", 0, "partial", 2, "full", 0), AutomatedDetection: 1, Notified: 1,
			MedianNoticeSeconds: f(1200),
			AppealsFiled:        2, Outcomes: outcomes(1, 0, 1, 0), Open: 1, ReversalRate: f(1),
			MedianResolveSeconds: f(864000), P90ResolveSeconds: f(864000), Overdue: 1, ResolvedLate: 1,
		}},
	}, rep.Policies)
	require.Equal(t, t0, *rep.From)
	require.Equal(t, now, rep.AsOf)

	// JSON names, CSV and the table carry the same figures.
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	require.Contains(t, string(b), `"reversal_rate":0.6666666666666666`)
	require.Contains(t, string(b), `"median_time_to_resolve_seconds":86400`)
	var buf bytes.Buffer
	require.NoError(t, rep.WriteCSV(&buf))
	recs, err := csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 4)
	require.Equal(t, []string{"", "4"}, recs[1][:2])
	require.Equal(t, "gambling", recs[3][0])
	buf.Reset()
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	require.NoError(t, rep.WriteTable(tw))
	require.NoError(t, tw.Flush())
	require.Contains(t, buf.String(), "66.7%")
	require.Contains(t, buf.String(), "10.0d")

	// An empty period has zero counts and null times.
	rep, err = store.AppealsReport(ctx, admin, appeals.Period{From: t0.Add(100 * day), To: t0.Add(101 * day)})
	require.NoError(t, err)
	require.Zero(t, rep.Overall.Decisions)
	require.Nil(t, rep.Overall.ReversalRate)
	require.Empty(t, rep.Policies)

	_, err = store.AppealsReport(ctx, enforcer, appeals.Period{})
	require.Equal(t, docket.Forbidden, docket.ErrorCode(err))
}
