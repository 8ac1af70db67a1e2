// Package audittest plays the attacker with the database owner's rights,
// for tests of what the audit log detects: it turns the append-only
// triggers off, changes the log's tables, and turns them back on.
package audittest

import (
	"context"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

var tables = []string{"audit_staging", "audit_leaves", "audit_nodes", "audit_checkpoints", "audit_log_identity"}

// Tamper runs change in one transaction with every log table's triggers off.
func Tamper(t testing.TB, db *sqlx.DB, change func(tx *sqlx.Tx)) {
	t.Helper()
	tx, err := db.BeginTxx(context.Background(), nil)
	require.NoError(t, err)
	defer tx.Rollback()
	for _, tb := range tables {
		_, err := tx.Exec("ALTER TABLE " + tb + " DISABLE TRIGGER ALL")
		require.NoError(t, err)
	}
	change(tx)
	for _, tb := range tables {
		_, err := tx.Exec("ALTER TABLE " + tb + " ENABLE TRIGGER ALL")
		require.NoError(t, err)
		_, err = tx.Exec("ALTER TABLE " + tb + " ENABLE ALWAYS TRIGGER " + tb + "_append_only")
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
}

// Exec runs statements with the triggers off.
func Exec(t testing.TB, db *sqlx.DB, stmts ...string) {
	t.Helper()
	Tamper(t, db, func(tx *sqlx.Tx) {
		for _, s := range stmts {
			_, err := tx.Exec(s)
			require.NoError(t, err, s)
		}
	})
}

// Rewrite replaces the bytes of every entry from index from on with
// edit's, and rebuilds the leaf hashes and every node over the new bytes,
// so that the tree in the database is self-consistent: what a careful
// attacker leaves behind. Checkpoints are left alone.
func Rewrite(t testing.TB, db *sqlx.DB, from int64, edit func([]byte) []byte) {
	t.Helper()
	var rows []struct {
		Idx   int64  `db:"idx"`
		ID    int64  `db:"staging_id"`
		Entry []byte `db:"entry"`
	}
	require.NoError(t, db.Select(&rows, `SELECT l.idx, l.staging_id, s.entry FROM audit_leaves l JOIN audit_staging s ON s.id = l.staging_id ORDER BY l.idx`))
	Tamper(t, db, func(tx *sqlx.Tx) {
		rng := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
		_, err := tx.Exec(`DELETE FROM audit_nodes`)
		require.NoError(t, err)
		for _, r := range rows {
			if r.Idx >= from {
				r.Entry = edit(r.Entry)
				_, err := tx.Exec(`UPDATE audit_staging SET entry = $1 WHERE id = $2`, r.Entry, r.ID)
				require.NoError(t, err)
			}
			h := rfc6962.DefaultHasher.HashLeaf(r.Entry)
			_, err := tx.Exec(`UPDATE audit_leaves SET leaf_hash = $1 WHERE idx = $2`, h, r.Idx)
			require.NoError(t, err)
			require.NoError(t, rng.Append(h, func(id compact.NodeID, h []byte) {
				if id.Level > 0 {
					_, err := tx.Exec(`INSERT INTO audit_nodes (level, idx, hash) VALUES ($1, $2, $3)`, id.Level, id.Index, h)
					require.NoError(t, err)
				}
			}))
		}
	})
}
