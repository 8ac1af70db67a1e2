package api_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/internal/pgtest"
)

func TestReadyzFailsWhenAPartIsNotReady(t *testing.T) {
	t.Parallel()
	store := appeals.NewStore(pgtest.New(t), appeals.Options{})
	ready := true
	srv := httptest.NewServer(api.New(api.Config{Store: store, Checks: []api.Check{{Name: "relay",
		Func: func(context.Context) (any, error) {
			if ready {
				return map[string]int{"lag_entries": 0}, nil
			}
			return nil, errors.New("stuck")
		}}}}))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv}
	r := e.do("GET", "/readyz", "", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	ready = false
	r = e.do("GET", "/readyz", "", nil)
	require.Equal(t, 503, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), "stuck")
}
