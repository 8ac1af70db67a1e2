package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

// pageRequest reads limit and cursor.
func pageRequest(r *http.Request) (appeals.PageRequest, error) {
	p := appeals.PageRequest{Cursor: r.URL.Query().Get("cursor")}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > appeals.MaxLimit {
			return p, invalidField("limit", "must be a whole number from 1 to 500")
		}
		p.Limit = n
	}
	return p, nil
}

// queryInt reads an optional non-negative integer parameter.
func queryInt(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, invalidField(name, "must be a non-negative whole number")
	}
	return n, nil
}

// checkedMux registers routes on the server's mux with their input vetted
// first, so that no route, present or future, can forget it: path
// wildcards, and the query against the parameters ops() documents for the
// route, before authentication (hostile input costs no token look-up) and
// before any handler reads them.
type checkedMux struct {
	s     *Server
	query map[string][]string // documented query parameters by pattern
}

func newCheckedMux(s *Server) checkedMux {
	q := map[string][]string{}
	for pattern, o := range ops() {
		q[pattern] = o.Query
	}
	return checkedMux{s: s, query: q}
}

func (m checkedMux) HandleFunc(pattern string, h http.HandlerFunc) {
	allowed := map[string]bool{}
	for _, name := range m.query[pattern] {
		allowed[name] = true
	}
	m.s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := checkInput(r, pattern, allowed); err != nil {
			m.s.writeError(w, r, err)
			return
		}
		h(w, r)
	})
}

// Handle registers a handler that is not Docket's own (metrics) as it is.
func (m checkedMux) Handle(pattern string, h http.Handler) { m.s.mux.Handle(pattern, h) }

// repeatable names the query parameters that may be given more than once;
// any other, given twice, would have one value silently dropped.
var repeatable = map[string]bool{"type": true}

// checkInput refuses, naming each, path values and query values that are
// not valid UTF-8 or hold NUL bytes, unknown and repeated query
// parameters, and a query string net/url would read differently from how
// it was meant: url.ParseQuery drops a pair holding ';' (so
// policy_code=a;drop would filter nothing) and one it cannot unescape.
func checkInput(r *http.Request, pattern string, allowed map[string]bool) error {
	var errs fieldErrs
	for _, seg := range strings.Split(pattern, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			name = strings.TrimSuffix(strings.TrimSuffix(name, "}"), "...")
			if !docket.CleanString(r.PathValue(name)) {
				errs.add(name, docket.DirtyMessage)
			}
		}
	}
	seen := map[string]bool{}
	for rest := r.URL.RawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		key, kerr := url.QueryUnescape(rawKey)
		val, verr := url.QueryUnescape(rawVal)
		field := key
		if kerr != nil {
			field = rawKey
		}
		switch {
		case kerr != nil || !docket.CleanString(key):
			errs.add("query", "has a parameter name that is not percent-encoded UTF-8 without NUL bytes")
		case !allowed[key]:
			errs.add(field, "is not a known parameter")
		case strings.Contains(pair, ";"):
			errs.add(field, "holds ';', which this server does not read as a separator; percent-encode it as %3B")
		case verr != nil:
			errs.add(field, "is not percent-encoded correctly")
		case !docket.CleanString(val):
			errs.add(field, docket.DirtyMessage)
		case seen[key] && !repeatable[key]:
			errs.add(field, "is given more than once")
		}
		seen[key] = true
	}
	return errs.err()
}
