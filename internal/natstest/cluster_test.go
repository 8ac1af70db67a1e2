package natstest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/natstest"
)

// TestClusterNodeLoss: a three-replica stream keeps taking messages while
// a follower and then its leader are lost, a new leader is elected, and
// each node comes back as itself with what it stored and catches up;
// the nodes shut down in this process, or killed as processes.
func TestClusterNodeLoss(t *testing.T) {
	t.Parallel()
	t.Run("shutdown", func(t *testing.T) {
		t.Parallel()
		c := natstest.RunCluster(t, 3)
		// An in-process server cannot be lost abruptly: Kill says so
		// and leaves the node up.
		require.Error(t, c.Nodes[0].Kill())
		require.True(t, c.Nodes[0].Running())
		clusterNodeLoss(t, c, func(nd *natstest.Node) { nd.Shutdown() })
	})
	t.Run("kill", func(t *testing.T) {
		t.Parallel()
		c := natstest.RunProcCluster(t, 3)
		clusterNodeLoss(t, c, func(nd *natstest.Node) { require.NoError(t, nd.Kill()) })
	})
}

func clusterNodeLoss(t *testing.T, c *natstest.Cluster, lose func(*natstest.Node)) {
	ctx := context.Background()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	c.WaitStreamCurrent(t, js, "T", 3, 30*time.Second)

	sent := 0
	publish := func(n int) {
		t.Helper()
		for range n {
			id := fmt.Sprintf("m%d", sent)
			// A publish may meet an election; the same id is dropped
			// when it went in after all.
			require.Eventually(t, func() bool {
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				_, err := js.Publish(pctx, "t.x", []byte(id), jetstream.WithMsgID(id))
				return err == nil
			}, 30*time.Second, 50*time.Millisecond, "publish %s", id)
			sent++
		}
	}
	publish(10)

	leader := c.StreamLeader(t, js, "T", "", 10*time.Second)
	follower := c.Others(leader)[0]
	lose(follower)
	require.False(t, follower.Running())
	publish(10)
	require.NoError(t, follower.Restart())
	c.WaitStreamCurrent(t, js, "T", 3, 30*time.Second)

	old := c.Node(leader)
	lose(old)
	require.NotEqual(t, leader, c.StreamLeader(t, js, "T", leader, 30*time.Second))
	publish(10)
	require.NoError(t, old.Restart())
	require.Equal(t, 1, old.Restarts)
	c.WaitMetaLeader(t, 30*time.Second)
	c.WaitStreamCurrent(t, js, "T", 3, 30*time.Second)
	publish(1)

	s, err := js.Stream(ctx, "T")
	require.NoError(t, err)
	require.Equal(t, uint64(sent), s.CachedInfo().State.Msgs, "each message once")
	// The restarted node serves what it stored before and after its loss.
	onc, err := nats.Connect(old.URL)
	require.NoError(t, err)
	t.Cleanup(onc.Close)
	ojs, err := jetstream.New(onc)
	require.NoError(t, err)
	ost, err := ojs.Stream(ctx, "T")
	require.NoError(t, err)
	m, err := ost.GetMsg(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, "m0", string(m.Data))
}
