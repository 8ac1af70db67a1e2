package notify_test

import (
	"context"
	"github.com/stretchr/testify/require"
	"net"
	"os"
	"testing"
	"time"

	"github.com/docket-dev/docket/internal/pgtest"
	"github.com/docket-dev/docket/notify"
)

// TestSoakNATSDownForAMinute keeps writing while NATS is down for a whole
// minute, then checks that every entry reaches the stream exactly once and
// in order. It runs under `make soak` (DOCKET_SOAK=1), not `make test`.
func TestSoakNATSDownForAMinute(t *testing.T) {
	if os.Getenv("DOCKET_SOAK") == "" {
		t.Skip("soak test: run with DOCKET_SOAK=1 (make soak)")
	}
	db := pgtest.New(t)
	dir := t.TempDir()
	srv := runNATS(t, -1, dir)
	port := srv.Addr().(*net.TCPAddr).Port
	js := connect(t, srv.ClientURL())
	ensureStream(t, js, notify.DefaultStream, "")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitInt := integrate(ctx, t, db)
	relay := newRelay(t, db, js, "", "", nil)
	stopRelay := runRelay(t, relay)

	written := 0
	write := func(n int) {
		t.Helper()
		require.NoError(t, writeEntries(ctx, db, n, 4, 1))
		written += n
	}
	write(2000)
	srv.Shutdown()
	srv.WaitForShutdown()
	// A minute of steady writes with NATS away: each must commit.
	for end := time.Now().Add(time.Minute); time.Now().Before(end); {
		write(200)
	}
	t.Logf("wrote %d entries, %d of them while NATS was down", written, written-2000)
	srv = runNATS(t, port, dir)
	write(2000)
	eventually(t, "relay caught up after NATS came back", 5*time.Minute, func() bool {
		s := relay.Status()
		return s.NextIndex == int64(written) && s.LagEntries == 0
	})
	stopRelay()
	cancel()
	waitInt()

	readBack(t, connect(t, srv.ClientURL()), int64(written), 5*time.Minute)
}
