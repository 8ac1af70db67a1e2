package api

import (
	. "github.com/docket-dev/docket/appeals" //nolint:revive // role names read better unqualified here
)

// routes is the whole HTTP surface, with the roles each route admits.
func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	m.HandleFunc("GET /openapi.json", s.openAPI)
	if s.metrics != nil {
		m.Handle("GET /metrics", s.metrics)
	}

	// Policies.
	m.HandleFunc("PUT /v1/policies/{code}", s.authed(s.putPolicy, RoleAdmin))
	m.HandleFunc("GET /v1/policies", s.authed(s.listPolicies, readers...))
	m.HandleFunc("GET /v1/policies/{code}", s.authed(s.getPolicy, readers...))
	m.HandleFunc("GET /v1/policies/{code}/versions/{n}", s.authed(s.getPolicyVersion, readers...))

	// Decisions.
	m.HandleFunc("POST /v1/decisions", s.authed(s.createDecision, RoleEnforcer, RoleAdmin))
	m.HandleFunc("GET /v1/decisions", s.authed(s.listDecisions, readers...))
	m.HandleFunc("GET /v1/decisions/{id}", s.authed(s.getDecision, readers...))

	// Appeals.

	// Audit log.

	// Exports and reports.
}

// readers may read policies, decisions and appeals; advertisers only their own.
var readers = []Role{RoleAdmin, RoleEnforcer, RoleReviewer, RoleSeniorReviewer, RoleAdvertiser, RoleAuditor}
