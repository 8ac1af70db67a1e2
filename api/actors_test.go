package api_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

// The attack: tenant B gets a token of A's NAME and replays A's
// Idempotency-Key to read A's record. The token is refused, and B's use of
// A's key, on the same path with the same body, is a fresh request of B's:
// a 404, never A's body.
func TestIdempotencyKeyOfAnotherTenantNeverReplays(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	decision := e.decision(validDecision("crypto"))

	_, _, err := e.store.CreateToken(context.Background(), docket.Actor{Role: docket.RoleSystem, Name: "test"},
		appeals.TokenInput{Name: "acme-owner", Role: docket.RoleAdvertiser, AdvertiserID: "globex"})
	require.Equal(t, docket.Conflict, docket.ErrorCode(err), "a second tenant under acme's NAME: %v", err)

	file := map[string]any{"statement": "The ad was lawful."}
	first := e.do("POST", "/v1/decisions/"+decision+"/appeals", "advertiser", file, "Idempotency-Key", "file-1")
	require.Equal(t, 201, first.Status, "%s", first.Body)
	appeal := first.json(t)["id"].(string)
	withdrawn := e.do("POST", "/v1/appeals/"+appeal+"/withdraw", "advertiser", nil, "Idempotency-Key", "withdraw-1")
	require.Equal(t, 200, withdrawn.Status, "%s", withdrawn.Body)

	for _, c := range []struct{ path, key string }{
		{"/v1/decisions/" + decision + "/appeals", "file-1"},
		{"/v1/appeals/" + appeal + "/withdraw", "withdraw-1"},
	} {
		var body any
		if strings.HasSuffix(c.path, "/appeals") {
			body = file
		}
		r := e.do("POST", c.path, "other_advertiser", body, "Idempotency-Key", c.key)
		require.Equal(t, 404, r.Status, "%s: %s", c.path, r.Body)
		require.Empty(t, r.Header.Get("Idempotent-Replayed"), c.path)
		require.NotContains(t, string(r.Body), `"state"`, "%s: an appeal record in the reply", c.path)
	}

	// The owner's own retry still replays, byte for byte.
	again := e.do("POST", "/v1/decisions/"+decision+"/appeals", "advertiser", file, "Idempotency-Key", "file-1")
	require.Equal(t, 201, again.Status, "%s", again.Body)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, first.Body, again.Body)

	// The key is stored under the caller's tenant, not only its actor.
	var tenants []string
	require.NoError(t, e.db.Select(&tenants, `SELECT tenant FROM idempotency_keys WHERE actor = 'advertiser:acme-owner' ORDER BY key`))
	require.Equal(t, []string{"acme", "acme"}, tenants)
}

// A same-named token of another tenant that predates the binding (put in
// by hand here, past the foreign key) is refused at the door: it would be
// a second tenant under one actor.
func TestSameNamedTokenOfAnotherTenantIsRefused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	tx, err := e.db.Beginx()
	require.NoError(t, err)
	_, err = tx.Exec(`SET LOCAL session_replication_role = replica`)
	require.NoError(t, err)
	_, err = tx.Exec(`INSERT INTO tokens (id, name, role, advertiser_id, hash, created_at, created_by)
		VALUES ('legacy', 'acme-owner', 'advertiser', 'globex', sha256('dkt_legacy'::bytea), now(), 'legacy')`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())

	r := e.do("GET", "/v1/appeals", "dkt_legacy", nil)
	require.Equal(t, 401, r.Status, "%s", r.Body)
	require.Equal(t, 200, e.do("GET", "/v1/appeals", "advertiser", nil).Status)
}

// staffNames are the names of setup's staff tokens as the log records them.
var staffNames = []string{"admin:ada", "enforcer:pipeline", "reviewer:rita", "senior_reviewer:sam"}

const escalationReason = "Internal: the reviewer suspects a fraud ring"

// requireRolesOnly checks an advertiser's reply: no staff name, no
// escalation reason.
func requireRolesOnly(t *testing.T, what string, body []byte) {
	t.Helper()
	for _, name := range staffNames {
		require.NotContains(t, string(body), name, "%s shows staff by name", what)
	}
	require.NotContains(t, string(body), "fraud ring", "%s shows the escalation reason", what)
}

// Every route that returns an appeal (or a decision or policy with staff
// names) to an advertiser shows staff by role only and no escalation
// reason; staff and auditors read the names.
func TestAdvertiserSeesStaffByRoleOnly(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")

	// An appeal escalated by rita and claimed by sam, and one resolved by rita.
	escalated := e.appeal(e.decision(validDecision("crypto")))
	require.Equal(t, escalated, e.claim("reviewer")["id"])
	r := e.do("POST", "/v1/appeals/"+escalated+"/escalate", "reviewer", map[string]any{"reason": escalationReason})
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, escalated, e.claim("senior")["id"])
	resolvedDecision := e.decision(validDecision("crypto"))
	resolved := e.appeal(resolvedDecision)
	require.Equal(t, resolved, e.claim("reviewer")["id"])
	r = e.do("POST", "/v1/appeals/"+resolved+"/resolve", "reviewer", map[string]any{"outcome": "upheld", "rationale": "The removal stands."})
	require.Equal(t, 200, r.Status, "%s", r.Body)

	// GET one.
	r = e.do("GET", "/v1/appeals/"+escalated, "advertiser", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	requireRolesOnly(t, "GET appeal", r.Body)
	a := r.json(t)
	require.Equal(t, "senior_reviewer", a["assigned_to"])
	require.Equal(t, "reviewer", a["escalated_by"])
	require.Nil(t, a["escalation_reason"])
	require.NotNil(t, a["escalated_at"])
	r = e.do("GET", "/v1/appeals/"+resolved, "advertiser", nil)
	requireRolesOnly(t, "GET resolved appeal", r.Body)
	a = r.json(t)
	require.Equal(t, "reviewer", a["resolved_by"])
	require.Equal(t, "The removal stands.", a["rationale"], "the reasoned outcome is the advertiser's")

	// The list.
	r = e.do("GET", "/v1/appeals", "advertiser", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	requireRolesOnly(t, "GET appeals", r.Body)
	require.Len(t, r.json(t)["items"], 2)

	// A decision, with its appeals, and the list of decisions.
	r = e.do("GET", "/v1/decisions/"+resolvedDecision, "advertiser", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	requireRolesOnly(t, "GET decision", r.Body)
	d := r.json(t)
	require.Equal(t, "enforcer", d["decided_by"])
	require.Equal(t, "reviewer", d["appeals"].([]any)[0].(map[string]any)["resolved_by"])
	r = e.do("GET", "/v1/decisions", "advertiser", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	requireRolesOnly(t, "GET decisions", r.Body)

	// Policies: the admin who wrote the version is staff too.
	for _, path := range []string{"/v1/policies/crypto", "/v1/policies/crypto/versions/1", "/v1/policies"} {
		r = e.do("GET", path, "advertiser", nil)
		require.Equal(t, 200, r.Status, "%s", r.Body)
		requireRolesOnly(t, path, r.Body)
		require.Contains(t, string(r.Body), `"created_by":"admin"`, path)
	}

	// The writes an advertiser makes, and their idempotent replays.
	filed := e.decision(validDecision("crypto"))
	for range 2 {
		r = e.do("POST", "/v1/decisions/"+filed+"/appeals", "advertiser", map[string]any{"statement": "Lawful."}, "Idempotency-Key", "views-file")
		require.Equal(t, 201, r.Status, "%s", r.Body)
		requireRolesOnly(t, "POST appeals", r.Body)
	}
	withdraw := r.json(t)["id"].(string)
	require.Equal(t, withdraw, e.claim("reviewer")["id"])
	for range 2 {
		r = e.do("POST", "/v1/appeals/"+withdraw+"/withdraw", "advertiser", nil, "Idempotency-Key", "views-withdraw")
		require.Equal(t, 200, r.Status, "%s", r.Body)
		requireRolesOnly(t, "POST withdraw", r.Body)
	}

	// Staff and auditors read the names and the reason.
	for _, who := range []string{"reviewer", "senior", "auditor", "admin", "enforcer"} {
		r = e.do("GET", "/v1/appeals/"+escalated, who, nil)
		require.Equal(t, 200, r.Status, "%s: %s", who, r.Body)
		a = r.json(t)
		require.Equal(t, "senior_reviewer:sam", a["assigned_to"], who)
		require.Equal(t, "reviewer:rita", a["escalated_by"], who)
		require.Equal(t, escalationReason, a["escalation_reason"], who)
		r = e.do("GET", "/v1/decisions/"+resolvedDecision, who, nil)
		require.True(t, bytes.Contains(r.Body, []byte(`"decided_by":"enforcer:pipeline"`)), "%s: %s", who, r.Body)
		require.True(t, bytes.Contains(r.Body, []byte(`"resolved_by":"reviewer:rita"`)), "%s: %s", who, r.Body)
	}
}

// /openapi.json says how staff fields read to an advertiser.
func TestOpenAPIDocumentsAdvertiserViews(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.do("GET", "/openapi.json", "", nil)
	require.Equal(t, 200, r.Status)
	schemas := r.json(t)["components"].(map[string]any)["schemas"].(map[string]any)
	prop := func(schema, field string) string {
		p := schemas[schema].(map[string]any)["properties"].(map[string]any)[field].(map[string]any)
		d, _ := p["description"].(string)
		return d
	}
	for _, f := range []string{"assigned_to", "escalated_by", "resolved_by"} {
		require.Contains(t, prop("Appeal", f), "role only", f)
	}
	require.Contains(t, prop("Appeal", "escalation_reason"), "null when read with an advertiser's token")
	require.Contains(t, prop("Decision", "decided_by"), "role only")
	require.Contains(t, prop("Policy", "created_by"), "role only")
}
