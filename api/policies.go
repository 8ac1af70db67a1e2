package api

import (
	"net/http"
	"strconv"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	in, key, err := decodeWrite[appeals.PolicyInput](w, r, a, false, policyShape)
	if err != nil {
		return err
	}
	rev, err := s.store.PutPolicy(r.Context(), a, r.PathValue("code"), in, key)
	if err != nil {
		return err
	}
	respond(w, policyShape, rev)
	return nil
}

// policyShape is 201 for a new version, 200 when nothing changed.
func policyShape(v any) (int, map[string]string) {
	if rev, ok := v.(appeals.PolicyRevision); ok && rev.Created {
		return http.StatusCreated, nil
	}
	return http.StatusOK, nil
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	p, err := s.store.Policy(r.Context(), r.PathValue("code"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p.ViewFor(a))
	return nil
}

func (s *Server) getPolicyVersion(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		return invalidField("n", "must be a version number from 1")
	}
	p, err := s.store.PolicyVersion(r.Context(), r.PathValue("code"), n)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p.ViewFor(a))
	return nil
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	pr, err := pageRequest(r)
	if err != nil {
		return err
	}
	page, err := s.store.ListPolicies(r.Context(), pr)
	if err != nil {
		return err
	}
	for i, p := range page.Items {
		page.Items[i] = p.ViewFor(a)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
