package console

import (
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/api/httpstatus"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is mounted.
const Prefix = "/ui/"

// maxForm bounds a form's body, as the API bounds a JSON body.
const maxForm = 1 << 20

// Config holds the console's dependencies.
type Config struct {
	Store *appeals.Store
	// Audit serves the auditors' pages; nil: they say the log is not running.
	Audit  *audit.Log
	Logger *slog.Logger
	// Sessions are the idle and absolute lifetimes; zero takes the defaults.
	Sessions appeals.SessionLimits
	// Now is the clock for what pages show (lease countdowns, overdue);
	// nil is time.Now.
	Now func() time.Time
	// SignInWait, when set, says how long the request's client must wait
	// before it may try a token again (too many failures); SignInFailed
	// counts a failed try. The API passes its own limiter, so that the
	// form is no cheaper a way to guess tokens than the API.
	SignInWait   func(r *http.Request) time.Duration
	SignInFailed func(r *http.Request)
	// TLS says whether the browser's request came over TLS, which makes
	// the cookies Secure. Nil: r.TLS != nil, for a server that terminates
	// TLS itself; the API passes one that also believes a trusted
	// TLS-terminating proxy's X-Forwarded-Proto.
	TLS func(r *http.Request) bool
}

// Console serves the consoles under Prefix.
type Console struct {
	store  *appeals.Store
	audit  *audit.Log
	logger *slog.Logger
	limits appeals.SessionLimits
	now    func() time.Time
	// signInWait and signInFailed throttle failed sign-ins (Config).
	signInWait   func(r *http.Request) time.Duration
	signInFailed func(r *http.Request)
	tls          func(r *http.Request) bool
	mux          *http.ServeMux
	pages        map[string]*template.Template
	static       http.Handler
	// origin refuses cross-origin state-changing requests (Sec-Fetch-Site,
	// Origin) before the CSRF token is even looked at.
	origin *http.CrossOriginProtection
}

// New builds the console and its routes.
func New(cfg Config) *Console {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SignInWait == nil {
		cfg.SignInWait = func(*http.Request) time.Duration { return 0 }
	}
	if cfg.SignInFailed == nil {
		cfg.SignInFailed = func(*http.Request) {}
	}
	if cfg.TLS == nil {
		cfg.TLS = func(r *http.Request) bool { return r.TLS != nil }
	}
	c := &Console{store: cfg.Store, audit: cfg.Audit, logger: cfg.Logger, limits: cfg.Sessions, now: cfg.Now,
		signInWait: cfg.SignInWait, signInFailed: cfg.SignInFailed, tls: cfg.TLS,
		mux: http.NewServeMux(), pages: parsePages(), origin: http.NewCrossOriginProtection()}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	c.static = http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	c.routes()
	return c
}

// routes is the console's whole surface: each page with the query
// parameters it takes and the roles it admits. Which records a role sees
// within a page (an advertiser's own, separation of duties) is the
// store's rule, as for the API.
func (c *Console) routes() {
	c.get("/ui/{$}", c.home, nil)
	c.get("/ui/static/{file}", func(w http.ResponseWriter, r *http.Request) { c.static.ServeHTTP(w, r) }, nil)
	c.get("/ui/signin", c.signInPage, []string{"next"})
	c.post("/ui/signin", c.signIn)
	c.post("/ui/signout", c.signOut)

	c.get("/ui/decisions", c.page(c.decisions, readers...), []string{"status", "action", "policy", "cursor", "done"})
	c.get("/ui/decisions/{id}", c.page(c.decision, readers...), []string{"done"})
	c.get("/ui/decisions/new", c.page(c.decisionNew, deciders...), nil)
	c.post("/ui/decisions", c.form(c.recordDecision, deciders...))
	c.post("/ui/decisions/{id}/notices", c.form(c.recordNotice, deciders...))
	c.post("/ui/decisions/{id}/appeals", c.form(c.fileAppeal, docket.Appellants...))
	c.post("/ui/appeals/{id}/withdraw", c.form(c.withdraw, docket.Appellants...))

	c.get("/ui/queue", c.page(c.queue, reviewers...), []string{"done"})
	c.post("/ui/queue/claim", c.form(c.claim, reviewers...))
	c.get("/ui/appeals", c.page(c.appealsList, readers...), []string{"state", "overdue", "cursor"})
	c.get("/ui/appeals/{id}", c.page(c.appeal, readers...), []string{"done"})
	c.post("/ui/appeals/{id}/resolve", c.form(c.resolve, reviewers...))
	c.post("/ui/appeals/{id}/escalate", c.form(c.escalate, reviewers...))

	c.get("/ui/audit", c.page(c.auditIndex, auditReaders...), []string{"start"})
	c.get("/ui/audit/entries/{index}", c.page(c.auditEntry, auditReaders...), nil)
	c.get("/ui/audit/consistency", c.page(c.auditConsistency, auditReaders...), []string{"from", "to"})
	c.get("/ui/audit/report", c.page(c.auditReport, auditReaders...), []string{"from", "to"})
	c.get("/ui/exports/{file}", c.page(c.export, auditReaders...), []string{"from", "to"})

	c.get("/ui/policies", c.page(c.policies, admins...), []string{"cursor"})
	c.post("/ui/policies", c.form(c.putPolicy, admins...))
	c.get("/ui/policies/{code}", c.page(c.policy, admins...), []string{"from", "to", "done"})
	c.post("/ui/policies/{code}", c.form(c.putPolicy, admins...))
	c.post("/ui/policies/{code}/reversal", c.form(c.reversal, admins...))
}

var (
	readers   = docket.Readers
	reviewers = docket.Reviewers
)

// get registers a page whose query may hold only the named parameters.
func (c *Console) get(pattern string, h http.HandlerFunc, params []string) {
	allowed := map[string]bool{}
	for _, p := range params {
		allowed[p] = true
	}
	c.mux.HandleFunc("GET "+pattern, func(w http.ResponseWriter, r *http.Request) {
		if msg := checkQuery(r, allowed); msg != "" {
			c.fail(w, r, nil, docket.Errorf(docket.Invalid, "%s", msg))
			return
		}
		h(w, r)
	})
}

// post registers a state-changing form: same-origin only, a bounded body
// and no query string.
func (c *Console) post(pattern string, h http.HandlerFunc) {
	c.mux.Handle("POST "+pattern, c.origin.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			c.fail(w, r, nil, docket.Errorf(docket.Invalid, "a form takes no query parameters"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			c.fail(w, r, nil, docket.Errorf(docket.Invalid, "the form could not be read"))
			return
		}
		for k, vs := range r.PostForm {
			for _, v := range append([]string{k}, vs...) {
				if !docket.CleanString(v) {
					c.fail(w, r, nil, docket.Errorf(docket.Invalid, "the form holds invalid UTF-8 or NUL bytes"))
					return
				}
			}
		}
		h(w, r)
	})))
}

// checkQuery refuses what the API's checkedMux refuses: a query net/url
// reads otherwise than meant, unknown or repeated parameters, invalid
// UTF-8 and NUL bytes. It returns what is wrong, or "".
func checkQuery(r *http.Request, allowed map[string]bool) string {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "the query string is malformed"
	}
	for k, vs := range q {
		switch {
		case !allowed[k]:
			return "this page takes no parameter " + strings.ToValidUTF8(k, "?")
		case len(vs) > 1:
			return "the parameter " + k + " is given more than once"
		case !docket.CleanString(vs[0]) || len(vs[0]) > 256:
			return "the parameter " + k + " is not valid"
		}
	}
	return ""
}

// ServeHTTP sets the security headers on every reply, then routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No inline script or style anywhere: only the console's own files.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, Prefix+"static/") {
		h.Set("Cache-Control", "no-store") // pages and redirects are per session
	}
	if _, pattern := c.mux.Handler(r); pattern == "" {
		c.noRoute(w, r)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// noRoute answers the mux's 404 and 405 as pages.
func (c *Console) noRoute(w http.ResponseWriter, r *http.Request) {
	if status, allow := httpstatus.RouterAnswer(c.mux, r); status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", allow)
		c.render(w, r, http.StatusMethodNotAllowed, "error", view{Title: "Not allowed", Error: r.Method + " is not allowed here."})
		return
	}
	c.fail(w, r, nil, docket.Errorf(docket.NotFound, "there is no such page"))
}

// errNoAudit: the console was built without the audit log.
var errNoAudit = errors.New("console: the audit log is not running")

// statusOf is the status of a page that failed with err: the API's for
// the same error (httpstatus), and 503 when the audit log is not running.
func statusOf(err error) int {
	if errors.Is(err, errNoAudit) {
		return http.StatusServiceUnavailable
	}
	return httpstatus.Of(err)
}

// message is what a page says of err: the domain's own words for an
// expected failure, never an internal error's.
func message(err error) string {
	if errors.Is(err, errNoAudit) {
		return "The audit log is not running here."
	}
	var e *docket.Error
	if errors.As(err, &e) && e.Code != docket.Internal {
		msg := e.Message
		for _, f := range e.Fields {
			msg += "; " + f.Field + " " + f.Message
		}
		return msg
	}
	return "Something went wrong on our side; try again. The error is logged."
}

// fail renders err as an error page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *appeals.Session, err error) {
	status := statusOf(err)
	if status >= http.StatusInternalServerError {
		c.logger.ErrorContext(r.Context(), "console", slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		// As the API's 503 says: retry, and about when.
		w.Header().Set("Retry-After", strconv.Itoa(httpstatus.RetryAfter))
	}
	title := http.StatusText(status)
	if status == http.StatusNotFound {
		title = "Not found"
	}
	c.render(w, r, status, "error", view{Session: s, Title: title, Error: message(err)})
}
