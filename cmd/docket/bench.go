package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/internal/loadgen"
	"github.com/docket-dev/docket/notify"
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
	dsn := databaseFlag(fs, e)
	target := fs.String("url", "http://127.0.0.1:8080", "the Docket to load")
	duration := fs.Duration("duration", 30*time.Second, "how long to drive it (and the baseline)")
	clients := fs.Int("clients", 32, "concurrent closed-loop clients")
	mixFlag := fs.String("mix", loadgen.StandardMix, "operation weights: decisions, appeals, claims (claim then resolve), reads")
	baseline := fs.Bool("baseline", false, "also run raw single-row INSERTs against the same Postgres and print the ratio")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	out := fs.String("out", "", "also write the JSON report to this file")
	natsURL := fs.String("nats-url", "", "NATS server the service publishes to, for the notification lag")
	natsCreds := fs.String("nats-creds", "", "read-only credentials for --nats-url: a .creds or nkey seed file; default: the data directory's nats/reader.nk when present")
	dataDir := fs.String("data-dir", envOr(e.getenv, "DOCKET_DATA_DIR", "./data"), "the serve data directory, for the embedded server's reader credentials (DOCKET_DATA_DIR)")
	allowRemote := fs.Bool("allow-remote", false, "permit non-loopback URL, NATS and database hosts")
	policy := fs.String("policy", "bench-load", "policy code the bench's decisions cite (created if missing)")
	advertisers := fs.Int("advertisers", 8, "advertisers the decisions are spread over")
	reviewers := fs.Int("reviewers", 4, "reviewer tokens the clients share")
	poll := fs.Duration("poll", 25*time.Millisecond, "how often to fetch the public checkpoint")
	wait := fs.Duration("wait", 0, "wait this long for the server's /readyz before starting")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	mix, err := loadgen.ParseMix(*mixFlag)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if _, err := loadgen.CheckURL(*target, *allowRemote); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := checkDatabaseHost(*dsn, *allowRemote); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if *advertisers < 1 || *reviewers < 1 || *clients < 1 || *duration <= 0 {
		return errors.New("bench: --advertisers, --reviewers, --clients and --duration must be positive")
	}
	logger, err := newLogger(e.stderr, *logLevel, "json")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if *wait > 0 {
		if err := loadgen.WaitReady(ctx, *target, *allowRemote, *wait); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}

	// The database must be the server's: the bench neither creates nor migrates it.
	db, err := openDB(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer db.Close()
	toks, revoke, err := mintBenchTokens(ctx, e, appeals.NewStore(db, appeals.Options{}), *reviewers, *advertisers)
	// Revoked even after an interrupted run: the credentials were for it alone.
	defer revoke(logger)
	if err != nil {
		return err
	}

	rep, err := loadgen.Run(ctx, loadgen.Config{URL: *target, Duration: *duration, Clients: *clients, Mix: mix,
		Tokens: toks, PolicyCode: *policy, PollInterval: *poll, NATSURL: *natsURL, NATSAuth: benchNATSAuth(*natsCreds, *dataDir), AllowRemote: *allowRemote, Logger: logger})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	switch {
	case *baseline && ctx.Err() != nil:
		rep.Notes = append(rep.Notes, "baseline skipped: interrupted")
	case *baseline:
		logger.Info("bench baseline: raw inserts", slog.Int("clients", *clients), slog.Duration("duration", *duration))
		payload := loadgen.DecisionPayload(toks.Advertisers[0].ID, *policy, "ad-0-1", 1)
		b, err := loadgen.RunBaseline(ctx, db.DB, *clients, *duration, payload)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		rep.SetBaseline(b)
	}

	return writeBenchReport(e, rep, *out, *asJSON)
}

// benchNATSAuth reads the notification watcher's credentials when the
// run starts: the file named, else the embedded server's reader
// credentials in the data directory, else none.
func benchNATSAuth(credsFile, dataDir string) func() ([]nats.Option, error) {
	return func() ([]nats.Option, error) {
		if _, err := os.Stat(notify.ReaderSeedFile(dataDir)); credsFile == "" && err == nil {
			credsFile = notify.ReaderSeedFile(dataDir)
		}
		if credsFile == "" {
			return nil, nil
		}
		o, err := credsFileOption(credsFile)
		if err != nil {
			return nil, fmt.Errorf("--nats-creds: %w", err)
		}
		return []nats.Option{o}, nil
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
