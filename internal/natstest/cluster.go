package natstest

import (
	"context"
	"errors"
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

// ClusterName is the route cluster's name of RunCluster's and
// RunProcCluster's servers.
const ClusterName = "docket-test"

// Cluster is a JetStream cluster with routes between its nodes, each on
// its own client and route port and store directory, so that one node
// can be taken down and started again as itself: same name, ports and
// stored state. Its nodes run in this process (RunCluster) or as
// nats-server child processes (RunProcCluster); the waits below see them
// alike, through each node's own JetStream report (Jsz, the /jsz of its
// monitoring port) and the JetStream API.
type Cluster struct {
	t     testing.TB
	Nodes []*Node
}

// Node is one server of a Cluster.
type Node struct {
	Name string
	// URL is the client URL; it stays the same across restarts.
	URL     string
	logFile string
	t       testing.TB

	mu       sync.Mutex
	run      runner
	up       bool
	Restarts int
}

// runner runs a node's server: in this process, or as a child process.
type runner interface {
	// start runs the server and returns once it takes connections.
	start() error
	// stop takes the server down and waits until it is gone: gracefully
	// (leadership handed over, files flushed), or with kill abruptly.
	stop(kill bool) error
	// jsz is the server's own JetStream report of the global account's
	// streams; an error while the server cannot give it.
	jsz() (*server.JSInfo, error)
}

// nodeSpec is where one node of a cluster of n lives: its name, ports,
// the routes to the others, its store directory and log file.
type nodeSpec struct {
	name                  string
	clientPort, routePort int
	// httpPort is the monitoring port, which only a process node opens:
	// in this process the server's report is a call.
	httpPort          int
	routes            []*url.URL
	storeDir, logFile string
}

// layout names n nodes n1..nn and gives each its ports, routes, store
// directory and log file. The route ports must be known before any
// server starts: every node lists all the others as routes (JetStream
// clustering wants configured routes on each). Ports are reserved by
// listening on port 0 and released just before the servers bind them.
func layout(t testing.TB, n int) []nodeSpec {
	t.Helper()
	require.GreaterOrEqual(t, n, 2, "a cluster needs two nodes at least")
	clientPorts, routePorts, httpPorts := freePorts(t, n), freePorts(t, n), freePorts(t, n)
	routes := make([]*url.URL, n)
	for i := range n {
		routes[i] = &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", routePorts[i])}
	}
	logDir := t.TempDir()
	specs := make([]nodeSpec, n)
	for i := range n {
		var others []*url.URL
		for j, r := range routes {
			if j != i {
				others = append(others, r)
			}
		}
		name := fmt.Sprintf("n%d", i+1)
		specs[i] = nodeSpec{name: name, clientPort: clientPorts[i], routePort: routePorts[i], httpPort: httpPorts[i],
			routes: others, storeDir: t.TempDir(), logFile: filepath.Join(logDir, name+".log")}
	}
	return specs
}

// RunCluster starts n JetStream servers in this process (n >= 3 for a
// quorum that survives one loss) named n1..nn, routed to each other,
// waits until they have a meta leader, and shuts them down when the test
// ends. Its nodes can be shut down (Node.Shutdown), not killed.
func RunCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	specs := layout(t, n)
	nodes := make([]*Node, n)
	for i, sp := range specs {
		nodes[i] = newNode(t, sp, &inProc{opts: server.Options{
			ServerName: sp.name,
			Host:       "127.0.0.1",
			Port:       sp.clientPort,
			JetStream:  true,
			StoreDir:   sp.storeDir,
			NoSigs:     true,
			LogFile:    sp.logFile,
			Cluster: server.ClusterOpts{
				Name: ClusterName,
				Host: "127.0.0.1",
				Port: sp.routePort,
			},
			Routes: sp.routes,
		}})
	}
	return startCluster(t, nodes, false)
}

// newNode is the node of sp, run by run.
func newNode(t testing.TB, sp nodeSpec, run runner) *Node {
	return &Node{Name: sp.name, URL: fmt.Sprintf("nats://127.0.0.1:%d", sp.clientPort), logFile: sp.logFile, t: t, run: run}
}

// startCluster starts every node, has each stopped when the test ends
// (killed, with kill) and its log shown when the test failed, and waits
// for the meta leader.
func startCluster(t testing.TB, nodes []*Node, kill bool) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Nodes: nodes}
	for _, nd := range c.Nodes {
		require.NoError(t, nd.Start())
		t.Cleanup(func() {
			if err := nd.stop(kill); err != nil {
				t.Logf("natstest: %v", err)
			}
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

// WaitMetaLeader waits until every running node names the same running
// node as the JetStream meta leader and that leader counts every other
// running node current.
func (c *Cluster) WaitMetaLeader(t testing.TB, limit time.Duration) {
	t.Helper()
	poll(t, limit, 20*time.Millisecond, func() (bool, string) {
		reports := map[string]*server.JSInfo{}
		leader := ""
		for _, nd := range c.Nodes {
			if !nd.Running() {
				continue
			}
			jsi, err := nd.jsz()
			if err != nil {
				return false, err.Error()
			}
			if jsi.Meta == nil || jsi.Meta.Leader == "" {
				return false, nd.Name + " knows no meta leader"
			}
			if leader != "" && jsi.Meta.Leader != leader {
				return false, fmt.Sprintf("%s names meta leader %s, another node %s", nd.Name, jsi.Meta.Leader, leader)
			}
			leader = jsi.Meta.Leader
			reports[nd.Name] = jsi
		}
		lr, ok := reports[leader]
		if !ok {
			return false, "meta leader " + leader + " is not running"
		}
		for name := range reports {
			if name != leader && !current(lr.Meta.Replicas, name) {
				return false, fmt.Sprintf("meta leader %s does not count %s current", leader, name)
			}
		}
		return true, ""
	})
}

// current says whether the peer named name is online and current among
// replicas.
func current(replicas []*server.PeerInfo, name string) bool {
	for _, p := range replicas {
		if p.Name == name {
			return p.Current && !p.Offline
		}
	}
	return false
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
		if leader == not || !c.Node(leader).Running() {
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
			if !nd.Running() {
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
	if !n.Running() {
		return server.StreamState{}, "", false
	}
	jsi, err := n.jsz()
	if err != nil {
		return server.StreamState{}, "", false
	}
	for _, acc := range jsi.AccountDetails {
		for _, sd := range acc.Streams {
			if sd.Name == stream {
				leader := ""
				if sd.Cluster != nil {
					leader = sd.Cluster.Leader
				}
				return sd.State, leader, true
			}
		}
	}
	return server.StreamState{}, "", false
}

// Describe is each node's view of stream, for failure messages: down,
// or its last sequence and the leader it knows of.
func (c *Cluster) Describe(stream string) string {
	var parts []string
	for _, nd := range c.Nodes {
		if !nd.Running() {
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
	if n.up {
		return fmt.Errorf("natstest: %s already running", n.Name)
	}
	if err := n.run.start(); err != nil {
		return fmt.Errorf("natstest: %s: %w", n.Name, err)
	}
	n.up = true
	return nil
}

// LogTail is the last lines of the node's log (every start appends to
// it) but for those about route connections, for a failed test.
func (n *Node) LogTail(lines int) string {
	b, err := os.ReadFile(n.logFile)
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

// Running says whether the node's server was started and not taken down
// since; false for no node.
func (n *Node) Running() bool {
	if n == nil {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.up
}

// jsz is the node's JetStream report.
func (n *Node) jsz() (*server.JSInfo, error) {
	jsi, err := n.run.jsz()
	if err != nil {
		return nil, fmt.Errorf("natstest: %s: %w", n.Name, err)
	}
	return jsi, nil
}

// Shutdown stops the node's server gracefully and waits until it is
// gone: it hands over what it leads and flushes its store first. Its
// clients are disconnected and reconnect elsewhere. It does nothing when
// the node is down.
func (n *Node) Shutdown() {
	if err := n.stop(false); err != nil {
		n.t.Error(err)
	}
}

// Kill ends a process node's server with SIGKILL and waits until it is
// gone: no leadership handover and no flush; its peers learn of it from
// the closed routes and their Raft election timeouts. An in-process node
// cannot be killed: that is an error, and the node stays up.
func (n *Node) Kill() error { return n.stop(true) }

// stop takes the server down unless it is down already; after any error but errNoKill
// it is down nonetheless (a process that outlived its grace is killed).
func (n *Node) stop(kill bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.up {
		return nil
	}
	err := n.run.stop(kill)
	if !errors.Is(err, errNoKill) {
		n.up = false
	}
	if err != nil {
		return fmt.Errorf("natstest: %s: %w", n.Name, err)
	}
	return nil
}

// Restart starts the node again after Shutdown or Kill.
func (n *Node) Restart() error {
	if err := n.Start(); err != nil {
		return err
	}
	n.mu.Lock()
	n.Restarts++
	n.mu.Unlock()
	return nil
}

// errNoKill is Kill of a node in this process: the test's own process
// cannot lose one server abruptly.
var errNoKill = errors.New("an in-process server cannot be killed")

// inProc runs a node's server in this process.
type inProc struct {
	opts server.Options
	srv  *server.Server
}

func (p *inProc) start() error {
	o := p.opts // a fresh copy: the server keeps and may change its options
	s, err := server.NewServer(&o)
	if err != nil {
		return err
	}
	s.ConfigureLogger()
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return errors.New("not ready within 10s")
	}
	p.srv = s
	return nil
}

func (p *inProc) stop(kill bool) error {
	if kill {
		return errNoKill
	}
	p.srv.Shutdown()
	p.srv.WaitForShutdown()
	p.srv = nil
	return nil
}

func (p *inProc) jsz() (*server.JSInfo, error) {
	return p.srv.Jsz(&server.JSzOptions{Account: server.DEFAULT_GLOBAL_ACCOUNT, Streams: true})
}
