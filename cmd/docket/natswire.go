package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	natsserver "github.com/nats-io/nats-server/v2/server"
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
	url := cfg.NATSURL
	var embedded *natsserver.Server
	if url == "" {
		var err error
		embedded, url, err = notify.StartEmbedded(cfg.DataDir, cfg.EmbeddedNATSAddr, logger)
		if err != nil {
			return nil, nil, err
		}
		logger.Info("embedded NATS started", slog.String("url", url))
	}
	shutdownEmbedded := func() {
		if embedded != nil {
			embedded.Shutdown()
			embedded.WaitForShutdown()
		}
	}
	nc, err := natsConnect(url, "docket serve", logger)
	if err != nil {
		shutdownEmbedded()
		return nil, nil, err
	}
	const ackTimeout = 5 * time.Second
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*relayWindow), jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		nc.Close()
		shutdownEmbedded()
		return nil, nil, fmt.Errorf("notify: jetstream: %w", err)
	}
	relay, err := notify.NewRelay(db, js, notify.Options{
		Origin: cfg.LogOrigin, Window: relayWindow, AckTimeout: ackTimeout,
		// The elected relay creates or updates the stream, and retries
		// that like any publish while NATS is unreachable.
		Setup:    &notify.StreamOptions{Replicas: cfg.StreamReplicas, MaxAge: cfg.StreamMaxAge},
		Registry: reg, Logger: logger,
	})
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

// notifyCheck puts the relay's lag into /readyz. It never fails readiness:
// with NATS down the API still takes writes, which is the point.
func notifyCheck(relay *notify.Relay) api.Check {
	return api.Check{Name: "notify", Func: func(context.Context) (any, error) {
		return relay.Status(), nil
	}}
}

// natsConnect connects for good: it keeps retrying, also when the server
// is down at start, and logs the connection's changes.
func natsConnect(url, name string, logger *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("NATS disconnected", slog.Any("err", err))
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("NATS reconnected", slog.String("url", c.ConnectedUrlRedacted()))
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("notify: connect to NATS %s: %w", url, err)
	}
	return nc, nil
}
