package api

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/lib/pq"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

// statusOf is the one map from domain error codes to HTTP statuses.
var statusOf = map[docket.Code]int{
	docket.Invalid:      http.StatusBadRequest,
	docket.Unauthorized: http.StatusUnauthorized,
	docket.Forbidden:    http.StatusForbidden,
	docket.NotFound:     http.StatusNotFound,
	docket.Conflict:     http.StatusConflict,
	docket.KeyReused:    http.StatusUnprocessableEntity,
	docket.Unavailable:  http.StatusServiceUnavailable,
	docket.Internal:     http.StatusInternalServerError,
}

// RetryAfter is the Retry-After (seconds) of every 503: about how long a
// restarted or reconnected database takes to answer again.
const RetryAfter = 2

// unavailable reports whether err means the database cannot be reached or
// did not answer in time, rather than that the request or the code is
// wrong: such a failure is a 503 to retry, never a 500.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		// 08: connection exception; 57: operator intervention (a shutdown,
		// a query cancelled at its deadline); 53300: too many connections.
		return pe.Code.Class() == "08" || pe.Code.Class() == "57" || pe.Code == "53300"
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone), errors.Is(err, sql.ErrTxDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.As(err, &ne):
		return true
	}
	// lib/pq reports some broken connections only in words.
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "bad connection")
}

// asUnavailable turns a database outage into the domain's Unavailable.
func asUnavailable(err error) error {
	if unavailable(err) && docket.ErrorCode(err) == docket.Internal {
		return &unavailableError{err: err}
	}
	return err
}

type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return "database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// UnavailableReason says in a few words why err means unavailable, for
// /readyz: "refused", "timed out", "connection lost".
func UnavailableReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), err != nil && strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case unavailable(err):
		return "connection lost"
	}
	return "failed"
}

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
	if _, ok := errors.AsType[*unavailableError](err); ok {
		return Problem{Type: "urn:docket:problem:" + string(docket.Unavailable), Title: http.StatusText(http.StatusServiceUnavailable),
			Status: http.StatusServiceUnavailable, Detail: "the database is unavailable or did not answer in time; retry later"}
	}
	var de *docket.Error
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
	p := problemOf(asUnavailable(err))
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
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
