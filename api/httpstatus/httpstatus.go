// Package httpstatus is what the API and the consoles share about the
// status of an answer: the one map from the domain's error codes to HTTP
// statuses, what counts as a database outage (a 503 to retry, never a
// 500), and what the router itself would answer a request no route
// takes (404, or 405 with its Allow). The API renders the status as
// problem+json, the consoles as a page; both take it from here, so that
// a page and the API never disagree on what a failure is.
package httpstatus

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"

	"github.com/lib/pq"

	"github.com/docket-dev/docket"
)

// byCode maps the domain's error codes to HTTP statuses.
var byCode = map[docket.Code]int{
	docket.Invalid:      http.StatusBadRequest,
	docket.Unauthorized: http.StatusUnauthorized,
	docket.Forbidden:    http.StatusForbidden,
	docket.NotFound:     http.StatusNotFound,
	docket.Conflict:     http.StatusConflict,
	docket.KeyReused:    http.StatusUnprocessableEntity,
	docket.Unavailable:  http.StatusServiceUnavailable,
	docket.Internal:     http.StatusInternalServerError,
}

// OfCode is the status of a domain error code; 500 for one it does not know.
func OfCode(c docket.Code) int {
	if s, ok := byCode[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Of is the status of err: its domain code's, 503 for a database outage
// (see IsOutage), 500 for anything else.
func Of(err error) int {
	if IsOutage(err) {
		return http.StatusServiceUnavailable
	}
	return OfCode(docket.ErrorCode(err))
}

// RetryAfter is the Retry-After (seconds) of every 503: about how long a
// restarted or reconnected database takes to answer again.
const RetryAfter = 2

// unavailable reports whether err means the database cannot be reached or
// did not answer in time, rather than that the request or the code is
// wrong.
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

// IsOutage reports whether err is a database outage the domain gave no
// code of its own (a domain's answer, a 404 say, stays what it is even
// when a later read failed).
func IsOutage(err error) bool {
	return unavailable(err) && docket.ErrorCode(err) == docket.Internal
}

// OutageReason says in a few words why err means unavailable, for
// /readyz: "connection refused", "timed out", "connection lost".
func OutageReason(err error) string {
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

// RouterAnswer is what mux would answer r when no route of it takes r:
// 405 with the methods it would allow (the Allow header), or 404. It runs
// the mux against a writer that keeps nothing but the status and headers.
func RouterAnswer(mux http.Handler, r *http.Request) (status int, allow string) {
	p := &headerProbe{header: http.Header{}, status: http.StatusOK}
	mux.ServeHTTP(p, r)
	if p.status == http.StatusMethodNotAllowed {
		return p.status, p.header.Get("Allow")
	}
	return http.StatusNotFound, ""
}

// headerProbe learns what the mux would answer, writing nothing.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.status = code }
