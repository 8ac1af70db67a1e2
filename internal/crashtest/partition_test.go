package crashtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/pgproxy"
)

// The settings of the cut-off test that its bounds derive from.
const (
	// cutKeepalive stands for Postgres's TCP keepalive giving up on a
	// silent client (tcp_keepalives_idle + interval × count): the proxy
	// closes the server side of a cut replica's connections this long
	// after the cut (pgproxy.Vanish).
	cutKeepalive = 3 * time.Second
	// cutDBTimeout is every replica's DOCKET_DB_TIMEOUT: a request's
	// database work ends there with a 503; background work (integrator,
	// relay) gets pgdialStall without progress.
	cutDBTimeout = 2 * time.Second
	// pgdialStall is cmd/docket's stallFactor (6) times DOCKET_DB_TIMEOUT:
	// the longest a served connection's read or write waits for progress.
	pgdialStall = 6 * cutDBTimeout
	// slack is the "few seconds" every bound allows a loaded 2-core
	// machine under the race detector.
	slack = 3 * time.Second
)

// cutHandoverBound: the cut holder's session ends when the keepalive gives
// up, and a standby holds the lock within one election interval plus one
// attempt after that (docs/operations.md, "Handover"); twice the interval
// and slack for the attempt.
func cutHandoverBound(keepalive time.Duration) time.Duration {
	return keepalive + 2*replicaElection + slack
}

// pgdialGrace is internal/pgdial's default Grace, which cmd/docket
// keeps: how long after lib/pq's cancel request (sent at a request's
// deadline) a connection blocked on a silent network is given up.
const pgdialGrace = time.Second

// cut503Bound: a request at the cut replica answers 503 with Retry-After,
// never hanging or answering 500: at its DOCKET_DB_TIMEOUT when it waits
// for a new connection (connect_timeout), and pgdialGrace later when it
// was blocked on a pooled connection that went silent (docs/api.md,
// "When Postgres is down"); and a second for the machine.
const cut503Bound = cutDBTimeout + pgdialGrace + time.Second

// cutBeliefBound: the cut holder cannot learn that it lost the lock
// until its own database work fails, which pgdial bounds at pgdialStall
// without progress; the integrator's idle poll and the relay's read come
// at once, so it steps down within that and slack of the cut.
const cutBeliefBound = pgdialStall + slack

// TestReplicaCutOff cuts the integrator's holder, and then the relay's,
// off from Postgres while its process lives on (a partition, or a host
// that vanished), heals it, and checks the handover, the 503s at the cut
// replica, its recovery without a restart, and everything the replica
// harness checks at the end.
func TestReplicaCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("the cut-off test runs the real binary three times over for about 40 s")
	}
	runCutOff(t, cutKeepalive, 2)
}

// TestSoakReplicaCutOff is the long form, for `make soak` (DOCKET_SOAK=1):
// CUT_ROUNDS cuts (default 20), of the integrator's and the relay's
// holder in turn.
func TestSoakReplicaCutOff(t *testing.T) {
	if os.Getenv("DOCKET_SOAK") == "" {
		t.Skip("set DOCKET_SOAK=1 (make soak)")
	}
	rounds := 20
	if v := os.Getenv("CUT_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "CUT_ROUNDS")
		rounds = n
	}
	runCutOff(t, cutKeepalive, rounds)
}

// cutRound is one cut: which replica, when, and which roles it held.
type cutRound struct {
	victim *Proc
	at     time.Time // the cut: from then on none of its bytes reach Postgres
	healed time.Time
	// healedLate: healed only once it had stepped down, cut off.
	healedLate bool
	roles      []string // the roles it held at the cut
	probes     []probe
	// readyAgain and wroteAgain are from the heal to its first /readyz
	// 200 and its first acknowledged write.
	readyAgain, wroteAgain time.Duration
}

// probe is one request at the cut replica.
type probe struct {
	took       time.Duration
	status     int
	retryAfter string
	err        error
}

// probeCut asks victim for a policy (a read the database answers) until
// ctx ends, one request at a time, and records each answer.
func probeCut(ctx context.Context, victim *Proc, token string) []probe {
	hc := &http.Client{Timeout: 30 * time.Second}
	var ps []probe
	for ctx.Err() == nil {
		req, err := http.NewRequest(http.MethodGet, victim.URL+"/v1/policies/crash", nil)
		if err != nil {
			return append(ps, probe{err: err})
		}
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := hc.Do(req)
		pr := probe{took: time.Since(t0), err: err}
		if err == nil {
			pr.status, pr.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
			resp.Body.Close()
		}
		ps = append(ps, pr)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return ps
}

// termsSoFar reads every replica's terms while they run: a term still
// open now ends now.
func termsSoFar(t *testing.T, procs []*Proc) []Term {
	t.Helper()
	ends := map[string][]RunEnd{}
	now := time.Now()
	for _, p := range procs {
		ends[p.Name] = []RunEnd{{At: now}}
	}
	return allTerms(t, procs, ends)
}

// termAt is proc's term of role that was open at at; ok false when none.
func termAt(terms []Term, role, proc string, at time.Time) (Term, bool) {
	for _, tm := range terms {
		if tm.Role == role && tm.Proc == proc && !tm.From.After(at) && tm.To.After(at) {
			return tm, true
		}
	}
	return Term{}, false
}

// successor is the first term of role that began after at on another
// replica than proc.
func successor(terms []Term, role, proc string, at time.Time) (Term, bool) {
	var next Term
	for _, tm := range terms {
		if tm.Role == role && tm.Proc != proc && tm.From.After(at) && (next.Proc == "" || tm.From.Before(next.From)) {
			next = tm
		}
	}
	return next, next.Proc != ""
}

// probers is how many requests at a time probe the cut replica: more
// than one, so that a request waiting for a connection is probed too.
const probers = 4

func runCutOff(t *testing.T, keepalive time.Duration, cuts int) {
	r, readerPW := setUpReplicas(t, replicaSetup{proxied: true, env: []string{"DOCKET_DB_TIMEOUT=" + cutDBTimeout.String()}})
	rl := startReplicaLoad(t, r, readerPW)
	ctx := context.Background()
	start := time.Now()
	require.Eventually(t, func() bool { return rl.sampler.HeldSince(start) }, 30*time.Second, 20*time.Millisecond, "no integrator or no relay")

	var rounds []*cutRound
	since := start
	for i := range cuts {
		// In turn: the integrator's holder healed while it still
		// believes it leads, then the relay's healed after it stepped
		// down, cut off.
		rounds = append(rounds, cutOnce(t, r, rl, []string{RoleIntegrator, RoleRelay}[i%2], since, keepalive, i%2 == 1))
		since = time.Now()
	}
	time.Sleep(time.Second)
	end := time.Now()
	rl.stop()
	ops := rl.ledger.Ops()

	n := rl.delivered(t)
	published, err := streamTimes(ctx, rl.js, n)
	require.NoError(t, err)
	ends := map[string][]RunEnd{}
	for _, p := range r.procs {
		at := time.Now()
		require.NoError(t, p.Stop(20*time.Second))
		ends[p.Name] = []RunEnd{{At: at}}
	}
	rep := r.checkAll(ctx, rl.db, ops)
	for _, o := range ops {
		require.False(t, o.Status >= 500 && o.Status != http.StatusServiceUnavailable, "a %s answered %d", o.Kind, o.Status)
	}
	terms := allTerms(t, r.procs, ends)
	checkSigned(t, r, rl.db, rl.sampler.Report().Checkpoints)
	fig := checkCutRounds(t, rl, rounds, terms, published, keepalive)

	acked := 0
	for _, v := range rep.Acked {
		acked += v
	}
	srep := rl.sampler.Report()
	t.Logf("cut-off test: 3 replicas, %d cuts in %s (keepalive %s, DOCKET_DB_TIMEOUT %s, DOCKET_ELECTION_INTERVAL %s); %d writes acknowledged and found (%v), %d without a definite answer and no key, %d keyed writes retried; "+
		"%d entries, %d checkpoints checked, delivered once in order; longest time without an acknowledged write %s; gauge rounds %d (%d failed scrapes), %d times a role's gauge at 1 on two replicas in two rounds running (the cut holder's belief)",
		len(rounds), end.Sub(start).Round(time.Second), keepalive, cutDBTimeout, replicaElection, acked, rep.Acked, rep.Unknown, rep.Retried,
		rep.Entries, rep.Checks, LongestGap(ops, start, end).Round(time.Millisecond), srep.Rounds, srep.ScrapeErrors, len(srep.Problems))
	for _, l := range fig {
		t.Log("cut-off test: " + l)
	}
	for _, p := range r.procs {
		warn := warnings(t, p.log)
		t.Logf("replica %s: %d warnings and errors %q", p.Name, len(warn), warn[:min(len(warn), 3)])
	}
}

// cutOnce cuts role's holder off under load, as the logs say it is after
// since, probes it, waits for its successors and the work to move on,
// heals it (once it stepped down when healLate) and waits until it is
// ready, takes a write and is a standby again.
func cutOnce(t *testing.T, r *crashRun, rl *replicaLoad, role string, since time.Time, keepalive time.Duration, healLate bool) *cutRound {
	t.Helper()
	ctx := context.Background()
	time.Sleep(time.Second)
	require.Eventually(t, func() bool { return rl.sampler.HeldSince(since) }, 30*time.Second, 20*time.Millisecond, "no integrator or no relay after the heal")
	var victim *Proc
	now := time.Now()
	terms := termsSoFar(t, r.procs)
	for _, p := range r.procs {
		if _, ok := termAt(terms, role, p.Name, now); ok {
			victim = p
		}
	}
	require.NotNil(t, victim, "nobody holds the %s", role)
	cr := &cutRound{victim: victim, at: time.Now(), healedLate: healLate}
	proxy := r.proxies[indexOf(r.procs, victim)]
	require.NoError(t, proxy.Vanish(keepalive))
	for _, rr := range []string{RoleIntegrator, RoleRelay} {
		if _, ok := termAt(terms, rr, victim.Name, now); ok {
			cr.roles = append(cr.roles, rr)
		}
	}
	probeCtx, stopProbe := context.WithCancel(ctx)
	var probing sync.WaitGroup
	t.Cleanup(func() { stopProbe(); probing.Wait() })
	var probesMu sync.Mutex
	for range probers {
		probing.Add(1)
		go func() {
			defer probing.Done()
			ps := probeCut(probeCtx, victim, r.tokens.Enforcer)
			probesMu.Lock()
			cr.probes = append(cr.probes, ps...)
			probesMu.Unlock()
		}()
	}

	// A successor for every role the victim held, and the log and the
	// stream moving again after it.
	require.Eventually(t, func() bool {
		terms := termsSoFar(t, r.procs)
		for _, rr := range cr.roles {
			if _, ok := successor(terms, rr, victim.Name, cr.at); !ok {
				return false
			}
		}
		return true
	}, cutHandoverBound(keepalive)+10*time.Second, 50*time.Millisecond,
		"no successor took %v from %s, cut off at %s, within %s and 10 s more (keepalive %s)", cr.roles, victim.Name, cr.at.Format("15:04:05.000"), cutHandoverBound(keepalive), keepalive)
	terms = termsSoFar(t, r.procs)
	for _, rr := range cr.roles {
		next, _ := successor(terms, rr, victim.Name, cr.at)
		waitMoved(t, rl, rr, next.From)
	}
	require.False(t, victim.Ready(ctx, r.hc), "the cut replica %s is still ready", victim.Name)
	// A standby again: every term it held at the cut ended, by itself.
	steppedDown := func() {
		require.Eventually(t, func() bool {
			terms := termsSoFar(t, r.procs)
			for _, rr := range cr.roles {
				if tm, _ := termAt(terms, rr, victim.Name, cr.at); tm.Ended != "stepped down" {
					return false
				}
			}
			return true
		}, cutBeliefBound+10*time.Second, 50*time.Millisecond, "%s never stepped down from %v after it was cut off", victim.Name, cr.roles)
	}
	if healLate {
		steppedDown()
	}
	// Heal once the cut replica has been probed for long enough to meet
	// a request's whole bound; it recovers by itself.
	time.Sleep(max(0, cut503Bound+time.Second-time.Since(cr.at)))
	stopProbe()
	probing.Wait()
	cr.healed = time.Now()
	require.NoError(t, proxy.Set(pgproxy.Forward))
	r.waitReady(victim)
	cr.readyAgain = time.Since(cr.healed)
	cr.wroteAgain = writeAt(t, rl, victim)
	steppedDown()
	return cr
}

// waitMoved waits until the role's work shows after from: a leaf and a
// checkpoint for the integrator, a message in the stream for the relay.
func waitMoved(t *testing.T, rl *replicaLoad, role string, from time.Time) {
	t.Helper()
	require.Eventually(t, func() bool {
		if role == RoleRelay {
			info, err := rl.js.Stream(context.Background(), "DOCKET")
			return err == nil && info.CachedInfo().State.LastTime.After(from)
		}
		var leaf, cp time.Time
		return rl.db.QueryRow(`SELECT coalesce((SELECT max(integrated_at) FROM audit_leaves), 'epoch'),
			coalesce((SELECT max(created_at) FROM audit_checkpoints), 'epoch')`).Scan(&leaf, &cp) == nil && leaf.After(from) && cp.After(from)
	}, 30*time.Second, 20*time.Millisecond, "the %s did not move after its successor took over at %s", role, from.Format("15:04:05.000"))
}

// writeAt records one keyed decision at p alone, retried until
// definite, and returns how long it took; it must be acknowledged.
func writeAt(t *testing.T, rl *replicaLoad, p *Proc) time.Duration {
	t.Helper()
	l := *rl.load
	l.Procs = []*Proc{p}
	t0 := time.Now()
	rng := rand.New(rand.NewPCG(uint64(t0.UnixNano()), 5))
	id := l.decision(context.Background(), rng, "crash", "healed-"+newKey(), l.Tokens.AdvertiserIDs[0], newKey())
	require.NotEmpty(t, id, "%s took no write after the heal", p.Name)
	return time.Since(t0)
}

// checkCutRounds checks each cut against its bounds and returns the
// figures, one line each.
func checkCutRounds(t *testing.T, rl *replicaLoad, rounds []*cutRound, terms []Term, published []time.Time, keepalive time.Duration) []string {
	t.Helper()
	var lines []string
	for _, cr := range rounds {
		// Every answer at the cut replica a 503 with Retry-After within
		// the bound: none hung, none a 500.
		var longest time.Duration
		n503 := 0
		for _, pr := range cr.probes {
			require.NoError(t, pr.err, "a request at the cut replica %s got no answer", cr.victim.Name)
			require.Equal(t, http.StatusServiceUnavailable, pr.status, "a request at the cut replica %s answered %d", cr.victim.Name, pr.status)
			require.NotEmpty(t, pr.retryAfter, "a 503 at the cut replica without Retry-After")
			require.LessOrEqual(t, pr.took, cut503Bound, "a request at the cut replica %s took %s to answer 503", cr.victim.Name, pr.took)
			longest = max(longest, pr.took)
			n503++
		}
		require.Positive(t, n503, "no request reached the cut replica %s", cr.victim.Name)
		when := "while it still believed it led"
		if cr.healedLate {
			when = "once it had stepped down"
		}
		line := fmt.Sprintf("%s cut off at %s holding %v: %d requests at it answered 503 with Retry-After, the longest in %s (bound %s); healed after %s (%s), ready again %s later, a write acknowledged %s after that;",
			cr.victim.Name, cr.at.Format("15:04:05.000"), cr.roles, n503, longest.Round(time.Millisecond), cut503Bound,
			cr.healed.Sub(cr.at).Round(time.Millisecond), when, cr.readyAgain.Round(time.Millisecond), cr.wroteAgain.Round(time.Millisecond))
		for _, role := range cr.roles {
			old, ok := termAt(terms, role, cr.victim.Name, cr.at)
			require.True(t, ok)
			next, ok := successor(terms, role, cr.victim.Name, cr.at)
			require.True(t, ok)
			took := next.From.Sub(cr.at)
			// The lock stayed with the cut session until the keepalive
			// ended it, and a successor came within the bound after that.
			require.GreaterOrEqual(t, took, keepalive, "%s took the %s from %s %s after the cut, before its session ended", next.Proc, role, cr.victim.Name, took)
			require.LessOrEqual(t, took, cutHandoverBound(keepalive), "%s handover from the cut %s to %s: %s after the cut, bound %s (keepalive %s + 2 × %s + %s)",
				role, old, next, took, cutHandoverBound(keepalive), keepalive, replicaElection, slack)
			// It believed it led until its own database work failed:
			// past the successor's election, within the stall bound.
			belief := old.To.Sub(cr.at)
			require.Equal(t, "stepped down", old.Ended)
			require.LessOrEqual(t, belief, cutBeliefBound, "the cut %s %s believed it led %s after the cut", role, old, belief)
			overlap := old.To.Sub(next.From)
			line += fmt.Sprintf(" %s to %s %s after the cut (%s after the keepalive ended the session; bound %s), the cut one believed it led for %s after the cut (%s past its successor's election; bound %s),",
				role, next.Proc, took.Round(time.Millisecond), (took - keepalive).Round(time.Millisecond), cutHandoverBound(keepalive),
				belief.Round(time.Millisecond), overlap.Round(time.Millisecond), cutBeliefBound)
			// What matters is what was committed or published: nothing
			// of the cut integrator's after the cut, so nothing between
			// the cut and its successor's election; what the cut relay
			// published after the cut is counted (the stream's chain and
			// the final delivery check keep it in order, once).
			if role == RoleIntegrator {
				var work struct {
					Leaves int `db:"leaves"`
					Cps    int `db:"cps"`
				}
				require.NoError(t, rl.db.Get(&work, `SELECT (SELECT count(*) FROM audit_leaves WHERE integrated_at >= $1 AND integrated_at < $2) AS leaves,
					(SELECT count(*) FROM audit_checkpoints WHERE created_at >= $1 AND created_at < $2) AS cps`, cr.at, next.From))
				require.Zero(t, work.Leaves, "leaves integrated between the cut of %s and its successor's election", old)
				require.Zero(t, work.Cps, "checkpoints signed between the cut of %s and its successor's election", old)
				line += " no leaf or checkpoint between the cut and the successor;"
				continue
			}
			stale := 0
			for _, p := range published {
				if !p.Before(cr.at) && p.Before(next.From) {
					stale++
				}
			}
			line += fmt.Sprintf(" %d messages published between the cut and the successor;", stale)
		}
		lines = append(lines, strings.TrimSuffix(line, ";"))
	}
	// Apart from the cut holders' belief, the terms never overlap; with
	// each cut term ended when its session did (the keepalive), none do.
	var rest []Term
	for _, tm := range terms {
		for _, cr := range rounds {
			if tm.Proc == cr.victim.Name && slices.Contains(cr.roles, tm.Role) && !tm.From.After(cr.at) && tm.To.After(cr.at) {
				tm.To = cr.at.Add(keepalive)
			}
		}
		rest = append(rest, tm)
	}
	require.Empty(t, CheckTerms(rest), "terms overlap even with the cut ones ended at the keepalive")
	// Checkpoints in size order were signed in time order: one signer at a time.
	var at []time.Time
	require.NoError(t, rl.db.Select(&at, `SELECT created_at FROM audit_checkpoints ORDER BY size`))
	require.True(t, sort.SliceIsSorted(at, func(i, j int) bool { return at[i].Before(at[j]) }), "checkpoints not signed in size order")
	return lines
}
