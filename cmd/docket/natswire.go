package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/notify"
)

// relayWindow bounds the relay's publishes in flight; the client's own
// limit is set above it so PublishMsgAsync never stalls on it.
const relayWindow = 1000

// startNotify brings up what `docket serve` needs to announce entries: the
// embedded NATS server when cfg.NATSURL is empty, a connection, stream
// DOCKET and the relay, which runs until ctx ends or stop is called.
// NATS being unreachable does not fail the start: writes must go on, so
// the relay (which also sets up the stream once elected) retries in the
// background. stop waits for the relay, then closes the connection and
// the embedded server.
func startNotify(ctx context.Context, cfg config, db *sqlx.DB, reg *prometheus.Registry, logger *slog.Logger) (*notify.Relay, func(), error) {
	url, auth, shutdownEmbedded, err := natsTarget(cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	nc, err := natsConnect(url, "docket serve", logger, auth...)
	if err != nil {
		shutdownEmbedded()
		return nil, nil, err
	}
	relay, err := newRelay(cfg, db, nc, reg, logger)
	if err != nil {
		nc.Close()
		shutdownEmbedded()
		return nil, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := relay.Run(rctx); err != nil {
			logger.Error("notify relay stopped", slog.Any("err", err))
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			nc.Close()
			shutdownEmbedded()
		})
	}
	return relay, stop, nil
}

// natsTarget is the NATS that serve publishes to and its credentials:
// cfg.NATSURL with the configured ones, or when that is empty an embedded
// server started here, with Docket's own identity generated into the data
// directory. shutdown stops the embedded server (and does nothing for an
// external one).
func natsTarget(cfg config, logger *slog.Logger) (url string, auth []nats.Option, shutdown func(), err error) {
	auth, err = cfg.natsAuth()
	if err != nil {
		return "", nil, nil, err
	}
	if cfg.NATSURL != "" {
		return cfg.NATSURL, auth, func() {}, nil
	}
	embedded, url, err := notify.StartEmbedded(cfg.DataDir, cfg.EmbeddedNATSAddr, logger)
	if err != nil {
		return "", nil, nil, err
	}
	o, err := nats.NkeyOptionFromSeed(notify.PublisherSeedFile(cfg.DataDir))
	if err != nil {
		embedded.Shutdown()
		return "", nil, nil, fmt.Errorf("notify: embedded NATS credentials: %w", err)
	}
	logger.Info("embedded NATS started", slog.String("url", url),
		slog.String("reader_credentials", notify.ReaderSeedFile(cfg.DataDir)))
	shutdown = func() {
		embedded.Shutdown()
		embedded.WaitForShutdown()
	}
	return url, []nats.Option{o}, shutdown, nil
}

// newRelay makes the relay of entries to stream DOCKET over nc.
func newRelay(cfg config, db *sqlx.DB, nc *nats.Conn, reg *prometheus.Registry, logger *slog.Logger) (*notify.Relay, error) {
	const ackTimeout = 5 * time.Second
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*relayWindow), jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		return nil, fmt.Errorf("notify: jetstream: %w", err)
	}
	return notify.NewRelay(db, js, notify.Options{
		Origin: cfg.LogOrigin, Window: relayWindow, AckTimeout: ackTimeout, ElectionInterval: cfg.ElectionInterval,
		// The elected relay creates or updates the stream, and retries
		// that like any publish while NATS is unreachable.
		Setup:    &notify.StreamOptions{Replicas: cfg.StreamReplicas, MaxAge: cfg.StreamMaxAge},
		Registry: reg, Logger: logger,
	})
}

// notifyCheck puts the relay's lag into /readyz. It never fails readiness:
// with NATS down the API still takes writes, which is the point.
func notifyCheck(relay *notify.Relay) api.Check {
	return api.Check{Name: "notify", Func: func(context.Context) (any, error) {
		return relay.Status(), nil
	}}
}

// natsConnect connects for good: it keeps retrying, also when the server
// is down at start, and logs the connection's changes.
func natsConnect(url, name string, logger *slog.Logger, auth ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(url, append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("NATS disconnected", slog.Any("err", err))
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("NATS reconnected", slog.String("url", c.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			// Permission violations and authorization errors land here.
			logger.Warn("NATS error", slog.Any("err", err))
		}),
	}, auth...)...)
	if err != nil {
		return nil, fmt.Errorf("notify: connect to NATS %s: %w", redactURL(url), err)
	}
	return nc, nil
}

// natsAuth turns the external NATS credentials of the configuration into
// connect options; at most one kind may be set. Secrets stay in the
// options: nothing here logs them.
func (c *config) natsAuth() ([]nats.Option, error) {
	var kinds []string
	if c.NATSCreds != "" {
		kinds = append(kinds, "DOCKET_NATS_CREDS")
	}
	if c.NATSNkey != "" {
		kinds = append(kinds, "DOCKET_NATS_NKEY")
	}
	if c.NATSUser != "" || c.NATSPassword != "" {
		kinds = append(kinds, "DOCKET_NATS_USER/DOCKET_NATS_PASSWORD")
	}
	if c.NATSToken != "" {
		kinds = append(kinds, "DOCKET_NATS_TOKEN")
	}
	switch {
	case len(kinds) == 0:
		return nil, nil
	case len(kinds) > 1:
		return nil, fmt.Errorf("config: NATS credentials: set one of %s, not several", strings.Join(kinds, ", "))
	case c.NATSURL == "":
		return nil, fmt.Errorf("config: %s is for an external NATS (DOCKET_NATS_URL); the embedded server uses the data directory's credentials", kinds[0])
	}
	switch {
	case c.NATSCreds != "":
		o, err := credsFileOption(c.NATSCreds)
		if err != nil {
			return nil, fmt.Errorf("config: DOCKET_NATS_CREDS: %w", err)
		}
		return []nats.Option{o}, nil
	case c.NATSNkey != "":
		o, err := nats.NkeyOptionFromSeed(c.NATSNkey)
		if err != nil {
			return nil, fmt.Errorf("config: DOCKET_NATS_NKEY: %w", err)
		}
		return []nats.Option{o}, nil
	case c.NATSToken != "":
		return []nats.Option{nats.Token(c.NATSToken)}, nil
	}
	if c.NATSUser == "" || c.NATSPassword == "" {
		return nil, errors.New("config: DOCKET_NATS_USER and DOCKET_NATS_PASSWORD go together")
	}
	return []nats.Option{nats.UserInfo(c.NATSUser, c.NATSPassword)}, nil
}

// credsFileOption reads a credentials file: a .creds file (a user JWT and
// its seed) or a bare nkey seed file, such as <data-dir>/nats/reader.nk.
func credsFileOption(path string) (nats.Option, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(raw, []byte("BEGIN NATS USER JWT")) {
		return nats.UserCredentials(path), nil
	}
	o, err := nats.NkeyOptionFromSeed(path)
	if err != nil {
		return nil, fmt.Errorf("%s: neither a .creds file nor an nkey seed: %w", path, err)
	}
	return o, nil
}

// readerAuth is a watcher's credentials: the file named, else with
// tryDataDir the embedded server's read-only identity in dataDir when
// there is one, else none.
func readerAuth(credsFile, dataDir string, tryDataDir bool) ([]nats.Option, error) {
	if credsFile == "" && tryDataDir {
		if _, err := os.Stat(notify.ReaderSeedFile(dataDir)); err == nil {
			credsFile = notify.ReaderSeedFile(dataDir)
		}
	}
	if credsFile == "" {
		return nil, nil
	}
	o, err := credsFileOption(credsFile)
	if err != nil {
		return nil, err
	}
	return []nats.Option{o}, nil
}

// redactURL hides the password of nats://user:password@host URLs, for
// error messages and logs.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if u, err := neturl.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = neturl.User("redacted")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
