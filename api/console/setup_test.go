package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/logtest"
	"github.com/docket-dev/docket/internal/pgtest"
)

var (
	system   = docket.Actor{Role: docket.RoleSystem, Name: "test"}
	admin    = docket.Actor{Role: docket.RoleAdmin, Name: "ada"}
	enforcer = docket.Actor{Role: docket.RoleEnforcer, Name: "pipeline"}
	acme     = docket.Actor{Role: docket.RoleAdvertiser, Name: "acme-owner", AdvertiserID: "acme"}
)

// env is one test's real API server (console mounted) on its own
// database, with a token per label and one decision about acme.
type env struct {
	t      *testing.T
	db     *sqlx.DB
	store  *appeals.Store
	log    *audit.Log // integrated only when a test asks (e.integrate)
	srv    *httptest.Server
	tokens map[string]string
	// decision is acme's, under policy crypto version 1; the policy has
	// a version 2 since.
	decision appeals.Decision
}

func setup(t *testing.T, tlsServer ...bool) *env {
	t.Helper()
	return setupWith(t, appeals.Options{}, tlsServer...)
}

// setupWith is setup with the store's options.
func setupWith(t *testing.T, opts appeals.Options, tlsServer ...bool) *env {
	t.Helper()
	return setupServer(t, opts, api.Config{}, tlsServer...)
}

// setupServer is setup with the store's options and the API server's
// configuration (its Store and Audit are filled in).
func setupServer(t *testing.T, opts appeals.Options, cfg api.Config, tlsServer ...bool) *env {
	t.Helper()
	db := pgtest.New(t)
	store := appeals.NewStore(db, opts)
	log := logtest.New(t, db, audit.Options{})
	cfg.Store, cfg.Audit = store, log
	h := api.New(cfg)
	var srv *httptest.Server
	if len(tlsServer) > 0 && tlsServer[0] {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	e := &env{t: t, db: db, store: store, log: log, srv: srv, tokens: map[string]string{}}
	for label, in := range map[string]appeals.TokenInput{
		"admin":      {Name: "ada", Role: docket.RoleAdmin},
		"enforcer":   {Name: "pipeline", Role: docket.RoleEnforcer},
		"decider":    {Name: "pipeline", Role: docket.RoleReviewer}, // the enforcer, also a reviewer
		"reviewer":   {Name: "rita", Role: docket.RoleReviewer},
		"senior":     {Name: "sam", Role: docket.RoleSeniorReviewer},
		"advertiser": {Name: "acme-owner", Role: docket.RoleAdvertiser, AdvertiserID: "acme"},
		"other":      {Name: "globex-owner", Role: docket.RoleAdvertiser, AdvertiserID: "globex"},
		"auditor":    {Name: "audrey", Role: docket.RoleAuditor},
	} {
		_, secret, err := store.CreateToken(context.Background(), system, in)
		require.NoError(t, err)
		e.tokens[label] = secret
	}
	ctx := context.Background()
	_, err := store.PutPolicy(ctx, admin, "crypto", appeals.PolicyInput{Title: "Crypto assets",
		Text: "Ads may not promote token sales.\nAds may not promise returns.\nAds must name the issuer."})
	require.NoError(t, err)
	yes := true
	e.decision, err = store.RecordDecision(ctx, enforcer, appeals.DecisionInput{AdvertiserID: "acme", AdID: "ad-1",
		Action: appeals.ActionAdRemoval, PolicyCode: "crypto", Ground: "terms",
		Explanation: "The ad promotes a token sale, which the policy forbids.",
		Facts:       "Ad ad-1 showed a token sale on 2026-11-20.", Source: "voluntary",
		AutomatedDetection: &yes, AutomatedDecision: "partial", TerritorialScope: []string{"DE", "FR"}})
	require.NoError(t, err)
	_, err = store.PutPolicy(ctx, admin, "crypto", appeals.PolicyInput{Title: "Crypto assets",
		Text: "Ads may not promote token sales.\nAds may not promise returns.\nAds must name the issuer and its licence."})
	require.NoError(t, err)
	return e
}

// integrate makes every committed entry a leaf under a signed checkpoint.
func (e *env) integrate() {
	e.t.Helper()
	logtest.Drain(e.t, e.log)
}

// fileAppeal files acme's appeal of the decision through the store.
func (e *env) fileAppeal(statement string) appeals.Appeal {
	e.t.Helper()
	a, err := e.store.FileAppeal(context.Background(), acme, e.decision.ID, appeals.AppealInput{Statement: statement,
		Evidence: []appeals.EvidenceItem{{Description: "The issuer's licence", URL: "https://example.com/licence"}}})
	require.NoError(e.t, err)
	return a
}

// browser is an HTTP client with its own cookies, as one person's browser.
type browser struct {
	e *env
	c *http.Client
	// csrf is the session's token, read from the last page.
	csrf string
}

type page struct {
	Status int
	Header http.Header
	Body   string
	// Location is the redirect's target, not followed.
	Location string
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(e.t, err)
	c := *e.srv.Client() // a copy: each browser has its own jar
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{e: e, c: &c}
}

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	require.NoError(b.e.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.e.t, err)
	p := page{Status: resp.StatusCode, Header: resp.Header, Body: string(body), Location: resp.Header.Get("Location")}
	if m := csrfRe.FindStringSubmatch(p.Body); m != nil {
		b.csrf = m[1]
	}
	return p
}

func (b *browser) get(path string) page {
	b.e.t.Helper()
	req, err := http.NewRequest("GET", b.e.srv.URL+path, nil)
	require.NoError(b.e.t, err)
	return b.do(req)
}

// post sends a form; the session's CSRF token is added unless form has one.
func (b *browser) post(path string, form url.Values, headers ...string) page {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, err := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	require.NoError(b.e.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

// signIn signs in with the token labelled who and returns the reply to
// the sign-in form.
func (b *browser) signIn(who string) page {
	b.e.t.Helper()
	p := b.get("/ui/signin")
	require.Equal(b.e.t, 200, p.Status, p.Body)
	tok, ok := b.e.tokens[who]
	if !ok {
		tok = who
	}
	r := b.post("/ui/signin", url.Values{"token": {tok}})
	if r.Status == http.StatusSeeOther {
		b.get(r.Location) // reads the session's CSRF token
	}
	return r
}

// as is a browser signed in as who.
func (e *env) as(who string) *browser {
	e.t.Helper()
	b := e.browser()
	r := b.signIn(who)
	require.Equal(e.t, http.StatusSeeOther, r.Status, r.Body)
	return b
}
