package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/api/client"
	"github.com/docket-dev/docket/audit"
)

// signerKeyFileName is where serve keeps a key it generated, in the data directory.
const signerKeyFileName = "audit-signer.key"

const defaultOrigin = "docket.local/audit"

// startAuditLog loads the checkpoint signer key (DOCKET_SIGNER_KEY_FILE, or
// the data directory's, generated there only for a log with no checkpoint
// yet), makes sure it is the log's, and runs the integrator until ctx ends;
// done closes after its final pass.
func startAuditLog(ctx context.Context, cfg config, db *sqlx.DB, logger *slog.Logger) (*audit.Log, <-chan struct{}, error) {
	signer, vkey, path, err := loadSigner(ctx, cfg, db, logger)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	l, err := audit.NewLog(db, signer, vkey, cfg.LogOrigin, audit.Options{CheckpointInterval: cfg.CheckpointInterval, LockRetry: cfg.ElectionInterval, Logger: logger,
		PinFile: filepath.Join(cfg.DataDir, audit.PinFileName)})
	if err == nil {
		err = l.Claim(ctx)
	}
	if ie := (*audit.IdentityError)(nil); errors.As(err, &ie) {
		return nil, nil, fmt.Errorf("audit log: %w; set DOCKET_SIGNER_KEY_FILE to the file holding the log's signer key (%s) and DOCKET_LOG_ORIGIN to %q, or use a database and data directory of their own for a new log",
			err, ie.LogKey, ie.LogOrigin)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	logger.Info("audit log", slog.String("origin", cfg.LogOrigin), slog.String("verifier_key", vkey), slog.String("signer_key_file", path))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := l.Run(ctx); err != nil {
			logger.Error("audit integrator stopped", slog.Any("err", err))
		}
	}()
	return l, done, nil
}

// loadSigner reads the configured signer key, or the data directory's. It
// generates that one only while the log has no checkpoint: a new key for
// a signed log would start a second log that no verifier of the first
// accepts, so then it refuses instead.
func loadSigner(ctx context.Context, cfg config, db *sqlx.DB, logger *slog.Logger) (note.Signer, string, string, error) {
	if cfg.SignerKeyFile != "" {
		signer, vkey, err := audit.LoadSignerKey(cfg.SignerKeyFile)
		return signer, vkey, cfg.SignerKeyFile, err
	}
	path := filepath.Join(cfg.DataDir, signerKeyFileName)
	if _, err := os.Stat(path); err == nil {
		signer, vkey, err := audit.LoadSignerKey(path)
		return signer, vkey, path, err
	}
	st, err := audit.ReadLogState(ctx, db)
	if err != nil {
		return nil, "", "", err
	}
	if st.Signed() {
		return nil, "", "", fmt.Errorf("the log already has checkpoints, signed by key %s, and no signer key is configured (none in %s either): "+
			"set DOCKET_SIGNER_KEY_FILE to the file holding that key (every replica shares it); a new key would fork the log", st.KeyID(), path)
	}
	signer, vkey, created, err := audit.LoadOrCreateSignerKey(path, cfg.LogOrigin)
	if err != nil {
		return nil, "", "", err
	}
	if created {
		logger.Warn("no signer key configured (DOCKET_SIGNER_KEY_FILE) and the log has no checkpoint yet: generated a new key; back it up, give it to every replica and publish the verifier key",
			slog.String("file", path), slog.String("key", audit.KeyID(vkey)), slog.String("verifier_key", vkey))
	}
	return signer, vkey, path, nil
}

// auditCheck fails readiness once the integrator has halted on a fork or a
// foreign identity: the log then takes entries it will never sign.
func auditCheck(l *audit.Log) api.Check {
	return api.Check{Name: "audit", Func: func(context.Context) (any, error) {
		st := l.Status()
		details := map[string]any{"checkpoint_size": st.CheckpointSize, "pinned_size": st.PinnedSize, "halted": st.Halted}
		if st.Halted {
			return details, errors.New(st.Reason)
		}
		return details, nil
	}}
}

// registerAuditMetrics exposes the integrator's Status to Prometheus.
func registerAuditMetrics(reg prometheus.Registerer, l *audit.Log) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "docket_audit_fork_detected",
			Help: "1 once the integrator found the log does not extend a trusted checkpoint (or is not its key's) and stopped signing"},
			func() float64 {
				if l.Status().Halted {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "docket_audit_integrator_leader",
			Help: "1 while this process holds the integrator's election (the one that integrates and signs)"},
			func() float64 {
				if l.Status().Leader {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "docket_audit_checkpoint_size",
			Help: "size of the latest checkpoint this process signed or verified; -1 before any"},
			func() float64 { return float64(l.Status().CheckpointSize) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "docket_audit_integrated_entries_total",
			Help: "leaves this process added to the log; its rate is the integration rate"},
			func() float64 { return float64(l.Status().Integrated) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "docket_audit_checkpoints_signed_total",
			Help: "checkpoints this process signed and stored"},
			func() float64 { return float64(l.Status().Checkpoints) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "docket_audit_signing_failures_total",
			Help: "checkpoints due that the signer refused to sign; the batch is rolled back and retried"},
			func() float64 { return float64(l.Status().SignFailures) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "docket_audit_integration_failures_total",
			Help: "integration batches that failed for any reason (signing failures included) and were retried"},
			func() float64 { return float64(l.Status().Failures) }),
	)
}

func cmdKeys(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("keys", e, `Usage: docket keys generate [--name ORIGIN] [--out FILE]

Generates an Ed25519 key pair for signing checkpoints. With --out the signer
key goes to FILE (mode 0600) and the verifier key to FILE.pub; without it
both are printed, the signer key first. The verifier key is printed last
either way: publish it, and keep the signer key secret.

Flags:
`)
	name := fs.String("name", envOr(e.getenv, "DOCKET_LOG_ORIGIN", defaultOrigin), "the key's name: the log's origin (DOCKET_LOG_ORIGIN)")
	out := fs.String("out", "", "write the signer key to this file and the verifier key to FILE.pub")
	if _, err := onlySub(fs, "keys", args, "generate"); err != nil {
		return err
	}
	skey, vkey, err := audit.GenerateKey(*name)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if *out == "" {
		fmt.Fprintln(e.stdout, skey)
		fmt.Fprintln(e.stdout, vkey)
		return nil
	}
	if err := audit.WriteKeyFiles(*out, skey, vkey); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	fmt.Fprintf(e.stderr, "signer key written to %s, verifier key to %s.pub\n", *out, *out)
	fmt.Fprintln(e.stdout, vkey)
	return nil
}

const verifyUsage = `Usage: docket verify [flags]
       docket verify --remote URL --checkpoint FILE [--key KEY] [--save FILE]
       docket verify --bundle FILE --key KEY

With no mode flag, verifies the audit log in the database: every leaf hash
and the Merkle tree are recomputed from the stored entries, every checkpoint's
signature and root and its consistency with the next are checked. The log
must also have grown from every --checkpoint FILE saved earlier (a smaller
log was truncated, another root at that size was rewritten), and from the
integrator's pin, <data-dir>/checkpoint.pin, when there is one. It fails when
the log has entries but no checkpoint, and when entries have gone without a
checkpoint for longer than --max-unsigned-age. It exits 0 only when all
holds, and otherwise names the first fault (index, sizes, roots).

--remote checks a live log against a checkpoint saved earlier, through the
public API only: no database access.

Flags:
`

func cmdVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("verify", e, verifyUsage)
	o := verifyFlags(fs, e)
	if err := noArgs(fs, "verify", args); err != nil {
		return err
	}
	switch {
	case o.bundle != "":
		return verifyBundleFile(ctx, e, o.bundle, o.key, o.quiet)
	case o.remote != "":
		if len(o.saved) != 1 {
			return errors.New("verify: --remote needs one --checkpoint FILE, a checkpoint saved earlier")
		}
		return verifyRemote(ctx, e, o.remote, o.saved[0], o.key, o.save)
	}
	return verifyDatabase(ctx, e, o)
}

// verifyOptions is the flags of `docket verify`.
type verifyOptions struct {
	dsn, key, origin, remote, dataDir, save, bundle string
	saved                                           stringList
	maxUnsigned                                     time.Duration
	quiet                                           bool
}

func verifyFlags(fs *flag.FlagSet, e *env) *verifyOptions {
	o := &verifyOptions{}
	databaseVar(fs, &o.dsn, e)
	fs.StringVar(&o.key, "key", "", "the verifier key, or a file holding it (default: derived from DOCKET_SIGNER_KEY_FILE, or the data directory's generated key)")
	fs.StringVar(&o.origin, "origin", e.getenv("DOCKET_LOG_ORIGIN"), "the origin every checkpoint must name (DOCKET_LOG_ORIGIN; empty: the first checkpoint's)")
	fs.StringVar(&o.remote, "remote", "", "base URL of a live Docket to check against --checkpoint")
	fs.Var(&o.saved, "checkpoint", "a signed checkpoint saved earlier (repeatable; --remote takes one)")
	fs.StringVar(&o.dataDir, "data-dir", envOr(e.getenv, "DOCKET_DATA_DIR", "./data"), "where serve keeps its generated key and its pin (DOCKET_DATA_DIR)")
	fs.DurationVar(&o.maxUnsigned, "max-unsigned-age", time.Minute, "fail when an entry has had no checkpoint over it for longer; 0: no limit")
	fs.StringVar(&o.save, "save", "", "with --remote: write the live checkpoint here once it verifies")
	fs.StringVar(&o.bundle, "bundle", "", "verify a bundle file offline (see 'docket export --bundle')")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress output")
	return o
}

// verifyDatabase is the database mode of `docket verify`: the whole log,
// against the saved checkpoints and the integrator's pin.
func verifyDatabase(ctx context.Context, e *env, o *verifyOptions) error {
	vkey, err := verifierKey(e, o.key, o.dataDir)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	db, err := openMigrated(ctx, o.dsn)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer db.Close()
	start := time.Now()
	opts := audit.VerifyOptions{Origin: o.origin, MaxUnsignedAge: o.maxUnsigned}
	if opts.Saved, err = savedCheckpoints(o.saved, o.dataDir); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	bar := newProgress(e.stderr, !o.quiet && isTerminal(e.stderr), "entries", -1)
	var verified uint64
	opts.Progress = func(n uint64) { verified = n; bar.update(int64(n)) }
	rep, err := audit.Verify(ctx, db, vkey, opts)
	bar.done(int64(verified))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "ok: %d entries, %d nodes, %d checkpoints; latest checkpoint size %d root %x; extends %d saved checkpoints (%v)\n",
		rep.Leaves, rep.Nodes, rep.Checkpoints, rep.Size, rep.Root, rep.Saved, time.Since(start).Round(time.Millisecond))
	return nil
}

// savedCheckpoints reads the checkpoints the log must have grown from:
// the files named, and the integrator's pin in dataDir when there is one.
func savedCheckpoints(files []string, dataDir string) ([]audit.SavedCheckpoint, error) {
	pin := filepath.Join(dataDir, audit.PinFileName)
	if _, err := os.Stat(pin); err == nil {
		files = append(files, pin)
	}
	var saved []audit.SavedCheckpoint
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		saved = append(saved, audit.SavedCheckpoint{Name: f, Note: b})
	}
	return saved, nil
}

// verifierKey finds the key for database verification: --key, else the
// public half of the configured or generated signer key.
func verifierKey(e *env, flagKey, dataDir string) (string, error) {
	if flagKey != "" {
		return readKey(flagKey)
	}
	path := e.getenv("DOCKET_SIGNER_KEY_FILE")
	if path == "" {
		path = filepath.Join(dataDir, signerKeyFileName)
	}
	_, vkey, err := audit.LoadSignerKey(path)
	if err != nil {
		return "", fmt.Errorf("no --key given and no signer key to derive it from: %w", err)
	}
	return vkey, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func verifyRemote(ctx context.Context, e *env, base, savedFile, key, save string) error {
	saved, err := os.ReadFile(savedFile)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if key != "" {
		if key, err = readKey(key); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	} else {
		fmt.Fprintln(e.stderr, "no --key: using the server's, which the saved checkpoint's signature must still match")
	}
	c, err := client.New(base, "", &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	res, err := c.VerifyRemote(ctx, key, saved)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if save != "" {
		if err := os.WriteFile(save, res.LatestNote, 0o644); err != nil {
			return fmt.Errorf("verify: save checkpoint: %w", err)
		}
	}
	fmt.Fprintf(e.stdout, "ok: the log at %d entries (root %x) extends the saved checkpoint at %d\n",
		res.Latest.Size, res.Latest.Hash, res.Saved.Size)
	return nil
}

func cmdLog(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("log", e, `Usage: docket log succeed --checkpoint FILE --key KEY [--reason TEXT]

Opens a new, empty log as the successor of one whose signing key was
compromised: the old log's final trusted checkpoint (FILE, verified with the
old log's verifier key KEY) becomes the new log's first entry, of type
log.predecessor, so every checkpoint of the new log commits to where the old
one ended. Run it on the new log's database before anything else is written
to it, with the new origin in DOCKET_LOG_ORIGIN (it must differ from the
old), then start 'docket serve' with the new log's key.

Flags:
`)
	dsn := databaseFlag(fs, e)
	cpFile := fs.String("checkpoint", "", "the old log's final trusted checkpoint, as saved from GET /v1/audit/checkpoint")
	key := fs.String("key", "", "the old log's verifier key, or a file holding it")
	origin := fs.String("log-origin", envOr(e.getenv, "DOCKET_LOG_ORIGIN", defaultOrigin), "the new log's origin (DOCKET_LOG_ORIGIN)")
	reason := fs.String("reason", "", "why the old log ended, recorded in the entry")
	if _, err := onlySub(fs, "log", args, "succeed"); err != nil {
		return err
	}
	if *cpFile == "" {
		return errors.New("log: --checkpoint FILE is required: the old log's final checkpoint")
	}
	cp, err := os.ReadFile(*cpFile)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	vkey, err := readKey(*key)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	db, err := openMigrated(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	defer db.Close()
	p, err := audit.Succeed(ctx, db, cp, vkey, *origin, cliActor(e).String(), *reason, time.Now())
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	fmt.Fprintf(e.stdout, "log %s succeeds %s at size %d root %s; its first checkpoint will cover it\n", *origin, p.Origin, p.Size, p.RootHash)
	return nil
}
