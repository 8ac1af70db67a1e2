package crashtest

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/natstest"
	"github.com/docket-dev/docket/internal/pgproxy"
)

// crashConfig sizes one run: it lasts at least Duration and until Kills
// processes were killed.
type crashConfig struct {
	Kills    int
	Duration time.Duration
}

// fromEnv lets CRASH_KILLS and CRASH_DURATION override the defaults.
func fromEnv(t *testing.T, c crashConfig) crashConfig {
	t.Helper()
	if v := os.Getenv("CRASH_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "CRASH_KILLS")
		c.Kills = n
	}
	if v := os.Getenv("CRASH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "CRASH_DURATION")
		c.Duration = d
	}
	return c
}

// TestCrashUnderLoad is the short crash harness `make test` runs: two
// serve processes on one database and one NATS, at least 20 SIGKILLs.
func TestCrashUnderLoad(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("the crash harness runs the real binary for about a minute")
	}
	runCrash(t, fromEnv(t, crashConfig{Kills: 20, Duration: 30 * time.Second}), true)
}

// TestSoakCrash is the long form, for `make soak` (DOCKET_SOAK=1).
func TestSoakCrash(t *testing.T) {
	if os.Getenv("DOCKET_SOAK") == "" {
		t.Skip("set DOCKET_SOAK=1 (make soak)")
	}
	runCrash(t, fromEnv(t, crashConfig{Kills: 300, Duration: 10 * time.Minute}), false)
}

// crashRun is one run's parts.
type crashRun struct {
	t      *testing.T
	bin    string
	dbURL  string
	key    string
	procs  []*Proc
	dirs   []string
	nats   *natsserver.Server
	hc     *http.Client
	tokens Tokens
	// proxies[i] is procs[i]'s way to Postgres, when set up through
	// proxies (setUpReplicas, replicaSetup.proxied).
	proxies []*pgproxy.Proxy
}

func (r *crashRun) cli(args ...string) string {
	r.t.Helper()
	cmd := exec.Command(r.bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "DATABASE_URL=" + r.dbURL, "DOCKET_LOG_LEVEL=warn"}
	out, err := cmd.Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	require.NoError(r.t, err, "docket %v: %s%s", args, out, stderr)
	return string(out)
}

func (r *crashRun) token(args ...string) string {
	lines := strings.Split(strings.TrimSpace(r.cli(append([]string{"token", "create"}, args...)...)), "\n")
	return lines[len(lines)-1]
}

func (r *crashRun) waitReady(p *Proc) time.Duration {
	r.t.Helper()
	t0 := time.Now()
	require.Eventually(r.t, func() bool { return p.Ready(context.Background(), r.hc) }, 60*time.Second, 20*time.Millisecond,
		"%s never ready; see its log in %s", p.Name, p.log)
	return time.Since(t0)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func setUp(t *testing.T) *crashRun {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	bin, err := Build(ctx, filepath.Join("..", ".."), tmp)
	require.NoError(t, err)

	ns := natstest.Run(t, nil)

	r := newCrashRun(t, bin, tmp, ns)
	for i, name := range []string{"a", "b"} {
		dir := t.TempDir()
		r.dirs = append(r.dirs, dir)
		env := []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
			"DATABASE_URL=" + r.dbURL,
			"DOCKET_ADDR=" + freeAddr(t),
			"DOCKET_DATA_DIR=" + dir,
			"DOCKET_NATS_URL=" + ns.ClientURL(),
			"DOCKET_SIGNER_KEY_FILE=" + r.key,
			"DOCKET_CHECKPOINT_INTERVAL=50ms",
			"DOCKET_LOG_LEVEL=warn",
			"DOCKET_LOG_FORMAT=text",
			"DOCKET_SHUTDOWN_TIMEOUT=5s",
		}
		p := NewProc(name, bin, strings.TrimPrefix(env[3], "DOCKET_ADDR="), filepath.Join(tmp, name+".log"), env)
		r.procs = append(r.procs, p)
		t.Cleanup(func() { _ = p.Kill() })
		require.NoError(t, p.Start())
		r.waitReady(p) // the first one creates and migrates the database
		if i == 0 {
			r.mintTokens()
		}
	}
	return r
}

// figures are what a run measured, for docs/reliability.md.
type figures struct {
	kills, consumerRestarts    int
	longestRestart, longestGap time.Duration
}

func runCrash(t *testing.T, cfg crashConfig, tamper bool) {
	r := setUp(t)
	ctx := context.Background()
	status, _ := r.put("/v1/policies/crash", r.tokens.Admin, `{"title": "Crash harness", "text": "Decisions the crash harness records."}`)
	require.Equal(t, http.StatusCreated, status)

	nc, err := nats.Connect(r.nats.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, err := js.Stream(ctx, "DOCKET"); return err == nil }, 30*time.Second, 20*time.Millisecond,
		"the relay never created stream DOCKET")
	consumer := NewConsumer(js, "crash-consumer")
	consumer.Start()
	t.Cleanup(func() { _ = consumer.Stop() })

	ledger := &Ledger{}
	load := &Load{Procs: r.procs, Tokens: r.tokens, Ledger: ledger, Policy: "crash", KeyedShare: 0.5, LoseShare: 0.05, RetryFor: time.Minute, HC: r.hc}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); load.Run(loadCtx) }()

	// The killer: SIGKILL one process at a random moment, start it again
	// on the same data directory, wait until it is ready; now and then
	// restart the consumer too.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var fig figures
	start := time.Now()
	mean := cfg.Duration / time.Duration(cfg.Kills)
	for fig.kills < cfg.Kills || time.Since(start) < cfg.Duration {
		time.Sleep(time.Duration(rng.Int64N(int64(2 * mean))))
		p := r.procs[rng.IntN(len(r.procs))]
		require.NoError(t, p.Kill())
		fig.kills++
		t0 := time.Now()
		if rng.IntN(3) == 0 {
			// Down for a moment: requests meet a closed port, not only a reset.
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		}
		require.NoError(t, p.Start())
		r.waitReady(p)
		fig.longestRestart = max(fig.longestRestart, time.Since(t0))
		if fig.kills%4 == 0 {
			require.NoError(t, consumer.Restart())
		}
	}
	end := time.Now()
	stopLoad()
	wg.Wait()
	ops := ledger.Ops()
	fig.consumerRestarts = consumer.Restarts
	fig.longestGap = LongestGap(ops, start, end)
	require.GreaterOrEqual(t, fig.consumerRestarts, 1)

	// Let the integrator catch up: every staged entry a leaf, under a checkpoint.
	db, err := sqlx.Open("postgres", r.dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	n := awaitLog(t, db)

	// Every entry at the durable consumer, and in the stream, once and in order.
	problems := deliveryProblems(t, ctx, js, consumer, n, 30*time.Second)
	require.Empty(t, problems)

	for _, p := range r.procs {
		require.NoError(t, p.Stop(20*time.Second))
	}
	rep := r.checkAll(ctx, db, ops)
	acked := 0
	for _, v := range rep.Acked {
		acked += v
	}
	t.Logf("crash harness: %d kills in %s (%d consumer restarts); %d writes acknowledged and found (%v), %d unanswered without a key, %d keyed writes retried (%d after a dropped reply); "+
		"0 duplicates; %d entries, %d checkpoints checked, delivered once in order; longest restart %s, longest time without an acknowledged write %s",
		fig.kills, end.Sub(start).Round(time.Second), fig.consumerRestarts, acked, rep.Acked, rep.Unknown, rep.Retried, rep.Lost,
		rep.Entries, rep.Checks, fig.longestRestart.Round(time.Millisecond), fig.longestGap.Round(time.Millisecond))
	require.Positive(t, rep.Lost, "no reply was dropped")
	require.Positive(t, rep.Acked[KindBulk], "no bulk reversal was acknowledged")
	require.Positive(t, rep.Acked[KindResolve], "no resolution was acknowledged")

	if tamper {
		checkerCatches(t, db, ops, n, consumer.Got())
	}
}

func (r *crashRun) put(path, token, body string) (int, string) {
	req, err := http.NewRequest(http.MethodPut, r.procs[0].URL+path, strings.NewReader(body))
	require.NoError(r.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	return resp.StatusCode, ""
}
