package main

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/appeals"
)

func TestWithBinaryParameters(t *testing.T) {
	t.Parallel()
	require.Equal(t, "postgres://u@h:5432/db?binary_parameters=yes&sslmode=disable",
		withBinaryParameters("postgres://u@h:5432/db?sslmode=disable"))
	require.Equal(t, "postgres://u@h/db?binary_parameters=no",
		withBinaryParameters("postgres://u@h/db?binary_parameters=no"), "an operator's choice stands")
	require.Equal(t, "host=h dbname=db", withBinaryParameters("host=h dbname=db"), "key=value DSNs are left alone")
}

// TestServeLimitsReachTheHTTPServer follows the limit settings from the
// environment and flags to the http.Server that `docket serve` runs.
func TestServeLimitsReachTheHTTPServer(t *testing.T) {
	t.Parallel()
	build := func(vars map[string]string, args ...string) *http.Server {
		t.Helper()
		e := &env{getenv: func(k string) string { return vars[k] }, stderr: io.Discard}
		fs := newFlagSet("serve", e, "")
		var c config
		require.NoError(t, c.bind(fs, e))
		require.NoError(t, fs.Parse(args))
		limits, err := c.limits()
		require.NoError(t, err)
		return api.New(api.Config{Store: &appeals.Store{}, Limits: limits}).HTTPServer()
	}

	hs := build(nil)
	require.Equal(t, 10*time.Second, hs.ReadHeaderTimeout)
	require.Equal(t, 30*time.Second, hs.ReadTimeout)
	require.Equal(t, time.Minute, hs.WriteTimeout)
	require.Equal(t, 2*time.Minute, hs.IdleTimeout)
	require.Equal(t, 64<<10, hs.MaxHeaderBytes)

	hs = build(map[string]string{"DOCKET_READ_HEADER_TIMEOUT": "2s", "DOCKET_READ_TIMEOUT": "3s",
		"DOCKET_WRITE_TIMEOUT": "4s", "DOCKET_IDLE_TIMEOUT": "5s", "DOCKET_MAX_HEADER_BYTES": "8192"},
		"--write-timeout", "7s", "--idle-timeout", "0")
	require.Equal(t, 2*time.Second, hs.ReadHeaderTimeout)
	require.Equal(t, 3*time.Second, hs.ReadTimeout)
	require.Equal(t, 7*time.Second, hs.WriteTimeout, "a flag overrides the variable")
	require.Zero(t, hs.IdleTimeout, "0 turns a timeout off")
	require.Equal(t, 8192, hs.MaxHeaderBytes)

	e := &env{getenv: func(k string) string {
		return map[string]string{"DOCKET_TRUSTED_PROXIES": "10.0.0.0/8,bogus"}[k]
	}, stderr: io.Discard}
	var c config
	fs := newFlagSet("serve", e, "")
	require.NoError(t, c.bind(fs, e))
	require.NoError(t, fs.Parse(nil))
	_, err := c.limits()
	require.ErrorContains(t, err, "DOCKET_TRUSTED_PROXIES")

	e = &env{getenv: func(k string) string { return map[string]string{"DOCKET_AUTH_FAILURE_RATE": "lots"}[k] }, stderr: io.Discard}
	require.ErrorContains(t, (&config{}).bind(newFlagSet("serve", e, ""), e), "DOCKET_AUTH_FAILURE_RATE")
}

// TestServeChecksPoolAndElection: the pool must leave room beside the
// connections held for good, and the election interval must be positive.
func TestServeChecksPoolAndElection(t *testing.T) {
	t.Parallel()
	check := func(vars map[string]string) (config, error) {
		e := &env{getenv: func(k string) string { return vars[k] }, stderr: io.Discard}
		var c config
		fs := newFlagSet("serve", e, "")
		require.NoError(t, c.bind(fs, e))
		require.NoError(t, fs.Parse(nil))
		return c, c.checkServe()
	}
	c, err := check(nil)
	require.NoError(t, err)
	require.Equal(t, 64, c.DBMaxOpen)
	require.Equal(t, time.Second, c.ElectionInterval)
	c, err = check(map[string]string{"DOCKET_DB_MAX_OPEN": "5", "DOCKET_ELECTION_INTERVAL": "250ms"})
	require.NoError(t, err)
	require.Equal(t, 5, c.DBMaxOpen)
	require.Equal(t, 250*time.Millisecond, c.ElectionInterval)
	_, err = check(map[string]string{"DOCKET_DB_MAX_OPEN": "4"})
	require.ErrorContains(t, err, "DOCKET_DB_MAX_OPEN is 4: want at least 5")
	_, err = check(map[string]string{"DOCKET_ELECTION_INTERVAL": "0s"})
	require.ErrorContains(t, err, "DOCKET_ELECTION_INTERVAL")
}

// The consoles' session lifetimes: DOCKET_SESSION_IDLE and
// DOCKET_SESSION_MAX, overridden by their flags, both positive and the
// idle one no longer than the absolute one.
func TestSessionSettings(t *testing.T) {
	t.Parallel()
	read := func(vars map[string]string, args ...string) (appeals.SessionLimits, error) {
		t.Helper()
		e := &env{getenv: func(k string) string { return vars[k] }, stderr: io.Discard}
		fs := newFlagSet("serve", e, "")
		var c config
		if err := c.bind(fs, e); err != nil {
			return appeals.SessionLimits{}, err
		}
		require.NoError(t, fs.Parse(args))
		return c.sessions()
	}
	l, err := read(nil)
	require.NoError(t, err)
	require.Equal(t, appeals.SessionLimits{Idle: appeals.DefaultSessionIdle, Absolute: appeals.DefaultSessionAbsolute}, l)
	l, err = read(map[string]string{"DOCKET_SESSION_IDLE": "5m", "DOCKET_SESSION_MAX": "1h"})
	require.NoError(t, err)
	require.Equal(t, appeals.SessionLimits{Idle: 5 * time.Minute, Absolute: time.Hour}, l)
	l, err = read(map[string]string{"DOCKET_SESSION_IDLE": "5m"}, "--session-idle", "10m", "--session-max", "2h")
	require.NoError(t, err)
	require.Equal(t, appeals.SessionLimits{Idle: 10 * time.Minute, Absolute: 2 * time.Hour}, l, "flags override the variables")

	_, err = read(map[string]string{"DOCKET_SESSION_IDLE": "2h", "DOCKET_SESSION_MAX": "1h"})
	require.ErrorContains(t, err, "DOCKET_SESSION_IDLE (2h0m0s) is longer than DOCKET_SESSION_MAX (1h0m0s)")
	_, err = read(map[string]string{"DOCKET_SESSION_IDLE": "0s"})
	require.ErrorContains(t, err, "DOCKET_SESSION_IDLE must be positive")
	_, err = read(nil, "--session-max", "-1m")
	require.ErrorContains(t, err, "DOCKET_SESSION_MAX must be positive")
	_, err = read(map[string]string{"DOCKET_SESSION_MAX": "forever"})
	require.ErrorContains(t, err, "DOCKET_SESSION_MAX")
}

// TestServeSettingsTable: every kind of setting takes its variable, a
// flag overrides it, a secret's default stays out of the usage, and of
// several variables that do not parse the error names the first in the
// table's order.
func TestServeSettingsTable(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DOCKET_ADDR": ":9", "DOCKET_STREAM_REPLICAS": "3", "DOCKET_TOKEN_RATE": "2.5",
		"DOCKET_CLAIM_LEASE": "1m", "DOCKET_NATS_PASSWORD": "sekrit", "DATABASE_URL": "postgres://db/x"}
	var usage bytes.Buffer
	e := &env{getenv: func(k string) string { return vars[k] }, stderr: &usage}
	fs := newFlagSet("serve", e, "")
	var c config
	require.NoError(t, c.bind(fs, e))
	require.NoError(t, fs.Parse([]string{"--stream-replicas", "5"}))
	require.Equal(t, ":9", c.Addr)
	require.Equal(t, 5, c.StreamReplicas, "a flag overrides the variable")
	require.Equal(t, 2.5, c.TokenRate)
	require.Equal(t, time.Minute, c.ClaimLease)
	require.Equal(t, "sekrit", c.NATSPassword)
	require.Equal(t, "postgres://db/x", c.DatabaseURL)
	fs.Usage()
	require.Contains(t, usage.String(), "(DOCKET_NATS_PASSWORD)")
	require.NotContains(t, usage.String(), "sekrit")

	vars = map[string]string{"DOCKET_SESSION_MAX": "never", "DOCKET_STREAM_REPLICAS": "three", "DOCKET_TOKEN_RATE": "fast"}
	fs = newFlagSet("serve", e, "")
	err := (&config{}).bind(fs, e)
	require.ErrorContains(t, err, "config: DOCKET_STREAM_REPLICAS")
	require.NotContains(t, err.Error(), "DOCKET_TOKEN_RATE")
	require.NotNil(t, fs.Lookup("no-migrate"), "every flag is registered despite the error")
	require.NotNil(t, fs.Lookup("session-max"))
}
