package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/api/client"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/logtest"
	"github.com/docket-dev/docket/internal/oapitest"
	"github.com/docket-dev/docket/internal/pgtest"
)

// env is a server on its own database, reached through the client with
// every exchange checked against /openapi.json.
type env struct {
	t     *testing.T
	store *appeals.Store
	log   *audit.Log
	url   string
	hc    *http.Client
}

func setup(t *testing.T) *env {
	t.Helper()
	db := pgtest.New(t)
	store := appeals.NewStore(db, appeals.Options{})
	lg := logtest.New(t, db, audit.Options{})
	srv := httptest.NewServer(api.New(api.Config{Store: store, Audit: lg}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/openapi.json")
	require.NoError(t, err)
	doc, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	v, err := oapitest.Cached(doc)
	require.NoError(t, err)
	hc := &http.Client{Transport: v.Transport(http.DefaultTransport, func(msg string) { t.Errorf("openapi drift: %s", msg) })}
	return &env{t: t, store: store, log: lg, url: srv.URL, hc: hc}
}

// as is a client acting with a new token of role.
func (e *env) as(role docket.Role, name, advertiser string) *client.Client {
	e.t.Helper()
	_, secret, err := e.store.CreateToken(context.Background(), docket.Actor{Role: docket.RoleSystem, Name: "test"},
		appeals.TokenInput{Name: name, Role: role, AdvertiserID: advertiser})
	require.NoError(e.t, err)
	c, err := client.New(e.url, secret, e.hc)
	require.NoError(e.t, err)
	return c
}

// integrate makes every committed entry a leaf under a signed checkpoint.
func (e *env) integrate() {
	e.t.Helper()
	logtest.DrainSigned(e.t, e.log)
}

func decisionInput(adv, ad string) client.DecisionInput {
	yes := true
	return client.DecisionInput{AdvertiserID: adv, AdID: ad, Action: "ad_removal", PolicyCode: "crypto-ads",
		Ground: "terms", Explanation: "The ad promotes a token sale.", Facts: "Ad " + ad + " showed a token sale.",
		Source: "voluntary", AutomatedDetection: &yes, AutomatedDecision: "partial", TerritorialScope: []string{"DE"}}
}

func TestClientWorkflow(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	admin := e.as(docket.RoleAdmin, "ada", "")
	enforcer := e.as(docket.RoleEnforcer, "pipeline", "")
	mailer := e.as(docket.RoleEnforcer, "mailer", "")
	acme := e.as(docket.RoleAdvertiser, "acme-owner", "acme")
	rita := e.as(docket.RoleReviewer, "rita", "")
	sam := e.as(docket.RoleSeniorReviewer, "sam", "")

	p, created, err := admin.PutPolicy(ctx, "crypto-ads", client.PolicyInput{Title: "No crypto ads", Text: "No ads for tokens."})
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, 1, p.Version)
	_, created, err = admin.PutPolicy(ctx, "crypto-ads", client.PolicyInput{Title: "No crypto ads", Text: "No ads for tokens."})
	require.NoError(t, err)
	require.False(t, created, "unchanged text makes no version")

	// A write with an Idempotency-Key is safe to retry: the retry returns
	// the first reply and records nothing more.
	d, err := enforcer.CreateDecision(ctx, decisionInput("acme", "ad-1"), client.IdempotencyKey("ad-1-removal"))
	require.NoError(t, err)
	again, err := enforcer.CreateDecision(ctx, decisionInput("acme", "ad-1"), client.IdempotencyKey("ad-1-removal"))
	require.NoError(t, err)
	require.Equal(t, d.ID, again.ID)
	page, err := enforcer.ListDecisions(ctx, client.DecisionQuery{AdvertiserID: "acme", Limit: 10})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)

	got, err := acme.GetDecision(ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, appeals.ActionAdRemoval, got.Action)
	noticed, err := mailer.RecordNotice(ctx, d.ID, client.NoticeInput{Channel: "email", Reference: "msg-1"})
	require.NoError(t, err)
	require.NotNil(t, noticed.NotifiedAt)

	a, err := acme.FileAppeal(ctx, d.ID, client.AppealInput{Statement: "We stopped the token sale.",
		Evidence: []appeals.EvidenceItem{{Description: "Screenshot", URL: "https://acme.example/proof.png"}}})
	require.NoError(t, err)
	require.Equal(t, appeals.AppealPending, a.State)
	claimed, err := rita.ClaimAppeal(ctx)
	require.NoError(t, err)
	require.Equal(t, a.ID, claimed.ID)
	esc, err := rita.EscalateAppeal(ctx, a.ID, client.EscalateInput{Reason: "Needs a senior call."})
	require.NoError(t, err)
	require.Equal(t, appeals.AppealEscalated, esc.State)
	none, err := rita.ClaimAppeal(ctx)
	require.NoError(t, err)
	require.Nil(t, none, "no appeal waits for a plain reviewer")
	_, err = sam.ClaimAppeal(ctx)
	require.NoError(t, err)
	res, err := sam.ResolveAppeal(ctx, a.ID, client.ResolveInput{Outcome: "reversed", Rationale: "Newsworthy."})
	require.NoError(t, err)
	require.Equal(t, appeals.AppealReversed, res.State)
	got, err = acme.GetDecision(ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, appeals.StatusReversed, got.Status)

	d2, err := enforcer.CreateDecision(ctx, decisionInput("acme", "ad-2"))
	require.NoError(t, err)
	a2, err := acme.FileAppeal(ctx, d2.ID, client.AppealInput{Statement: "Please look again."})
	require.NoError(t, err)
	w, err := acme.WithdrawAppeal(ctx, a2.ID)
	require.NoError(t, err)
	require.Equal(t, appeals.AppealWithdrawn, w.State)
	list, err := acme.ListAppeals(ctx, client.AppealQuery{State: "withdrawn"})
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	one, err := admin.GetAppeal(ctx, a2.ID)
	require.NoError(t, err)
	require.Equal(t, d2.ID, one.DecisionID)
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	enforcer := e.as(docket.RoleEnforcer, "pipeline", "")
	in := decisionInput("acme", "ad-1")
	in.PolicyCode, in.Ground = "no such policy!", "whim"
	_, err := enforcer.CreateDecision(ctx, in)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 400, ce.Status)
	require.NotEmpty(t, ce.Type)
	var fields []string
	for _, f := range ce.Fields {
		fields = append(fields, f.Field)
	}
	require.Contains(t, fields, "ground")
	require.Contains(t, fields, "policy_code")
	require.Contains(t, err.Error(), "ground")

	_, err = enforcer.GetDecision(ctx, "00000000-0000-0000-0000-000000000000")
	require.Equal(t, 404, client.StatusOf(err))
	_, err = enforcer.WithToken("dkt_wrong").GetDecision(ctx, "x")
	require.Equal(t, 401, client.StatusOf(err))
	_, err = enforcer.ExportBundle(ctx, client.ExportQuery{})
	require.Equal(t, 403, client.StatusOf(err))

	_, err = client.New("ftp://x", "", nil)
	require.Error(t, err)
}

func TestClientAudit(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	admin := e.as(docket.RoleAdmin, "ada", "")
	_, _, err := admin.PutPolicy(ctx, "crypto-ads", client.PolicyInput{Title: "No crypto ads", Text: "No ads for tokens."})
	require.NoError(t, err)
	enforcer := e.as(docket.RoleEnforcer, "pipeline", "")
	for _, adv := range []string{"acme", "globex"} {
		_, err := enforcer.CreateDecision(ctx, decisionInput(adv, "ad-1"))
		require.NoError(t, err)
	}
	e.integrate()
	public, err := client.New(e.url, "", e.hc)
	require.NoError(t, err)
	key, err := public.Key(ctx)
	require.NoError(t, err)
	require.Equal(t, e.log.VerifierKey(), key)
	cp, err := public.Checkpoint(ctx)
	require.NoError(t, err)
	latest, err := e.log.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, string(latest.Note), string(cp))
	ip, err := public.InclusionProof(ctx, 1, 0)
	require.NoError(t, err)
	require.Equal(t, latest.Size, ip.Size)
	cons, err := public.ConsistencyProof(ctx, 1, 0)
	require.NoError(t, err)
	require.Equal(t, latest.Size, cons.To)

	auditor := e.as(docket.RoleAuditor, "audrey", "")
	rc, err := auditor.ExportAudit(ctx, client.ExportQuery{Types: []string{"decision.recorded"}}, false)
	require.NoError(t, err)
	body, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, 2, bytes.Count(body, []byte("\n")))

	one := int64(1)
	rc, err = auditor.ExportBundle(ctx, client.ExportQuery{FromIndex: &one, AdvertiserID: "globex"})
	require.NoError(t, err)
	defer rc.Close()
	res, err := audit.VerifyBundle(rc, key, nil)
	require.NoError(t, err)
	require.Equal(t, audit.BundleProofs, res.Mode)
	require.EqualValues(t, 1, res.Entries)
}

// TestClientTypesAreTheDocuments: the audit types the client declares
// itself encode as the server's do.
func TestClientTypesAreTheDocuments(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2]any{
		{client.InclusionProof{Index: 1, Size: 2, LeafHash: []byte{1}, Hashes: [][]byte{{2}}}, api.InclusionProof{Index: 1, Size: 2, LeafHash: []byte{1}, Hashes: [][]byte{{2}}}},
		{client.ConsistencyProof{From: 1, To: 2, Hashes: [][]byte{{2}}}, api.ConsistencyProof{From: 1, To: 2, Hashes: [][]byte{{2}}}},
	} {
		a, err := json.Marshal(pair[0])
		require.NoError(t, err)
		b, err := json.Marshal(pair[1])
		require.NoError(t, err)
		require.JSONEq(t, string(b), string(a))
	}
}

// TestClientRoutesAreDocumented: every route the client calls is in the
// served document with the success statuses the client accepts, so a
// route renamed or a status changed fails here before it fails an integrator.
func TestClientRoutesAreDocumented(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(api.New(api.Config{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	for route, statuses := range map[string][]string{
		"PUT /v1/policies/{code}":          {"200", "201"},
		"GET /v1/policies/{code}":          {"200"},
		"POST /v1/decisions":               {"201"},
		"GET /v1/decisions":                {"200"},
		"GET /v1/decisions/{id}":           {"200"},
		"POST /v1/decisions/{id}/notices":  {"200"},
		"POST /v1/decisions/{id}/appeals":  {"201"},
		"POST /v1/appeals/claim":           {"200", "204"},
		"POST /v1/appeals/{id}/resolve":    {"200"},
		"POST /v1/appeals/{id}/escalate":   {"200"},
		"POST /v1/appeals/{id}/withdraw":   {"200"},
		"GET /v1/appeals":                  {"200"},
		"GET /v1/appeals/{id}":             {"200"},
		"GET /v1/audit/checkpoint":         {"200"},
		"GET /v1/audit/key":                {"200"},
		"GET /v1/audit/proofs/inclusion":   {"200"},
		"GET /v1/audit/proofs/consistency": {"200"},
		"GET /v1/exports/audit":            {"200"},
		"GET /v1/exports/bundle":           {"200"},
	} {
		method, path, _ := strings.Cut(route, " ")
		op, ok := doc.Paths[path][strings.ToLower(method)]
		require.True(t, ok, "%s is not in /openapi.json", route)
		for _, st := range statuses {
			require.Contains(t, op.Responses, st, "%s answers %s", route, st)
		}
	}
}
