package console_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/appeals"
)

// TestPagesAndAPIAgreeOnAnOutage: with the database refusing connections,
// a page answers what the API answers, 503 (retry), not a 500 (a fault of
// the service): both take the status from httpstatus.
func TestPagesAndAPIAgreeOnAnOutage(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: every connection is refused at once.
	db, err := sqlx.Open("postgres", "postgres://postgres@127.0.0.1:1/docket?sslmode=disable&connect_timeout=2")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	srv := httptest.NewServer(api.New(api.Config{Store: appeals.NewStore(db, appeals.Options{})}))
	t.Cleanup(srv.Close)

	e := &env{t: t, srv: srv, tokens: map[string]string{}}
	b := e.browser()
	p := b.get("/ui/signin")
	require.Equal(t, http.StatusOK, p.Status, "the sign-in form needs no database")
	page := b.post("/ui/signin", url.Values{"token": {"dkt_" + "0123456789abcdef0123456789abcdef"}})

	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/decisions", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer dkt_0123456789abcdef0123456789abcdef")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()

	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "the API")
	require.Equal(t, http.StatusServiceUnavailable, page.Status, "the sign-in page: %s", page.Body)
	require.NotContains(t, page.Body, "connection refused", "a page never shows an internal error")
	require.Equal(t, resp.Header.Get("Retry-After"), page.Header.Get("Retry-After"), "both say when to retry")
	require.NotEmpty(t, page.Header.Get("Retry-After"))
}
