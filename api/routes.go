package api

import (
	"net/http"

	. "github.com/docket-dev/docket" //nolint:revive // rights and roles read better unqualified here
	"github.com/docket-dev/docket/api/console"
)

// route is one line of the HTTP surface: its pattern, who may call it and
// its handler. routeTable is the one place a route's roles are written:
// routes registers it, and the OpenAPI document (ops) reads each route's
// roles from it (x-roles, and the 401, 403 and 429 replies). The rights
// themselves (Readers, Reviewers, ...) are package docket's, which the
// store checks too.
type route struct {
	pattern string
	roles   []Role // who may call it (by token); nil: public, no token read
	// slow routes' work (not their reader) may outlast the server's write
	// timeout, which is there for stalled readers; their replies are
	// small, so the deadline is lifted for them.
	slow   bool
	authed func(*Server, http.ResponseWriter, *http.Request, Actor) error
	public func(*Server, http.ResponseWriter, *http.Request) error
	plain  func(*Server, http.ResponseWriter, *http.Request)
}

// routeTable is the whole of Docket's own HTTP surface, with the roles each
// route admits. The consoles (/ui/, api/console) and /metrics are mounted
// besides it, by routes.
func routeTable() []route {
	return []route{
		{pattern: "GET /healthz", plain: (*Server).healthz},
		{pattern: "GET /readyz", plain: (*Server).readyz},
		{pattern: "GET /openapi.json", plain: (*Server).openAPI},

		// Policies.
		{pattern: "PUT /v1/policies/{code}", roles: Admins, authed: (*Server).putPolicy},
		{pattern: "GET /v1/policies", roles: Readers, authed: (*Server).listPolicies},
		{pattern: "GET /v1/policies/{code}", roles: Readers, authed: (*Server).getPolicy},
		{pattern: "GET /v1/policies/{code}/versions/{n}", roles: Readers, authed: (*Server).getPolicyVersion},

		// Decisions.
		{pattern: "POST /v1/decisions", roles: Recorders, authed: (*Server).createDecision},
		{pattern: "GET /v1/decisions", roles: Readers, authed: (*Server).listDecisions},
		{pattern: "GET /v1/decisions/{id}", roles: Readers, authed: (*Server).getDecision},
		{pattern: "POST /v1/decisions/{id}/notices", roles: Recorders, authed: (*Server).recordNotice},

		// Appeals.
		{pattern: "POST /v1/decisions/{id}/appeals", roles: Appellants, authed: (*Server).fileAppeal},
		{pattern: "POST /v1/appeals/claim", roles: Reviewers, authed: (*Server).claimAppeal},
		{pattern: "POST /v1/appeals/{id}/resolve", roles: Reviewers, authed: (*Server).resolveAppeal},
		{pattern: "POST /v1/appeals/{id}/escalate", roles: Reviewers, authed: (*Server).escalateAppeal},
		{pattern: "POST /v1/appeals/{id}/withdraw", roles: Appellants, authed: (*Server).withdrawAppeal},
		{pattern: "GET /v1/appeals", roles: Readers, authed: (*Server).listAppeals},
		{pattern: "GET /v1/appeals/{id}", roles: Readers, authed: (*Server).getAppeal},
		{pattern: "POST /v1/policies/{code}/reversals", roles: Admins, slow: true, authed: (*Server).reversePolicy},

		// Audit log: checkpoint, key and proofs are public (they reveal only hashes).
		{pattern: "GET /v1/audit/checkpoint", public: (*Server).getAuditCheckpoint},
		{pattern: "GET /v1/audit/key", public: (*Server).getAuditKey},
		{pattern: "GET /v1/audit/entries", roles: Auditors, authed: (*Server).listAuditEntries},
		{pattern: "GET /v1/audit/entries/{index}", roles: Auditors, authed: (*Server).getAuditEntry},
		{pattern: "GET /v1/audit/proofs/inclusion", public: (*Server).getInclusionProof},
		{pattern: "GET /v1/audit/proofs/consistency", public: (*Server).getConsistencyProof},

		// Exports and reports.
		{pattern: "GET /v1/exports/audit", roles: Auditors, authed: (*Server).exportAudit},
		{pattern: "GET /v1/exports/bundle", roles: Auditors, authed: (*Server).exportBundle},
		{pattern: "GET /v1/exports/dsa", roles: Auditors, authed: (*Server).exportDSA},
		{pattern: "GET /v1/reports/appeals", roles: Auditors, slow: true, authed: (*Server).reportAppeals},
	}
}

// metricsPattern is where Prometheus scrapes, when metrics are on.
const metricsPattern = "GET /metrics"

// routes registers the route table, the consoles and the metrics.
func (s *Server) routes() {
	m := newCheckedMux(s) // every route's path and query vetted first (params.go)
	for _, rt := range routeTable() {
		switch {
		case rt.authed != nil:
			h, slow := rt.authed, rt.slow
			m.HandleFunc(rt.pattern, s.authed(func(w http.ResponseWriter, r *http.Request, a Actor) error {
				if slow {
					unboundWrite(w)
				}
				return h(s, w, r, a)
			}, rt.roles...))
		case rt.public != nil:
			h := rt.public
			m.HandleFunc(rt.pattern, s.public(func(w http.ResponseWriter, r *http.Request) error { return h(s, w, r) }))
		default:
			h := rt.plain
			m.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) { h(s, w, r) })
		}
	}
	// The consoles for people: HTML pages with their own sessions and checks (api/console).
	m.Handle(console.Prefix, s.consoleHandler())
	if s.metrics != nil {
		m.Handle(metricsPattern, s.metrics)
	}
}

// routeRoles are the roles of each route of the table; a route absent or
// with nil roles is public.
func routeRoles() map[string][]Role {
	out := map[string][]Role{}
	for _, rt := range routeTable() {
		if rt.authed != nil && len(rt.roles) == 0 {
			panic("api: route " + rt.pattern + " needs a token but admits no role")
		}
		out[rt.pattern] = rt.roles
	}
	return out
}
