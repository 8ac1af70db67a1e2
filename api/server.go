package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/api/httpstatus"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
)

// Check is one readiness probe; Details go into /readyz's answer.
type Check struct {
	Name string
	// Func returns details to show and an error when the part is not ready.
	Func func(ctx context.Context) (details any, err error)
}

// Config holds the server's dependencies.
type Config struct {
	Store *appeals.Store
	// Audit serves the Audit log section; nil answers 503 there.
	Audit  *audit.Log
	Logger *slog.Logger
	// Checks run on /readyz besides the database ping.
	Checks []Check
	// Metrics serves /metrics when set.
	Metrics http.Handler
	// Registry, when set, receives the HTTP request metrics.
	Registry prometheus.Registerer
	Version  string
	// AuthCacheTTL is how long a token look-up is reused: the longest a
	// revoked token keeps working. Zero: 1 s; negative: no cache.
	AuthCacheTTL time.Duration
	// DBTimeout bounds each /v1 request's database work (exports, which
	// stream for as long as they take, excepted): past it the request
	// answers 503 with Retry-After. Zero: DefaultDBTimeout; negative: none.
	DBTimeout time.Duration
	// Limits bound connections, failed authentications and requests per
	// token; the zero value takes the defaults.
	Limits Limits
	// Sessions are the consoles' session lifetimes (idle, absolute); zero
	// takes appeals' defaults.
	Sessions appeals.SessionLimits
}

// Server answers Docket's HTTP API.
type Server struct {
	store   *appeals.Store
	audit   *audit.Log
	logger  *slog.Logger
	checks  []Check
	metrics http.Handler
	http    *httpMetrics
	version string
	mux     *http.ServeMux
	auth    *authCache
	limits  Limits
	// sessions are the consoles' session lifetimes (Config.Sessions).
	sessions appeals.SessionLimits
	// dbTimeout is Config.DBTimeout with its default; <= 0: none.
	dbTimeout time.Duration
	// failures counts failed token checks per client address; perToken
	// counts requests per token. Nil: no limit.
	failures, perToken *keyedLimiters
	// refusalLog keeps the log line for refused addresses to one per
	// interval, so a flood of guesses cannot flood the log.
	refusalLog rate.Sometimes
	// openAPIDoc is built once from ops().
	openAPIDoc []byte
}

// New builds a server and its routes.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{store: cfg.Store, audit: cfg.Audit, logger: slog.New(requestIDHandler{cfg.Logger.Handler()}),
		checks: cfg.Checks, metrics: cfg.Metrics, http: newHTTPMetrics(cfg.Registry), version: cfg.Version, mux: http.NewServeMux()}
	if cfg.AuthCacheTTL == 0 {
		cfg.AuthCacheTTL = time.Second
	}
	s.dbTimeout = cfg.DBTimeout
	if s.dbTimeout == 0 {
		s.dbTimeout = DefaultDBTimeout
	}
	s.auth = newAuthCache(cfg.AuthCacheTTL, cfg.Store.Authenticate)
	s.limits = cfg.Limits.withDefaults()
	s.sessions = cfg.Sessions
	s.failures = newKeyedLimiters(s.limits.AuthFailureRate, s.limits.AuthFailureBurst, s.limits.LimiterKeys)
	s.perToken = newKeyedLimiters(s.limits.TokenRate, s.limits.TokenBurst, s.limits.LimiterKeys)
	s.refusalLog = rate.Sometimes{Interval: 10 * time.Second}
	s.routes()
	doc, err := openAPIDocument(ops(), cfg.Version)
	if err != nil {
		panic(err) // a programming error: the types in ops() must encode
	}
	s.openAPIDoc = doc
	return s
}

// DefaultDBTimeout is Config.DBTimeout's default.
const DefaultDBTimeout = 5 * time.Second

// ServeHTTP logs each request and hands it to the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := requestID(r)
	ctx := context.WithValue(r.Context(), requestIDKey{}, id)
	if s.dbTimeout > 0 && strings.HasPrefix(r.URL.Path, "/v1/") && !strings.HasPrefix(r.URL.Path, "/v1/exports/") {
		// A database that stops answering must not hold the request: the
		// store's calls end at this deadline (see internal/pgdial for
		// how the blocked connection is let go).
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.dbTimeout)
		defer cancel()
	}
	r = r.WithContext(ctx)
	w.Header().Set(RequestIDHeader, id)
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		s.noRoute(rec, r)
	} else {
		s.mux.ServeHTTP(rec, r)
	}
	s.http.observe(pattern, r.Method, rec.status, time.Since(start))
	level := slog.LevelInfo
	if rec.status == http.StatusUnauthorized || rec.status == http.StatusTooManyRequests {
		level = slog.LevelDebug // a guessing client would otherwise write a line per guess
	}
	s.logger.LogAttrs(r.Context(), level, "http",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", rec.status), slog.Duration("took", time.Since(start)),
		slog.String("actor", rec.actor))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	actor  string
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming handlers (exports) push bytes through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// noRoute answers the mux's own 404 and 405 as problem+json.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	if status, allow := httpstatus.RouterAnswer(s.mux, r); status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", allow)
		s.writeError(w, r, &httpError{status: http.StatusMethodNotAllowed, slug: "method_not_allowed",
			detail: r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + allow})
		return
	}
	s.writeError(w, r, docket.Errorf(docket.NotFound, "no route for %s %s", r.Method, r.URL.Path))
}
