package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Checkpoint is a stored signed checkpoint.
type Checkpoint struct {
	Size uint64
	Root []byte
	// Note is the C2SP signed note, byte for byte as served.
	Note      []byte
	CreatedAt time.Time
}

// LatestCheckpoint returns the checkpoint of the largest size, or
// ErrNotFound before the integrator has signed any.
func (l *Log) LatestCheckpoint(ctx context.Context) (Checkpoint, error) {
	var row struct {
		Size      int64     `db:"size"`
		Root      []byte    `db:"root"`
		Note      string    `db:"note"`
		CreatedAt time.Time `db:"created_at"`
	}
	err := l.db.GetContext(ctx, &row, `SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1`)
	if errors.Is(err, sql.ErrNoRows) {
		return Checkpoint{}, fmt.Errorf("%w: no checkpoint has been signed yet", ErrNotFound)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: latest checkpoint: %w", err)
	}
	l.observeCheckpoint(ctx, uint64(row.Size), []byte(row.Note))
	return Checkpoint{Size: uint64(row.Size), Root: row.Root, Note: []byte(row.Note), CreatedAt: row.CreatedAt}, nil
}

// Size is the number of integrated leaves, signed or not yet.
func (l *Log) Size(ctx context.Context) (uint64, error) {
	n, err := LeafCount(ctx, l.db)
	return uint64(n), err
}

// Entry returns the integrated entry at index, or ErrNotFound.
func (l *Log) Entry(ctx context.Context, index uint64) (Leaf, error) {
	ls, err := Leaves(ctx, l.db, int64(index), 1)
	if err != nil {
		return Leaf{}, err
	}
	if len(ls) == 0 || ls[0].Index != int64(index) {
		return Leaf{}, fmt.Errorf("%w: no entry at index %d", ErrNotFound, index)
	}
	return ls[0], nil
}

// Entries returns up to limit integrated entries from index start on.
func (l *Log) Entries(ctx context.Context, start uint64, limit int) ([]Leaf, error) {
	return Leaves(ctx, l.db, int64(start), limit)
}

// checkSize refuses a tree size the log has not reached.
func (l *Log) checkSize(ctx context.Context, size uint64) error {
	n, err := l.Size(ctx)
	if err != nil {
		return err
	}
	if size > n {
		return fmt.Errorf("%w: the log has %d entries, not %d", ErrNotFound, n, size)
	}
	return nil
}

// InclusionProof proves the leaf at index in the tree of the given size:
// the RFC 6962 audit path, read from the stored nodes in one query.
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("%w: index %d is not below size %d", ErrInvalid, index, size)
	}
	if err := l.checkSize(ctx, size); err != nil {
		return nil, err
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return l.rehash(ctx, nodes)
}

// ConsistencyProof proves that the tree of size from is a prefix of the
// tree of size to.
func (l *Log) ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error) {
	if from > to {
		return nil, fmt.Errorf("%w: from %d is above to %d", ErrInvalid, from, to)
	}
	if err := l.checkSize(ctx, to); err != nil {
		return nil, err
	}
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return l.rehash(ctx, nodes)
}

func (l *Log) rehash(ctx context.Context, nodes proof.Nodes) ([][]byte, error) {
	hashes, err := fetchNodes(ctx, l.db, nodes.IDs)
	if err != nil {
		return nil, err
	}
	p, err := nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("audit: proof: %w", err)
	}
	if p == nil {
		p = [][]byte{}
	}
	return p, nil
}

// DB is the database the log lives in.
func (l *Log) DB() *sqlx.DB { return l.db }
