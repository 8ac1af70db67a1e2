package appeals_test

import (
	"github.com/docket-dev/docket"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/appeals"
)

// The reads behind the consoles' pages (api/console), each tested here
// where the rules live: the policy pages (ListPolicies, Policy,
// PolicyVersion, PolicyVersions), the bulk reversal's preview
// (CountReversible), the charts (ReportSeries) and the queue's counts
// (QueueDepth).

// Policies read as the admins' pages read them: every version oldest
// first, one version, the current one, and the current versions by code,
// page by page.
func TestPolicyReads(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.store.PutPolicy(f.ctx, admin, "crypto", appeals.PolicyInput{Title: "Crypto", Text: "No crypto ads, unless licensed."})
	require.NoError(t, err)
	rev, err := f.store.PutPolicy(f.ctx, admin, "crypto", appeals.PolicyInput{Title: "Crypto", Text: "No crypto ads, unless licensed."})
	require.NoError(t, err)
	require.False(t, rev.Created, "the same text is no new version")
	for _, code := range []string{"gambling", "alcohol"} {
		_, err = f.store.PutPolicy(f.ctx, admin, code, appeals.PolicyInput{Title: code, Text: "No " + code + " ads."})
		require.NoError(t, err)
	}

	vs, err := f.store.PolicyVersions(f.ctx, "crypto")
	require.NoError(t, err)
	require.Len(t, vs, 2)
	require.Equal(t, 1, vs[0].Version)
	require.Equal(t, "No crypto ads.", vs[0].Text)
	require.Equal(t, 2, vs[1].Version)
	require.Equal(t, "No crypto ads, unless licensed.", vs[1].Text)
	require.NotEqual(t, vs[0].TextSHA256, vs[1].TextSHA256)

	cur, err := f.store.Policy(f.ctx, "crypto")
	require.NoError(t, err)
	require.Equal(t, vs[1], cur)
	v1, err := f.store.PolicyVersion(f.ctx, "crypto", 1)
	require.NoError(t, err)
	require.Equal(t, vs[0], v1)

	_, err = f.store.PolicyVersion(f.ctx, "crypto", 3)
	requireCode(t, err, docket.NotFound)
	_, err = f.store.PolicyVersions(f.ctx, "nope")
	requireCode(t, err, docket.NotFound, "nope")
	_, err = f.store.Policy(f.ctx, "nope")
	requireCode(t, err, docket.NotFound)
	// A code that cannot exist is not found; bytes no text holds are invalid.
	for _, bad := range []string{"", "Crypto", "no spaces", strings.Repeat("a", 65)} {
		_, err = f.store.PolicyVersions(f.ctx, bad)
		requireCode(t, err, docket.NotFound)
		_, err = f.store.PolicyVersion(f.ctx, bad, 1)
		requireCode(t, err, docket.NotFound)
	}
	for _, bad := range []string{"crypto\x00", "\xff"} {
		_, err = f.store.PolicyVersions(f.ctx, bad)
		requireCode(t, err, docket.Invalid)
		_, err = f.store.PolicyVersion(f.ctx, bad, 1)
		requireCode(t, err, docket.Invalid)
	}

	page, err := f.store.ListPolicies(f.ctx, appeals.PageRequest{Limit: 2})
	require.NoError(t, err)
	require.Len(t, page.Items, 2)
	require.Equal(t, "alcohol", page.Items[0].Code)
	require.Equal(t, "crypto", page.Items[1].Code)
	require.Equal(t, 2, page.Items[1].Version, "the current version only")
	require.NotEmpty(t, page.NextCursor)
	page, err = f.store.ListPolicies(f.ctx, appeals.PageRequest{Limit: 2, Cursor: page.NextCursor})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	require.Equal(t, "gambling", page.Items[0].Code)
	require.Empty(t, page.NextCursor)
	_, err = f.store.ListPolicies(f.ctx, appeals.PageRequest{Cursor: "not a cursor"})
	requireCode(t, err, docket.Invalid)
}

// CountReversible counts what ReversePolicyVersions then reverses: the
// decisions in effect under the versions (not those reversed or ended),
// with their open appeals, under the same role and checks, changing
// nothing.
func TestCountReversible(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.decision(appeals.ActionAdRemoval) // in effect, no appeal
	appealed := f.decision(appeals.ActionAdRemoval)
	reversed := f.decision(appeals.ActionAdRemoval)
	in := decisionInput(appeals.ActionAdRemoval)
	in.EndsAt = f.clk.Now().Add(time.Hour).Format(time.RFC3339)
	_, err := f.store.RecordDecision(f.ctx, enforcer, in) // ends before the preview
	require.NoError(t, err)
	a := f.file(reversed)
	f.claim(rita)
	f.resolve(rita, a.ID, appeals.AppealReversed)
	f.file(appealed) // open
	_, err = f.store.PutPolicy(f.ctx, admin, "crypto", appeals.PolicyInput{Title: "Crypto", Text: "No crypto ads, unless licensed."})
	require.NoError(t, err)
	v2 := f.decision(appeals.ActionAdRemoval)
	require.Equal(t, 2, v2.PolicyVersion)
	f.clk.Add(2 * time.Hour)

	before := f.entries()
	prev, err := f.store.CountReversible(f.ctx, admin, "crypto", []int{1})
	require.NoError(t, err)
	require.Equal(t, appeals.ReversalPreview{PolicyCode: "crypto", ByVersion: map[int]int64{1: 2}, Total: 2, OpenAppeals: 1}, prev)
	prev, err = f.store.CountReversible(f.ctx, admin, "crypto", []int{1, 2})
	require.NoError(t, err)
	require.Equal(t, map[int]int64{1: 2, 2: 1}, prev.ByVersion)
	require.Equal(t, int64(3), prev.Total)
	require.Equal(t, before, f.entries(), "a preview writes nothing")

	_, err = f.store.CountReversible(f.ctx, rita, "crypto", []int{1})
	requireCode(t, err, docket.Forbidden)
	_, err = f.store.CountReversible(f.ctx, auditor, "crypto", []int{1})
	requireCode(t, err, docket.Forbidden)
	_, err = f.store.CountReversible(f.ctx, admin, "Crypto!", []int{1})
	requireCode(t, err, docket.Invalid)
	_, err = f.store.CountReversible(f.ctx, admin, "crypto", nil)
	requireCode(t, err, docket.Invalid)
	_, err = f.store.CountReversible(f.ctx, admin, "crypto", []int{1, 9})
	requireCode(t, err, docket.Invalid, "versions[1]", "no version 9")
	_, err = f.store.CountReversible(f.ctx, admin, "nope", []int{1})
	requireCode(t, err, docket.NotFound)

	rep, err := f.store.ReversePolicyVersions(f.ctx, admin, "crypto", appeals.ReversalInput{Versions: []int{1}, Rationale: "Version 1 was too broad."})
	require.NoError(t, err)
	require.Equal(t, 2, rep.Reversed, "the reversal reverses what the preview counted")
	prev, err = f.store.CountReversible(f.ctx, admin, "crypto", []int{1})
	require.NoError(t, err)
	require.Equal(t, int64(0), prev.Total)
	require.Equal(t, int64(0), prev.OpenAppeals)
}

// ReportSeries: appeals filed and resolved per ISO week, the times to
// resolve in buckets, and the median time to notice per advertiser, for
// auditors and admins only.
func TestReportSeries(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *appeals.Options) { o.ClaimLease = 72 * time.Hour })
	t0 := f.clk.Now() // Monday 2 November 2026
	week1, week2 := t0.Truncate(24*time.Hour), t0.Truncate(24*time.Hour).AddDate(0, 0, 7)
	d1, d2 := f.decision(appeals.ActionAdRemoval), f.decision(appeals.ActionAdRemoval)
	in := decisionInput(appeals.ActionAdRemoval)
	in.AdvertiserID = "globex"
	d3, err := f.store.RecordDecision(f.ctx, enforcer, in)
	require.NoError(t, err)
	f.clk.Add(4 * time.Hour)
	for d, after := range map[string]time.Duration{d1.ID: time.Hour, d2.ID: 3 * time.Hour, d3.ID: 4 * time.Hour} {
		_, err := f.store.RecordNotice(f.ctx, enforcer, d, appeals.NoticeInput{Channel: "email",
			DeliveredAt: t0.Add(after).Format(time.RFC3339)})
		require.NoError(t, err)
	}

	// Week 1: one appeal, resolved in 20 minutes.
	a := f.file(d1)
	f.claim(rita)
	f.clk.Add(20 * time.Minute)
	f.resolve(rita, a.ID, appeals.AppealUpheld)
	// Week 2: one resolved in two days, one still open.
	f.clk.Add(8 * 24 * time.Hour)
	b, err := f.store.FileAppeal(f.ctx, globex, d3.ID, appeals.AppealInput{Statement: "Licensed."})
	require.NoError(t, err)
	f.claim(rita)
	f.file(d2)
	f.clk.Add(2 * 24 * time.Hour)
	f.resolve(rita, b.ID, appeals.AppealReversed)

	s, err := f.store.ReportSeries(f.ctx, auditor, appeals.Period{})
	require.NoError(t, err)
	require.Equal(t, []appeals.WeekCounts{{Week: week1, Filed: 1, Resolved: 1}, {Week: week2, Filed: 2, Resolved: 1}}, s.Weeks)
	buckets := map[string]int64{}
	for _, b := range s.Resolve {
		buckets[b.Label] = b.N
	}
	require.Len(t, s.Resolve, 6, "every bucket, empty ones too")
	require.Equal(t, map[string]int64{"under 1 hour": 1, "1 to 6 hours": 0, "6 to 24 hours": 0, "1 to 3 days": 1,
		"3 to 7 days": 0, "over 7 days": 0}, buckets)
	require.Equal(t, []appeals.AdvertiserNotice{
		{AdvertiserID: "acme", Decisions: 2, MedianSeconds: 2 * 3600}, // 1 h and 3 h
		{AdvertiserID: "globex", Decisions: 1, MedianSeconds: 4 * 3600},
	}, s.Notice)

	// A period: only what was filed, or decided, in it.
	s, err = f.store.ReportSeries(f.ctx, admin, appeals.Period{From: week2})
	require.NoError(t, err)
	require.Equal(t, []appeals.WeekCounts{{Week: week2, Filed: 2, Resolved: 1}}, s.Weeks)
	require.Empty(t, s.Notice)

	for _, who := range []docket.Actor{rita, acme, enforcer} {
		_, err = f.store.ReportSeries(f.ctx, who, appeals.Period{})
		requireCode(t, err, docket.Forbidden)
	}
	_, err = f.store.ReportSeries(f.ctx, auditor, appeals.Period{From: week2, To: week1})
	requireCode(t, err, docket.Invalid)
}

// QueueDepth counts the open appeals by state, and those past their due date.
func TestQueueDepth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	empty, err := f.store.QueueDepth(f.ctx, f.clk.Now())
	require.NoError(t, err)
	require.Equal(t, appeals.QueueDepth{}, empty)

	escalated := f.file(f.decision(appeals.ActionAdRemoval))
	f.claim(rita)
	_, err = f.store.Escalate(f.ctx, rita, escalated.ID, appeals.EscalateInput{Reason: "A legal question."})
	require.NoError(t, err)
	f.clk.Add(time.Minute)
	f.file(f.decision(appeals.ActionAdRemoval))
	f.claim(rita)
	f.clk.Add(time.Minute)
	f.file(f.decision(appeals.ActionAdRemoval))
	f.clk.Add(time.Minute)
	withdrawn := f.file(f.decision(appeals.ActionAdRemoval))
	_, err = f.store.Withdraw(f.ctx, acme, withdrawn.ID)
	require.NoError(t, err)

	d, err := f.store.QueueDepth(f.ctx, f.clk.Now())
	require.NoError(t, err)
	require.Equal(t, appeals.QueueDepth{Pending: 1, InReview: 1, Escalated: 1}, d)
	d, err = f.store.QueueDepth(f.ctx, f.clk.Now().Add(8*24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, appeals.QueueDepth{Pending: 1, InReview: 1, Escalated: 1, Overdue: 3}, d, "withdrawn is not overdue")
}
