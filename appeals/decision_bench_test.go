package appeals_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/pgtest"
)

// runConcurrent runs op n times across writers goroutines and returns ops/s.
func runConcurrent(b *testing.B, writers, n int, op func(i int) error) float64 {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := op(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds()
}

func benchDecision() appeals.DecisionInput {
	yes := true
	return appeals.DecisionInput{AdvertiserID: "acme", AdID: "ad-1", Action: "ad_removal", PolicyCode: "crypto",
		Ground: "terms", Explanation: "The ad promotes a token sale, which the policy forbids.",
		Facts: "Ad ad-1 showed a token sale on 2026-11-20.", Source: "voluntary",
		AutomatedDetection: &yes, AutomatedDecision: "partial", TerritorialScope: []string{"DE", "FR"}}
}

// BenchmarkRecordDecision records decisions through the domain API (row,
// audit entry, one transaction) while the audit integrator runs, beside
// plain single-row prepared INSERTs of the same row into a copy of the
// table, committed one per statement, at the same concurrency, and reports the
// ratio and the integration lag from commit to the first signed checkpoint
// that covers the write (p50, p99).
func BenchmarkRecordDecision(b *testing.B) {
	for _, writers := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db := pgtest.New(b)
			ctx := context.Background()
			store := appeals.NewStore(db, appeals.Options{})
			admin := docket.Actor{Role: docket.RoleAdmin, Name: "bench"}
			_, err := store.PutPolicy(ctx, admin, "crypto", appeals.PolicyInput{Title: "Crypto", Text: "No crypto ads."})
			require.NoError(b, err)
			_, err = db.Exec(`CREATE TABLE plain_decisions (LIKE decisions INCLUDING ALL)`)
			require.NoError(b, err)
			d, err := store.RecordDecision(ctx, admin, benchDecision())
			require.NoError(b, err)
			n := max(b.N, writers*20)
			lag := startIntegrator(b, db)
			b.ResetTimer()
			service := runConcurrent(b, writers, n, func(int) error {
				_, err := store.RecordDecision(ctx, admin, benchDecision())
				lag.committed()
				return err
			})
			p50, p99 := lag.wait(b)
			insert, err := db.PrepareNamedContext(ctx, plainInsert)
			require.NoError(b, err)
			raw := runConcurrent(b, writers, n, func(i int) error {
				row := d
				row.ID = fmt.Sprintf("%s-%d", d.ID, i)
				_, err := insert.ExecContext(ctx, row)
				return err
			})
			b.StopTimer()
			b.ReportMetric(service, "decisions/s")
			b.ReportMetric(raw, "inserts/s")
			b.ReportMetric(service/raw, "ratio")
			b.ReportMetric(float64(p50.Milliseconds()), "lag-p50-ms")
			b.ReportMetric(float64(p99.Milliseconds()), "lag-p99-ms")
		})
	}
}

// plainInsert is the same row into a copy of the table, prepared, as the
// store prepares its own insert.
const plainInsert = `INSERT INTO plain_decisions (id, advertiser_id, ad_id, action, policy_code,
	policy_version, policy_text_sha256, ground, legal_reference, explanation, facts, source, automated_detection,
	automated_decision, territorial_scope, content_type, ends_at, status, decided_by, decided_at, appeal_deadline)
	VALUES (:id, :advertiser_id, :ad_id, :action, :policy_code, :policy_version, :policy_text_sha256, :ground,
	:legal_reference, :explanation, :facts, :source, :automated_detection, :automated_decision, :territorial_scope,
	:content_type, :ends_at, :status, :decided_by, :decided_at, :appeal_deadline)`

// lagMeter measures commit-to-checkpoint lag by counting: the k-th write
// to commit counts as integrated at the first checkpoint whose size is at
// least the entries staged before the run plus k. Commits and indices do
// not match one to one under concurrency, so this is the lag of the k-th
// entry, which is what a client waiting for "my write is in the log" sees
// on average; it is measured the same way by `docket bench`.
type lagMeter struct {
	mu      sync.Mutex
	base    int64
	commits []time.Time
	polls   []poll
	stop    context.CancelFunc
	done    chan struct{}
}

type poll struct {
	at   time.Time
	size int64
}

func (m *lagMeter) committed() {
	now := time.Now()
	m.mu.Lock()
	m.commits = append(m.commits, now)
	m.mu.Unlock()
}

// startIntegrator runs the audit integrator with the default checkpoint
// interval and polls the latest checkpoint's size every 5 ms.
func startIntegrator(b *testing.B, db *sqlx.DB) *lagMeter {
	b.Helper()
	skey, vkey, err := audit.GenerateKey("bench.docket/audit")
	require.NoError(b, err)
	signer, _, err := audit.ParseSignerKey(skey)
	require.NoError(b, err)
	l, err := audit.NewLog(db, signer, vkey, "bench.docket/audit", audit.Options{})
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	m := &lagMeter{stop: cancel, done: make(chan struct{})}
	require.NoError(b, db.Get(&m.base, `SELECT count(*) FROM audit_staging`))
	go func() { _ = l.Run(ctx) }()
	go func() {
		defer close(m.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cp, err := l.LatestCheckpoint(ctx)
			if err == nil {
				m.mu.Lock()
				m.polls = append(m.polls, poll{at: time.Now(), size: int64(cp.Size)})
				m.mu.Unlock()
			}
		}
	}()
	return m
}

// wait lets the checkpoints catch up with every commit and returns the
// lag's p50 and p99.
func (m *lagMeter) wait(b *testing.B) (p50, p99 time.Duration) {
	b.Helper()
	m.mu.Lock()
	want := m.base + int64(len(m.commits))
	m.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		m.mu.Lock()
		caught := len(m.polls) > 0 && m.polls[len(m.polls)-1].size >= want
		m.mu.Unlock()
		if caught {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.stop()
	<-m.done
	var lags []time.Duration
	j := 0
	for k, c := range m.commits {
		for j < len(m.polls) && (m.polls[j].size < m.base+int64(k)+1 || m.polls[j].at.Before(c)) {
			j++
		}
		if j == len(m.polls) {
			b.Fatalf("write %d never reached a checkpoint", k)
		}
		lags = append(lags, m.polls[j].at.Sub(c))
	}
	sort.Slice(lags, func(a, c int) bool { return lags[a] < lags[c] })
	return lags[len(lags)/2], lags[len(lags)*99/100]
}
