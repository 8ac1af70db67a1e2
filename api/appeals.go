package api

import (
	"net/http"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

func (s *Server) fileAppeal(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	in, key, err := decodeWrite[appeals.AppealInput](w, r, a, false, appealCreated)
	if err != nil {
		return err
	}
	ap, err := s.store.FileAppeal(r.Context(), a, r.PathValue("id"), in, key)
	if err != nil {
		return err
	}
	respond(w, appealCreated, ap)
	return nil
}

var appealCreated = createdAt(func(v any) string {
	if a, ok := v.(appeals.Appeal); ok {
		return "/v1/appeals/" + a.ID
	}
	return ""
})

// claimShape is 200 with the claimed appeal, 204 when nothing was waiting.
func claimShape(v any) (int, map[string]string) {
	if ap, ok := v.(*appeals.Appeal); ok && ap != nil {
		return http.StatusOK, nil
	}
	return http.StatusNoContent, nil
}

func (s *Server) claimAppeal(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	// The claim takes no input; an empty object is accepted for clients
	// that always send one.
	_, key, err := decodeWrite[struct{}](w, r, a, true, claimShape)
	if err != nil {
		return err
	}
	ap, err := s.store.Claim(r.Context(), a, key)
	if err != nil {
		return err
	}
	respond(w, claimShape, ap)
	return nil
}

func (s *Server) resolveAppeal(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	in, key, err := decodeWrite[appeals.ResolveInput](w, r, a, false, always(http.StatusOK))
	if err != nil {
		return err
	}
	ap, err := s.store.Resolve(r.Context(), a, r.PathValue("id"), in, key)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ap)
	return nil
}

func (s *Server) escalateAppeal(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	in, key, err := decodeWrite[appeals.EscalateInput](w, r, a, false, always(http.StatusOK))
	if err != nil {
		return err
	}
	ap, err := s.store.Escalate(r.Context(), a, r.PathValue("id"), in, key)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ap)
	return nil
}

func (s *Server) withdrawAppeal(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	_, key, err := decodeWrite[struct{}](w, r, a, true, always(http.StatusOK))
	if err != nil {
		return err
	}
	ap, err := s.store.Withdraw(r.Context(), a, r.PathValue("id"), key)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ap)
	return nil
}

func (s *Server) getAppeal(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	ap, err := s.store.Appeal(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ap)
	return nil
}

func (s *Server) listAppeals(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	pr, err := pageRequest(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := appeals.AppealFilter{State: appeals.AppealState(q.Get("state")), AdvertiserID: q.Get("advertiser_id"),
		DecisionID: q.Get("decision_id"), PageRequest: pr}
	switch q.Get("overdue") {
	case "", "false":
	case "true":
		f.Overdue = true
	default:
		return invalidField("overdue", "must be true or false")
	}
	page, err := s.store.ListAppeals(r.Context(), a, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) reversePolicy(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	in, key, err := decodeWrite[appeals.ReversalInput](w, r, a, false, always(http.StatusOK))
	if err != nil {
		return err
	}
	rep, err := s.store.ReversePolicyVersions(r.Context(), a, r.PathValue("code"), in, key)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// appealOps documents the Appeals routes for /openapi.json.
func appealOps() map[string]op {
	return map[string]op{
		"POST /v1/decisions/{id}/appeals": {Summary: "Appeal a decision (the advertiser it is about)",
			Body: appeals.AppealInput{}, Reply: appeals.Appeal{}, Status: http.StatusCreated, Errors: []int{404, 409},
			Headers: []string{"Location"}},
		"POST /v1/appeals/claim": {Summary: "Claim the waiting appeal due first (204 when none waits)",
			Body: struct{}{}, OptionalBody: true, Reply: appeals.Appeal{}, Status: http.StatusOK,
			NoContent: []int{http.StatusNoContent}},
		"POST /v1/appeals/{id}/resolve": {Summary: "Uphold or reverse a claimed appeal (the assignee)",
			Body: appeals.ResolveInput{}, Reply: appeals.Appeal{}, Status: http.StatusOK, Errors: []int{404, 409}},
		"POST /v1/appeals/{id}/escalate": {Summary: "Hand a claimed appeal to the senior reviewers (the assignee)",
			Body: appeals.EscalateInput{}, Reply: appeals.Appeal{}, Status: http.StatusOK, Errors: []int{404, 409}},
		"POST /v1/appeals/{id}/withdraw": {Summary: "Withdraw a pending or in-review appeal (the advertiser)",
			Body: struct{}{}, OptionalBody: true, Reply: appeals.Appeal{}, Status: http.StatusOK, Errors: []int{404, 409}},
		"GET /v1/appeals/{id}": {Summary: "One appeal", Reply: appeals.Appeal{}, Status: http.StatusOK, Errors: []int{404}},
		"GET /v1/appeals": {Summary: "List appeals, newest first (an advertiser sees only its own)",
			Reply: appeals.Page[appeals.Appeal]{}, Status: http.StatusOK,
			Query: []string{"state", "advertiser_id", "decision_id", "overdue", "limit", "cursor"}},
		"POST /v1/policies/{code}/reversals": {Summary: "Reverse every in-effect decision under some versions of a policy (idempotent, resumable)",
			Body: appeals.ReversalInput{}, Reply: appeals.ReversalReport{},
			Status: http.StatusOK, Errors: []int{404}},
	}
}
