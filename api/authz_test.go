package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/api"
)

// labels are the callers of the matrix: no token, and one token per role.
var labels = []string{"none", "admin", "enforcer", "reviewer", "senior", "advertiser", "auditor"}

// call builds one request of a route; it may create what it needs first.
type call func(e *env, who string) (method, path string, body any)

type authzRow struct {
	call call
	// want maps a label to the exact status; missing labels expect 403,
	// and "none" 401; on a public route every caller gets want["none"].
	want   map[string]int
	public bool
}

func get(path string) call {
	return func(*env, string) (string, string, any) { return "GET", path, nil }
}

// authzMatrix has a row for every route pattern in routes.go; a test below
// fails when a route lacks one.
func authzMatrix() map[string]authzRow {
	all := func(code int) map[string]int {
		m := map[string]int{}
		for _, l := range labels[1:] {
			m[l] = code
		}
		return m
	}
	m := map[string]authzRow{
		"GET /healthz":      {call: get("/healthz"), public: true, want: map[string]int{"none": 200}},
		"GET /readyz":       {call: get("/readyz"), public: true, want: map[string]int{"none": 200}},
		"GET /openapi.json": {call: get("/openapi.json"), public: true, want: map[string]int{"none": 200}},
		"PUT /v1/policies/{code}": {
			call: func(e *env, who string) (string, string, any) {
				return "PUT", "/v1/policies/new-" + who, map[string]string{"title": "t", "text": "x"}
			},
			want: map[string]int{"admin": 201},
		},
		"GET /v1/policies":                     {call: get("/v1/policies"), want: all(200)},
		"GET /v1/policies/{code}":              {call: get("/v1/policies/crypto"), want: all(200)},
		"GET /v1/policies/{code}/versions/{n}": {call: get("/v1/policies/crypto/versions/1"), want: all(200)},
		"POST /v1/decisions": {
			call: func(e *env, who string) (string, string, any) {
				return "POST", "/v1/decisions", validDecision("crypto")
			},
			want: map[string]int{"admin": 201, "enforcer": 201},
		},
		"GET /v1/decisions": {call: get("/v1/decisions"), want: all(200)},
		// Exports and reports: auditors and admins only.
		"GET /v1/exports/audit":   {call: get("/v1/exports/audit"), want: map[string]int{"admin": 200, "auditor": 200}},
		"GET /v1/exports/dsa":     {call: get("/v1/exports/dsa"), want: map[string]int{"admin": 200, "auditor": 200}},
		"GET /v1/reports/appeals": {call: get("/v1/reports/appeals"), want: map[string]int{"admin": 200, "auditor": 200}},
		"GET /v1/decisions/{id}": {
			call: func(e *env, who string) (string, string, any) {
				return "GET", "/v1/decisions/" + e.decision(validDecision("crypto")), nil
			},
			want: all(200),
		},
	}
	for _, part := range []map[string]authzRow{appealRows(all), noticeRows(), auditRows()} {
		for k, v := range part {
			if _, dup := m[k]; dup {
				panic("authz matrix: route " + k + " has two rows")
			}
			m[k] = v
		}
	}
	return m
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	for pattern, row := range authzMatrix() {
		t.Run(pattern, func(t *testing.T) {
			for _, who := range labels {
				want, ok := row.want[who]
				switch {
				case ok:
				case row.public:
					want = row.want["none"]
				case who == "none":
					want = 401
				default:
					want = 403
				}
				method, path, body := row.call(e, who)
				tok := who
				if who == "none" {
					tok = ""
				}
				r := e.do(method, path, tok, body)
				require.Equal(t, want, r.Status, "%s as %s: %s", pattern, who, r.Body)
				if r.Status == 401 || r.Status == 403 {
					require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
				}
			}
		})
	}
	// A revoked or unknown token is 401 too.
	r := e.do("GET", "/v1/decisions", "dkt_not-a-token", nil)
	require.Equal(t, 401, r.Status)
	r = e.do("GET", "/v1/decisions", "", nil, "Authorization", "Basic abc")
	require.Equal(t, 401, r.Status)
}

// routePatterns are the patterns registered by routes.go.
func routePatterns(t *testing.T) []string {
	t.Helper()
	out := api.RoutePatterns()
	require.NotEmpty(t, out)
	return out
}

func TestEveryRouteHasAuthzRowAndOpenAPIEntry(t *testing.T) {
	t.Parallel()
	matrix := authzMatrix()
	e := setup(t)
	r := e.do("GET", "/openapi.json", "", nil)
	require.Equal(t, 200, r.Status)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &doc))
	documented := 0
	for _, ops := range doc.Paths {
		documented += len(ops)
	}
	routes := routePatterns(t)
	require.Equal(t, len(routes), documented, "openapi.json documents a route that routes.go does not have, or misses one")
	for _, p := range routes {
		_, ok := matrix[p]
		require.True(t, ok || p == "GET /metrics", "route %q has no row in the authorization matrix", p)
		method, path, _ := strings.Cut(p, " ")
		ops, ok := doc.Paths[path]
		require.True(t, ok, "route %q is missing from openapi.json", p)
		_, ok = ops[strings.ToLower(method)]
		require.True(t, ok, "route %q has no %s operation in openapi.json", p, method)
	}
}
