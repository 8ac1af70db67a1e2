package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/api/client"
	"github.com/docket-dev/docket/appeals"
)

// TestAppealPathsOnTheRealProgram runs the appeal workflow's whole paths
// against `docket serve` and its database: upheld, reversed, withdrawn,
// escalated to a senior reviewer. The log then verifies.
func TestAppealPathsOnTheRealProgram(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	admin := s.token("--role", "admin", "--name", "alice")
	enforcer := s.token("--role", "enforcer", "--name", "ads-pipeline")
	acme := s.token("--role", "advertiser", "--name", "acme-owner", "--advertiser", "acme")
	rita := s.token("--role", "reviewer", "--name", "rita")
	sam := s.token("--role", "senior_reviewer", "--name", "sam")

	status, body := s.call("PUT", "/v1/policies/crypto-ads", admin, `{"title": "No crypto ads", "text": "No ads for tokens."}`)
	require.Equal(t, 201, status, "%v", body)
	// The workflow's steps through the Go client, as integrators take them.
	ctx := context.Background()
	api, err := client.New(s.url, enforcer, nil)
	require.NoError(t, err)
	decide := func(action appeals.Action, ad string) string {
		yes := true
		d, err := api.CreateDecision(ctx, client.DecisionInput{AdvertiserID: "acme", AdID: ad, Action: action,
			PolicyCode: "crypto-ads", Ground: "terms", Explanation: "Token sale.", Facts: "Seen on 2026-11-20.",
			Source: "voluntary", AutomatedDetection: &yes, AutomatedDecision: "partial"})
		require.NoError(t, err)
		return d.ID
	}
	appeal := func(decision string) string {
		a, err := api.WithToken(acme).FileAppeal(ctx, decision, client.AppealInput{Statement: "We stopped the token sale.",
			Evidence: []appeals.EvidenceItem{{Description: "Screenshot", URL: "https://acme.example/proof.png"}}})
		require.NoError(t, err)
		require.Equal(t, appeals.AppealPending, a.State)
		return a.ID
	}
	claim := func(token, want string) {
		a, err := api.WithToken(token).ClaimAppeal(ctx)
		require.NoError(t, err)
		require.NotNil(t, a, "nothing to claim")
		require.Equal(t, want, a.ID)
	}

	// A ban appealed, claimed and upheld.
	ban := decide("advertiser_ban", "")
	a1 := appeal(ban)
	status, _ = s.call("POST", "/v1/decisions/"+ban+"/appeals", acme, `{"statement": "Again."}`)
	require.Equal(t, 409, status, "one open appeal per decision")
	claim(rita, a1)
	status, got := s.call("POST", "/v1/appeals/"+a1+"/resolve", rita, `{"outcome": "upheld", "rationale": "The ads were token sales."}`)
	require.Equal(t, 200, status, "%v", got)
	require.Equal(t, "upheld", got["state"])
	_, d := s.call("GET", "/v1/decisions/"+ban, acme, "")
	require.Equal(t, "in_effect", d["status"])

	// An ad removal appealed, claimed and reversed: the decision is reversed.
	removal := decide("ad_removal", "ad-17")
	a2 := appeal(removal)
	claim(rita, a2)
	status, got = s.call("POST", "/v1/appeals/"+a2+"/resolve", rita, `{"outcome": "reversed", "rationale": "The ad was for a museum exhibit on money."}`)
	require.Equal(t, 200, status, "%v", got)
	_, d = s.call("GET", "/v1/decisions/"+removal, acme, "")
	require.Equal(t, "reversed", d["status"])
	require.Equal(t, a2, d["reversed_by_appeal"])
	status, _ = s.call("POST", "/v1/appeals/"+a2+"/resolve", rita, `{"outcome": "upheld", "rationale": "Changed my mind."}`)
	require.Equal(t, 409, status, "a resolved appeal stays resolved")

	// An appeal withdrawn by the advertiser.
	restriction := decide("ad_restriction", "ad-18")
	a3 := appeal(restriction)
	status, got = s.call("POST", "/v1/appeals/"+a3+"/withdraw", acme, "")
	require.Equal(t, 200, status, "%v", got)
	require.Equal(t, "withdrawn", got["state"])

	// An escalation resolved by a senior reviewer; a plain reviewer cannot take it.
	removal2 := decide("ad_removal", "ad-19")
	a4 := appeal(removal2)
	claim(rita, a4)
	status, got = s.call("POST", "/v1/appeals/"+a4+"/escalate", rita, `{"reason": "Political content; needs a senior call."}`)
	require.Equal(t, 200, status, "%v", got)
	require.Equal(t, "escalated", got["state"])
	status, _ = s.call("POST", "/v1/appeals/claim", rita, "")
	require.Equal(t, 204, status, "reviewers do not get escalated appeals")
	claim(sam, a4)
	status, got = s.call("POST", "/v1/appeals/"+a4+"/resolve", sam, `{"outcome": "reversed", "rationale": "Newsworthy; restore."}`)
	require.Equal(t, 200, status, "%v", got)
	_, d = s.call("GET", "/v1/decisions/"+removal2, acme, "")
	require.Equal(t, "reversed", d["status"])

	// The decider may never resolve an appeal of its own decision.
	alice := s.token("--role", "reviewer", "--name", "ads-pipeline")
	a5 := appeal(decide("ad_removal", "ad-20"))
	status, _ = s.call("POST", "/v1/appeals/claim", alice, "")
	require.Equal(t, 204, status, "the queue never hands a decider its own decision's appeal")
	status, _ = s.call("POST", "/v1/appeals/"+a5+"/resolve", alice, `{"outcome": "reversed", "rationale": "Mine."}`)
	require.Equal(t, 403, status)

	// Everything above reaches the log, and the log verifies.
	var n int
	require.NoError(t, s.db().Get(&n, `SELECT count(*) FROM audit_staging WHERE type LIKE 'appeal.%' OR type = 'decision.reversed'`))
	require.Equal(t, 5+4+1+1+3+2, n, "filed 5, claimed 4, withdrawn 1, escalated 1, resolved 3, reversed 2")
	out := s.cli("verify")
	require.Contains(t, out, "ok: ")
}
