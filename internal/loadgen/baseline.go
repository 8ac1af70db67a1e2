package loadgen

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/lib/pq"
)

// RunBaseline is the raw equivalent of the write path: single-row INSERTs
// of payload, one per autocommitted transaction, from clients goroutines
// for duration, into a scratch table it creates and drops. The table has
// what a bare record needs (a key, a time, the JSON) and nothing of the
// service's (no audit entry, no idempotency, no policy lookup).
func RunBaseline(ctx context.Context, db *sql.DB, clients int, duration time.Duration, payload []byte) (*BaselineReport, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	table := "docket_bench_raw_" + hex.EncodeToString(b[:])
	q := pq.QuoteIdentifier(table)
	if _, err := db.ExecContext(ctx, `CREATE TABLE `+q+` (id bigserial PRIMARY KEY,
		created_at timestamptz NOT NULL DEFAULT now(), body jsonb NOT NULL)`); err != nil {
		return nil, fmt.Errorf("baseline: create table: %w", err)
	}
	defer func() {
		// Dropped even when the run was interrupted.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(dctx, `DROP TABLE IF EXISTS `+q)
	}()
	db.SetMaxOpenConns(clients)
	db.SetMaxIdleConns(clients)
	stmt, err := db.PrepareContext(ctx, `INSERT INTO `+q+` (body) VALUES ($1)`)
	if err != nil {
		return nil, fmt.Errorf("baseline: prepare: %w", err)
	}
	defer stmt.Close()
	body := string(payload)

	lats := make([][]time.Duration, clients)
	errs := make([]int, clients)
	start := time.Now()
	deadline := start.Add(duration)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				if _, err := stmt.ExecContext(ctx, body); err != nil {
					if ctx.Err() == nil {
						errs[i]++
					}
					continue
				}
				lats[i] = append(lats[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	var all []time.Duration
	nerr := 0
	for i := range lats {
		all = append(all, lats[i]...)
		nerr += errs[i]
	}
	return &BaselineReport{Table: table, Clients: clients, DurationS: elapsed.Seconds(), PayloadBytes: len(payload),
		Inserts: len(all), Errors: nerr, PerSec: float64(len(all)) / elapsed.Seconds(), Latency: distribution(all)}, nil
}
