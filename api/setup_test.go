package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/pgtest"
)

// env is one test's server on its own database, with a token per role.
type env struct {
	t      *testing.T
	db     *sqlx.DB
	store  *appeals.Store
	log    *audit.Log // integrated only when a test asks (e.integrate)
	srv    *httptest.Server
	tokens map[string]string // by label: admin, enforcer, reviewer, senior, advertiser, other_advertiser, auditor
}

// testTokens are the tokens every test server has, by label.
func testTokens() map[string]appeals.TokenInput {
	return map[string]appeals.TokenInput{
		"admin":            {Name: "ada", Role: docket.RoleAdmin},
		"enforcer":         {Name: "pipeline", Role: docket.RoleEnforcer},
		"reviewer":         {Name: "rita", Role: docket.RoleReviewer},
		"senior":           {Name: "sam", Role: docket.RoleSeniorReviewer},
		"advertiser":       {Name: "acme-owner", Role: docket.RoleAdvertiser, AdvertiserID: "acme"},
		"other_advertiser": {Name: "globex-owner", Role: docket.RoleAdvertiser, AdvertiserID: "globex"},
		"auditor":          {Name: "audrey", Role: docket.RoleAuditor},
	}
}

func setup(t *testing.T, opts ...func(*appeals.Options)) *env {
	t.Helper()
	db := pgtest.New(t)
	var o appeals.Options
	for _, f := range opts {
		f(&o)
	}
	store := appeals.NewStore(db, o)
	log := testAuditLog(t, db)
	srv := httptest.NewServer(api.New(api.Config{Store: store, Audit: log}))
	t.Cleanup(srv.Close)
	validateTraffic(t, srv)
	e := &env{t: t, db: db, store: store, log: log, srv: srv, tokens: map[string]string{}}
	for label, in := range testTokens() {
		e.tokens[label] = e.token(in)
	}
	return e
}

// token creates a token and returns its secret.
func (e *env) token(in appeals.TokenInput) string {
	e.t.Helper()
	_, secret, err := e.store.CreateToken(context.Background(), docket.Actor{Role: docket.RoleSystem, Name: "test"}, in)
	require.NoError(e.t, err)
	return secret
}

type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// problemFields lists the fields a problem+json reply names.
func (r reply) problemFields(t *testing.T) []string {
	t.Helper()
	require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"), "body: %s", r.Body)
	var p api.Problem
	require.NoError(t, json.Unmarshal(r.Body, &p))
	var fs []string
	for _, f := range p.Errors {
		fs = append(fs, f.Field)
	}
	return fs
}

// do sends a request as the token labelled who ("" for none); body may be
// a string (sent as is) or a value (sent as JSON).
func (e *env) do(method, path, who string, body any, headers ...string) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	require.NoError(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		tok, ok := e.tokens[who]
		if !ok {
			tok = who // a raw token
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// policy creates a policy as admin.
func (e *env) policy(code string) {
	e.t.Helper()
	r := e.do("PUT", "/v1/policies/"+code, "admin", map[string]string{"title": "Policy " + code, "text": "The text of " + code})
	require.Contains(e.t, []int{200, 201}, r.Status, "%s", r.Body)
}

// validDecision is a complete ad removal for advertiser acme under policy code.
func validDecision(code string) map[string]any {
	return map[string]any{
		"advertiser_id": "acme", "ad_id": "ad-1", "action": "ad_removal", "policy_code": code,
		"ground": "terms", "explanation": "The ad promotes a crypto token.", "facts": "Ad ad-1 showed a token sale.",
		"source": "voluntary", "automated_detection": true, "automated_decision": "partial",
	}
}

// decision records a decision and returns its id.
func (e *env) decision(body map[string]any) string {
	e.t.Helper()
	r := e.do("POST", "/v1/decisions", "enforcer", body)
	require.Equal(e.t, 201, r.Status, "%s", r.Body)
	return r.json(e.t)["id"].(string)
}
