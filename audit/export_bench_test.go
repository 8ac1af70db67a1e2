package audit_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/pgtest"
	"github.com/docket-dev/docket/migrations"
)

// countingWriter counts bytes and throws them away.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// heapPeak samples the live heap every few milliseconds until stopped and
// returns the highest value seen. runtime/metrics reads it without
// stopping the world, so sampling does not slow the export down.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// BenchmarkExport exports n entries as JSON lines and, in the same run,
// has Postgres COPY the same rows (index, base64 leaf hash, type, entry
// text) to a psql subprocess, which is the floor for getting rows out of
// the database. It reports both rates, their ratio, bytes allocated per
// entry and the peak live heap: flat memory shows as a peak that does not
// grow with n. DOCKET_BENCH_LARGE=1 adds a log of 1,000,000 entries.
func BenchmarkExport(b *testing.B) {
	if _, err := exec.LookPath("psql"); err != nil {
		b.Skip("psql is not installed")
	}
	sizes := []int{10_000, 100_000}
	if os.Getenv("DOCKET_BENCH_LARGE") == "1" {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			dsn := pgtest.NewURL(b)
			db, err := sqlx.Open("postgres", dsn)
			require.NoError(b, err)
			b.Cleanup(func() { db.Close() })
			require.NoError(b, migrations.Up(context.Background(), db.DB))
			stageSeries(b, db, n)
			exportTestLog(b, db)
			for _, table := range []string{"audit_staging", "audit_leaves"} {
				_, err = db.Exec(`VACUUM ANALYZE ` + table)
				require.NoError(b, err)
			}
			ctx := context.Background()

			var exportTime, copyTime time.Duration
			var alloc, peak uint64
			var bytesOut int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				runtime.GC()
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				stop := heapPeak()
				out := &countingWriter{}
				w := audit.NewWriter(out, audit.JSONL)
				start := time.Now()
				var rows int
				require.NoError(b, audit.Export(ctx, db, audit.ExportFilter{}, -1, audit.Narrow, func(r *audit.Row) error {
					rows++
					return w.Write(r)
				}))
				require.NoError(b, w.Flush())
				exportTime += time.Since(start)
				peak = max(peak, stop())
				runtime.ReadMemStats(&m1)
				alloc += m1.TotalAlloc - m0.TotalAlloc
				bytesOut += out.n
				require.Equal(b, n, rows)

				cmd := exec.Command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c",
					`COPY (SELECT l.idx, encode(l.leaf_hash, 'base64'), s.type, convert_from(s.entry, 'UTF8')
					 FROM audit_leaves l JOIN audit_staging s ON s.id = l.staging_id ORDER BY l.idx) TO STDOUT`)
				copied := &countingWriter{}
				cmd.Stdout, cmd.Stderr = copied, io.Discard
				start = time.Now()
				require.NoError(b, cmd.Run())
				copyTime += time.Since(start)
				require.Greater(b, copied.n, int64(n))
			}
			b.StopTimer()
			total := float64(n) * float64(b.N)
			exportRate := total / exportTime.Seconds()
			copyRate := total / copyTime.Seconds()
			b.ReportMetric(exportRate, "export-entries/s")
			b.ReportMetric(copyRate, "copy-rows/s")
			b.ReportMetric(exportRate/copyRate, "export/copy")
			b.ReportMetric(float64(alloc)/total, "alloc-B/entry")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(bytesOut)/total, "out-B/entry")
		})
	}
}

// BenchmarkExportByKey exports one tenant's entries (1 in 100) and one
// rule's (1 in 7) from a log of 100,000, through the side index: each
// batch is one ordered range of audit_export_keys' primary key. The first
// export, which fills the index, is outside the timing.
func BenchmarkExportByKey(b *testing.B) {
	const n = 100_000
	db := pgtest.New(b)
	stageSeries(b, db, n)
	exportTestLog(b, db)
	ctx := context.Background()
	require.NoError(b, audit.RefreshExportKeys(ctx, db))
	for _, table := range []string{"audit_staging", "audit_leaves", "audit_export_keys", "audit_export_times"} {
		_, err := db.Exec(`VACUUM ANALYZE ` + table)
		require.NoError(b, err)
	}
	for name, c := range map[string]struct {
		keys map[string]string
		want int
	}{
		"tenant": {map[string]string{"tenant": "adv-3"}, n / 100},
		"rule":   {map[string]string{"rule": "policy-3"}, (n + 3) / 7},
	} {
		b.Run(name, func(b *testing.B) {
			var total int
			start := time.Now()
			for i := 0; i < b.N; i++ {
				rows := 0
				w := audit.NewWriter(&countingWriter{}, audit.JSONL)
				require.NoError(b, audit.Export(ctx, db, audit.ExportFilter{Keys: c.keys}, -1, audit.Narrow, func(r *audit.Row) error {
					rows++
					return w.Write(r)
				}))
				require.Equal(b, c.want, rows)
				total += rows
			}
			b.ReportMetric(float64(total)/time.Since(start).Seconds(), "export-entries/s")
		})
	}
}
