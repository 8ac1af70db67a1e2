package api

import (
	"net/http"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

// recordNotice is how the mailer (or staff) reports that a decision's
// statement of reasons reached its advertiser; the reply is the decision
// with its notified_at.
func (s *Server) recordNotice(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	in, key, err := decodeWrite[appeals.NoticeInput](w, r, a, false, always(http.StatusOK))
	if err != nil {
		return err
	}
	d, err := s.store.RecordNotice(r.Context(), a, r.PathValue("id"), in, key)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// noticeOps documents the notice route for /openapi.json.
func noticeOps() map[string]op {
	return map[string]op{"POST /v1/decisions/{id}/notices": {
		Summary: "Record that the decision's statement of reasons reached the advertiser (a notice.delivered entry; " +
			"the decision's notified_at becomes the earliest delivery)",
		Body: appeals.NoticeInput{}, Reply: appeals.Decision{}, Status: http.StatusOK,
		Errors: []int{404},
	}}
}
