package natstest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
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
	logDir := t.TempDir()
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
				LogFile:    filepath.Join(logDir, name+".log"),
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
		t.Cleanup(func() {
			nd.Shutdown()
			if t.Failed() {
				t.Logf("the last lines of NATS node %s's log:\n%s", nd.Name, nd.LogTail(60))
			}
		})
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
		info, why := c.ledStream(js, stream)
		if info == nil {
			return false, why
		}
		leader = info.Cluster.Leader
		if leader == not || c.Node(leader).Server() == nil {
			return false, "stream " + stream + " is still led by " + leader
		}
		return true, ""
	})
	return leader
}

// ledStream reads stream's info; it is nil, with the reason, while the
// stream cannot be read or has no leader.
func (c *Cluster) ledStream(js jetstream.JetStream, stream string) (*jetstream.StreamInfo, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err.Error() + "; " + c.Describe(stream)
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, "stream " + stream + " has no leader; " + c.Describe(stream)
	}
	return info, ""
}

// WaitStreamCurrent waits until stream has a leader and replicas-1 other
// replicas, all online and current by the leader's account, and until
// every running node stores, itself, all the leader held when the wait
// began: every node holds the stream again (under a write load the
// newest messages may still be in flight).
func (c *Cluster) WaitStreamCurrent(t testing.TB, js jetstream.JetStream, stream string, replicas int, limit time.Duration) {
	t.Helper()
	var target uint64
	poll(t, limit, 50*time.Millisecond, func() (bool, string) {
		info, why := c.ledStream(js, stream)
		if info == nil {
			return false, why
		}
		ci := info.Cluster
		if target == 0 {
			target = info.State.LastSeq
		}
		current := 0
		for _, p := range ci.Replicas {
			if p.Current && !p.Offline {
				current++
			}
		}
		if current != replicas-1 || len(ci.Replicas) != replicas-1 {
			return false, fmt.Sprintf("leader %s, %d of %d other replicas current, want %d; %s", ci.Leader, current, len(ci.Replicas), replicas-1, c.Describe(stream))
		}
		for _, nd := range c.Nodes {
			if nd.Server() == nil {
				continue
			}
			st, leader, ok := nd.streamView(stream)
			if !ok || st.LastSeq < target {
				return false, fmt.Sprintf("%s has not stored up to sequence %d; %s", nd.Name, target, c.Describe(stream))
			}
			// A node that does not know the leader yet has not rejoined
			// the group: losing the leader now would leave it alone.
			if leader != ci.Leader {
				return false, fmt.Sprintf("%s does not know leader %s yet; %s", nd.Name, ci.Leader, c.Describe(stream))
			}
		}
		return true, ""
	})
}

// StreamState is what the node itself stores of stream (in the global
// account), false when it is down or holds no replica.
func (n *Node) StreamState(stream string) (server.StreamState, bool) {
	st, _, ok := n.streamView(stream)
	return st, ok
}

// streamView is the node's own state of stream and the leader it knows of.
func (n *Node) streamView(stream string) (server.StreamState, string, bool) {
	s := n.Server()
	if s == nil {
		return server.StreamState{}, "", false
	}
	acc, err := s.JszAccount(&server.JSzOptions{Account: server.DEFAULT_GLOBAL_ACCOUNT, Streams: true})
	if err != nil {
		return server.StreamState{}, "", false
	}
	for _, sd := range acc.Streams {
		if sd.Name == stream {
			leader := ""
			if sd.Cluster != nil {
				leader = sd.Cluster.Leader
			}
			return sd.State, leader, true
		}
	}
	return server.StreamState{}, "", false
}

// Describe is each node's view of stream, for failure messages: down,
// or its last sequence and the leader it knows of.
func (c *Cluster) Describe(stream string) string {
	var parts []string
	for _, nd := range c.Nodes {
		if nd.Server() == nil {
			parts = append(parts, nd.Name+" down")
			continue
		}
		st, leader, ok := nd.streamView(stream)
		if !ok {
			parts = append(parts, nd.Name+": no replica")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: last seq %d, leader %q", nd.Name, st.LastSeq, leader))
	}
	return strings.Join(parts, "; ")
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
	s.ConfigureLogger()
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("natstest: %s not ready within 10s", n.Name)
	}
	n.srv = s
	return nil
}

// LogTail is the last lines of the node's log (every start appends to
// it) but for those about route connections, for a failed test.
func (n *Node) LogTail(lines int) string {
	b, err := os.ReadFile(n.opts.LogFile)
	if err != nil {
		return err.Error()
	}
	var ls []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.Contains(strings.ToLower(l), "route") {
			ls = append(ls, l)
		}
	}
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
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
