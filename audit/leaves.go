package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Leaf is an integrated entry: its dense index, its exact bytes and hash.
type Leaf struct {
	Index        int64     `db:"idx"`
	Type         string    `db:"type"`
	Data         []byte    `db:"entry"`
	LeafHash     []byte    `db:"leaf_hash"`
	IntegratedAt time.Time `db:"integrated_at"`
	// CreatedAt is when the writer staged it (its transaction's time).
	CreatedAt time.Time `db:"created_at"`
}

// Leaves returns up to limit integrated leaves from index start on, in index order.
func Leaves(ctx context.Context, q sqlx.QueryerContext, start int64, limit int) ([]Leaf, error) {
	var ls []Leaf
	err := sqlx.SelectContext(ctx, q, &ls, `
		SELECT l.idx, s.type, s.entry, l.leaf_hash, l.integrated_at, s.created_at
		FROM audit_leaves l JOIN audit_staging s ON s.id = l.staging_id
		WHERE l.idx >= $1 ORDER BY l.idx LIMIT $2`, start, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: read leaves: %w", err)
	}
	return ls, nil
}

// LeafCount is the number of integrated leaves, signed or not yet, read
// over q: a reader's own connection or transaction (the relay reads it on
// its leader's session).
func LeafCount(ctx context.Context, q sqlx.QueryerContext) (int64, error) {
	var n int64
	if err := sqlx.GetContext(ctx, q, &n, `SELECT coalesce(max(idx) + 1, 0) FROM audit_leaves`); err != nil {
		return 0, fmt.Errorf("audit: size: %w", err)
	}
	return n, nil
}
