package notify_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/natstest"
	"github.com/docket-dev/docket/internal/pgtest"
	"github.com/docket-dev/docket/notify"
)

// TestRelayRidesOutClusterLeaderLoss: a three-replica stream on a
// three-node cluster whose stream leader is shut down while windows are
// in flight, then restarted. The relay goes on with the new leader and
// the stream keeps every entry once and in order; so does a durable
// consumer connected to every node, whose acks meet the consumer's own
// election.
func TestRelayRidesOutClusterLeaderLoss(t *testing.T) {
	t.Parallel()
	const n = 3000
	db := pgtest.New(t)
	cl := natstest.RunCluster(t, 3)
	js := connect(t, cl.URLs())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ectx, ecancel := context.WithTimeout(ctx, 30*time.Second)
	_, err := notify.EnsureStream(ectx, js, notify.StreamOptions{Replicas: 3})
	ecancel()
	require.NoError(t, err)
	cl.WaitStreamCurrent(t, js, notify.DefaultStream, 3, 30*time.Second)

	waitInt := integrate(ctx, t, db)
	relay := newRelay(t, db, js, "", "", func(o *notify.Options) { o.Window = 256 })
	stopRelay := runRelay(t, relay)

	var mu sync.Mutex
	var got []int64
	cctx, ccancel := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() {
		consumed <- notify.Consume(cctx, connect(t, cl.URLs()), notify.ConsumeOptions{Durable: "cluster-test", FromIndex: 0}, func(ev notify.Event) error {
			mu.Lock()
			got = append(got, ev.Index)
			mu.Unlock()
			return nil
		})
	}()

	writes := make(chan error, 1)
	go func() { writes <- writeEntries(ctx, db, n, 2, 5) }()
	eventually(t, "a first part published", hangGuard, func() bool { return relay.Status().NextIndex >= n/5 })
	leader := cl.StreamLeader(t, js, notify.DefaultStream, "", 10*time.Second)
	cl.Node(leader).Shutdown()
	next := cl.StreamLeader(t, js, notify.DefaultStream, leader, 30*time.Second)
	require.NotEqual(t, leader, next)
	from := relay.Status().NextIndex
	eventually(t, "published with the new leader", hangGuard, func() bool { return relay.Status().NextIndex >= min(from+n/10, n) })
	require.NoError(t, cl.Node(leader).Restart())
	require.NoError(t, <-writes)
	eventually(t, "relay caught up", hangGuard, func() bool {
		s := relay.Status()
		return s.NextIndex == n && s.LagEntries == 0
	})
	cl.WaitStreamCurrent(t, js, notify.DefaultStream, 3, 30*time.Second)
	eventually(t, "the durable consumer has every entry", hangGuard, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= n
	})
	ccancel()
	require.NoError(t, <-consumed)
	stopRelay()
	cancel()
	waitInt()

	mu.Lock()
	for i, idx := range got {
		require.Equal(t, int64(i), idx, "the durable consumer's delivery %d", i)
	}
	require.Len(t, got, n)
	mu.Unlock()
	readBack(t, js, n, hangGuard)
}
