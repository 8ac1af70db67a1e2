package appeals_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/internal/logtest"
	"github.com/docket-dev/docket/internal/pgtest"
)

// clock is a test's controllable time: deadlines move with it, not with sleeps.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var (
	enforcer  = docket.Actor{Role: docket.RoleEnforcer, Name: "pipeline"}
	admin     = docket.Actor{Role: docket.RoleAdmin, Name: "ada"}
	rita      = docket.Actor{Role: docket.RoleReviewer, Name: "rita"}
	rob       = docket.Actor{Role: docket.RoleReviewer, Name: "rob"}
	sam       = docket.Actor{Role: docket.RoleSeniorReviewer, Name: "sam"}
	acme      = docket.Actor{Role: docket.RoleAdvertiser, Name: "acme-owner", AdvertiserID: "acme"}
	globex    = docket.Actor{Role: docket.RoleAdvertiser, Name: "globex-owner", AdvertiserID: "globex"}
	auditor   = docket.Actor{Role: docket.RoleAuditor, Name: "audrey"}
	deciderRv = docket.Actor{Role: docket.RoleReviewer, Name: "pipeline"} // the enforcer's name as a reviewer
)

type fixture struct {
	t     *testing.T
	ctx   context.Context
	db    *sqlx.DB
	clk   *clock
	store *appeals.Store
}

func newFixture(t *testing.T, opts ...func(*appeals.Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), db: pgtest.New(t),
		clk: &clock{t: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}}
	o := appeals.Options{Now: f.clk.Now}
	for _, fn := range opts {
		fn(&o)
	}
	f.store = appeals.NewStore(f.db, o)
	_, err := f.store.PutPolicy(f.ctx, admin, "crypto", appeals.PolicyInput{Title: "Crypto", Text: "No crypto ads."})
	require.NoError(t, err)
	return f
}

func decisionInput(action appeals.Action) appeals.DecisionInput {
	in := benchDecision()
	in.Action = action
	if action == appeals.ActionAdvertiserBan {
		in.AdID = ""
	}
	return in
}

func (f *fixture) decision(action appeals.Action) appeals.Decision {
	f.t.Helper()
	d, err := f.store.RecordDecision(f.ctx, enforcer, decisionInput(action))
	require.NoError(f.t, err)
	return d
}

func (f *fixture) file(d appeals.Decision) appeals.Appeal {
	f.t.Helper()
	a, err := f.store.FileAppeal(f.ctx, acme, d.ID, appeals.AppealInput{Statement: "The ad sold a licensed product.",
		Evidence: []appeals.EvidenceItem{{Description: "Licence", URL: "https://example.com/licence.pdf"}}})
	require.NoError(f.t, err)
	return a
}

func (f *fixture) claim(by docket.Actor) appeals.Appeal {
	f.t.Helper()
	a, err := f.store.Claim(f.ctx, by)
	require.NoError(f.t, err)
	require.NotNil(f.t, a, "nothing to claim for %s", by)
	return *a
}

func (f *fixture) resolve(by docket.Actor, id string, outcome appeals.AppealState) appeals.Appeal {
	f.t.Helper()
	a, err := f.store.Resolve(f.ctx, by, id, appeals.ResolveInput{Outcome: outcome, Rationale: "Reviewed the licence."})
	require.NoError(f.t, err)
	return a
}

// entries counts the staged audit entries by type.
func (f *fixture) entries() map[string]int {
	f.t.Helper()
	return logtest.EntryTypes(f.t, f.db)
}

// entry returns the last staged entry of a type about subject, parsed.
func (f *fixture) entry(typ, subject string) map[string]any {
	f.t.Helper()
	var b []byte
	require.NoError(f.t, f.db.Get(&b, `SELECT entry FROM audit_staging WHERE type = $1 AND subject_id = $2
		ORDER BY id DESC LIMIT 1`, typ, subject))
	var m map[string]any
	require.NoError(f.t, json.Unmarshal(b, &m))
	return m
}

func requireCode(t *testing.T, err error, code docket.Code, contains ...string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, docket.ErrorCode(err), "%v", err)
	for _, s := range contains {
		require.Contains(t, err.Error(), s)
	}
}

func TestAppealUpheld(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d := f.decision(appeals.ActionAdvertiserBan)
	a := f.file(d)
	require.Equal(t, appeals.AppealPending, a.State)
	require.Equal(t, d.ID, a.DecisionID)
	require.Equal(t, "acme", a.AdvertiserID)
	require.Equal(t, "advertiser:acme-owner", a.FiledBy)
	require.Equal(t, f.clk.Now().Add(7*24*time.Hour), a.DueAt)
	require.Len(t, a.Evidence, 1)

	c := f.claim(rita)
	require.Equal(t, a.ID, c.ID)
	require.Equal(t, appeals.AppealInReview, c.State)
	require.Equal(t, "reviewer:rita", *c.AssignedTo)
	require.Equal(t, f.clk.Now().Add(30*time.Minute), *c.LeaseUntil)

	r := f.resolve(rita, a.ID, appeals.AppealUpheld)
	require.Equal(t, appeals.AppealUpheld, r.State)
	require.Equal(t, appeals.AppealUpheld, *r.Outcome)
	require.Equal(t, "reviewer:rita", *r.ResolvedBy)
	require.NotNil(t, r.ResolvedAt)
	require.Equal(t, "Reviewed the licence.", *r.Rationale)

	got, err := f.store.Decision(f.ctx, acme, d.ID)
	require.NoError(t, err)
	require.Equal(t, appeals.StatusInEffect, got.Status)
	require.Nil(t, got.ReversedAt)

	require.Equal(t, map[string]int{"policy.revised": 1, "decision.recorded": 1, "appeal.filed": 1,
		"appeal.claimed": 1, "appeal.resolved": 1}, f.entries())
	e := f.entry("appeal.filed", a.ID)
	require.Equal(t, []any{map[string]any{"kind": "decision", "id": d.ID}}, e["refs"])
	require.Equal(t, "advertiser:acme-owner", e["actor"])
}

func TestAppealReversedReversesDecision(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tc := range []struct {
		action appeals.Action
		effect string
	}{
		{appeals.ActionAdRemoval, "ad_may_run"},
		{appeals.ActionAdvertiserBan, "advertiser_reinstated"},
	} {
		d := f.decision(tc.action)
		a := f.file(d)
		f.claim(rita)
		f.clk.Add(time.Minute)
		r := f.resolve(rita, a.ID, appeals.AppealReversed)
		require.Equal(t, appeals.AppealReversed, r.State)

		got, err := f.store.Decision(f.ctx, rita, d.ID)
		require.NoError(t, err)
		require.Equal(t, appeals.StatusReversed, got.Status)
		require.Equal(t, a.ID, *got.ReversedByAppeal)
		require.Equal(t, f.clk.Now(), *got.ReversedAt)

		e := f.entry("decision.reversed", d.ID)
		require.Equal(t, "reviewer:rita", e["actor"])
		require.Equal(t, []any{map[string]any{"kind": "appeal", "id": a.ID}}, e["refs"])
		rec := e["record"].(map[string]any)
		require.Equal(t, "acme", rec["advertiser_id"])
		require.Equal(t, string(tc.action), rec["action"])
		require.Equal(t, tc.effect, rec["effect"])
		require.Equal(t, "reversed", rec["status"])
		if tc.action == appeals.ActionAdRemoval {
			require.Equal(t, "ad-1", rec["ad_id"])
		}
	}
	ents := f.entries()
	require.Equal(t, 2, ents["decision.reversed"])
	require.Equal(t, 2, ents["appeal.resolved"])
}

func TestFileRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *appeals.Options) { o.AppealWindow = 48 * time.Hour })
	d := f.decision(appeals.ActionAdRemoval)
	in := appeals.AppealInput{Statement: "Wrong."}

	for _, by := range []docket.Actor{rita, sam, enforcer, admin, auditor} {
		_, err := f.store.FileAppeal(f.ctx, by, d.ID, in)
		requireCode(t, err, docket.Forbidden)
	}
	_, err := f.store.FileAppeal(f.ctx, globex, d.ID, in)
	requireCode(t, err, docket.NotFound)
	_, err = f.store.FileAppeal(f.ctx, acme, "no-such-decision", in)
	requireCode(t, err, docket.NotFound)

	_, err = f.store.FileAppeal(f.ctx, acme, d.ID, appeals.AppealInput{Statement: strings.Repeat("x", 5001),
		Evidence: []appeals.EvidenceItem{{Description: "a", URL: "ftp://x/y"}, {}, {URL: "https://ok.example/x"}}})
	requireCode(t, err, docket.Invalid)
	var de *docket.Error
	require.ErrorAs(t, err, &de)
	var fields []string
	for _, fe := range de.Fields {
		fields = append(fields, fe.Field)
	}
	require.Equal(t, []string{"statement", "evidence[0].url", "evidence[1]"}, fields)
	many := make([]appeals.EvidenceItem, appeals.MaxEvidenceItems+1)
	for i := range many {
		many[i].Description = "x"
	}
	_, err = f.store.FileAppeal(f.ctx, acme, d.ID, appeals.AppealInput{Statement: " ", Evidence: many})
	requireCode(t, err, docket.Invalid, "statement: is required", "evidence: must have at most 20 items")

	a := f.file(d)
	_, err = f.store.FileAppeal(f.ctx, acme, d.ID, in)
	requireCode(t, err, docket.Conflict, a.ID, "still pending")

	// The deadline: exactly at it is still in time; a microsecond later is not.
	d2 := f.decision(appeals.ActionAdRemoval)
	f.clk.Add(48 * time.Hour)
	_, err = f.store.FileAppeal(f.ctx, acme, d2.ID, in)
	require.NoError(t, err)
	d3 := f.decision(appeals.ActionAdRemoval)
	f.clk.Add(48*time.Hour + time.Microsecond)
	_, err = f.store.FileAppeal(f.ctx, acme, d3.ID, in)
	requireCode(t, err, docket.Conflict, "deadline")

	// Not in effect: reversed, or expired.
	f = newFixture(t)
	d4 := f.decision(appeals.ActionAdRemoval)
	f.file(d4)
	f.claim(rita)
	f.resolve(rita, d4ID(f, d4), appeals.AppealReversed)
	_, err = f.store.FileAppeal(f.ctx, acme, d4.ID, in)
	requireCode(t, err, docket.Conflict, "is reversed")

	ending := decisionInput(appeals.ActionAdRemoval)
	ending.EndsAt = f.clk.Now().Add(time.Hour).Format(time.RFC3339)
	d5, err := f.store.RecordDecision(f.ctx, enforcer, ending)
	require.NoError(t, err)
	f.clk.Add(2 * time.Hour)
	_, err = f.store.FileAppeal(f.ctx, acme, d5.ID, in)
	requireCode(t, err, docket.Conflict, "is expired")
}

// d4ID returns the id of d's only open appeal.
func d4ID(f *fixture, d appeals.Decision) string {
	f.t.Helper()
	page, err := f.store.ListAppeals(f.ctx, rita, appeals.AppealFilter{DecisionID: d.ID})
	require.NoError(f.t, err)
	require.Len(f.t, page.Items, 1)
	return page.Items[0].ID
}

func TestFurtherAppealsLimit(t *testing.T) {
	t.Parallel()
	for _, further := range []int{0, 1, 2} {
		t.Run(fmt.Sprint(further), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(o *appeals.Options) { o.FurtherAppeals = &further })
			d := f.decision(appeals.ActionAdRemoval)
			// A withdrawn appeal was never resolved and does not count.
			w := f.file(d)
			_, err := f.store.Withdraw(f.ctx, acme, w.ID)
			require.NoError(t, err)
			for i := 0; i <= further; i++ {
				a := f.file(d)
				f.claim(rita)
				f.resolve(rita, a.ID, appeals.AppealUpheld)
			}
			_, err = f.store.FileAppeal(f.ctx, acme, d.ID, appeals.AppealInput{Statement: "Again."})
			requireCode(t, err, docket.Conflict, "no further appeal")
		})
	}
}

func TestConcurrentFilingOneWins(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d := f.decision(appeals.ActionAdRemoval)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.store.FileAppeal(f.ctx, acme, d.ID, appeals.AppealInput{Statement: "Mine."})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			requireCode(t, err, docket.Conflict)
		}
	}
	require.Equal(t, 1, ok)
}

// The database itself refuses a second open appeal, whatever the code does.
func TestOneOpenAppealIndex(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d := f.decision(appeals.ActionAdRemoval)
	a := f.file(d)
	_, err := f.db.Exec(`INSERT INTO appeals (id, decision_id, advertiser_id, decider_name, policy_code, state, statement, filed_by, filed_at, due_at)
		SELECT 'dup', decision_id, advertiser_id, decider_name, policy_code, 'pending', 'x', filed_by, filed_at, due_at FROM appeals WHERE id = $1`, a.ID)
	require.ErrorContains(t, err, "appeals_one_open")
}

func TestIllegalTransitions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// states builds one appeal in each state and returns them by name.
	// Each appeal is claimed right after it is filed: the queue hands out
	// the earliest due first.
	mk := func() appeals.Appeal { return f.file(f.decision(appeals.ActionAdRemoval)) }
	upheld := mk()
	f.claim(rita)
	f.resolve(rita, upheld.ID, appeals.AppealUpheld)
	reversed := mk()
	f.claim(rita)
	f.resolve(rita, reversed.ID, appeals.AppealReversed)
	escalated := mk()
	f.claim(rita)
	_, err := f.store.Escalate(f.ctx, rita, escalated.ID, appeals.EscalateInput{Reason: "Needs a lawyer."})
	require.NoError(t, err)
	inReview := mk()
	require.Equal(t, inReview.ID, f.claim(rob).ID)
	pending := mk()
	withdrawn := mk()
	_, err = f.store.Withdraw(f.ctx, acme, withdrawn.ID)
	require.NoError(t, err)

	res := appeals.ResolveInput{Outcome: "upheld", Rationale: "r"}
	esc := appeals.EscalateInput{Reason: "r"}
	for _, tc := range []struct {
		name, state string
		op          func() error
	}{
		{"resolve pending", "pending", func() error { _, err := f.store.Resolve(f.ctx, rita, pending.ID, res); return err }},
		{"escalate pending", "pending", func() error { _, err := f.store.Escalate(f.ctx, rita, pending.ID, esc); return err }},
		{"escalate escalated", "escalated", func() error { _, err := f.store.Escalate(f.ctx, sam, escalated.ID, esc); return err }},
		{"withdraw escalated", "escalated", func() error { _, err := f.store.Withdraw(f.ctx, acme, escalated.ID); return err }},
		{"resolve unclaimed escalated", "escalated", func() error { _, err := f.store.Resolve(f.ctx, sam, escalated.ID, res); return err }},
		{"resolve another's", "assigned to reviewer:rob", func() error { _, err := f.store.Resolve(f.ctx, rita, inReview.ID, res); return err }},
		{"escalate another's", "assigned to reviewer:rob", func() error { _, err := f.store.Escalate(f.ctx, rita, inReview.ID, esc); return err }},
	} {
		requireCode(t, tc.op(), docket.Conflict, tc.state)
	}
	for _, a := range []appeals.Appeal{upheld, reversed, withdrawn} {
		state := map[string]string{upheld.ID: "upheld", reversed.ID: "reversed", withdrawn.ID: "withdrawn"}[a.ID]
		_, err := f.store.Resolve(f.ctx, rita, a.ID, res)
		requireCode(t, err, docket.Conflict, "is "+state)
		_, err = f.store.Escalate(f.ctx, rita, a.ID, esc)
		requireCode(t, err, docket.Conflict, "is "+state)
		_, err = f.store.Withdraw(f.ctx, acme, a.ID)
		requireCode(t, err, docket.Conflict, "is "+state)
	}
	// Bad input is 400 before any state is looked at.
	_, err = f.store.Resolve(f.ctx, rob, inReview.ID, appeals.ResolveInput{Outcome: "maybe"})
	requireCode(t, err, docket.Invalid, "outcome", "rationale: is required")
	_, err = f.store.Escalate(f.ctx, rob, inReview.ID, appeals.EscalateInput{})
	requireCode(t, err, docket.Invalid, "reason: is required")
	_, err = f.store.Resolve(f.ctx, rob, "no-such-appeal", res)
	requireCode(t, err, docket.NotFound)
}

func TestSeparationOfDutiesAndRoles(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d := f.decision(appeals.ActionAdRemoval) // decided by enforcer "pipeline"
	a := f.file(d)

	// The decider, as a reviewer, is never handed the appeal.
	none, err := f.store.Claim(f.ctx, deciderRv)
	require.NoError(t, err)
	require.Nil(t, none)
	// Roles that never claim.
	for _, by := range []docket.Actor{enforcer, admin, acme, auditor} {
		_, err := f.store.Claim(f.ctx, by)
		requireCode(t, err, docket.Forbidden)
	}
	f.claim(rita)
	// The decider can never resolve, whatever else holds.
	_, err = f.store.Resolve(f.ctx, deciderRv, a.ID, appeals.ResolveInput{Outcome: "reversed", Rationale: "mine"})
	requireCode(t, err, docket.Forbidden, "pipeline made decision")
	_, err = f.store.Escalate(f.ctx, deciderRv, a.ID, appeals.EscalateInput{Reason: "x"})
	requireCode(t, err, docket.Forbidden)
	for _, by := range []docket.Actor{enforcer, admin, acme, globex, auditor} {
		_, err := f.store.Resolve(f.ctx, by, a.ID, appeals.ResolveInput{Outcome: "reversed", Rationale: "x"})
		requireCode(t, err, docket.Forbidden)
		_, err = f.store.Escalate(f.ctx, by, a.ID, appeals.EscalateInput{Reason: "x"})
		requireCode(t, err, docket.Forbidden)
	}
	// Withdrawal: only the advertiser; another advertiser does not see it.
	for _, by := range []docket.Actor{rita, sam, admin, enforcer, auditor} {
		_, err := f.store.Withdraw(f.ctx, by, a.ID)
		requireCode(t, err, docket.Forbidden)
	}
	_, err = f.store.Withdraw(f.ctx, globex, a.ID)
	requireCode(t, err, docket.NotFound)
	_, err = f.store.Appeal(f.ctx, globex, a.ID)
	requireCode(t, err, docket.NotFound)

	// A senior who made a decision never gets its escalated appeal.
	samAdmin := docket.Actor{Role: docket.RoleAdmin, Name: "sam"}
	d2, err := f.store.RecordDecision(f.ctx, samAdmin, decisionInput(appeals.ActionAdRemoval))
	require.NoError(t, err)
	a2 := f.file(d2)
	_, err = f.store.Resolve(f.ctx, rita, a.ID, appeals.ResolveInput{Outcome: "upheld", Rationale: "fine"})
	require.NoError(t, err)
	require.Equal(t, a2.ID, f.claim(rob).ID)
	_, err = f.store.Escalate(f.ctx, rob, a2.ID, appeals.EscalateInput{Reason: "hard"})
	require.NoError(t, err)
	none, err = f.store.Claim(f.ctx, sam)
	require.NoError(t, err)
	require.Nil(t, none)
}

func TestEscalationToSenior(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d := f.decision(appeals.ActionAdvertiserBan)
	a := f.file(d)
	f.claim(rita)
	e, err := f.store.Escalate(f.ctx, rita, a.ID, appeals.EscalateInput{Reason: "A question of law."})
	require.NoError(t, err)
	require.Equal(t, appeals.AppealEscalated, e.State)
	require.Nil(t, e.AssignedTo)
	require.Equal(t, "A question of law.", *e.EscalationReason)
	require.Equal(t, "reviewer:rita", *e.EscalatedBy)
	// Only seniors take escalated appeals.
	none, err := f.store.Claim(f.ctx, rob)
	require.NoError(t, err)
	require.Nil(t, none)
	_, err = f.store.Resolve(f.ctx, rita, a.ID, appeals.ResolveInput{Outcome: "upheld", Rationale: "x"})
	requireCode(t, err, docket.Conflict, "escalated")
	c := f.claim(sam)
	require.Equal(t, a.ID, c.ID)
	require.Equal(t, appeals.AppealEscalated, c.State)
	require.Equal(t, "senior_reviewer:sam", *c.AssignedTo)
	r := f.resolve(sam, a.ID, appeals.AppealReversed)
	require.Equal(t, "senior_reviewer:sam", *r.ResolvedBy)
	got, err := f.store.Decision(f.ctx, acme, d.ID)
	require.NoError(t, err)
	require.Equal(t, appeals.StatusReversed, got.Status)
	ents := f.entries()
	require.Equal(t, 1, ents["appeal.escalated"])
	require.Equal(t, 2, ents["appeal.claimed"])
}

func TestClaimOrderByDueAt(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *appeals.Options) { o.ReviewDue = 24 * time.Hour })
	first := f.file(f.decision(appeals.ActionAdRemoval))
	f.clk.Add(time.Hour)
	second := f.file(f.decision(appeals.ActionAdRemoval))
	f.clk.Add(time.Hour)
	// Escalated appeals keep their due_at: a senior takes the earliest first.
	f.claim(rita)
	_, err := f.store.Escalate(f.ctx, rita, first.ID, appeals.EscalateInput{Reason: "hard"})
	require.NoError(t, err)
	require.Equal(t, second.ID, f.claim(rob).ID)
	third := f.file(f.decision(appeals.ActionAdRemoval))
	require.Equal(t, first.ID, f.claim(sam).ID)
	require.Equal(t, third.ID, f.claim(sam).ID)
	none, err := f.store.Claim(f.ctx, sam)
	require.NoError(t, err)
	require.Nil(t, none)
}

func TestLeaseExpiryReturnsAppealToQueue(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *appeals.Options) { o.ClaimLease = 10 * time.Minute })
	a := f.file(f.decision(appeals.ActionAdRemoval))
	f.claim(rita)
	none, err := f.store.Claim(f.ctx, rob)
	require.NoError(t, err)
	require.Nil(t, none, "a live lease holds the appeal")

	f.clk.Add(10 * time.Minute)
	_, err = f.store.Resolve(f.ctx, rita, a.ID, appeals.ResolveInput{Outcome: "upheld", Rationale: "late"})
	requireCode(t, err, docket.Conflict, "lapsed")
	// The next claim takes it back from the lapsed lease.
	c := f.claim(rob)
	require.Equal(t, a.ID, c.ID)
	require.Equal(t, "reviewer:rob", *c.AssignedTo)
	rel := f.entry("appeal.released", a.ID)
	require.Equal(t, "system:docket", rel["actor"])
	require.Equal(t, "reviewer:rita", rel["record"].(map[string]any)["released_from"])
	require.Equal(t, "pending", rel["record"].(map[string]any)["state"])
	// The log says the appeal went back to the queue before who took it.
	var types []string
	require.NoError(t, f.db.Select(&types, `SELECT type FROM audit_staging WHERE subject_id = $1 ORDER BY id`, a.ID))
	require.Equal(t, []string{"appeal.filed", "appeal.claimed", "appeal.released", "appeal.claimed"}, types)

	// The periodic sweep does the same without a claim, for escalated ones too.
	b := f.file(f.decision(appeals.ActionAdRemoval))
	require.Equal(t, b.ID, f.claim(rita).ID)
	_, err = f.store.Escalate(f.ctx, rita, b.ID, appeals.EscalateInput{Reason: "hard"})
	require.NoError(t, err)
	require.Equal(t, b.ID, f.claim(sam).ID)
	n, err := f.store.ReleaseExpired(f.ctx)
	require.NoError(t, err)
	require.Zero(t, n, "both leases are live")
	f.clk.Add(10 * time.Minute)
	n, err = f.store.ReleaseExpired(f.ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	got, err := f.store.Appeal(f.ctx, rita, a.ID)
	require.NoError(t, err)
	require.Equal(t, appeals.AppealPending, got.State)
	require.Nil(t, got.AssignedTo)
	got, err = f.store.Appeal(f.ctx, rita, b.ID)
	require.NoError(t, err)
	require.Equal(t, appeals.AppealEscalated, got.State)
	require.Nil(t, got.AssignedTo)
	require.Equal(t, 3, f.entries()["appeal.released"])
	n, err = f.store.ReleaseExpired(f.ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}

// TestConcurrentClaimsEachOnce: 8 reviewers, served by four stores on one
// database as by four processes, so that their batches race for the head
// of the queue, claim 400 appeals: each is claimed once, with one entry,
// and none is left.
func TestConcurrentClaimsEachOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const total = 400
	d := f.decision(appeals.ActionAdRemoval)
	// The queue is filled directly: the filing path has its own tests, and
	// 400 filings would dominate this one's time.
	fillQueue(t, f, d, total)
	stores := []*appeals.Store{f.store}
	for range 3 {
		stores = append(stores, appeals.NewStore(f.db, appeals.Options{Now: f.clk.Now}))
	}

	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	reviewers := make([]docket.Actor, 8)
	for i := range reviewers {
		reviewers[i] = docket.Actor{Role: docket.RoleReviewer, Name: fmt.Sprintf("r%d", i)}
		wg.Add(1)
		go func(by docket.Actor, store *appeals.Store) {
			defer wg.Done()
			for {
				a, err := store.Claim(f.ctx, by)
				if err != nil {
					t.Error(err)
					return
				}
				if a == nil {
					return
				}
				mu.Lock()
				if prev, dup := seen[a.ID]; dup {
					t.Errorf("appeal %s claimed by %s and %s", a.ID, prev, by.Name)
				}
				seen[a.ID] = by.Name
				mu.Unlock()
			}
		}(reviewers[i], stores[i%len(stores)])
	}
	wg.Wait()
	require.Len(t, seen, total)
	var waiting, inReview int
	require.NoError(t, f.db.Get(&waiting, `SELECT count(*) FROM appeals WHERE state = 'pending'`))
	require.NoError(t, f.db.Get(&inReview, `SELECT count(*) FROM appeals WHERE state = 'in_review'`))
	require.Zero(t, waiting)
	require.Equal(t, total, inReview)
	require.Equal(t, total, f.entries()["appeal.claimed"])
}

// fillQueue puts n pending appeals, each of its own decision copied from d,
// into the queue with distinct due times.
func fillQueue(t testing.TB, f *fixture, d appeals.Decision, n int) {
	t.Helper()
	_, err := f.db.Exec(`INSERT INTO decisions (id, advertiser_id, ad_id, action, policy_code, policy_version, policy_text_sha256,
			ground, explanation, facts, source, automated_detection, automated_decision, status, decided_by, decided_at, appeal_deadline)
		SELECT 'd-' || lpad(i::text, 6, '0'), advertiser_id, ad_id, action, policy_code, policy_version, policy_text_sha256,
			ground, explanation, facts, source, automated_detection, automated_decision, status, decided_by, decided_at, appeal_deadline
		FROM decisions, generate_series(1, $2) i WHERE id = $1`, d.ID, n)
	require.NoError(t, err)
	_, err = f.db.Exec(`INSERT INTO appeals (id, decision_id, advertiser_id, decider_name, policy_code, state, statement, filed_by, filed_at, due_at)
		SELECT 'a-' || lpad(i::text, 6, '0'), 'd-' || lpad(i::text, 6, '0'), 'acme', 'pipeline', 'crypto', 'pending', 's',
			'advertiser:acme-owner', $1::timestamptz, $1::timestamptz + i * interval '1 second'
		FROM generate_series(1, $2) i`, f.clk.Now(), n)
	require.NoError(t, err)
}

func TestOverdueAndLists(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *appeals.Options) { o.ReviewDue = 72 * time.Hour })
	d1 := f.decision(appeals.ActionAdRemoval)
	a1 := f.file(d1)
	f.clk.Add(48 * time.Hour)
	a2 := f.file(f.decision(appeals.ActionAdvertiserBan))
	f.clk.Add(25 * time.Hour) // a1 is past due, a2 not yet

	page, err := f.store.ListAppeals(f.ctx, rita, appeals.AppealFilter{Overdue: true})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	require.Equal(t, a1.ID, page.Items[0].ID)
	require.True(t, page.Items[0].Overdue)
	got, err := f.store.Appeal(f.ctx, acme, a2.ID)
	require.NoError(t, err)
	require.False(t, got.Overdue)
	// Resolved late is no longer overdue.
	f.claim(rita)
	f.resolve(rita, a1.ID, appeals.AppealUpheld)
	page, err = f.store.ListAppeals(f.ctx, rita, appeals.AppealFilter{Overdue: true})
	require.NoError(t, err)
	require.Empty(t, page.Items)

	// Filters, an advertiser's scope, pagination.
	page, err = f.store.ListAppeals(f.ctx, acme, appeals.AppealFilter{})
	require.NoError(t, err)
	require.Len(t, page.Items, 2)
	page, err = f.store.ListAppeals(f.ctx, globex, appeals.AppealFilter{})
	require.NoError(t, err)
	require.Empty(t, page.Items)
	page, err = f.store.ListAppeals(f.ctx, globex, appeals.AppealFilter{AdvertiserID: "acme"})
	require.NoError(t, err)
	require.Empty(t, page.Items)
	page, err = f.store.ListAppeals(f.ctx, auditor, appeals.AppealFilter{State: "upheld"})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	page, err = f.store.ListAppeals(f.ctx, auditor, appeals.AppealFilter{DecisionID: d1.ID})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	page, err = f.store.ListAppeals(f.ctx, auditor, appeals.AppealFilter{PageRequest: appeals.PageRequest{Limit: 1}})
	require.NoError(t, err)
	require.Equal(t, a2.ID, page.Items[0].ID)
	require.NotEmpty(t, page.NextCursor)
	page, err = f.store.ListAppeals(f.ctx, auditor, appeals.AppealFilter{PageRequest: appeals.PageRequest{Limit: 1, Cursor: page.NextCursor}})
	require.NoError(t, err)
	require.Equal(t, a1.ID, page.Items[0].ID)
	require.Empty(t, page.NextCursor)
	_, err = f.store.ListAppeals(f.ctx, auditor, appeals.AppealFilter{State: "lost"})
	requireCode(t, err, docket.Invalid, "state")
}

func TestDecisionShowsAppeals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d := f.decision(appeals.ActionAdRemoval)
	got, err := f.store.Decision(f.ctx, acme, d.ID)
	require.NoError(t, err)
	require.Empty(t, got.Appeals)
	require.True(t, got.Appeal.Open)
	require.Equal(t, d.AppealDeadline, got.Appeal.Deadline)
	require.Empty(t, got.Appeal.How, "the route is the API's to render (api: TestAppealPathsOverHTTP reads \"how\")")
	b, err := json.Marshal(got)
	require.NoError(t, err)
	require.Contains(t, string(b), `"appeals":[]`)

	a := f.file(d)
	got, err = f.store.Decision(f.ctx, acme, d.ID)
	require.NoError(t, err)
	require.Len(t, got.Appeals, 1)
	require.Equal(t, a.ID, got.Appeals[0].ID)
	require.False(t, got.Appeal.Open)
	require.Contains(t, got.Appeal.Reason, "still pending")
	require.Empty(t, got.Appeal.How)

	f.claim(rita)
	f.resolve(rita, a.ID, appeals.AppealReversed)
	got, err = f.store.Decision(f.ctx, acme, d.ID)
	require.NoError(t, err)
	require.Equal(t, appeals.AppealReversed, got.Appeals[0].State)
	require.Equal(t, "Reviewed the licence.", *got.Appeals[0].Rationale)
	require.Contains(t, got.Appeal.Reason, "is reversed")

	// The decision.recorded record and lists keep their old shape.
	rec := f.entry("decision.recorded", d.ID)["record"].(map[string]any)
	require.NotContains(t, rec, "appeals")
	require.NotContains(t, rec, "appeal")
	list, err := f.store.ListDecisions(f.ctx, acme, appeals.DecisionFilter{})
	require.NoError(t, err)
	require.Nil(t, list.Items[0].Appeal)
}
