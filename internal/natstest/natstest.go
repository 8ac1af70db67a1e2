// Package natstest starts in-process NATS servers for tests and connects
// to them as a given user, collecting the server's asynchronous errors:
// a permission violation is reported that way, not as a call's error.
//
// It also starts three-node (or larger) JetStream clusters whose nodes
// can be lost and restarted as themselves: in this process (RunCluster),
// where a node can only be shut down gracefully, handing over what it
// leads, or as nats-server child processes built from the version go.mod
// pins (RunProcCluster), which can also be SIGKILLed: no handover, no
// flush. Both kinds are watched alike, through each node's own JetStream
// report (Jsz in this process, /jsz of a process's monitoring port) and
// the JetStream API.
package natstest

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsserver "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// Run starts a JetStream server from opts (nil: defaults), on loopback, a
// free port unless opts names one, storing in a temporary directory
// unless opts names one, and stops it when the test ends.
func Run(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	if opts == nil {
		opts = &server.Options{}
	}
	o := *opts
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = -1
	}
	if o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	o.JetStream, o.NoSigs, o.NoLog = true, true, true
	s := natsserver.RunServer(&o)
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// Connect connects with opts (credentials, say); the server's
// asynchronous errors go to the returned channel.
func Connect(t testing.TB, url string, opts ...nats.Option) (jetstream.JetStream, <-chan error) {
	t.Helper()
	errs := make(chan error, 64)
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	nc, err := nats.Connect(url, opts...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js, errs
}

// AwaitViolation waits for the server to report a permission violation on
// subject.
func AwaitViolation(t testing.TB, errs <-chan error, subject string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-errs:
			if strings.Contains(err.Error(), "Permissions Violation") && strings.Contains(err.Error(), subject) {
				return
			}
		case <-timeout:
			t.Fatalf("no permission violation reported for %s", subject)
		}
	}
}
