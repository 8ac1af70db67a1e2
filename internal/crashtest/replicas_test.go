package crashtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
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
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket/internal/natstest"
	"github.com/docket-dev/docket/internal/pgproxy"
)

// The replicas' settings that the checks depend on.
const (
	// replicaElection is DOCKET_ELECTION_INTERVAL: how often a standby
	// tries the integrator's and the relay's locks.
	replicaElection = 500 * time.Millisecond
	// replicaMaxOpen is DOCKET_DB_MAX_OPEN of each replica.
	replicaMaxOpen = 16
)

// handoverBound is what the test holds a handover to: the stated bound
// (docs/operations.md, "Replicas": one election interval after Postgres
// ends the dead holder's session, which a SIGKILL does at once, plus one
// attempt) with room for a loaded 2-core machine under the race
// detector: twice the interval and five seconds more. Measured handovers are far below.
func handoverBound() time.Duration { return 2*replicaElection + 5*time.Second }

// TestReplicasUnderKills is the short replica run `make test` runs: three
// serve processes on one database, one external NATS with credentials and
// one signer key, at least 9 SIGKILLs, a third of them of the integrator
// and a third of the relay.
func TestReplicasUnderKills(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("the replica harness runs the real binary three times over for about half a minute")
	}
	runReplicas(t, fromEnv(t, crashConfig{Kills: 9, Duration: 15 * time.Second}))
}

// TestSoakReplicas is the long form, for `make soak` (DOCKET_SOAK=1).
func TestSoakReplicas(t *testing.T) {
	if os.Getenv("DOCKET_SOAK") == "" {
		t.Skip("set DOCKET_SOAK=1 (make soak)")
	}
	runReplicas(t, fromEnv(t, crashConfig{Kills: 300, Duration: 10 * time.Minute}))
}

// replicaNATS runs the external NATS docs/operations.md documents
// (cmd/docket/testdata/nats-server.conf): account DOCKET, users docket
// (the serves) and reader (the test's consumers).
func replicaNATS(t *testing.T) (s *natsserver.Server, docketPW, readerPW string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "cmd", "docket", "testdata", "nats-server.conf"))
	require.NoError(t, err)
	docketPW, readerPW = "pw-docket-"+newKey(), "pw-reader-"+newKey()
	conf := filepath.Join(t.TempDir(), "nats.conf")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, "DOCKET_NATS_PASSWORD: %q\nDOCKET_READER_PASSWORD: %q\n%s", docketPW, readerPW, raw), 0o600))
	opts, err := natsserver.ProcessConfigFile(conf)
	require.NoError(t, err)
	opts.Host, opts.Port, opts.StoreDir, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, t.TempDir(), true, true
	return natstest.Run(t, opts), docketPW, readerPW
}

// withAppName names a replica's connections in pg_stat_activity.
func withAppName(t *testing.T, dsn, name string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// replicaSetup is how setUpReplicas runs the replicas; the zero value is
// as TestReplicasUnderKills runs them.
type replicaSetup struct {
	// proxied puts each replica's DATABASE_URL through its own pgproxy
	// (crashRun.proxies), so that a test can cut one replica off.
	proxied bool
	// env is more settings for every replica.
	env []string
}

func setUpReplicas(t *testing.T, set replicaSetup) (*crashRun, string) {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	bin, err := Build(ctx, filepath.Join("..", ".."), tmp)
	require.NoError(t, err)
	ns, docketPW, readerPW := replicaNATS(t)
	r := newCrashRun(t, bin, tmp, ns)
	for i, name := range []string{"a", "b", "c"} {
		dir := t.TempDir()
		r.dirs = append(r.dirs, dir)
		addr := freeAddr(t)
		dsn := r.dbURL
		if set.proxied {
			u, err := url.Parse(dsn)
			require.NoError(t, err)
			px := pgproxy.New(t, u.Host)
			r.proxies = append(r.proxies, px)
			u.Host = px.Addr()
			dsn = u.String()
		}
		env := []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
			"DATABASE_URL=" + withAppName(t, dsn, "docket-"+name),
			"DOCKET_ADDR=" + addr,
			"DOCKET_DATA_DIR=" + dir,
			"DOCKET_NATS_URL=" + ns.ClientURL(),
			"DOCKET_NATS_USER=docket",
			"DOCKET_NATS_PASSWORD=" + docketPW,
			"DOCKET_SIGNER_KEY_FILE=" + r.key,
			"DOCKET_CHECKPOINT_INTERVAL=50ms",
			"DOCKET_ELECTION_INTERVAL=" + replicaElection.String(),
			"DOCKET_DB_MAX_OPEN=" + strconv.Itoa(replicaMaxOpen),
			// Info and JSON: the terms are read from the election lines,
			// with the nanoseconds JSON keeps.
			"DOCKET_LOG_LEVEL=info",
			"DOCKET_LOG_FORMAT=json",
			"DOCKET_SHUTDOWN_TIMEOUT=5s",
		}
		env = append(env, set.env...)
		p := NewProc(name, bin, addr, filepath.Join(tmp, name+".log"), env)
		r.procs = append(r.procs, p)
		t.Cleanup(func() { _ = p.Kill() })
		require.NoError(t, p.Start())
		r.waitReady(p) // the first one creates and migrates the database
		if i == 0 {
			r.mintTokens()
		}
	}
	return r, readerPW
}

// poolPeaks samples pg_stat_activity for the most connections each
// replica (by application_name) had open on the database at once.
func poolPeaks(ctx context.Context, db *sqlx.DB, every time.Duration, peaks map[string]int, mu *sync.Mutex) {
	for ctx.Err() == nil {
		var rows []struct {
			App string `db:"application_name"`
			N   int    `db:"n"`
		}
		if err := db.SelectContext(ctx, &rows, `SELECT application_name, count(*) AS n FROM pg_stat_activity
			WHERE datname = current_database() AND application_name LIKE 'docket-%' GROUP BY application_name`); err == nil {
			mu.Lock()
			for _, r := range rows {
				peaks[r.App] = max(peaks[r.App], r.N)
			}
			mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
}

// sizeAt is the log's size as a reader saw it at a moment.
type sizeAt struct {
	at   time.Time
	size int64
}

// watchLog reads the log's size every few milliseconds and records each
// growth when it became visible (committed), which the leaves'
// integrated_at, taken when their batch began, is not.
func watchLog(ctx context.Context, db *sqlx.DB, seen *[]sizeAt, mu *sync.Mutex) {
	for ctx.Err() == nil {
		var n int64
		if err := db.GetContext(ctx, &n, `SELECT coalesce(max(idx) + 1, 0) FROM audit_leaves`); err == nil {
			at := time.Now()
			mu.Lock()
			if len(*seen) == 0 || (*seen)[len(*seen)-1].size != n {
				*seen = append(*seen, sizeAt{at: at, size: n})
			}
			mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// grewAfter is when the log was first seen larger than it was at t; zero
// when it never was.
func grewAfter(seen []sizeAt, t time.Time) time.Time {
	base := int64(-1)
	for _, s := range seen {
		if !s.at.After(t) {
			base = s.size
			continue
		}
		if base >= 0 && s.size > base {
			return s.at
		}
	}
	return time.Time{}
}

// streamTimes reads stream DOCKET's n messages and returns when the server
// stored each, in stream order.
func streamTimes(ctx context.Context, js jetstream.JetStream, n int64) ([]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, "DOCKET", jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("crashtest: stream times: %w", err)
	}
	var ts []time.Time
	for int64(len(ts)) < n {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("crashtest: stream times: %w", err)
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("crashtest: stream times: %w", err)
			}
			ts = append(ts, md.Timestamp)
		}
		if err := batch.Error(); err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("crashtest: stream times: %w", err)
		}
	}
	return ts, nil
}

// firstAfter is the first of the sorted times ts after t, zero when none.
func firstAfter(ts []time.Time, t time.Time) time.Time {
	i := sort.Search(len(ts), func(i int) bool { return ts[i].After(t) })
	if i == len(ts) {
		return time.Time{}
	}
	return ts[i]
}

// handoverFigures are the longest and mean of one measure.
type handoverFigures struct {
	n         int
	max, mean time.Duration
}

func figuresOf(ds []time.Duration) handoverFigures {
	f := handoverFigures{n: len(ds)}
	var sum time.Duration
	for _, d := range ds {
		f.max = max(f.max, d)
		sum += d
	}
	if len(ds) > 0 {
		f.mean = sum / time.Duration(len(ds))
	}
	return f
}

func (f handoverFigures) String() string {
	return fmt.Sprintf("%d, mean %s, longest %s", f.n, f.mean.Round(time.Millisecond), f.max.Round(time.Millisecond))
}

// replicaLoad is what runs against the replicas while a test kills or
// cuts them: the write load, the test's NATS reader and durable
// consumer, the gauge sampler, and the watchers of the log's size and of
// each replica's connections.
type replicaLoad struct {
	js       jetstream.JetStream
	consumer *Consumer
	db       *sqlx.DB
	ledger   *Ledger
	load     *Load
	sampler  *Sampler

	peaks   map[string]int
	peaksMu sync.Mutex
	sizes   []sizeAt
	sizesMu sync.Mutex
	// natsErrs are the reader's asynchronous NATS errors.
	natsErrs   []string
	natsErrsMu sync.Mutex

	stop func() // ends the load and the watchers, and waits for them
}

// startReplicaLoad creates the load's policy, waits for stream DOCKET and
// starts everything a replicaLoad runs.
func startReplicaLoad(t *testing.T, r *crashRun, readerPW string) *replicaLoad {
	t.Helper()
	ctx := context.Background()
	status, _ := r.put("/v1/policies/crash", r.tokens.Admin, `{"title": "Crash harness", "text": "Decisions the crash harness records."}`)
	require.Equal(t, http.StatusCreated, status)

	// The test reads NATS as the documented read-only user, which may not
	// delete the ordered consumers it reads the stream with (the server
	// drops them once idle); any other asynchronous error fails the run.
	rl := &replicaLoad{peaks: map[string]int{}}
	nc, err := nats.Connect(r.nats.ClientURL(), nats.UserInfo("reader", readerPW),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if strings.Contains(err.Error(), "Permissions Violation") && strings.Contains(err.Error(), "$JS.API.CONSUMER.DELETE.DOCKET.") {
				return
			}
			rl.natsErrsMu.Lock()
			rl.natsErrs = append(rl.natsErrs, err.Error())
			rl.natsErrsMu.Unlock()
		}))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	rl.js, err = jetstream.New(nc)
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, err := rl.js.Stream(ctx, "DOCKET"); return err == nil }, 30*time.Second, 20*time.Millisecond,
		"the relay never created stream DOCKET")
	rl.consumer = NewConsumer(rl.js, "replica-consumer")
	rl.consumer.Start()
	t.Cleanup(func() { _ = rl.consumer.Stop() })

	rl.db, err = sqlx.Open("postgres", r.dbURL)
	require.NoError(t, err)
	rl.db.SetMaxOpenConns(6)
	t.Cleanup(func() { rl.db.Close() })

	rl.ledger = &Ledger{}
	rl.load = &Load{Procs: r.procs, Tokens: r.tokens, Ledger: rl.ledger, Policy: "crash", KeyedShare: 0.5, LoseShare: 0.05, RetryFor: time.Minute, HC: r.hc}
	rl.sampler = &Sampler{Procs: r.procs, HC: &http.Client{Timeout: 5 * time.Second}, Interval: 100 * time.Millisecond}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); watchLog(loadCtx, rl.db, &rl.sizes, &rl.sizesMu) }()
	go func() { defer wg.Done(); rl.load.Run(loadCtx) }()
	go func() { defer wg.Done(); rl.sampler.Run(loadCtx) }()
	go func() { defer wg.Done(); poolPeaks(loadCtx, rl.db, 200*time.Millisecond, rl.peaks, &rl.peaksMu) }()
	rl.stop = func() { stopLoad(); wg.Wait() }
	t.Cleanup(rl.stop)
	return rl
}

// delivered waits, once the load has stopped, until the integrator has
// caught up and every entry reached the durable consumer and the stream
// once and in order, with no NATS error; it returns the log's size.
func (rl *replicaLoad) delivered(t *testing.T) int64 {
	t.Helper()
	n := awaitLog(t, rl.db)
	problems := deliveryProblems(t, context.Background(), rl.js, rl.consumer, n, 30*time.Second)
	rl.natsErrsMu.Lock()
	problems = append(problems, rl.natsErrs...)
	rl.natsErrsMu.Unlock()
	require.Empty(t, problems)
	return n
}

// allTerms reads every replica's terms; ends are how each one's runs ended.
func allTerms(t *testing.T, procs []*Proc, ends map[string][]RunEnd) []Term {
	t.Helper()
	var terms []Term
	for _, p := range procs {
		ts, err := ReadTerms(p.Name, p.log, ends[p.Name])
		require.NoError(t, err)
		terms = append(terms, ts...)
	}
	return terms
}

// checkSigned checks that every stored checkpoint, and every one of
// served, is signed by the run's one key.
func checkSigned(t *testing.T, r *crashRun, db *sqlx.DB, served []string) {
	t.Helper()
	pub, err := os.ReadFile(r.key + ".pub")
	require.NoError(t, err)
	v, err := note.NewVerifier(strings.TrimSpace(string(pub)))
	require.NoError(t, err)
	var notes []string
	require.NoError(t, db.Select(&notes, `SELECT note FROM audit_checkpoints ORDER BY size`))
	for _, n := range append(notes, served...) {
		_, err := note.Open([]byte(n), note.VerifierList(v))
		require.NoError(t, err, "a checkpoint not signed by the shared key:\n%s", n)
	}
	require.NotEmpty(t, served, "no replica served a checkpoint")
}

func runReplicas(t *testing.T, cfg crashConfig) {
	r, readerPW := setUpReplicas(t, replicaSetup{})
	rl := startReplicaLoad(t, r, readerPW)
	js, consumer, db, ledger, sampler := rl.js, rl.consumer, rl.db, rl.ledger, rl.sampler
	ctx := context.Background()

	// The killer: one replica at a time, in turn the integrator, the relay
	// (as the gauges last said) and any; start it again on the same data
	// directory and wait until it is ready; now and then restart the
	// consumer too.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	ends := map[string][]RunEnd{}
	kills, consumerRestarts := 0, 0
	var longestRestart time.Duration
	start := time.Now()
	mean := cfg.Duration / time.Duration(cfg.Kills)
	for kills < cfg.Kills || time.Since(start) < cfg.Duration {
		time.Sleep(time.Duration(rng.Int64N(int64(2 * mean))))
		p := r.procs[rng.IntN(len(r.procs))]
		switch kills % 3 {
		case 0:
			if l := sampler.Leader(RoleIntegrator); l != nil {
				p = l
			}
		case 1:
			if l := sampler.Leader(RoleRelay); l != nil {
				p = l
			}
		}
		at := time.Now()
		require.NoError(t, p.Kill())
		ends[p.Name] = append(ends[p.Name], RunEnd{At: at, Killed: true})
		kills++
		if rng.IntN(3) == 0 {
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		}
		require.NoError(t, p.Start())
		r.waitReady(p)
		longestRestart = max(longestRestart, time.Since(at))
		if kills%4 == 0 {
			require.NoError(t, consumer.Restart())
			consumerRestarts++
		}
	}
	// Before the load stops, the last kill's successors must have moved
	// the log and the stream: both roles held after it, then a leaf and
	// a message later than that.
	lastKill := time.Time{}
	for _, es := range ends {
		lastKill = maxTime(lastKill, es[len(es)-1].At)
	}
	require.Eventually(t, func() bool { return sampler.HeldSince(lastKill) }, 30*time.Second, 20*time.Millisecond,
		"no integrator or no relay after the last kill")
	held := time.Now()
	require.Eventually(t, func() bool {
		var last time.Time
		info, err := js.Stream(ctx, "DOCKET")
		return err == nil && info.CachedInfo().State.LastTime.After(held) &&
			db.Get(&last, `SELECT coalesce(max(integrated_at), 'epoch') FROM audit_leaves`) == nil && last.After(held)
	}, 30*time.Second, 20*time.Millisecond, "the log or the stream did not move after the last kill")
	end := time.Now()
	rl.stop()
	ops := ledger.Ops()
	longestGap := LongestGap(ops, start, end)

	// The integrator caught up, and every entry at the durable consumer,
	// and in the stream, once and in order.
	n := rl.delivered(t)
	published, err := streamTimes(ctx, js, n)
	require.NoError(t, err)

	stopping := time.Now()
	for _, p := range r.procs {
		at := time.Now()
		require.NoError(t, p.Stop(20*time.Second))
		ends[p.Name] = append(ends[p.Name], RunEnd{At: at})
	}
	rep := r.checkAll(ctx, db, ops)

	// One integrator and one relay at a time: the terms in the logs never
	// overlap, and no two gauges said 1 in two rounds running.
	terms := allTerms(t, r.procs, ends)
	require.Empty(t, CheckTerms(terms))
	vacant := Vacancies(terms, stopping)
	for _, role := range []string{RoleIntegrator, RoleRelay} {
		require.LessOrEqual(t, vacant[role], handoverBound(), "no %s for that long", role)
	}
	srep := sampler.Report()
	require.Empty(t, srep.Problems)
	require.Positive(t, srep.MaxHolders[RoleIntegrator], "no gauge ever showed an integrator")
	require.Positive(t, srep.MaxHolders[RoleRelay], "no gauge ever showed a relay")
	holders := map[string]map[string]bool{RoleIntegrator: {}, RoleRelay: {}}
	for _, tm := range terms {
		holders[tm.Role][tm.Proc] = true
	}

	// Handover: after each kill of a holder, another term within the
	// bound, and the log (leaves) and the stream (messages) moving again.
	sort.Slice(published, func(i, j int) bool { return published[i].Before(published[j]) })
	elected := map[string][]time.Duration{}
	resumed := map[string][]time.Duration{}
	for _, h := range Handovers(terms) {
		require.NotEmpty(t, h.Next.Proc, "no %s after %s was killed", h.Role, h.Killed)
		require.LessOrEqual(t, h.Elected, handoverBound(), "%s handover after %s to %s", h.Role, h.Killed, h.Next)
		elected[h.Role] = append(elected[h.Role], h.Elected)
		next := grewAfter(rl.sizes, h.Next.From)
		if h.Role == RoleRelay {
			next = firstAfter(published, h.Next.From)
		}
		require.False(t, next.IsZero(), "the %s never moved after %s took over", h.Role, h.Next)
		resumed[h.Role] = append(resumed[h.Role], next.Sub(h.Killed.To))
		require.LessOrEqual(t, next.Sub(h.Killed.To), handoverBound()+time.Second, "%s moving again after %s was killed", h.Role, h.Killed)
	}
	require.NotEmpty(t, elected[RoleIntegrator], "no integrator was killed")
	require.NotEmpty(t, elected[RoleRelay], "no relay was killed")
	require.GreaterOrEqual(t, len(holders[RoleIntegrator]), 2, "one replica signed everything")

	// Signed with the one key: every checkpoint stored, and every one a
	// replica served while the run went on.
	checkSigned(t, r, db, srep.Checkpoints)

	// Each replica within its pool.
	rl.peaksMu.Lock()
	for app, peak := range rl.peaks {
		require.LessOrEqual(t, peak, replicaMaxOpen, "%s held more connections than DOCKET_DB_MAX_OPEN", app)
	}
	rl.peaksMu.Unlock()

	// For the record: how often checkpoints came, and what the replicas
	// warned about.
	var cp struct {
		N    int     `db:"n"`
		Span float64 `db:"span"`
		Gap  float64 `db:"gap"`
	}
	require.NoError(t, db.Get(&cp, `SELECT count(*) AS n, coalesce(extract(epoch FROM max(created_at) - min(created_at)), 0) AS span,
		coalesce(max(g), 0) AS gap FROM (SELECT created_at, extract(epoch FROM created_at - lag(created_at) OVER (ORDER BY size)) AS g FROM audit_checkpoints) c`))
	t.Logf("replica harness: %d checkpoints over %.1fs, at most %.3fs apart", cp.N, cp.Span, cp.Gap)
	for _, p := range r.procs {
		warn := warnings(t, p.log)
		t.Logf("replica %s: %d warnings and errors %q", p.Name, len(warn), warn[:min(len(warn), 5)])
	}

	acked := 0
	for _, v := range rep.Acked {
		acked += v
	}
	t.Logf("replica harness: 3 replicas, %d kills in %s (%d consumer restarts); %d writes acknowledged and found (%v), %d unanswered without a key, %d keyed writes retried (%d after a dropped reply); "+
		"0 duplicates; %d entries, %d checkpoints checked, %d served checkpoints verified, delivered once in order; longest restart %s, longest time without an acknowledged write %s",
		kills, end.Sub(start).Round(time.Second), consumerRestarts, acked, rep.Acked, rep.Unknown, rep.Retried, rep.Lost,
		rep.Entries, rep.Checks, len(srep.Checkpoints), longestRestart.Round(time.Millisecond), longestGap.Round(time.Millisecond))
	t.Logf("replica harness: terms: %d integrator (on %d replicas), %d relay (on %d); %d gauge rounds (%d failed scrapes), at most %d integrator and %d relay in one round, longest without an integrator %s, without a relay %s; "+
		"integrator kills %s to the next election, %s to the log moving again; relay kills %s to the next election, %s to the stream moving again (bound %s); connections per replica at most %v of %d",
		countRole(terms, RoleIntegrator), len(holders[RoleIntegrator]), countRole(terms, RoleRelay), len(holders[RoleRelay]),
		srep.Rounds, srep.ScrapeErrors, srep.MaxHolders[RoleIntegrator], srep.MaxHolders[RoleRelay], vacant[RoleIntegrator].Round(time.Millisecond), vacant[RoleRelay].Round(time.Millisecond),
		figuresOf(elected[RoleIntegrator]), figuresOf(resumed[RoleIntegrator]),
		figuresOf(elected[RoleRelay]), figuresOf(resumed[RoleRelay]), handoverBound(), rl.peaks, replicaMaxOpen)
	require.Positive(t, rep.Acked[KindBulk], "no bulk reversal was acknowledged")
	require.Positive(t, rep.Acked[KindResolve], "no resolution was acknowledged")
}

func countRole(terms []Term, role string) int {
	n := 0
	for _, t := range terms {
		if t.Role == role {
			n++
		}
	}
	return n
}

// warnings returns the messages of a serve log's WARN and ERROR lines.
func warnings(t *testing.T, logFile string) []string {
	t.Helper()
	raw, err := os.ReadFile(logFile)
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
			out = append(out, l)
		}
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
