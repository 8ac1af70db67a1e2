package api

import (
	"net/http"

	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/appeals/dsa"
)

// ops documents every route of routes.go for /openapi.json.
func ops() map[string]op {
	return mergeRoutes(map[string]op{
		"GET /healthz": {Summary: "Liveness", Status: 200, Reply: map[string]string{}},
		"GET /readyz": {Summary: "Readiness: Postgres and the other parts, with details (503 when one is not ready)",
			Status: 200, Reply: Readiness{}, SameReply: []int{http.StatusServiceUnavailable}},
		"GET /openapi.json": {Summary: "This document", Status: 200, Reply: map[string]any{}},
		"GET /metrics":      {Summary: "Prometheus metrics", Status: 200, Content: []string{"text/plain"}},

		"PUT /v1/policies/{code}": {Summary: "Create or revise a policy (201 new version, 200 unchanged)",
			Body: appeals.PolicyInput{}, Reply: appeals.Policy{}, Status: http.StatusCreated,
			SameReply: []int{http.StatusOK}},
		"GET /v1/policies": {Summary: "List the current version of each policy",
			Reply: appeals.Page[appeals.Policy]{}, Status: 200, Query: []string{"limit", "cursor"}},
		"GET /v1/policies/{code}":              {Summary: "A policy's current version", Reply: appeals.Policy{}, Status: 200, Errors: []int{404}},
		"GET /v1/policies/{code}/versions/{n}": {Summary: "One version of a policy", Reply: appeals.Policy{}, Status: 200, Errors: []int{404}},

		"POST /v1/decisions": {Summary: "Record an enforcement decision with its statement of reasons",
			Body: appeals.DecisionInput{}, Reply: appeals.Decision{}, Status: 201,
			Headers: []string{"Location"}},
		"GET /v1/decisions": {Summary: "List decisions, newest first (an advertiser sees only its own)",
			Reply: appeals.Page[appeals.Decision]{}, Status: 200, Query: []string{"advertiser_id", "action", "status", "policy_code", "limit", "cursor"}},
		"GET /v1/decisions/{id}": {Summary: "One decision", Reply: appeals.Decision{}, Status: 200, Errors: []int{404}},

		"GET /v1/exports/audit": {Summary: "Stream audit entries in index order as JSON lines (index, leaf_hash, type, entry) or CSV; " +
			"from/to are leaf indices (digits; to excluded) or RFC 3339 times of the entries' own time",
			Status: 200, Content: []string{"application/x-ndjson", "text/csv"}, Line: AuditExportLine{},
			Headers: []string{"Content-Disposition"}, Query: []string{"from", "to", "format", "type", "advertiser_id", "policy_code"}},
		"GET /v1/exports/bundle": {Summary: "Stream a verifiable bundle (docket-bundle/v1) of the audit entries the filters select, pinned to the latest signed checkpoint: " +
			"a header line (key, checkpoint, filter), one line per entry with its exact bytes and, unless the bundle holds the whole tree, its inclusion proof, " +
			"and a trailer; `docket verify --bundle FILE --key KEY` checks it offline. Filters as for the audit export",
			Status: 200, Content: []string{"application/x-ndjson"}, Line: BundleLine{},
			Headers: []string{"Content-Disposition"}, Query: []string{"from", "to", "type", "advertiser_id", "policy_code"}, Errors: []int{404, 503}},
		"GET /v1/exports/dsa": {Summary: "Stream one DSA Transparency Database statement of reasons per decision taken in [from, to), as JSON lines",
			Status: 200, Content: []string{"application/x-ndjson"}, Line: dsa.Statement{}, Query: []string{"from", "to"}},
		"GET /v1/reports/appeals": {Summary: "Transparency figures for [from, to): decisions, appeals, outcomes, reversal rate, times to resolve, overall and per policy (format=csv for CSV)",
			Reply: appeals.AppealsReport{}, Content: []string{"application/json", "text/csv"},
			Status: 200, Query: []string{"from", "to", "format"}},
	}, appealOps(), noticeOps(), auditOps())
}

// mergeRoutes joins the route tables of each area; a route in two tables
// is a programming error, caught at start-up and by the route tests.
func mergeRoutes[V any](parts ...map[string]V) map[string]V {
	out := map[string]V{}
	for _, part := range parts {
		for k, v := range part {
			if _, dup := out[k]; dup {
				panic("api: route " + k + " documented twice")
			}
			out[k] = v
		}
	}
	return out
}
