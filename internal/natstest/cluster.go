package natstest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// ClusterName is the route cluster's name of RunCluster's servers.
const ClusterName = "docket-test"

// Cluster is a JetStream cluster of in-process servers with routes
// between them, each on its own client and route port and store
// directory, so that one node can be shut down and started again as
// itself: same name, ports and stored state.
type Cluster struct {
	t     testing.TB
	Nodes []*Node
}

// Node is one server of a Cluster.
type Node struct {
	Name string
	// URL is the client URL; it stays the same across restarts.
	URL  string
	opts server.Options

	mu       sync.Mutex
	srv      *server.Server
	Restarts int
}

// RunCluster starts n JetStream servers (n >= 3 for a quorum that
// survives one loss) named n1..nn, routed to each other, waits until
// they have a meta leader, and shuts them down when the test ends.
func RunCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	require.GreaterOrEqual(t, n, 2, "a cluster needs two nodes at least")
	// The route ports must be known before any server starts: every
	// node lists all the others as routes (JetStream clustering wants
	// configured routes on each). Ports are reserved by listening on
	// port 0 and released just before the servers bind them.
	clientPorts, routePorts := freePorts(t, n), freePorts(t, n)
	routes := make([]*url.URL, n)
	for i := range n {
		routes[i] = &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", routePorts[i])}
	}
	c := &Cluster{t: t}
	for i := range n {
		var others []*url.URL
		for j, r := range routes {
			if j != i {
				others = append(others, r)
			}
		}
		name := fmt.Sprintf("n%d", i+1)
		nd := &Node{
			Name: name,
			URL:  fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]),
			opts: server.Options{
				ServerName: name,
				Host:       "127.0.0.1",
				Port:       clientPorts[i],
				JetStream:  true,
				StoreDir:   t.TempDir(),
				NoSigs:     true,
				NoLog:      true,
				Cluster: server.ClusterOpts{
					Name: ClusterName,
					Host: "127.0.0.1",
					Port: routePorts[i],
				},
				Routes: others,
			},
		}
		c.Nodes = append(c.Nodes, nd)
	}
	for _, nd := range c.Nodes {
		require.NoError(t, nd.Start())
		t.Cleanup(nd.Shutdown)
	}
	c.WaitMetaLeader(t, 30*time.Second)
	return c
}

// freePorts returns n distinct free loopback ports.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		require.NoError(t, ln.Close())
	}
	return ports
}

// URLs is every node's client URL, comma-separated, as DOCKET_NATS_URL
// and nats.Connect take a cluster.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, nd := range c.Nodes {
		urls[i] = nd.URL
	}
	return strings.Join(urls, ",")
}

// Node returns the node of that server name, nil when there is none.
func (c *Cluster) Node(name string) *Node {
	for _, nd := range c.Nodes {
		if nd.Name == name {
			return nd
		}
	}
	return nil
}

// running returns the servers that are up.
func (c *Cluster) running() []*server.Server {
	var up []*server.Server
	for _, nd := range c.Nodes {
		if s := nd.Server(); s != nil {
			up = append(up, s)
		}
	}
	return up
}

// WaitMetaLeader waits until one running node is the JetStream meta
// leader and every running node is current with it.
func (c *Cluster) WaitMetaLeader(t testing.TB, limit time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		leaders := 0
		for _, s := range c.running() {
			if !s.JetStreamIsCurrent() {
				return false
			}
			if s.JetStreamIsLeader() {
				leaders++
			}
		}
		return leaders == 1
	}, limit, 20*time.Millisecond, "the cluster has no JetStream meta leader")
}

// StreamLeader returns the server name of stream's leader, waiting up to
// limit for it to have one among the running nodes, other than not when
// that is set (to wait for a new leader after the old one's loss).
func (c *Cluster) StreamLeader(t testing.TB, js jetstream.JetStream, stream, not string, limit time.Duration) string {
	t.Helper()
	var leader string
	poll(t, limit, 20*time.Millisecond, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false, err.Error()
		}
		info := s.CachedInfo()
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return false, "stream " + stream + " has no leader"
		}
		leader = info.Cluster.Leader
		if leader == not || c.Node(leader).Server() == nil {
			return false, "stream " + stream + " is still led by " + leader
		}
		return true, ""
	})
	return leader
}

// WaitStreamCurrent waits until stream has a leader and replicas-1 other
// replicas, all current and without lag: every node holds it all again.
func (c *Cluster) WaitStreamCurrent(t testing.TB, js jetstream.JetStream, stream string, replicas int, limit time.Duration) {
	t.Helper()
	poll(t, limit, 50*time.Millisecond, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false, err.Error()
		}
		ci := s.CachedInfo().Cluster
		if ci == nil || ci.Leader == "" {
			return false, "no leader"
		}
		current := 0
		for _, p := range ci.Replicas {
			if p.Current && !p.Offline && p.Lag == 0 {
				current++
			}
		}
		return current == replicas-1 && len(ci.Replicas) == replicas-1,
			fmt.Sprintf("stream %s: leader %s, %d of %d other replicas current, want %d", stream, ci.Leader, current, len(ci.Replicas), replicas-1)
	})
}

// poll calls cond every tick until it holds, and fails the test with its
// last word when limit passes first.
func poll(t testing.TB, limit, tick time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: not within %s: %s", limit, why)
		}
		time.Sleep(tick)
	}
}

// Others returns the nodes other than the one named.
func (c *Cluster) Others(name string) []*Node {
	var o []*Node
	for _, nd := range c.Nodes {
		if nd.Name != name {
			o = append(o, nd)
		}
	}
	return o
}

// Start runs the node's server on its name, ports and store directory.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return fmt.Errorf("natstest: %s already running", n.Name)
	}
	o := n.opts // a fresh copy: the server keeps and may change its options
	s, err := server.NewServer(&o)
	if err != nil {
		return fmt.Errorf("natstest: %s: %w", n.Name, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("natstest: %s not ready within 10s", n.Name)
	}
	n.srv = s
	return nil
}

// Server is the running server, nil while the node is down.
func (n *Node) Server() *server.Server {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// Shutdown stops the node's server and waits until it is gone; its
// clients are disconnected and reconnect elsewhere. It does nothing when
// the node is down.
func (n *Node) Shutdown() {
	n.mu.Lock()
	s := n.srv
	n.srv = nil
	n.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts the node again after Shutdown.
func (n *Node) Restart() error {
	if err := n.Start(); err != nil {
		return err
	}
	n.mu.Lock()
	n.Restarts++
	n.mu.Unlock()
	return nil
}
