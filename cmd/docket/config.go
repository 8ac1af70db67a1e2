package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/appeals"
)

// config is every setting of `docket serve`; flags override DOCKET_* variables.
type config struct {
	DatabaseURL      string
	Addr             string
	DataDir          string
	SignerKeyFile    string
	LogOrigin        string
	NATSURL          string
	EmbeddedNATSAddr string
	// Credentials for an external NATS (DOCKET_NATS_URL); at most one kind.
	NATSCreds          string // .creds file (JWT and seed)
	NATSNkey           string // nkey seed file
	NATSUser           string
	NATSPassword       string
	NATSToken          string
	StreamReplicas     int
	StreamMaxAge       time.Duration
	CheckpointInterval time.Duration
	AppealWindow       time.Duration
	ReviewDue          time.Duration
	ClaimLease         time.Duration
	FurtherAppeals     int
	NoMigrate          bool
	LogLevel           string
	LogFormat          string
	ShutdownTimeout    time.Duration
	AuthCacheTTL       time.Duration
	DBTimeout          time.Duration
	DBMaxOpen          int
	ElectionInterval   time.Duration
	PprofAddr          string
	// Connection and rate limits (api.Limits).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	TrustedProxies    string
	AuthFailureRate   float64
	AuthFailureBurst  int
	TokenRate         float64
	TokenBurst        int
	// The consoles' session lifetimes (appeals.SessionLimits).
	SessionIdle time.Duration
	SessionMax  time.Duration
}

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/docket?sslmode=disable"

// envOr returns the variable's value, or def when it is unset.
func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// databaseFlag registers --database-url, defaulting to DATABASE_URL.
func databaseFlag(fs *flag.FlagSet, e *env) *string {
	return fs.String("database-url", envOr(e.getenv, "DATABASE_URL", defaultDatabaseURL), "Postgres connection string (DATABASE_URL)")
}

// bind registers the serve flags with environment defaults.
func (c *config) bind(fs *flag.FlagSet, e *env) error {
	var errs []error
	dur := func(p *time.Duration, name, envName string, def time.Duration, help string) {
		d := def
		if v := e.getenv(envName); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName, err))
			}
			d = x
		}
		fs.DurationVar(p, name, d, help+" ("+envName+")")
	}
	num := func(p *int, name, envName string, def int, help string) {
		n := def
		if v := e.getenv(envName); v != "" {
			x, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName, err))
			}
			n = x
		}
		fs.IntVar(p, name, n, help+" ("+envName+")")
	}
	flt := func(p *float64, name, envName string, def float64, help string) {
		n := def
		if v := e.getenv(envName); v != "" {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName, err))
			}
			n = x
		}
		fs.Float64Var(p, name, n, help+" ("+envName+")")
	}
	str := func(p *string, name, envName, def, help string) {
		fs.StringVar(p, name, envOr(e.getenv, envName, def), help+" ("+envName+")")
	}
	str(&c.DatabaseURL, "database-url", "DATABASE_URL", defaultDatabaseURL, "Postgres connection string")
	str(&c.Addr, "addr", "DOCKET_ADDR", ":8080", "HTTP listen address")
	str(&c.DataDir, "data-dir", "DOCKET_DATA_DIR", "./data", "embedded NATS storage, generated signing key and the checkpoint pin")
	str(&c.SignerKeyFile, "signer-key-file", "DOCKET_SIGNER_KEY_FILE", "", "note signer key file (PRIVATE+KEY+...), the same for every replica; empty: the data directory's, generated there only for a log with no checkpoint yet")
	str(&c.LogOrigin, "log-origin", "DOCKET_LOG_ORIGIN", "docket.local/audit", "the checkpoint's origin line")
	str(&c.NATSURL, "nats-url", "DOCKET_NATS_URL", "", "external NATS server or cluster; empty starts an embedded one")
	str(&c.NATSCreds, "nats-creds", "DOCKET_NATS_CREDS", "", "external NATS: a .creds file (user JWT and seed)")
	str(&c.NATSNkey, "nats-nkey", "DOCKET_NATS_NKEY", "", "external NATS: an nkey user seed file (SU...)")
	str(&c.NATSUser, "nats-user", "DOCKET_NATS_USER", "", "external NATS: user name, with DOCKET_NATS_PASSWORD")
	secret(fs, &c.NATSPassword, "nats-password", "DOCKET_NATS_PASSWORD", e, "external NATS: password of DOCKET_NATS_USER; prefer the variable to the flag, which others may see in the process list")
	secret(fs, &c.NATSToken, "nats-token", "DOCKET_NATS_TOKEN", e, "external NATS: authentication token; prefer the variable to the flag")
	str(&c.EmbeddedNATSAddr, "embedded-nats-addr", "DOCKET_EMBEDDED_NATS_ADDR", "127.0.0.1:4223", "embedded NATS listen address (port 0: any free port)")
	num(&c.StreamReplicas, "stream-replicas", "DOCKET_STREAM_REPLICAS", 1, "JetStream replicas of stream DOCKET")
	dur(&c.StreamMaxAge, "stream-max-age", "DOCKET_STREAM_MAX_AGE", 0, "how long stream DOCKET keeps messages; 0 keeps them")
	dur(&c.CheckpointInterval, "checkpoint-interval", "DOCKET_CHECKPOINT_INTERVAL", 250*time.Millisecond, "the longest wait before new entries get a signed checkpoint")
	dur(&c.AppealWindow, "appeal-window", "DOCKET_APPEAL_WINDOW", 0, "how long a decision can be appealed; 0: six calendar months")
	dur(&c.ReviewDue, "review-due", "DOCKET_REVIEW_DUE", 7*24*time.Hour, "time reviewers have to resolve an appeal")
	dur(&c.ClaimLease, "claim-lease", "DOCKET_CLAIM_LEASE", 30*time.Minute, "how long a claim holds an appeal")
	num(&c.FurtherAppeals, "further-appeals", "DOCKET_FURTHER_APPEALS", 1, "appeals allowed after a resolved one")
	str(&c.LogLevel, "log-level", "DOCKET_LOG_LEVEL", "info", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "DOCKET_LOG_FORMAT", "json", "json (one object per line) or text (key=value)")
	dur(&c.ShutdownTimeout, "shutdown-timeout", "DOCKET_SHUTDOWN_TIMEOUT", 20*time.Second, "how long requests in flight may finish on SIGTERM")
	dur(&c.AuthCacheTTL, "auth-cache-ttl", "DOCKET_AUTH_CACHE_TTL", time.Second, "how long a token look-up is reused: the longest a revoked token keeps working; negative: no cache")
	dur(&c.DBTimeout, "db-timeout", "DOCKET_DB_TIMEOUT", api.DefaultDBTimeout, "the longest a request's database work may take before it answers 503 with Retry-After (exports excepted); also bounds opening a connection, and background work gets 6 times it without progress")
	num(&c.DBMaxOpen, "db-max-open", "DOCKET_DB_MAX_OPEN", 64, fmt.Sprintf("the most connections this process opens to Postgres, the %d it keeps (queue lanes, integrator and relay locks) included; the sum over replicas must stay below max_connections", heldConns))
	dur(&c.ElectionInterval, "election-interval", "DOCKET_ELECTION_INTERVAL", time.Second, "how often a standby tries to become the integrator and the relay: the longest handover once a dead leader's session ends")
	str(&c.PprofAddr, "pprof-addr", "DOCKET_PPROF_ADDR", "", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060; empty: off")
	dur(&c.ReadHeaderTimeout, "read-header-timeout", "DOCKET_READ_HEADER_TIMEOUT", 10*time.Second, "the longest a request's headers may take to arrive")
	dur(&c.ReadTimeout, "read-timeout", "DOCKET_READ_TIMEOUT", 30*time.Second, "the longest a whole request, headers and body, may take to arrive; a trickled body is cut")
	dur(&c.WriteTimeout, "write-timeout", "DOCKET_WRITE_TIMEOUT", time.Minute, "the longest from a request's headers to the end of its reply; exports get it anew before each 64 KiB")
	dur(&c.IdleTimeout, "idle-timeout", "DOCKET_IDLE_TIMEOUT", 2*time.Minute, "how long a kept-alive connection may wait for its next request")
	num(&c.MaxHeaderBytes, "max-header-bytes", "DOCKET_MAX_HEADER_BYTES", 64<<10, "the largest request line and headers; larger gets 431")
	str(&c.TrustedProxies, "trusted-proxies", "DOCKET_TRUSTED_PROXIES", "", "CIDRs of reverse proxies whose X-Forwarded-For names the client (right-most untrusted hop); empty: none")
	flt(&c.AuthFailureRate, "auth-failure-rate", "DOCKET_AUTH_FAILURE_RATE", 1, "failed token checks per second one client address may sustain before 429; 0: no limit")
	num(&c.AuthFailureBurst, "auth-failure-burst", "DOCKET_AUTH_FAILURE_BURST", 20, "failed token checks one client address may make at once")
	flt(&c.TokenRate, "token-rate", "DOCKET_TOKEN_RATE", 0, "requests per second one token may sustain before 429; 0: no limit")
	num(&c.TokenBurst, "token-burst", "DOCKET_TOKEN_BURST", 0, "requests one token may make at once; 0: one second's worth")
	dur(&c.SessionIdle, "session-idle", "DOCKET_SESSION_IDLE", appeals.DefaultSessionIdle, "how long a console session may go unused before it ends")
	dur(&c.SessionMax, "session-max", "DOCKET_SESSION_MAX", appeals.DefaultSessionAbsolute, "the longest a console session lasts, used or not (at least DOCKET_SESSION_IDLE)")
	fs.BoolVar(&c.NoMigrate, "no-migrate", false, "do not create the database or apply migrations on start")
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errs[0])
	}
	return nil
}

// heldConns is how many of a serving process's connections stay out of
// the pool for good: the two appeal-queue lanes (appeals/groupcommit),
// the integrator's and the relay's election locks while it leads (a
// standby takes one for each attempt and gives it back at once).
const heldConns = 4

// checkServe refuses serve settings that cannot work; bind checks syntax.
func (c *config) checkServe() error {
	if c.DBMaxOpen < heldConns+1 {
		return fmt.Errorf("config: DOCKET_DB_MAX_OPEN is %d: want at least %d, the %d connections held for good and one for requests", c.DBMaxOpen, heldConns+1, heldConns)
	}
	if c.ElectionInterval <= 0 {
		return fmt.Errorf("config: DOCKET_ELECTION_INTERVAL is %s: want a positive duration", c.ElectionInterval)
	}
	return nil
}

// secretValue is a flag whose value --help never shows: its default
// comes from the environment and may be a password.
type secretValue struct{ p *string }

func (s secretValue) String() string     { return "" }
func (s secretValue) Set(v string) error { *s.p = v; return nil }

// secret registers a flag for a secret with its variable as the default,
// which the usage text does not print.
func secret(fs *flag.FlagSet, p *string, name, envName string, e *env, help string) {
	*p = e.getenv(envName)
	fs.Var(secretValue{p}, name, help+" ("+envName+")")
}

// limits is the HTTP server's part of the configuration.
func (c *config) limits() (api.Limits, error) {
	proxies, err := api.ParseTrustedProxies(c.TrustedProxies)
	if err != nil {
		return api.Limits{}, fmt.Errorf("config: DOCKET_TRUSTED_PROXIES: %w", err)
	}
	// api.Limits reads zero as "default"; here the defaults are already
	// filled in, so an operator's 0 means "off".
	off := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	rateOff := func(r float64) float64 {
		if r == 0 {
			return -1
		}
		return r
	}
	return api.Limits{ReadHeaderTimeout: off(c.ReadHeaderTimeout), ReadTimeout: off(c.ReadTimeout),
		WriteTimeout: off(c.WriteTimeout), IdleTimeout: off(c.IdleTimeout), MaxHeaderBytes: c.MaxHeaderBytes,
		TrustedProxies: proxies, AuthFailureRate: rateOff(c.AuthFailureRate), AuthFailureBurst: c.AuthFailureBurst,
		TokenRate: c.TokenRate, TokenBurst: c.TokenBurst}, nil
}

// sessions is the consoles' session lifetimes: both positive, the idle
// one no longer than the absolute one.
func (c *config) sessions() (appeals.SessionLimits, error) {
	switch {
	case c.SessionIdle <= 0:
		return appeals.SessionLimits{}, fmt.Errorf("config: DOCKET_SESSION_IDLE must be positive, not %s", c.SessionIdle)
	case c.SessionMax <= 0:
		return appeals.SessionLimits{}, fmt.Errorf("config: DOCKET_SESSION_MAX must be positive, not %s", c.SessionMax)
	case c.SessionIdle > c.SessionMax:
		return appeals.SessionLimits{}, fmt.Errorf("config: DOCKET_SESSION_IDLE (%s) is longer than DOCKET_SESSION_MAX (%s)", c.SessionIdle, c.SessionMax)
	}
	return appeals.SessionLimits{Idle: c.SessionIdle, Absolute: c.SessionMax}, nil
}
