package crashtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/natstest"
)

// clusterConfig sizes a NATS cluster run: Rounds times, a follower of
// stream DOCKET is lost and restarted, then its leader; each node stays
// down for Down. Loss is how a node is lost.
type clusterConfig struct {
	Rounds int
	Down   time.Duration
	Loss   nodeLoss
}

// nodeLoss is how the harness takes a NATS node out.
type nodeLoss int

const (
	// shutdownLoss is Server.Shutdown of an in-process node
	// (natstest.RunCluster): it hands over what it leads and flushes
	// first.
	shutdownLoss nodeLoss = iota
	// killLoss is SIGKILL of a nats-server process
	// (natstest.RunProcCluster): no handover, no flush; its peers learn
	// of it from the closed routes and their election timeouts.
	killLoss
)

func (l nodeLoss) String() string {
	if l == killLoss {
		return "SIGKILL"
	}
	return "shutdown"
}

// TestNATSClusterUnderLoad is the short form `make test` runs: the write
// load at two serve processes on a three-node JetStream cluster of
// nats-server processes, stream DOCKET with three replicas; one follower
// SIGKILLed and restarted, then the stream's leader. The graceful loss
// is the soak's other half (and natstest's and notify's cluster tests').
func TestNATSClusterUnderLoad(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("the cluster harness runs the real binary against three NATS servers")
	}
	runCluster(t, clusterConfig{Rounds: 1, Down: 2 * time.Second, Loss: killLoss})
}

// TestSoakNATSCluster is the long form, for `make soak` (DOCKET_SOAK=1):
// CLUSTER_ROUNDS rounds (default 10) of a follower's and the leader's
// loss, once with the nodes SIGKILLed and once shut down in-process.
func TestSoakNATSCluster(t *testing.T) {
	if os.Getenv("DOCKET_SOAK") == "" {
		t.Skip("set DOCKET_SOAK=1 (make soak)")
	}
	rounds := 10
	if v := os.Getenv("CLUSTER_ROUNDS"); v != "" {
		_, err := fmt.Sscan(v, &rounds)
		require.NoError(t, err, "CLUSTER_ROUNDS")
	}
	for _, loss := range []nodeLoss{killLoss, shutdownLoss} {
		t.Run(loss.String(), func(t *testing.T) {
			runCluster(t, clusterConfig{Rounds: rounds, Down: 3 * time.Second, Loss: loss})
		})
	}
}

// relayMetrics are the relay's figures of one process at one scrape.
type relayMetrics struct {
	leader    bool
	lag       float64
	errors    float64
	published float64
}

// scrapeRelay reads the relay's metrics from p's /metrics.
func scrapeRelay(ctx context.Context, hc *http.Client, p *Proc) (relayMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/metrics", nil)
	if err != nil {
		return relayMetrics{}, fmt.Errorf("crashtest: metrics request: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return relayMetrics{}, fmt.Errorf("crashtest: metrics of %s: %w", p.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return relayMetrics{}, fmt.Errorf("crashtest: metrics of %s: status %d", p.Name, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return relayMetrics{}, fmt.Errorf("crashtest: metrics of %s: %w", p.Name, err)
	}
	v := func(name string) float64 {
		f, ok := fams[name]
		if !ok || len(f.GetMetric()) == 0 {
			return -1
		}
		m := f.GetMetric()[0]
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		default:
			return m.GetGauge().GetValue()
		}
	}
	return relayMetrics{leader: v("docket_notify_relay_leader") == 1, lag: v("docket_notify_lag_entries"),
		errors: v("docket_notify_publish_errors_total"), published: v("docket_notify_published_total")}, nil
}

// lagWatch scrapes every process's relay metrics until stopped and keeps
// the largest lag the active relay reported.
type lagWatch struct {
	mu     sync.Mutex
	maxLag float64
	last   map[string]relayMetrics
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func watchLag(hc *http.Client, procs []*Proc) *lagWatch {
	w := &lagWatch{last: map[string]relayMetrics{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, p := range procs {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				m, err := scrapeRelay(ctx, hc, p)
				cancel()
				if err != nil {
					continue
				}
				w.mu.Lock()
				if m.leader {
					w.maxLag = max(w.maxLag, m.lag)
				}
				w.last[p.Name] = m
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *lagWatch) Stop() { w.once.Do(func() { close(w.stop) }); <-w.done }

func (w *lagWatch) MaxLag() float64 { w.mu.Lock(); defer w.mu.Unlock(); return w.maxLag }

// setUpCluster is setUp with a three-node JetStream cluster for NATS, of
// processes when its nodes are to be killed.
func setUpCluster(t *testing.T, loss nodeLoss) (*crashRun, *natstest.Cluster) {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	bin, err := Build(ctx, filepath.Join("..", ".."), tmp)
	require.NoError(t, err)

	var cl *natstest.Cluster
	if loss == killLoss {
		cl = natstest.RunProcCluster(t, 3)
	} else {
		cl = natstest.RunCluster(t, 3)
	}

	r := newCrashRun(t, bin, tmp, nil)
	for i, name := range []string{"a", "b"} {
		dir := t.TempDir()
		r.dirs = append(r.dirs, dir)
		addr := freeAddr(t)
		env := []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
			"DATABASE_URL=" + r.dbURL,
			"DOCKET_ADDR=" + addr,
			"DOCKET_DATA_DIR=" + dir,
			"DOCKET_NATS_URL=" + cl.URLs(),
			"DOCKET_STREAM_REPLICAS=3",
			"DOCKET_SIGNER_KEY_FILE=" + r.key,
			"DOCKET_CHECKPOINT_INTERVAL=50ms",
			"DOCKET_LOG_LEVEL=warn",
			"DOCKET_LOG_FORMAT=text",
			"DOCKET_SHUTDOWN_TIMEOUT=5s",
		}
		p := NewProc(name, bin, addr, filepath.Join(tmp, name+".log"), env)
		r.procs = append(r.procs, p)
		t.Cleanup(func() {
			_ = p.Kill()
			if t.Failed() {
				logTail(t, p)
			}
		})
		require.NoError(t, p.Start())
		r.waitReady(p)
		if i == 0 {
			r.mintTokens()
		}
	}
	return r, cl
}

// logTail shows the end of a process's log, for a failed run.
func logTail(t *testing.T, p *Proc) {
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Logf("log of %s: %v", p.Name, err)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	t.Logf("the last lines of %s's log:\n%s", p.Name, strings.Join(lines[max(0, len(lines)-60):], "\n"))
}

// loss is one node's loss and return, for the figures.
type loss struct {
	node, role string
	// consumerLeader led the durable consumer when the node was lost:
	// when it is the node, the consumer's acks met an election too.
	consumerLeader string
	// newLeader is the stream's leader once the node was down, found
	// electedIn after the loss (a follower's loss keeps the leader).
	newLeader string
	electedIn time.Duration
	// backIn is from the node's restart until the stream was current
	// on all three replicas again.
	backIn time.Duration
}

func runCluster(t *testing.T, cfg clusterConfig) {
	t0 := time.Now()
	var s jetstream.Stream
	phase := func(what string) {
		var seq uint64
		if s != nil {
			if info, err := s.Info(context.Background()); err == nil {
				seq = info.State.LastSeq
			}
		}
		t.Logf("cluster harness: %s: %s (stream at sequence %d)", time.Since(t0).Round(time.Millisecond), what, seq)
	}
	r, cl := setUpCluster(t, cfg.Loss)
	phase("set up")
	ctx := context.Background()
	status, _ := r.put("/v1/policies/crash", r.tokens.Admin, `{"title": "Crash harness", "text": "Decisions the crash harness records."}`)
	require.Equal(t, http.StatusCreated, status)

	// The test's own connection rides out node losses like the serve's:
	// every URL, reconnecting for good.
	nc, err := nats.Connect(cl.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, err := js.Stream(ctx, "DOCKET"); return err == nil }, 30*time.Second, 20*time.Millisecond,
		"the relay never created stream DOCKET")
	s, err = js.Stream(ctx, "DOCKET")
	require.NoError(t, err)
	require.Equal(t, 3, s.CachedInfo().Config.Replicas, "DOCKET_STREAM_REPLICAS=3")
	cl.WaitStreamCurrent(t, js, "DOCKET", 3, 30*time.Second)

	consumer := NewConsumer(js, "cluster-consumer")
	consumer.Start()
	t.Cleanup(func() { _ = consumer.Stop() })
	watch := watchLag(r.hc, r.procs)
	t.Cleanup(watch.Stop)

	ledger := &Ledger{}
	load := &Load{Procs: r.procs, Tokens: r.tokens, Ledger: ledger, Policy: "crash", KeyedShare: 0.5, LoseShare: 0.05, RetryFor: time.Minute, HC: r.hc}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); load.Run(loadCtx) }()

	// Wait for the load to put entries in the stream before each loss.
	progress := func(why string) {
		t.Helper()
		info, err := s.Info(ctx)
		require.NoError(t, err)
		from := info.State.LastSeq
		require.Eventually(t, func() bool {
			ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			info, err := s.Info(ictx)
			return err == nil && info.State.LastSeq >= from+200
		}, 60*time.Second, 20*time.Millisecond, "the relay published nothing %s", why)
	}
	// consumerLeader is the node leading the durable consumer, "none"
	// while it has none (after its leader's loss, until an election) or
	// cannot be read.
	consumerLeader := func() string {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		c, err := s.Consumer(cctx, "cluster-consumer")
		if err != nil || c.CachedInfo().Cluster == nil || c.CachedInfo().Cluster.Leader == "" {
			return "none"
		}
		return c.CachedInfo().Cluster.Leader
	}
	// down takes the node out for cfg.Down while the load goes on, then
	// starts it again and waits until the stream is whole on it.
	down := func(nd *natstest.Node, role string) loss {
		t.Helper()
		l := loss{node: nd.Name, role: role, consumerLeader: consumerLeader()}
		t.Logf("cluster harness: %s of %s, the stream's %s", cfg.Loss, nd.Name, role)
		t1 := time.Now()
		if cfg.Loss == killLoss {
			require.NoError(t, nd.Kill())
		} else {
			nd.Shutdown()
		}
		l.newLeader = cl.StreamLeader(t, js, "DOCKET", nd.Name, 150*time.Second)
		l.electedIn = time.Since(t1)
		phase("new leader " + l.newLeader)
		progress("while " + nd.Name + " was down")
		time.Sleep(cfg.Down) // the node's time out; the load and the checks below go on
		require.NoError(t, nd.Restart())
		phase(nd.Name + " restarted")
		t1 = time.Now()
		cl.WaitMetaLeader(t, 30*time.Second)
		cl.WaitStreamCurrent(t, js, "DOCKET", 3, 60*time.Second)
		l.backIn = time.Since(t1)
		phase(nd.Name + " back")
		return l
	}

	phase("load running")
	start := time.Now()
	var losses []loss
	for range cfg.Rounds {
		progress("before a follower's loss")
		leader := cl.StreamLeader(t, js, "DOCKET", "", 10*time.Second)
		// The follower lost is the durable consumer's leader when that
		// is not the stream's: each round then takes the consumer's
		// leader too, and its acks meet an election.
		follower := cl.Others(leader)[0]
		if cn := cl.Node(consumerLeader()); cn.Running() && cn.Name != leader {
			follower = cn
		}
		losses = append(losses, down(follower, "follower"))
		progress("before the leader's loss")
		leader = cl.StreamLeader(t, js, "DOCKET", "", 10*time.Second)
		losses = append(losses, down(cl.Node(leader), "leader"))
	}
	progress("after the last loss")
	end := time.Now()
	phase("losses done")
	stopLoad()
	wg.Wait()
	ops := ledger.Ops()
	longestGap := LongestGap(ops, start, end)

	// Every staged entry a leaf, under a checkpoint.
	db, err := sqlx.Open("postgres", r.dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	n := awaitLog(t, db)

	// The relay rode it out: the active relay's lag on /metrics returns to 0.
	var relayed relayMetrics
	require.Eventually(t, func() bool {
		for _, p := range r.procs {
			m, err := scrapeRelay(ctx, r.hc, p)
			if err == nil && m.leader {
				relayed = m
				return m.lag == 0
			}
		}
		return false
	}, 60*time.Second, 50*time.Millisecond, "the relay's lag never returned to 0")
	lagZeroIn := time.Since(end)
	phase("lag 0")
	watch.Stop()
	var errorsTotal float64
	for _, m := range watch.last {
		errorsTotal += m.errors
	}

	// Every entry at the durable consumer, and in the stream, once and in order.
	problems := deliveryProblems(t, ctx, js, consumer, n, 10*time.Second)
	require.Empty(t, problems)
	phase("delivery checked")

	for _, p := range r.procs {
		require.NoError(t, p.Stop(20*time.Second))
	}
	rep := r.checkAll(ctx, db, ops)
	phase("all checked")
	acked := 0
	for _, v := range rep.Acked {
		acked += v
	}
	var ls []string
	for _, l := range losses {
		ls = append(ls, fmt.Sprintf("%s %s (the durable consumer's leader %s; then led by %s, known %s after the loss; current again %s after restart)",
			l.role, l.node, l.consumerLeader, l.newLeader, l.electedIn.Round(time.Millisecond), l.backIn.Round(time.Millisecond)))
	}
	t.Logf("cluster harness: %d node losses (%s) in %s: %s; %d writes acknowledged and found (%v), %d unanswered without a key, %d keyed writes retried; "+
		"%d entries delivered once in order to the durable consumer and in the stream (%d messages, 3 replicas); relay: %.0f published by the last leader, %.0f publish errors, max lag %.0f entries, lag 0 %s after the load stopped; longest time without an acknowledged write %s",
		len(losses), cfg.Loss, end.Sub(start).Round(time.Second), strings.Join(ls, ", "), acked, rep.Acked, rep.Unknown, rep.Retried,
		n, n, relayed.published, errorsTotal, watch.MaxLag(), lagZeroIn.Round(time.Millisecond), longestGap.Round(time.Millisecond))
}
