package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/logtest"
	"github.com/docket-dev/docket/internal/pgtest"
)

// TestConcurrentWritersAndIntegrators: 32 writers append 500 entries
// each, in transactions of their own of 1 to 8 entries (some rolled back), while two
// integrators compete: one through the election, whose leader is stopped
// halfway so the other takes over, and one pass after another straight
// through IntegrateOnce, which only the row lock keeps in line.
func TestConcurrentWritersAndIntegrators(t *testing.T) {
	t.Parallel()
	const writers, perWriter = 32, 500
	ctx := context.Background()
	db := pgtest.New(t)
	db.SetMaxOpenConns(48)
	signer, vkey := testKeys(t)
	opts := audit.Options{CheckpointInterval: 5 * time.Millisecond, PollInterval: 2 * time.Millisecond,
		LockRetry: 5 * time.Millisecond, BatchSize: 300}
	a := newTestLog(t, db, signer, vkey, opts)
	b := newTestLog(t, db, signer, vkey, opts)

	ctxA, stopA := context.WithCancel(ctx)
	defer stopA()
	ctxB, stopB := context.WithCancel(ctx)
	var bg sync.WaitGroup
	for _, run := range []struct {
		l   *audit.Log
		ctx context.Context
	}{{a, ctxA}, {b, ctxB}} {
		bg.Add(1)
		go func() {
			defer bg.Done()
			_ = run.l.Run(run.ctx)
		}()
	}
	rogueCtx, stopRogue := context.WithCancel(ctx)
	bg.Add(1)
	go func() {
		defer bg.Done()
		for rogueCtx.Err() == nil {
			if _, err := b.IntegrateOnce(rogueCtx); err != nil && rogueCtx.Err() == nil {
				t.Errorf("IntegrateOnce beside Run: %v", err)
				return
			}
			time.Sleep(3 * time.Millisecond)
		}
	}()

	var (
		mu        sync.Mutex
		committed = map[string]bool{}
		rolled    = map[string]bool{}
		wg        sync.WaitGroup
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Transactions of 1 to 8 entries: a batch may cut one in two.
			for i := 0; i < perWriter; {
				k := min(1+(i*7+w)%8, perWriter-i)
				if w == 0 && i >= perWriter/2 && ctxA.Err() == nil {
					stopA() // one leader goes away mid-run
				}
				rollback := (i/8+w)%7 == 3
				var ids []string
				tx, err := db.BeginTxx(ctx, nil)
				if err != nil {
					t.Error(err)
					return
				}
				// The test is about ordering, not durability: skip the fsync.
				if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
					tx.Rollback()
					t.Error(err)
					return
				}
				for j := 0; j < k; j++ {
					id := fmt.Sprintf("w%d-%d", w, i+j)
					e := audit.Entry{Type: "decision.recorded", Time: time.Now(), Actor: "enforcer:load",
						Subject: audit.Subject{Kind: "decision", ID: id}}
					if _, err := audit.Append(ctx, tx, e); err != nil {
						tx.Rollback()
						t.Error(err)
						return
					}
					ids = append(ids, id)
				}
				if rollback {
					err = tx.Rollback()
				} else {
					err = tx.Commit()
				}
				if err != nil {
					t.Error(err)
					return
				}
				i += k
				mu.Lock()
				for _, id := range ids {
					if rollback {
						rolled[id] = true
					} else {
						committed[id] = true
					}
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	wg.Wait()
	t.Logf("writers done after %v", time.Since(start))
	require.False(t, t.Failed())

	// Wait for the surviving integrator to catch up.
	require.Eventually(t, func() bool { return logtest.Unintegrated(t, b.DB()) == 0 }, 2*time.Minute, 10*time.Millisecond,
		"the surviving integrator never caught up")
	t.Logf("integrated after %v", time.Since(start))
	stopRogue()
	stopB()
	bg.Wait()

	var rows []struct {
		Idx  int64  `db:"idx"`
		Data []byte `db:"entry"`
	}
	require.NoError(t, db.Select(&rows, `SELECT l.idx, s.entry FROM audit_leaves l JOIN audit_staging s ON s.id = l.staging_id ORDER BY l.idx`))
	require.Len(t, rows, len(committed))
	seen := map[string]bool{}
	for i, r := range rows {
		require.EqualValues(t, i, r.Idx, "indices dense")
		var e audit.Entry
		require.NoError(t, json.Unmarshal(r.Data, &e))
		require.False(t, seen[e.Subject.ID], "%s twice", e.Subject.ID)
		require.True(t, committed[e.Subject.ID], "%s was never committed", e.Subject.ID)
		seen[e.Subject.ID] = true
	}
	for id := range rolled {
		require.False(t, seen[id])
	}

	// Run's last pass signs everything it integrated.
	cp, err := b.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.EqualValues(t, len(rows), cp.Size)
	rep, err := audit.Verify(ctx, db, vkey, audit.VerifyOptions{Origin: testOrigin})
	require.NoError(t, err)
	require.EqualValues(t, len(rows), rep.Leaves)
	require.Greater(t, rep.Checkpoints, int64(1))
}
