package notify_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	js, _ := replicatedStream(t, cl)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

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

// TestDurableConsumerRidesOutItsLeaderKilled: a durable consumer whose
// leader is SIGKILLed while its pull request waits there hears nothing
// (its connection is to another node, so no reconnect tells it, and a
// killed leader sends no word of stepping down) until two heartbeats are
// missed. Consume then pulls again, from the new leader, and goes on
// delivering, once each and in order, rather than end.
func TestDurableConsumerRidesOutItsLeaderKilled(t *testing.T) {
	t.Parallel()
	cl := natstest.RunProcCluster(t, 3)
	js, s := replicatedStream(t, cl)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	var got []int64
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	consume := func(ctx context.Context, js jetstream.JetStream) <-chan error {
		done := make(chan error, 1)
		go func() {
			done <- notify.Consume(ctx, js, notify.ConsumeOptions{Durable: "killed-leader", FromIndex: 0}, func(ev notify.Event) error {
				mu.Lock()
				got = append(got, ev.Index)
				mu.Unlock()
				return nil
			})
		}()
		return done
	}
	sent := 0
	publish := func(n int) {
		t.Helper()
		for range n {
			h := nats.Header{jetstream.MsgIDHeader: {testOrigin + "/" + strconv.Itoa(sent)}, notify.HeaderIndex: {strconv.Itoa(sent)}}
			// A publish may meet the stream's election; the id drops a
			// copy that went in after all.
			eventually(t, "publish "+strconv.Itoa(sent), hangGuard, func() bool {
				pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
				defer pcancel()
				_, err := js.PublishMsg(pctx, &nats.Msg{Subject: notify.Subject("decision.recorded"), Data: []byte(`{}`), Header: h})
				return err == nil
			})
			sent++
		}
	}

	// A first run creates the consumer; then its leader is known, and
	// the second run connects to another node only.
	first, stopFirst := context.WithCancel(ctx)
	done := consume(first, js)
	publish(10)
	eventually(t, "the first run's entries", hangGuard, func() bool { return received() == 10 })
	stopFirst()
	require.NoError(t, <-done)
	c, err := s.Consumer(ctx, "killed-leader")
	require.NoError(t, err)
	leader := c.CachedInfo().Cluster.Leader
	done = consume(ctx, connect(t, cl.Others(leader)[0].URL))
	publish(5)
	// Delivered: the run's next pull request waits at the leader.
	eventually(t, "the second run's entries", hangGuard, func() bool { return received() == 15 })

	require.NoError(t, cl.Node(leader).Kill())
	publish(10)
	var ended error
	eventually(t, "the entries after the consumer's leader was killed", hangGuard, func() bool {
		select {
		case ended = <-done:
			return true
		default:
			return received() == sent
		}
	})
	require.NoError(t, ended, "Consume ended")
	cancel()
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	for i, idx := range got {
		require.Equal(t, int64(i), idx, "delivery %d", i)
	}
	require.Len(t, got, sent)
}

// replicatedStream connects to every node of cl and sets up stream
// DOCKET with three replicas, current on all of them.
func replicatedStream(t *testing.T, cl *natstest.Cluster) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	js := connect(t, cl.URLs())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := notify.EnsureStream(ctx, js, notify.StreamOptions{Replicas: 3})
	require.NoError(t, err)
	cl.WaitStreamCurrent(t, js, notify.DefaultStream, 3, 30*time.Second)
	return js, s
}
