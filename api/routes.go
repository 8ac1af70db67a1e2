package api

import (
	. "github.com/docket-dev/docket" //nolint:revive // role names read better unqualified here
	"github.com/docket-dev/docket/api/console"
)

// routes is the whole HTTP surface, with the roles each route admits.
func (s *Server) routes() {
	m := newCheckedMux(s) // every route's path and query vetted first (params.go)
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	m.HandleFunc("GET /openapi.json", s.openAPI)
	// The consoles for people: HTML pages with their own sessions and checks (api/console).
	m.Handle(console.Prefix, s.consoleHandler())
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
	m.HandleFunc("POST /v1/decisions/{id}/notices", s.authed(s.recordNotice, noticers...))

	// Appeals.
	m.HandleFunc("POST /v1/decisions/{id}/appeals", s.authed(s.fileAppeal, RoleAdvertiser))
	m.HandleFunc("POST /v1/appeals/claim", s.authed(s.claimAppeal, reviewers...))
	m.HandleFunc("POST /v1/appeals/{id}/resolve", s.authed(s.resolveAppeal, reviewers...))
	m.HandleFunc("POST /v1/appeals/{id}/escalate", s.authed(s.escalateAppeal, reviewers...))
	m.HandleFunc("POST /v1/appeals/{id}/withdraw", s.authed(s.withdrawAppeal, RoleAdvertiser))
	m.HandleFunc("GET /v1/appeals", s.authed(s.listAppeals, readers...))
	m.HandleFunc("GET /v1/appeals/{id}", s.authed(s.getAppeal, readers...))
	m.HandleFunc("POST /v1/policies/{code}/reversals", s.authed(s.reversePolicy, RoleAdmin))

	// Audit log: checkpoint, key and proofs are public (they reveal only hashes).
	m.HandleFunc("GET /v1/audit/checkpoint", s.public(s.getAuditCheckpoint))
	m.HandleFunc("GET /v1/audit/key", s.public(s.getAuditKey))
	m.HandleFunc("GET /v1/audit/entries", s.authed(s.listAuditEntries, auditReaders...))
	m.HandleFunc("GET /v1/audit/entries/{index}", s.authed(s.getAuditEntry, auditReaders...))
	m.HandleFunc("GET /v1/audit/proofs/inclusion", s.public(s.getInclusionProof))
	m.HandleFunc("GET /v1/audit/proofs/consistency", s.public(s.getConsistencyProof))

	// Exports and reports.
	m.HandleFunc("GET /v1/exports/audit", s.authed(s.exportAudit, exporters...))
	m.HandleFunc("GET /v1/exports/bundle", s.authed(s.exportBundle, exporters...))
	m.HandleFunc("GET /v1/exports/dsa", s.authed(s.exportDSA, exporters...))
	m.HandleFunc("GET /v1/reports/appeals", s.authed(s.reportAppeals, exporters...))
}

// readers may read policies, decisions and appeals; advertisers only their own.
var readers = []Role{RoleAdmin, RoleEnforcer, RoleReviewer, RoleSeniorReviewer, RoleAdvertiser, RoleAuditor}
