package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats.go"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/internal/loadgen"
)

const benchUsage = `Usage: docket bench [flags]

Drives a running Docket over HTTP with a mix of operations from --clients
closed-loop clients for --duration and reports, per operation, requests/s,
p50/p90/p99/max latency and answers by status, the audit log's integration
lag through the public checkpoint, and with --nats-url the notification lag.
It creates its own tokens in the server's database (--database-url) and
revokes them at the end. --baseline also runs single-row INSERTs of the same
payload into a scratch table of that database at the same concurrency and
prints the service's decisions/s as a share of it.

Only loopback hosts are loaded unless --allow-remote is given.

Flags:
`

func cmdBench(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("bench", e, benchUsage)
	o := benchFlags(fs, e)
	if err := fs.Parse(args); err != nil {
		return err
	}
	mix, err := o.check()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	logger, err := newLogger(e.stderr, o.logLevel, "json")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if o.wait > 0 {
		if err := loadgen.WaitReady(ctx, o.target, o.allowRemote, o.wait); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}

	// The database must be the server's: the bench neither creates nor migrates it.
	db, err := openDB(ctx, o.dsn)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer db.Close()
	toks, revoke, err := mintBenchTokens(ctx, e, appeals.NewStore(db, appeals.Options{}), o.reviewers, o.advertisers)
	// Revoked even after an interrupted run: the credentials were for it alone.
	defer revoke(logger)
	if err != nil {
		return err
	}

	rep, err := loadgen.Run(ctx, loadgen.Config{URL: o.target, Duration: o.duration, Clients: o.clients, Mix: mix,
		Tokens: toks, PolicyCode: o.policy, PollInterval: o.poll, NATSURL: o.natsURL, NATSAuth: benchNATSAuth(o.natsCreds, o.dataDir), AllowRemote: o.allowRemote, Logger: logger})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := benchBaseline(ctx, o, db, toks, rep, logger); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return writeBenchReport(e, rep, o.out, o.asJSON)
}

// benchOptions is the bench's flags.
type benchOptions struct {
	dsn, target, mix, out, natsURL, natsCreds, dataDir, policy, logLevel string
	duration, poll, wait                                                 time.Duration
	clients, advertisers, reviewers                                      int
	baseline, asJSON, allowRemote                                        bool
}

func benchFlags(fs *flag.FlagSet, e *env) *benchOptions {
	o := &benchOptions{}
	databaseVar(fs, &o.dsn, e)
	fs.StringVar(&o.target, "url", "http://127.0.0.1:8080", "the Docket to load")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long to drive it (and the baseline)")
	fs.IntVar(&o.clients, "clients", 32, "concurrent closed-loop clients")
	fs.StringVar(&o.mix, "mix", loadgen.StandardMix, "operation weights: decisions, appeals, claims (claim then resolve), reads")
	fs.BoolVar(&o.baseline, "baseline", false, "also run raw single-row INSERTs against the same Postgres and print the ratio")
	fs.BoolVar(&o.asJSON, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&o.out, "out", "", "also write the JSON report to this file")
	fs.StringVar(&o.natsURL, "nats-url", "", "NATS server the service publishes to, for the notification lag")
	fs.StringVar(&o.natsCreds, "nats-creds", "", "read-only credentials for --nats-url: a .creds or nkey seed file; default: the data directory's nats/reader.nk when present")
	fs.StringVar(&o.dataDir, "data-dir", envOr(e.getenv, "DOCKET_DATA_DIR", "./data"), "the serve data directory, for the embedded server's reader credentials (DOCKET_DATA_DIR)")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "permit non-loopback URL, NATS and database hosts")
	fs.StringVar(&o.policy, "policy", "bench-load", "policy code the bench's decisions cite (created if missing)")
	fs.IntVar(&o.advertisers, "advertisers", 8, "advertisers the decisions are spread over")
	fs.IntVar(&o.reviewers, "reviewers", 4, "reviewer tokens the clients share")
	fs.DurationVar(&o.poll, "poll", 25*time.Millisecond, "how often to fetch the public checkpoint")
	fs.DurationVar(&o.wait, "wait", 0, "wait this long for the server's /readyz before starting")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return o
}

// check refuses options that cannot make a run, and those that would
// load a host other than this machine's unless --allow-remote.
func (o *benchOptions) check() (loadgen.Mix, error) {
	mix, err := loadgen.ParseMix(o.mix)
	if err != nil {
		return mix, err
	}
	if _, err := loadgen.CheckURL(o.target, o.allowRemote); err != nil {
		return mix, err
	}
	if err := checkDatabaseHost(o.dsn, o.allowRemote); err != nil {
		return mix, err
	}
	if o.advertisers < 1 || o.reviewers < 1 || o.clients < 1 || o.duration <= 0 {
		return mix, errors.New("--advertisers, --reviewers, --clients and --duration must be positive")
	}
	return mix, nil
}

// benchBaseline runs the raw-insert baseline into rep when --baseline
// asks for it, unless the run was interrupted.
func benchBaseline(ctx context.Context, o *benchOptions, db *sqlx.DB, toks loadgen.Tokens, rep *loadgen.Report, logger *slog.Logger) error {
	switch {
	case !o.baseline:
		return nil
	case ctx.Err() != nil:
		rep.Notes = append(rep.Notes, "baseline skipped: interrupted")
		return nil
	}
	logger.Info("bench baseline: raw inserts", slog.Int("clients", o.clients), slog.Duration("duration", o.duration))
	payload := loadgen.DecisionPayload(toks.Advertisers[0].ID, o.policy, "ad-0-1", 1)
	b, err := loadgen.RunBaseline(ctx, db.DB, o.clients, o.duration, payload)
	if err != nil {
		return err
	}
	rep.SetBaseline(b)
	return nil
}

// benchNATSAuth reads the notification watcher's credentials when the
// run starts: the file named, else the embedded server's reader
// credentials in the data directory, else none.
func benchNATSAuth(credsFile, dataDir string) func() ([]nats.Option, error) {
	return func() ([]nats.Option, error) {
		auth, err := readerAuth(credsFile, dataDir, true)
		if err != nil {
			return nil, fmt.Errorf("--nats-creds: %w", err)
		}
		return auth, nil
	}
}

// mintBenchTokens makes the run's own tokens: an admin, an enforcer, the
// reviewers and one per advertiser, all named after a random run id.
// revoke revokes those made, whatever happened.
func mintBenchTokens(ctx context.Context, e *env, store *appeals.Store, reviewers, advertisers int) (toks loadgen.Tokens, revoke func(*slog.Logger), err error) {
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	run := "bench-" + hex.EncodeToString(rb[:])
	actor := cliActor(e)
	var names []string
	revoke = func(logger *slog.Logger) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, n := range names {
			if _, err := store.RevokeTokens(rctx, actor, n, ""); err != nil {
				logger.Warn("bench: revoke token", slog.String("name", n), slog.Any("err", err))
			}
		}
	}
	mint := func(role docket.Role, name, adv string) (string, error) {
		_, secret, err := store.CreateToken(ctx, actor, appeals.TokenInput{Name: name, Role: role, AdvertiserID: adv})
		if err != nil {
			return "", fmt.Errorf("bench: create %s token: %w", role, err)
		}
		names = append(names, name)
		return secret, nil
	}
	if toks.Admin, err = mint(docket.RoleAdmin, run+"-admin", ""); err != nil {
		return toks, revoke, err
	}
	if toks.Enforcer, err = mint(docket.RoleEnforcer, run+"-enforcer", ""); err != nil {
		return toks, revoke, err
	}
	for i := range reviewers {
		t, err := mint(docket.RoleReviewer, run+"-reviewer-"+strconv.Itoa(i), "")
		if err != nil {
			return toks, revoke, err
		}
		toks.Reviewers = append(toks.Reviewers, t)
	}
	for i := range advertisers {
		id := run + "-adv-" + strconv.Itoa(i)
		t, err := mint(docket.RoleAdvertiser, id, id)
		if err != nil {
			return toks, revoke, err
		}
		toks.Advertisers = append(toks.Advertisers, loadgen.Advertiser{ID: id, Token: t})
	}
	return toks, revoke, nil
}

// writeBenchReport prints the report as a table or JSON, and writes the
// JSON to out when set.
func writeBenchReport(e *env, rep *loadgen.Report, out string, asJSON bool) error {
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	js = append(js, '\n')
	if out != "" {
		if err := os.WriteFile(out, js, 0o644); err != nil {
			return fmt.Errorf("bench: write report: %w", err)
		}
	}
	if asJSON {
		_, err = e.stdout.Write(js)
		return err
	}
	return rep.WriteText(e.stdout)
}

// checkDatabaseHost holds the baseline's load to this machine unless
// allowed: it writes as fast as the database takes it.
func checkDatabaseHost(dsn string, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	host := ""
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		host = u.Hostname()
		if h := u.Query().Get("host"); host == "" {
			host = h
		}
	} else {
		for _, kv := range strings.Fields(dsn) {
			if v, ok := strings.CutPrefix(kv, "host="); ok {
				host = v
			}
		}
	}
	// No host or a socket directory is this machine.
	if host == "" || strings.HasPrefix(host, "/") || loadgen.IsLoopback(host) {
		return nil
	}
	return fmt.Errorf("database host %q is not a loopback address; pass --allow-remote to load it anyway", host)
}
