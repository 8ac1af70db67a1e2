package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/api/httpstatus"
	"github.com/docket-dev/docket/appeals"
)

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string              `json:"type" required:"true"`
	Title  string              `json:"title" required:"true"`
	Status int                 `json:"status" required:"true"`
	Detail string              `json:"detail,omitempty"`
	Errors []docket.FieldError `json:"errors,omitempty"`
}

// httpError carries a status the domain has no code for (413, 415, 405).
type httpError struct {
	status int
	slug   string
	detail string
	fields []docket.FieldError
}

func (e *httpError) Error() string { return e.detail }

func problemOf(err error) Problem {
	var he *httpError
	if errors.As(err, &he) {
		return Problem{Type: "urn:docket:problem:" + he.slug, Title: http.StatusText(he.status),
			Status: he.status, Detail: he.detail, Errors: boundFields(he.fields, 0)}
	}
	if httpstatus.IsOutage(err) {
		return Problem{Type: "urn:docket:problem:" + string(docket.Unavailable), Title: http.StatusText(http.StatusServiceUnavailable),
			Status: http.StatusServiceUnavailable, Detail: "the database is unavailable or did not answer in time; retry later"}
	}
	var de *docket.Error
	if errors.As(err, &de) {
		status := httpstatus.OfCode(de.Code)
		return Problem{Type: "urn:docket:problem:" + string(de.Code), Title: http.StatusText(status),
			Status: status, Detail: de.Message, Errors: boundFields(de.Fields, de.More)}
	}
	return Problem{Type: "urn:docket:problem:internal", Title: http.StatusText(http.StatusInternalServerError),
		Status: http.StatusInternalServerError, Detail: "an internal error occurred; it has been logged"}
}

// writeError answers with err as problem+json, or replays a stored reply.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var replay *appeals.Replay
	if errors.As(err, &replay) {
		for k, v := range replay.Headers {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(replay.Status)
		_, _ = w.Write(replay.Body)
		return
	}
	p := problemOf(err)
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(httpstatus.RetryAfter))
	}
	switch {
	case p.Status < 500:
	case r.Context().Err() != nil:
		// The client went away (or its deadline passed) mid-request: the
		// failure is its own, and no one reads this answer. Not an error
		// of the service, which an operator's alert should not count.
		s.logger.InfoContext(r.Context(), "request abandoned by the client", slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Any("err", err))
	default:
		s.logger.ErrorContext(r.Context(), "request failed", slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Any("err", err))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// boundFields keeps an answer's size bounded whatever the input: at most
// docket.MaxFieldErrors field errors, each name shortened, then one entry
// (field "errors") saying how many more there were.
func boundFields(fields []docket.FieldError, more int) []docket.FieldError {
	if len(fields) > docket.MaxFieldErrors {
		more += len(fields) - docket.MaxFieldErrors
		fields = fields[:docket.MaxFieldErrors]
	}
	out := make([]docket.FieldError, 0, len(fields)+1)
	for _, f := range fields {
		out = append(out, docket.FieldError{Field: printable(f.Field), Message: f.Message})
	}
	if more > 0 {
		out = append(out, docket.FieldError{Field: "errors",
			Message: fmt.Sprintf("%d more invalid fields are not listed", more)})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func invalidField(field, msg string) error {
	return &docket.Error{Code: docket.Invalid, Message: "the request has invalid fields",
		Fields: []docket.FieldError{{Field: field, Message: msg}}}
}
