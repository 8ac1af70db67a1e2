package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/pgdial"
	"github.com/docket-dev/docket/migrations"
)

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("DOCKET_LOG_LEVEL: want debug, info, warn or error, got %q", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "json", "":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("DOCKET_LOG_FORMAT: want json or text, got %q", format)
}

// withBinaryParameters asks lib/pq to send parameters in the Bind message
// of the statement itself: one round trip per statement instead of two,
// which on a busy 2-core machine is a quarter more decisions per second.
func withBinaryParameters(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn // a key=value DSN: left as the operator wrote it
	}
	q := u.Query()
	if q.Get("binary_parameters") == "" {
		q.Set("binary_parameters", "yes")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// openDB connects and waits briefly for Postgres to answer.
func openDB(ctx context.Context, dsn string) (*sqlx.DB, error) {
	db, err := sqlx.Open("postgres", withBinaryParameters(dsn))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(64)
	db.SetMaxIdleConns(64)
	db.SetConnMaxIdleTime(5 * time.Minute)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("reach database: %w", err)
	}
	return db, nil
}

// stallFactor times DOCKET_DB_TIMEOUT is the longest any read or write of
// a served connection waits for progress: the bound of background work
// (integrator, relay, sweeps), whose contexts have no deadline, against a
// database that stops answering. It must exceed the longest statement.
const stallFactor = 6

// openServeDB opens the pool `docket serve` runs on: every connection's
// I/O is bounded (internal/pgdial), so that a hung database fails requests
// at their deadline and lets the background work retry, instead of
// blocking them forever.
func openServeDB(ctx context.Context, dsn string, timeout time.Duration, maxOpen int) (*sqlx.DB, error) {
	if timeout <= 0 {
		timeout = api.DefaultDBTimeout
	}
	sdb, err := pgdial.Open(withBinaryParameters(dsn), pgdial.Options{ConnectTimeout: timeout, Stall: stallFactor * timeout})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db := sqlx.NewDb(sdb, "postgres")
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("reach database: %w", err)
	}
	return db, nil
}

func newFlagSet(name string, e *env, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprint(e.stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

func cmdServe(ctx context.Context, e *env, args []string) error {
	o, err := serveFlags(e, args)
	if err != nil {
		return err
	}
	cfg, logger := o.cfg, o.logger
	if err := prepareDatabase(ctx, cfg, logger); err != nil {
		return err
	}
	db, err := openServeDB(ctx, cfg.DatabaseURL, cfg.DBTimeout, cfg.DBMaxOpen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer db.Close()
	store := appeals.NewStore(db, appeals.Options{AppealWindow: cfg.AppealWindow, ReviewDue: cfg.ReviewDue,
		ClaimLease: cfg.ClaimLease, FurtherAppeals: &cfg.FurtherAppeals})

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bg, err := startBackground(ctx, cfg, db, store, reg, logger)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// On every way out, serve returns only once the integrator has: a
	// failed start (a taken HTTP port, say) must not leave it running.
	defer bg.stop()

	srv := api.New(api.Config{Store: store, Audit: bg.auditLog, Logger: logger, Checks: bg.checks,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), Registry: reg, Version: version, AuthCacheTTL: cfg.AuthCacheTTL,
		Limits: o.limits, DBTimeout: cfg.DBTimeout, Sessions: o.sessions})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("serve: listen: %w", err)
	}
	logger.Info("docket serving", slog.String("addr", ln.Addr().String()), slog.String("version", version))
	if err := serveUntilDone(ctx, srv.HTTPServer(), ln, cfg.ShutdownTimeout, logger); err != nil {
		return err
	}
	bg.stop() // the final pass integrates what was accepted during shutdown
	logger.Info("stopped")
	return nil
}

// serveOptions is serve's configuration, checked, with what it derives
// from it before anything is opened.
type serveOptions struct {
	cfg      config
	logger   *slog.Logger
	limits   api.Limits
	sessions appeals.SessionLimits
}

// serveFlags parses serve's flags and variables and refuses settings that
// cannot work, so that a mistake fails before the database is touched.
func serveFlags(e *env, args []string) (*serveOptions, error) {
	fs := newFlagSet("serve", e, "Usage: docket serve [flags]\n\nRuns the HTTP API, the audit log integrator and the NATS relay.\n\nFlags:\n")
	o := &serveOptions{}
	if err := o.cfg.bind(fs, e); err != nil {
		return nil, err
	}
	if err := noArgs(fs, "serve", args); err != nil {
		return nil, err
	}
	var err error
	if o.logger, err = newLogger(e.stderr, o.cfg.LogLevel, o.cfg.LogFormat); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if o.limits, err = o.cfg.limits(); err != nil {
		return nil, err
	}
	if err := o.cfg.checkServe(); err != nil {
		return nil, err
	}
	if o.sessions, err = o.cfg.sessions(); err != nil {
		return nil, err
	}
	return o, nil
}

// background is serve's work beside the HTTP server: the audit log's
// integrator, the notification relay, the sweep of expired claims and
// the profiler, on a context of their own.
type background struct {
	auditLog *audit.Log
	checks   []api.Check // for /readyz
	stop     func()      // stops it all and waits for the integrator's final pass
}

// startBackground starts serve's background work. Its context is not
// ctx: the work stops only after the HTTP server has drained, so that
// writes accepted during shutdown are still integrated.
func startBackground(ctx context.Context, cfg config, db *sqlx.DB, store *appeals.Store, reg *prometheus.Registry, logger *slog.Logger) (*background, error) {
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	auditLog, integrated, err := startAuditLog(bg, cfg, db, logger)
	if err != nil {
		stopBG()
		return nil, err
	}
	registerAuditMetrics(reg, auditLog)
	registerStateMetrics(reg, db, store, logger)
	relay, stopNotify, err := startNotify(bg, cfg, db, reg, logger)
	if err != nil {
		// A taken NATS port, say: the integrator must not stay running.
		stopBG()
		<-integrated
		return nil, err
	}
	go releaseExpiredClaims(bg, store, logger)
	if cfg.PprofAddr != "" {
		go servePprof(bg, cfg.PprofAddr, logger)
	}
	// Every step may be taken again (stopNotify is idempotent and
	// integrated is closed), so stop may run twice: after the drain and
	// deferred.
	stop := func() {
		stopBG()
		stopNotify()
		<-integrated
	}
	return &background{auditLog: auditLog, checks: []api.Check{auditCheck(auditLog), notifyCheck(relay)}, stop: stop}, nil
}

// prepareDatabase creates the database when missing and applies pending
// migrations, unless told not to (--no-migrate), saying what it did.
func prepareDatabase(ctx context.Context, cfg config, logger *slog.Logger) error {
	if cfg.NoMigrate {
		return nil
	}
	created, err := migrations.CreateDatabase(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if created {
		logger.Info("created the database", slog.String("database", databaseName(cfg.DatabaseURL)))
	}
	// On a pool of its own, without the served pool's stall bound: a
	// migration's statement may rightly take long.
	mdb, err := openDB(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	n, err := migrations.Apply(ctx, mdb.DB)
	mdb.Close()
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("database migrated", slog.String("database", databaseName(cfg.DatabaseURL)), slog.Int("applied", n))
	return nil
}

// serveUntilDone serves HTTP on ln until ctx ends, then lets the requests
// in flight finish within timeout.
func serveUntilDone(ctx context.Context, hs *http.Server, ln net.Listener, timeout time.Duration, logger *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	return nil
}

// servePprof serves the profiler on its own listener, never on the API's,
// so it is reachable only where the operator chose.
func servePprof(ctx context.Context, addr string, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = hs.Close()
	}()
	logger.Info("profiler serving", slog.String("addr", addr))
	if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("profiler stopped", slog.Any("err", err))
	}
}

// releaseExpiredClaims returns appeals whose claim lease ran out to the
// queue, with an audit entry each. Claims also do it lazily; this sweep
// makes the queue and the log say so even when nobody claims.
func releaseExpiredClaims(ctx context.Context, store *appeals.Store, logger *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := store.ReleaseExpired(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("releasing expired claims failed", slog.Any("err", err))
		case n > 0:
			logger.Info("released expired claims", slog.Int("appeals", n))
		}
	}
}

func cmdMigrate(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("migrate", e, "Usage: docket migrate up|status [flags]\n\nup creates the database if missing and applies pending migrations; status lists them.\n\nFlags:\n")
	dsn := databaseFlag(fs, e)
	sub, rest, err := parseSub(fs, "migrate", args, "up", "status")
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		fs.Usage()
		return fmt.Errorf("migrate %s: unexpected argument %q", sub, rest[0])
	}
	name := databaseName(*dsn)
	if sub == "up" {
		created, err := migrations.CreateDatabase(ctx, *dsn)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if created {
			fmt.Fprintf(e.stdout, "created database %q\n", name)
		}
	}
	var db *sqlx.DB
	if sub == "status" {
		db, err = openExisting(ctx, *dsn)
	} else {
		db, err = openDB(ctx, *dsn)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer db.Close()
	if sub == "status" {
		return migrations.Status(ctx, db.DB, e.stdout)
	}
	n, err := migrations.Apply(ctx, db.DB)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fmt.Fprintf(e.stdout, "database %q: %d migrations applied\n", name, n)
	return nil
}
