package api

import (
	"net/http"
	"strconv"

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
