package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

func (s *Server) createDecision(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	in, key, err := decodeWrite[appeals.DecisionInput](w, r, a, false, decisionCreated)
	if err != nil {
		return err
	}
	d, err := s.store.RecordDecision(r.Context(), a, in, key)
	if err != nil {
		return err
	}
	respond(w, decisionCreated, d)
	return nil
}

var decisionCreated = createdAt(func(v any) string {
	if d, ok := v.(appeals.Decision); ok {
		return "/v1/decisions/" + d.ID
	}
	return ""
})

func (s *Server) getDecision(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	d, err := s.store.Decision(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	if d.Appeal != nil && d.Appeal.Open {
		d.Appeal.How = howToAppeal(d)
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// howToAppeal names the call that files an appeal against d, for a
// reader who may file one now (the domain says whether; the route is
// the API's).
func howToAppeal(d appeals.Decision) string {
	return fmt.Sprintf(`POST /v1/decisions/%s/appeals with {"statement": "...", "evidence": [{"description": "...", "url": "https://..."}]}, before %s`,
		d.ID, d.AppealDeadline.Format(time.RFC3339))
}

func (s *Server) listDecisions(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	pr, err := pageRequest(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := s.store.ListDecisions(r.Context(), a, appeals.DecisionFilter{
		AdvertiserID: q.Get("advertiser_id"), Action: appeals.Action(q.Get("action")),
		Status:     appeals.DecisionStatus(q.Get("status")),
		PolicyCode: q.Get("policy_code"), PageRequest: pr,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
