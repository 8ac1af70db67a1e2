package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/docket-dev/docket/appeals"
)

// statusOf is the one map from domain error codes to HTTP statuses.
var statusOf = map[appeals.Code]int{
	appeals.Invalid:      http.StatusBadRequest,
	appeals.Unauthorized: http.StatusUnauthorized,
	appeals.Forbidden:    http.StatusForbidden,
	appeals.NotFound:     http.StatusNotFound,
	appeals.Conflict:     http.StatusConflict,
	appeals.KeyReused:    http.StatusUnprocessableEntity,
	appeals.Internal:     http.StatusInternalServerError,
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string               `json:"type" required:"true"`
	Title  string               `json:"title" required:"true"`
	Status int                  `json:"status" required:"true"`
	Detail string               `json:"detail,omitempty"`
	Errors []appeals.FieldError `json:"errors,omitempty"`
}

// httpError carries a status the domain has no code for (413, 415, 405).
type httpError struct {
	status int
	slug   string
	detail string
	fields []appeals.FieldError
}

func (e *httpError) Error() string { return e.detail }

func problemOf(err error) Problem {
	var he *httpError
	if errors.As(err, &he) {
		return Problem{Type: "urn:docket:problem:" + he.slug, Title: http.StatusText(he.status),
			Status: he.status, Detail: he.detail, Errors: boundFields(he.fields, 0)}
	}
	var de *appeals.Error
	if errors.As(err, &de) {
		status := statusOf[de.Code]
		if status == 0 {
			status = http.StatusInternalServerError
		}
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
	if p.Status >= 500 {
		s.logger.ErrorContext(r.Context(), "request failed", slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Any("err", err))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// boundFields keeps an answer's size bounded whatever the input: at most
// appeals.MaxFieldErrors field errors, each name shortened, then one entry
// (field "errors") saying how many more there were.
func boundFields(fields []appeals.FieldError, more int) []appeals.FieldError {
	if len(fields) > appeals.MaxFieldErrors {
		more += len(fields) - appeals.MaxFieldErrors
		fields = fields[:appeals.MaxFieldErrors]
	}
	out := make([]appeals.FieldError, 0, len(fields)+1)
	for _, f := range fields {
		out = append(out, appeals.FieldError{Field: printable(f.Field), Message: f.Message})
	}
	if more > 0 {
		out = append(out, appeals.FieldError{Field: "errors",
			Message: fmt.Sprintf("%d more invalid fields are not listed", more)})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func invalidField(field, msg string) error {
	return &appeals.Error{Code: appeals.Invalid, Message: "the request has invalid fields",
		Fields: []appeals.FieldError{{Field: field, Message: msg}}}
}
