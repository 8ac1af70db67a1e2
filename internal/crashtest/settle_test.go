package crashtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/pgtest"
)

// awaitLog waits until the integrator has caught up with a run (every
// staged entry a leaf, under a checkpoint) and returns the log's size.
func awaitLog(t *testing.T, db *sqlx.DB) int64 {
	t.Helper()
	var n int64
	require.Eventually(t, func() bool {
		var s struct {
			Staged int64 `db:"staged"`
			Leaves int64 `db:"leaves"`
			Signed int64 `db:"signed"`
		}
		err := db.Get(&s, `SELECT (SELECT count(*) FROM audit_staging) AS staged, (SELECT count(*) FROM audit_leaves) AS leaves,
			(SELECT coalesce(max(size), 0) FROM audit_checkpoints) AS signed`)
		n = s.Leaves
		return err == nil && s.Staged == s.Leaves && s.Signed == s.Leaves
	}, 60*time.Second, 50*time.Millisecond, "the log never caught up")
	return n
}

// deliveryProblems checks that the durable consumer and stream DOCKET
// each hold the log's n entries once and in order. It waits a bounded
// time for the consumer, then stops it, so that the problems name what
// is missing or doubled rather than a timeout.
func deliveryProblems(t *testing.T, ctx context.Context, js jetstream.JetStream, consumer *Consumer, n int64, streamWait time.Duration) []string {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(60 * time.Second); int64(len(consumer.Got())) < n && time.Now().Before(deadline); {
		<-tick.C
	}
	require.NoError(t, consumer.Stop())
	problems := CheckDelivery("durable consumer", consumer.Got(), n)
	streamed, err := ReadStream(ctx, js, n, streamWait)
	require.NoError(t, err)
	problems = append(problems, CheckDelivery("stream DOCKET", streamed, n)...)
	s, err := js.Stream(ctx, "DOCKET")
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	if msgs := info.State.Msgs; msgs != uint64(n) {
		problems = append(problems, fmt.Sprintf("nats: stream DOCKET holds %d messages for %d entries", msgs, n))
	}
	return problems
}

// mintTokens makes the load's tokens (an admin, an enforcer, four
// advertisers and two reviewers) once the first process is ready.
func (r *crashRun) mintTokens() {
	r.tokens = Tokens{Admin: r.token("--role", "admin", "--name", "crash-admin"),
		Enforcer: r.token("--role", "enforcer", "--name", "crash-pipeline")}
	for a := 0; a < 4; a++ {
		id := fmt.Sprintf("adv-%d", a)
		r.tokens.AdvertiserIDs = append(r.tokens.AdvertiserIDs, id)
		r.tokens.Advertisers = append(r.tokens.Advertisers, r.token("--role", "advertiser", "--name", id+"-owner", "--advertiser", id))
	}
	for v := 0; v < 2; v++ {
		r.tokens.Reviewers = append(r.tokens.Reviewers, r.token("--role", "reviewer", "--name", fmt.Sprintf("reviewer-%d", v)))
	}
}

// checkAll runs Check over the run's ledger and `docket verify` with each
// process's pin, and returns Check's report.
func (r *crashRun) checkAll(ctx context.Context, db *sqlx.DB, ops []Op) *Report {
	t := r.t
	t.Helper()
	rep, err := Check(ctx, db, ops)
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
	for _, dir := range r.dirs {
		cmd := exec.Command(r.bin, "verify", "--key", r.key+".pub", "--max-unsigned-age", "0", "--data-dir", dir, "--quiet")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + r.dbURL}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "docket verify: %s", out)
	}
	return rep
}

// newCrashRun is a run of bin on a new database, with ns as its NATS (nil
// when the test runs its own cluster) and a new signer key in tmp that
// every process shares.
func newCrashRun(t *testing.T, bin, tmp string, ns *natsserver.Server) *crashRun {
	t.Helper()
	r := &crashRun{t: t, bin: bin, dbURL: pgtest.NewURL(t), nats: ns,
		hc: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	r.key = filepath.Join(tmp, "docket.key")
	r.cli("keys", "generate", "--name", "docket.local/audit", "--out", r.key)
	return r
}
