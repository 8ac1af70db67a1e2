package httpstatus_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/api/httpstatus"
)

func TestStatusOfEachKindOfError(t *testing.T) {
	t.Parallel()
	refused := fmt.Errorf("appeals: read: %w", syscall.ECONNREFUSED)
	for name, c := range map[string]struct {
		err    error
		status int
	}{
		"invalid":             {docket.Errorf(docket.Invalid, "bad"), http.StatusBadRequest},
		"unauthorized":        {docket.Errorf(docket.Unauthorized, "who"), http.StatusUnauthorized},
		"forbidden":           {docket.Errorf(docket.Forbidden, "no"), http.StatusForbidden},
		"not found":           {docket.Errorf(docket.NotFound, "none"), http.StatusNotFound},
		"conflict":            {docket.Errorf(docket.Conflict, "taken"), http.StatusConflict},
		"key reused":          {docket.Errorf(docket.KeyReused, "other body"), http.StatusUnprocessableEntity},
		"unavailable":         {docket.Errorf(docket.Unavailable, "later"), http.StatusServiceUnavailable},
		"refused connection":  {refused, http.StatusServiceUnavailable},
		"deadline":            {fmt.Errorf("x: %w", context.DeadlineExceeded), http.StatusServiceUnavailable},
		"a bug":               {errors.New("nil map"), http.StatusInternalServerError},
		"outage wrapped":      {fmt.Errorf("console: %w", refused), http.StatusServiceUnavailable},
		"domain's own answer": {errors.Join(docket.Errorf(docket.NotFound, "none"), refused), http.StatusNotFound},
	} {
		require.Equal(t, c.status, httpstatus.Of(c.err), name)
	}
	require.Equal(t, "connection refused", httpstatus.OutageReason(refused))
	require.Equal(t, "timed out", httpstatus.OutageReason(context.DeadlineExceeded))
	require.Equal(t, "failed", httpstatus.OutageReason(errors.New("nil map")))
	require.True(t, httpstatus.IsOutage(refused))
	require.False(t, httpstatus.IsOutage(errors.Join(docket.Errorf(docket.Conflict, "taken"), refused)),
		"a domain code wins over the outage beneath it")
	require.False(t, httpstatus.IsOutage(nil))
}

func TestRouterAnswer(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) { t.Error("the probe ran a handler") })
	status, allow := httpstatus.RouterAnswer(mux, httptest.NewRequest(http.MethodDelete, "/things/1", nil))
	require.Equal(t, http.StatusMethodNotAllowed, status)
	require.Equal(t, "GET, HEAD", allow)
	status, allow = httpstatus.RouterAnswer(mux, httptest.NewRequest(http.MethodGet, "/nothing", nil))
	require.Equal(t, http.StatusNotFound, status)
	require.Empty(t, allow)
}
