package audit_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/logtest"
	"github.com/docket-dev/docket/internal/pgtest"
)

var logTables = []string{"audit_staging", "audit_leaves", "audit_nodes", "audit_checkpoints"}

func TestTriggersRejectChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	signer, vkey := testKeys(t)
	l := newTestLog(t, db, signer, vkey, audit.Options{})
	appendTx(t, db, true, entries("x", 5)...)
	logtest.Drain(t, l)

	for _, role := range []string{"origin", "replica"} {
		conn, err := db.Connx(ctx)
		require.NoError(t, err)
		_, err = conn.ExecContext(ctx, "SET session_replication_role = "+role)
		require.NoError(t, err)
		for _, table := range logTables {
			col := map[string]string{"audit_staging": "actor", "audit_leaves": "leaf_hash", "audit_nodes": "hash", "audit_checkpoints": "note"}[table]
			val := map[string]string{"actor": "'x'", "leaf_hash": "'\\x00'", "hash": "'\\x00'", "note": "'x'"}[col]
			for _, stmt := range []string{
				fmt.Sprintf("UPDATE %s SET %s = %s", table, col, val),
				fmt.Sprintf("UPDATE %s SET %s = %s WHERE false", table, col, val),
				"DELETE FROM " + table,
				"TRUNCATE " + table + " CASCADE",
			} {
				_, err := conn.ExecContext(ctx, stmt)
				require.Error(t, err, "%s (role %s)", stmt, role)
				require.ErrorContains(t, err, "append-only", "%s (role %s)", stmt, role)
			}
		}
		_, _ = conn.ExecContext(ctx, "RESET session_replication_role")
		conn.Close()
	}
	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM audit_leaves`))
	require.Equal(t, 5, n)
	_, err := audit.Verify(ctx, db, vkey, audit.VerifyOptions{})
	require.NoError(t, err)
}

func TestLeastPrivilegeRole(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	for _, table := range logTables {
		for priv, want := range map[string]bool{"SELECT": true, "INSERT": true, "UPDATE": false, "DELETE": false, "TRUNCATE": false} {
			var has bool
			require.NoError(t, db.Get(&has, `SELECT has_table_privilege('docket_app', $1, $2)`, table, priv))
			require.Equal(t, want, has, "%s on %s", priv, table)
		}
	}
	var has bool
	require.NoError(t, db.Get(&has, `SELECT has_table_privilege('docket_app', 'audit_integrator', 'UPDATE')`))
	require.True(t, has)
}

// tamperedLog is a log of 40 entries with a checkpoint every 4, and a way
// around the triggers, as a superuser has.
type tamperedLog struct {
	db     *sqlx.DB
	l      *audit.Log
	signer note.Signer
	vkey   string
}

func newTamperedLog(t *testing.T) *tamperedLog {
	t.Helper()
	db := pgtest.New(t)
	signer, vkey := testKeys(t)
	l := newTestLog(t, db, signer, vkey, audit.Options{BatchSize: 4})
	for i := 0; i < 40; i++ {
		appendTx(t, db, true, testEntry("t", i))
	}
	require.Equal(t, 40, logtest.Drain(t, l))
	_, err := audit.Verify(context.Background(), db, vkey, audit.VerifyOptions{Origin: testOrigin, BatchSize: 7})
	require.NoError(t, err)
	return &tamperedLog{db: db, l: l, signer: signer, vkey: vkey}
}

// exec runs statements with every trigger of table off, then restores them.
func (tl *tamperedLog) exec(t *testing.T, table string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	tx, err := tl.db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback()
	_, err = tx.Exec("ALTER TABLE " + table + " DISABLE TRIGGER ALL")
	require.NoError(t, err)
	for _, s := range stmts {
		_, err := tx.Exec(s)
		require.NoError(t, err, s)
	}
	_, err = tx.Exec("ALTER TABLE " + table + " ENABLE TRIGGER ALL")
	require.NoError(t, err)
	_, err = tx.Exec("ALTER TABLE " + table + " ENABLE ALWAYS TRIGGER " + table + "_append_only")
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
}

// checkpointsAround returns the sizes of the last checkpoint that does not
// cover index and of the first that does.
func (tl *tamperedLog) checkpointsAround(t *testing.T, index int) (prev, next int64) {
	t.Helper()
	require.NoError(t, tl.db.Get(&prev, `SELECT coalesce(max(size), 0) FROM audit_checkpoints WHERE size <= $1`, index))
	require.NoError(t, tl.db.Get(&next, `SELECT min(size) FROM audit_checkpoints WHERE size > $1`, index))
	return prev, next
}

func (tl *tamperedLog) stagingID(t *testing.T, idx int) int64 {
	var id int64
	require.NoError(t, tl.db.Get(&id, `SELECT staging_id FROM audit_leaves WHERE idx = $1`, idx))
	return id
}

// rebuildNodes replaces every stored node with the hashes of the stored
// leaves, as an attacker covering a rewrite would.
func (tl *tamperedLog) rebuildNodes(t *testing.T) {
	var hashes [][]byte
	require.NoError(t, tl.db.Select(&hashes, `SELECT leaf_hash FROM audit_leaves ORDER BY idx`))
	rng := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	var levels, idxs []int64
	var hs [][]byte
	for _, h := range hashes {
		require.NoError(t, rng.Append(h, func(id compact.NodeID, h []byte) {
			if id.Level > 0 {
				levels, idxs, hs = append(levels, int64(id.Level)), append(idxs, int64(id.Index)), append(hs, h)
			}
		}))
	}
	tl.exec(t, "audit_nodes", "DELETE FROM audit_nodes")
	_, err := tl.db.Exec(`INSERT INTO audit_nodes SELECT * FROM unnest($1::int[], $2::bigint[], $3::bytea[])`,
		pq.Int64Array(levels), pq.Int64Array(idxs), pq.ByteaArray(hs))
	require.NoError(t, err)
}

// resign rewrites the checkpoints of the given sizes over the stored tree.
func (tl *tamperedLog) resign(t *testing.T, signer note.Signer, sizes ...int) {
	var hashes [][]byte
	require.NoError(t, tl.db.Select(&hashes, `SELECT leaf_hash FROM audit_leaves ORDER BY idx`))
	var stmts []string
	for _, size := range sizes {
		rng := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
		for _, h := range hashes[:size] {
			require.NoError(t, rng.Append(h, nil))
		}
		root, err := rng.GetRootHash(nil)
		require.NoError(t, err)
		signed, err := note.Sign(&note.Note{Text: string(log.Checkpoint{Origin: testOrigin, Size: uint64(size), Hash: root}.Marshal())}, signer)
		require.NoError(t, err)
		stmts = append(stmts, fmt.Sprintf(`UPDATE audit_checkpoints SET root = '\x%x', note = %s WHERE size = %d`, root, pq.QuoteLiteral(string(signed)), size))
	}
	tl.exec(t, "audit_checkpoints", stmts...)
}

func (tl *tamperedLog) verifyFails(t *testing.T) *audit.VerifyError {
	t.Helper()
	_, err := audit.Verify(context.Background(), tl.db, tl.vkey, audit.VerifyOptions{Origin: testOrigin, BatchSize: 7})
	require.Error(t, err)
	var ve *audit.VerifyError
	require.True(t, errors.As(err, &ve), "want a *VerifyError, got %v", err)
	require.Contains(t, err.Error(), fmt.Sprintf("index %d", ve.Index))
	return ve
}

const editEntry = `UPDATE audit_staging SET entry = convert_to(replace(convert_from(entry, 'UTF8'), 'enforcer:test', 'enforcer:evil'), 'UTF8') WHERE id = %d`

func TestVerifyCatchesTampering(t *testing.T) {
	t.Parallel()
	t.Run("entry bytes edited", func(t *testing.T) {
		t.Parallel()
		tl := newTamperedLog(t)
		tl.exec(t, "audit_staging", fmt.Sprintf(editEntry, tl.stagingID(t, 17)))
		ve := tl.verifyFails(t)
		require.EqualValues(t, 17, ve.Index, "%v", ve)
	})
	t.Run("entry bytes and leaf hash edited", func(t *testing.T) {
		t.Parallel()
		tl := newTamperedLog(t)
		tl.exec(t, "audit_staging", fmt.Sprintf(editEntry, tl.stagingID(t, 17)))
		tl.exec(t, "audit_leaves", `UPDATE audit_leaves l SET leaf_hash = sha256('\x00'::bytea || s.entry) FROM audit_staging s WHERE s.id = l.staging_id AND l.idx = 17`)
		ve := tl.verifyFails(t)
		// The stored node over [16, 18) still commits to the original.
		require.Contains(t, []int64{16, 17}, ve.Index, "%v", ve)
	})
	t.Run("leaf deleted", func(t *testing.T) {
		t.Parallel()
		tl := newTamperedLog(t)
		tl.exec(t, "audit_leaves", `DELETE FROM audit_leaves WHERE idx = 17`)
		ve := tl.verifyFails(t)
		require.EqualValues(t, 17, ve.Index, "%v", ve)
	})
	t.Run("staged entry deleted", func(t *testing.T) {
		t.Parallel()
		tl := newTamperedLog(t)
		tl.exec(t, "audit_staging", fmt.Sprintf(`DELETE FROM audit_staging WHERE id = %d`, tl.stagingID(t, 17)))
		ve := tl.verifyFails(t)
		require.EqualValues(t, 17, ve.Index, "%v", ve)
	})
	t.Run("last leaves deleted", func(t *testing.T) {
		t.Parallel()
		tl := newTamperedLog(t)
		tl.exec(t, "audit_leaves", `DELETE FROM audit_leaves WHERE idx >= 37`)
		ve := tl.verifyFails(t)
		require.EqualValues(t, 37, ve.Index, "%v", ve)
	})
	t.Run("two entries swapped", func(t *testing.T) {
		t.Parallel()
		tl := newTamperedLog(t)
		a, b := tl.stagingID(t, 9), tl.stagingID(t, 23)
		tl.exec(t, "audit_staging", fmt.Sprintf(`UPDATE audit_staging s SET entry = o.entry FROM audit_staging o
			WHERE (s.id, o.id) IN ((%d, %d), (%d, %d))`, a, b, b, a))
		ve := tl.verifyFails(t)
		require.EqualValues(t, 9, ve.Index, "%v", ve)
	})
	t.Run("two leaves swapped with their hashes", func(t *testing.T) {
		t.Parallel()
		tl := newTamperedLog(t)
		tl.exec(t, "audit_leaves", `ALTER TABLE audit_leaves DROP CONSTRAINT audit_leaves_staging_id_key`,
			`UPDATE audit_leaves l SET staging_id = o.staging_id, leaf_hash = o.leaf_hash FROM audit_leaves o
			WHERE (l.idx, o.idx) IN ((9, 23), (23, 9))`)
		ve := tl.verifyFails(t)
		require.EqualValues(t, 9, ve.Index, "%v", ve)
	})
	t.Run("checkpoint re-signed over a rewritten tree", func(t *testing.T) {
		t.Parallel()
		tl := newTamperedLog(t)
		// Rewrite entry 13 and everything derived from it, then re-sign the
		// latest checkpoint with the log's own key.
		tl.exec(t, "audit_staging", fmt.Sprintf(editEntry, tl.stagingID(t, 13)))
		tl.exec(t, "audit_leaves", `UPDATE audit_leaves l SET leaf_hash = sha256('\x00'::bytea || s.entry) FROM audit_staging s WHERE s.id = l.staging_id AND l.idx = 13`)
		tl.rebuildNodes(t)
		tl.resign(t, tl.signer, 40)
		ve := tl.verifyFails(t)
		// The first checkpoint past index 13 still signs the original: the
		// rewrite lies in what it added to the one before it. (Batch sizes,
		// and so checkpoint sizes, depend on other transactions in the
		// cluster, so the sizes are read, not assumed.)
		prev, next := tl.checkpointsAround(t, 13)
		require.EqualValues(t, prev, ve.Index, "%v", ve)
		require.EqualValues(t, next, ve.Checkpoint, "%v", ve)
	})
	t.Run("checkpoint signed with another key", func(t *testing.T) {
		t.Parallel()
		tl := newTamperedLog(t)
		other, _ := testKeys(t)
		prev, target := tl.checkpointsAround(t, 23)
		tl.resign(t, other, int(target))
		ve := tl.verifyFails(t)
		require.EqualValues(t, prev, ve.Index, "%v", ve)
		require.Contains(t, ve.Reason, "signature")
	})
}
