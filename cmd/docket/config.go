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
	p := new(string)
	databaseVar(fs, p, e)
	return p
}

// databaseVar is databaseFlag into p, for a command's options struct.
func databaseVar(fs *flag.FlagSet, p *string, e *env) {
	_ = databaseSetting(p)(fs, e.getenv) // a string setting never fails
}

// databaseSetting is --database-url, serve's and every other command's.
func databaseSetting(p *string) setting {
	return stringSetting(p, "database-url", "DATABASE_URL", defaultDatabaseURL, "Postgres connection string")
}

// bind registers the serve flags with environment defaults (the table in
// settings); the error names the first variable, in the table's order,
// that does not parse.
func (c *config) bind(fs *flag.FlagSet, e *env) error {
	var first error
	for _, s := range c.settings() {
		if err := s(fs, e.getenv); err != nil && first == nil {
			first = err
		}
	}
	fs.BoolVar(&c.NoMigrate, "no-migrate", false, "do not create the database or apply migrations on start")
	if first != nil {
		return fmt.Errorf("config: %w", first)
	}
	return nil
}

// settings is the table of serve's settings: each field with its flag,
// its variable, its default and its help; the variable's name is added
// to the help.
func (c *config) settings() []setting {
	return []setting{
		databaseSetting(&c.DatabaseURL),
		stringSetting(&c.Addr, "addr", "DOCKET_ADDR", ":8080", "HTTP listen address"),
		stringSetting(&c.DataDir, "data-dir", "DOCKET_DATA_DIR", "./data", "embedded NATS storage, generated signing key and the checkpoint pin"),
		stringSetting(&c.SignerKeyFile, "signer-key-file", "DOCKET_SIGNER_KEY_FILE", "", "note signer key file (PRIVATE+KEY+...), the same for every replica; empty: the data directory's, generated there only for a log with no checkpoint yet"),
		stringSetting(&c.LogOrigin, "log-origin", "DOCKET_LOG_ORIGIN", "docket.local/audit", "the checkpoint's origin line"),
		stringSetting(&c.NATSURL, "nats-url", "DOCKET_NATS_URL", "", "external NATS server or cluster; empty starts an embedded one"),
		stringSetting(&c.NATSCreds, "nats-creds", "DOCKET_NATS_CREDS", "", "external NATS: a .creds file (user JWT and seed)"),
		stringSetting(&c.NATSNkey, "nats-nkey", "DOCKET_NATS_NKEY", "", "external NATS: an nkey user seed file (SU...)"),
		stringSetting(&c.NATSUser, "nats-user", "DOCKET_NATS_USER", "", "external NATS: user name, with DOCKET_NATS_PASSWORD"),
		secretSetting(&c.NATSPassword, "nats-password", "DOCKET_NATS_PASSWORD", "external NATS: password of DOCKET_NATS_USER; prefer the variable to the flag, which others may see in the process list"),
		secretSetting(&c.NATSToken, "nats-token", "DOCKET_NATS_TOKEN", "external NATS: authentication token; prefer the variable to the flag"),
		stringSetting(&c.EmbeddedNATSAddr, "embedded-nats-addr", "DOCKET_EMBEDDED_NATS_ADDR", "127.0.0.1:4223", "embedded NATS listen address (port 0: any free port)"),
		intSetting(&c.StreamReplicas, "stream-replicas", "DOCKET_STREAM_REPLICAS", 1, "JetStream replicas of stream DOCKET"),
		durationSetting(&c.StreamMaxAge, "stream-max-age", "DOCKET_STREAM_MAX_AGE", 0, "how long stream DOCKET keeps messages; 0 keeps them"),
		durationSetting(&c.CheckpointInterval, "checkpoint-interval", "DOCKET_CHECKPOINT_INTERVAL", 250*time.Millisecond, "the longest wait before new entries get a signed checkpoint"),
		durationSetting(&c.AppealWindow, "appeal-window", "DOCKET_APPEAL_WINDOW", 0, "how long a decision can be appealed; 0: six calendar months"),
		durationSetting(&c.ReviewDue, "review-due", "DOCKET_REVIEW_DUE", 7*24*time.Hour, "time reviewers have to resolve an appeal"),
		durationSetting(&c.ClaimLease, "claim-lease", "DOCKET_CLAIM_LEASE", 30*time.Minute, "how long a claim holds an appeal"),
		intSetting(&c.FurtherAppeals, "further-appeals", "DOCKET_FURTHER_APPEALS", 1, "appeals allowed after a resolved one"),
		stringSetting(&c.LogLevel, "log-level", "DOCKET_LOG_LEVEL", "info", "debug, info, warn or error"),
		stringSetting(&c.LogFormat, "log-format", "DOCKET_LOG_FORMAT", "json", "json (one object per line) or text (key=value)"),
		durationSetting(&c.ShutdownTimeout, "shutdown-timeout", "DOCKET_SHUTDOWN_TIMEOUT", 20*time.Second, "how long requests in flight may finish on SIGTERM"),
		durationSetting(&c.AuthCacheTTL, "auth-cache-ttl", "DOCKET_AUTH_CACHE_TTL", time.Second, "how long a token look-up is reused: the longest a revoked token keeps working; negative: no cache"),
		durationSetting(&c.DBTimeout, "db-timeout", "DOCKET_DB_TIMEOUT", api.DefaultDBTimeout, "the longest a request's database work may take before it answers 503 with Retry-After (exports excepted); also bounds opening a connection, and background work gets 6 times it without progress"),
		intSetting(&c.DBMaxOpen, "db-max-open", "DOCKET_DB_MAX_OPEN", 64, fmt.Sprintf("the most connections this process opens to Postgres, the %d it keeps (queue lanes, integrator and relay locks) included; the sum over replicas must stay below max_connections", heldConns)),
		durationSetting(&c.ElectionInterval, "election-interval", "DOCKET_ELECTION_INTERVAL", time.Second, "how often a standby tries to become the integrator and the relay: the longest handover once a dead leader's session ends"),
		stringSetting(&c.PprofAddr, "pprof-addr", "DOCKET_PPROF_ADDR", "", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060; empty: off"),
		durationSetting(&c.ReadHeaderTimeout, "read-header-timeout", "DOCKET_READ_HEADER_TIMEOUT", 10*time.Second, "the longest a request's headers may take to arrive"),
		durationSetting(&c.ReadTimeout, "read-timeout", "DOCKET_READ_TIMEOUT", 30*time.Second, "the longest a whole request, headers and body, may take to arrive; a trickled body is cut"),
		durationSetting(&c.WriteTimeout, "write-timeout", "DOCKET_WRITE_TIMEOUT", time.Minute, "the longest from a request's headers to the end of its reply; exports get it anew before each 64 KiB"),
		durationSetting(&c.IdleTimeout, "idle-timeout", "DOCKET_IDLE_TIMEOUT", 2*time.Minute, "how long a kept-alive connection may wait for its next request"),
		intSetting(&c.MaxHeaderBytes, "max-header-bytes", "DOCKET_MAX_HEADER_BYTES", 64<<10, "the largest request line and headers; larger gets 431"),
		stringSetting(&c.TrustedProxies, "trusted-proxies", "DOCKET_TRUSTED_PROXIES", "", "CIDRs of reverse proxies whose X-Forwarded-For names the client (right-most untrusted hop); empty: none"),
		floatSetting(&c.AuthFailureRate, "auth-failure-rate", "DOCKET_AUTH_FAILURE_RATE", 1, "failed token checks per second one client address may sustain before 429; 0: no limit"),
		intSetting(&c.AuthFailureBurst, "auth-failure-burst", "DOCKET_AUTH_FAILURE_BURST", 20, "failed token checks one client address may make at once"),
		floatSetting(&c.TokenRate, "token-rate", "DOCKET_TOKEN_RATE", 0, "requests per second one token may sustain before 429; 0: no limit"),
		intSetting(&c.TokenBurst, "token-burst", "DOCKET_TOKEN_BURST", 0, "requests one token may make at once; 0: one second's worth"),
		durationSetting(&c.SessionIdle, "session-idle", "DOCKET_SESSION_IDLE", appeals.DefaultSessionIdle, "how long a console session may go unused before it ends"),
		durationSetting(&c.SessionMax, "session-max", "DOCKET_SESSION_MAX", appeals.DefaultSessionAbsolute, "the longest a console session lasts, used or not (at least DOCKET_SESSION_IDLE)"),
	}
}

// setting registers one flag, its default taken from its variable when
// set; the error is a variable that does not parse.
type setting func(fs *flag.FlagSet, getenv func(string) string) error

// envSetting is a setting of type T: parse reads the variable, register
// is the FlagSet's method for T (StringVar, IntVar, ...).
func envSetting[T any](p *T, name, envName string, def T, help string,
	parse func(string) (T, error), register func(*flag.FlagSet, *T, string, T, string)) setting {
	return func(fs *flag.FlagSet, getenv func(string) string) error {
		v, err := def, error(nil)
		if s := getenv(envName); s != "" {
			if v, err = parse(s); err != nil {
				err = fmt.Errorf("%s: %w", envName, err)
			}
		}
		register(fs, p, name, v, help+" ("+envName+")")
		return err
	}
}

func stringSetting(p *string, name, envName, def, help string) setting {
	return envSetting(p, name, envName, def, help, func(s string) (string, error) { return s, nil }, (*flag.FlagSet).StringVar)
}

func intSetting(p *int, name, envName string, def int, help string) setting {
	return envSetting(p, name, envName, def, help, strconv.Atoi, (*flag.FlagSet).IntVar)
}

func floatSetting(p *float64, name, envName string, def float64, help string) setting {
	parse := func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
	return envSetting(p, name, envName, def, help, parse, (*flag.FlagSet).Float64Var)
}

func durationSetting(p *time.Duration, name, envName string, def time.Duration, help string) setting {
	return envSetting(p, name, envName, def, help, time.ParseDuration, (*flag.FlagSet).DurationVar)
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

// secretSetting registers a flag for a secret with its variable as the
// default, which the usage text does not print.
func secretSetting(p *string, name, envName, help string) setting {
	return func(fs *flag.FlagSet, getenv func(string) string) error {
		*p = getenv(envName)
		fs.Var(secretValue{p}, name, help+" ("+envName+")")
		return nil
	}
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
