package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/stretchr/testify/require"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/pgtest"
	"github.com/docket-dev/docket/notify"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkRelaySustained writes single-entry transactions (one per
// decision) at a fixed rate for a fixed time while the integrator and the
// relay run and a consumer reads, and reports:
//   - entries/s: what the relay acknowledged per second of the run;
//   - commit-to-ack p50/p99 (ms): from the writer's COMMIT returning to
//     the relay's ack (the relay's histogram, interpolated) and, exactly,
//     commit-to-delivery at the consumer, which includes the ack;
//   - lag: the largest relay lag seen in the second half of the run and
//     at its end; bounded lag means the relay keeps up.
//
// Rate and duration: DOCKET_BENCH_RATE (default 5000/s),
// DOCKET_BENCH_SECONDS (default 10). Run with -benchtime=1x.
func BenchmarkRelaySustained(b *testing.B) {
	rate := envInt("DOCKET_BENCH_RATE", 5000)
	secs := envInt("DOCKET_BENCH_SECONDS", 10)
	for b.Loop() {
		benchOnce(b, rate, time.Duration(secs)*time.Second)
	}
}

func benchOnce(b *testing.B, rate int, dur time.Duration) {
	db := pgtest.New(b)
	db.SetMaxOpenConns(80)
	srv := runNATS(b, -1, b.TempDir())
	js := connect(b, srv.ClientURL())
	ensureStream(b, js, notify.DefaultStream, "")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitInt := integrate(ctx, b, db)
	reg := prometheus.NewRegistry()
	relay := newRelay(b, db, js, "", "", func(o *notify.Options) { o.PollInterval = 2 * time.Millisecond; o.Registry = reg })
	stopRelay := runRelay(b, relay)

	var committed sync.Map // subject id -> commit time
	var latMu sync.Mutex
	var deliveryLat []time.Duration
	delivered := map[string]time.Time{}
	var consumed atomic.Int64
	cctx, ccancel := context.WithCancel(context.Background())
	consDone := make(chan struct{})
	go func() {
		defer close(consDone)
		_ = notify.Consume(cctx, js, notify.ConsumeOptions{FromIndex: 0}, func(ev notify.Event) error {
			now := time.Now()
			var e struct {
				Subject struct{ ID string } `json:"subject"`
			}
			if json.Unmarshal(ev.Data, &e) == nil {
				if t0, ok := committed.Load(e.Subject.ID); ok {
					latMu.Lock()
					deliveryLat = append(deliveryLat, now.Sub(t0.(time.Time)))
					delivered[e.Subject.ID] = now
					latMu.Unlock()
				}
			}
			consumed.Add(1)
			return nil
		})
	}()

	// Pace: every tick, hand out rate/100 single-entry transactions.
	const tick = 10 * time.Millisecond
	perTick := max(1, rate/100)
	work := make(chan int, 4*perTick)
	var writers sync.WaitGroup
	var writeErrs atomic.Int64
	// More writers than this only queue up in Postgres on two cores.
	for range envInt("DOCKET_BENCH_WRITERS", 16) {
		writers.Go(func() {
			for n := range work {
				id := fmt.Sprintf("bench-%d", n)
				if err := writeOne(ctx, db, id); err != nil {
					writeErrs.Add(1)
					continue
				}
				committed.Store(id, time.Now())
			}
		})
	}
	var maxLagLate int64
	var maxLagSecLate float64
	start := time.Now()
	t := time.NewTicker(tick)
	n := 0
	for now := range t.C {
		el := now.Sub(start)
		if el >= dur {
			break
		}
		for range perTick {
			select {
			case work <- n:
				n++
			default: // writers are saturated: the offered rate is not reached
			}
		}
		if el > dur/2 {
			s := relay.Status()
			maxLagLate = max(maxLagLate, s.LagEntries)
			maxLagSecLate = max(maxLagSecLate, s.LagSeconds)
		}
	}
	t.Stop()
	close(work)
	writers.Wait()
	writeTime := time.Since(start)
	endLag := relay.Status().LagEntries
	written := int64(n) - writeErrs.Load()
	for consumed.Load() < written && time.Since(start) < dur+60*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	drain := time.Since(start)
	st := relay.Status()
	stopRelay()
	ccancel()
	<-consDone
	cancel()
	waitInt()

	// Split the path: commit to integration is the integrator's share.
	var integ []struct {
		ID string    `db:"subject_id"`
		At time.Time `db:"integrated_at"`
	}
	require.NoError(b, db.Select(&integ, `SELECT s.subject_id, l.integrated_at FROM audit_leaves l JOIN audit_staging s ON s.id = l.staging_id`))
	var relayLat []time.Duration
	for _, r := range integ {
		if d, ok := delivered[r.ID]; ok {
			relayLat = append(relayLat, d.Sub(r.At))
		}
	}
	slices.Sort(relayLat)
	slices.Sort(deliveryLat)
	q := func(p float64) float64 { return quantile(deliveryLat, p) }
	b.ReportMetric(float64(written)/writeTime.Seconds(), "writes/s")
	b.ReportMetric(float64(st.Published)/drain.Seconds(), "entries/s")
	b.ReportMetric(q(0.50), "p50-commit-to-delivery-ms")
	b.ReportMetric(q(0.99), "p99-commit-to-delivery-ms")
	b.ReportMetric(histQuantile(b, reg, "docket_notify_commit_to_ack_seconds", 0.50)*1000, "p50-stage-to-ack-ms")
	b.ReportMetric(histQuantile(b, reg, "docket_notify_commit_to_ack_seconds", 0.99)*1000, "p99-stage-to-ack-ms")
	b.ReportMetric(quantile(relayLat, 0.50), "p50-integrated-to-delivery-ms")
	b.ReportMetric(quantile(relayLat, 0.99), "p99-integrated-to-delivery-ms")
	b.ReportMetric(float64(maxLagLate), "max-lag-entries-2nd-half")
	b.ReportMetric(maxLagSecLate*1000, "max-lag-ms-2nd-half")
	b.ReportMetric(float64(endLag), "lag-entries-at-end")
	b.ReportMetric(float64(writeErrs.Load()), "write-errors")
	if consumed.Load() < written {
		b.Errorf("consumer got %d of %d entries", consumed.Load(), written)
	}
	b.Logf("written %d in %s (%0.f/s offered %d/s), relay published %d, drained after %s, delivery p50 %.1fms p99 %.1fms, lag late max %d entries / %.0fms, at end %d",
		written, writeTime.Round(time.Millisecond), float64(written)/writeTime.Seconds(), rate, st.Published, drain.Round(time.Millisecond),
		q(0.5), q(0.99), maxLagLate, maxLagSecLate*1000, endLag)
}

func writeOne(ctx context.Context, db *sqlx.DB, id string) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = audit.Append(ctx, tx, audit.Entry{
		Type: "decision.recorded", Time: time.Now(), Actor: "enforcer:bench",
		Subject: audit.Subject{Kind: "decision", ID: id},
	})
	if err != nil {
		return err
	}
	return tx.Commit()
}

// histQuantile estimates a quantile from a histogram's buckets, linearly
// within the bucket that holds it.
func histQuantile(tb testing.TB, reg *prometheus.Registry, name string, q float64) float64 {
	mfs, err := reg.Gather()
	require.NoError(tb, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		want := q * float64(h.GetSampleCount())
		lower, below := 0.0, 0.0
		for _, bk := range h.GetBucket() {
			c := float64(bk.GetCumulativeCount())
			if c >= want {
				if c == below {
					return bk.GetUpperBound()
				}
				return lower + (bk.GetUpperBound()-lower)*(want-below)/(c-below)
			}
			lower, below = bk.GetUpperBound(), c
		}
		return lower
	}
	return 0
}

// BenchmarkRelayDrain measures the relay alone: a backlog of integrated
// entries (DOCKET_BENCH_BACKLOG, default 50,000) and the time until
// JetStream has acknowledged them all.
func BenchmarkRelayDrain(b *testing.B) {
	n := envInt("DOCKET_BENCH_BACKLOG", 50_000)
	for b.Loop() {
		db := pgtest.New(b)
		srv := runNATS(b, -1, b.TempDir())
		js := connect(b, srv.ClientURL())
		ensureStream(b, js, notify.DefaultStream, "")
		ctx, cancel := context.WithCancel(context.Background())
		require.NoError(b, writeEntries(ctx, db, n, 2, 500))
		waitInt := integrate(ctx, b, db)
		for leafCount(b, db) < int64(n) {
			time.Sleep(10 * time.Millisecond)
		}
		relay := newRelay(b, db, js, "", "", nil)
		start := time.Now()
		stop := runRelay(b, relay)
		for relay.Status().NextIndex < int64(n) {
			time.Sleep(time.Millisecond)
		}
		el := time.Since(start)
		stop()
		cancel()
		waitInt()
		b.ReportMetric(float64(n)/el.Seconds(), "entries/s")
		b.Logf("drained %d entries in %s", n, el.Round(time.Millisecond))
	}
}

// quantile of sorted durations, in milliseconds.
func quantile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[min(len(sorted)-1, int(p*float64(len(sorted))))].Microseconds()) / 1000
}
