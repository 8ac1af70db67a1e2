package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Origin every checkpoint must name; empty takes the first checkpoint's.
	Origin string
	// BatchSize is how many leaves one query reads. Default 10000.
	BatchSize int
	// Progress, when set, is told the leaves verified so far after each batch.
	Progress func(leaves uint64)
}

// Report describes a log that verified.
type Report struct {
	Leaves      uint64
	Nodes       int64
	Checkpoints int64
	// Size and Root are the latest checkpoint's.
	Size uint64
	Root []byte
}

// VerifyError names the first fault Verify found.
type VerifyError struct {
	// Index is the first leaf index concerned, -1 when no leaf is.
	Index int64
	// Checkpoint is the size of the checkpoint concerned, -1 when none.
	Checkpoint int64
	Reason     string
}

func (e *VerifyError) Error() string {
	switch {
	case e.Index >= 0 && e.Checkpoint >= 0:
		return fmt.Sprintf("audit: verify: index %d (checkpoint at size %d): %s", e.Index, e.Checkpoint, e.Reason)
	case e.Index >= 0:
		return fmt.Sprintf("audit: verify: index %d: %s", e.Index, e.Reason)
	case e.Checkpoint >= 0:
		return fmt.Sprintf("audit: verify: checkpoint at size %d: %s", e.Checkpoint, e.Reason)
	}
	return "audit: verify: " + e.Reason
}

// Verify checks the whole log in the database against the verifier key,
// trusting nothing stored but the entries' bytes and the signatures: it
// recomputes every leaf hash from the staged bytes and the tree from the
// leaves, and checks that leaves are dense and in staging order, that
// every stored node is the recomputed one, that every checkpoint is
// signed, names the origin and has the recomputed root at its size, that
// each checkpoint is consistent with the next (a proof from stored nodes),
// and that every entry the integrator has passed is a leaf. It reads in
// batches, so memory does not grow with the log. The first fault found, the
// lowest index, comes back as a *VerifyError.
//
// A rewrite that the attacker also re-signed with the real key, for every
// checkpoint from the rewritten entry on, leaves nothing in the database to
// contradict it: that is caught only against a checkpoint kept outside (see
// VerifyRemote).
func Verify(ctx context.Context, db *sqlx.DB, verifierKey string, opts VerifyOptions) (Report, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: verifier key: %w", err)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 10000
	}
	vr := &verifier{db: db, verifier: v, origin: opts.Origin, prevSize: -1,
		rng: (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)}
	return vr.run(ctx, opts)
}

type verifier struct {
	db       *sqlx.DB
	verifier note.Verifier
	origin   string
	rng      *compact.Range
	rep      Report

	// staging order of the previous leaf
	prevXID uint64
	prevID  int64

	cps      []storedCheckpoint // the page of checkpoints not yet reached
	cpDone   bool
	prevSize int64 // the last verified checkpoint's size, -1 before any
	prevRoot []byte

	fault    *VerifyError // the first fault of the current batch
	faultEnd int64
}

type storedCheckpoint struct {
	Size int64  `db:"size"`
	Root []byte `db:"root"`
	Note string `db:"note"`
}

type leafRow struct {
	Idx      int64   `db:"idx"`
	LeafHash []byte  `db:"leaf_hash"`
	Entry    []byte  `db:"entry"`
	XID      *uint64 `db:"xid"`
	ID       *int64  `db:"id"`
}

// fail records a fault somewhere in the leaves [index, end). Of several
// faults the one that ends first wins, and of those the narrowest: a leaf
// whose bytes do not match its hash beats the checkpoint over it.
func (vr *verifier) fail(index, end, cp int64, format string, args ...any) {
	if f := vr.fault; f != nil && (end > vr.faultEnd || (end == vr.faultEnd && index <= f.Index)) {
		return
	}
	vr.fault = &VerifyError{Index: index, Checkpoint: cp, Reason: fmt.Sprintf(format, args...)}
	vr.faultEnd = end
}

func (vr *verifier) run(ctx context.Context, opts VerifyOptions) (Report, error) {
	if err := vr.checkpointsAt(ctx); err != nil { // a checkpoint of size 0
		return vr.rep, err
	}
	if vr.fault != nil {
		return vr.rep, vr.fault
	}
	var batch []leafRow
	for {
		batch = batch[:0]
		err := vr.db.SelectContext(ctx, &batch, `
			SELECT l.idx, l.leaf_hash, s.entry, s.xid, s.id
			FROM audit_leaves l LEFT JOIN audit_staging s ON s.id = l.staging_id
			WHERE l.idx >= $1 ORDER BY l.idx LIMIT $2`, int64(vr.rng.End()), opts.BatchSize)
		if err != nil {
			return vr.rep, fmt.Errorf("audit: verify: read leaves: %w", err)
		}
		if len(batch) == 0 {
			break
		}
		begin := vr.rng.End()
		nodes := make(map[compact.NodeID][]byte, len(batch))
		visit := func(id compact.NodeID, h []byte) {
			if id.Level > 0 {
				nodes[id] = h
			}
		}
		for _, r := range batch {
			want := int64(vr.rng.End())
			if r.Idx != want {
				vr.fail(want, want+1, -1, "leaf missing (the next stored leaf is %d)", r.Idx)
				break
			}
			if r.ID == nil {
				vr.fail(want, want+1, -1, "its staged entry is gone")
				break
			}
			if *r.XID < vr.prevXID || (*r.XID == vr.prevXID && *r.ID <= vr.prevID) {
				// Either this leaf moved back or the one before moved forward.
				vr.fail(want-1, want, -1, "leaves %d and %d are out of staging order (moved or swapped)", want-1, want)
			}
			vr.prevXID, vr.prevID = *r.XID, *r.ID
			h := rfc6962.DefaultHasher.HashLeaf(r.Entry)
			if !bytes.Equal(h, r.LeafHash) {
				vr.fail(want, want+1, -1, "the entry's bytes do not match its leaf hash (edited or swapped)")
			}
			// The tree is rebuilt from the entries, not the stored hashes.
			if err := vr.rng.Append(h, visit); err != nil {
				return vr.rep, fmt.Errorf("audit: verify: %w", err)
			}
			vr.rep.Leaves++
			if err := vr.checkpointsAt(ctx); err != nil {
				return vr.rep, err
			}
		}
		if err := vr.checkNodes(ctx, begin, vr.rng.End(), nodes); err != nil {
			return vr.rep, err
		}
		if vr.fault != nil {
			return vr.rep, vr.fault
		}
		if opts.Progress != nil {
			opts.Progress(vr.rep.Leaves)
		}
	}
	n := int64(vr.rng.End())
	if err := vr.nextCheckpoint(ctx); err != nil {
		return vr.rep, err
	}
	if len(vr.cps) > 0 {
		return vr.rep, &VerifyError{Index: n, Checkpoint: vr.cps[0].Size,
			Reason: fmt.Sprintf("the checkpoint covers %d entries but the log has %d leaves", vr.cps[0].Size, n)}
	}
	if err := vr.db.GetContext(ctx, &vr.rep.Nodes, `SELECT count(*) FROM audit_nodes`); err != nil {
		return vr.rep, fmt.Errorf("audit: verify: count nodes: %w", err)
	}
	if want := n - int64(bits.OnesCount64(uint64(n))); vr.rep.Nodes != want {
		return vr.rep, &VerifyError{Index: n, Checkpoint: -1,
			Reason: fmt.Sprintf("%d stored nodes where a tree of %d leaves has %d", vr.rep.Nodes, n, want)}
	}
	return vr.rep, vr.checkStaging(ctx, n)
}

// checkNodes compares the nodes the leaves [begin, end) completed with the
// stored ones, which proofs are served from.
func (vr *verifier) checkNodes(ctx context.Context, begin, end uint64, nodes map[compact.NodeID][]byte) error {
	var levels, los, his []int64
	for lvl := uint(1); lvl < 64 && end>>lvl > 0; lvl++ {
		lo := (begin+1+(1<<lvl)-1)>>lvl - 1
		hi := end>>lvl - 1
		if end>>lvl >= (begin+1+(1<<lvl)-1)>>lvl {
			levels, los, his = append(levels, int64(lvl)), append(los, int64(lo)), append(his, int64(hi))
		}
	}
	if len(levels) == 0 {
		return nil
	}
	rows, err := vr.db.QueryxContext(ctx, `
		SELECT n.level, n.idx, n.hash
		FROM unnest($1::int[], $2::bigint[], $3::bigint[]) AS r(level, lo, hi)
		JOIN LATERAL (SELECT level, idx, hash FROM audit_nodes
			WHERE level = r.level AND idx BETWEEN r.lo AND r.hi) n ON true`,
		pq.Int64Array(levels), pq.Int64Array(los), pq.Int64Array(his))
	if err != nil {
		return fmt.Errorf("audit: verify: read nodes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var lvl, idx int64
		var h []byte
		if err := rows.Scan(&lvl, &idx, &h); err != nil {
			return fmt.Errorf("audit: verify: read nodes: %w", err)
		}
		id := compact.NewNodeID(uint(lvl), uint64(idx))
		if want, ok := nodes[id]; ok && !bytes.Equal(want, h) {
			b, e := id.Coverage()
			vr.fail(int64(b), int64(e), -1, "stored node %d/%d is not the hash of its leaves: an entry in [%d, %d) was rewritten", lvl, idx, b, e)
		}
		delete(nodes, id)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: verify: read nodes: %w", err)
	}
	for id := range nodes {
		b, e := id.Coverage()
		vr.fail(int64(b), int64(e), -1, "stored node %d/%d is missing", id.Level, id.Index)
	}
	return nil
}

// nextCheckpoint makes sure the page of pending checkpoints is not empty
// unless every checkpoint has been read.
func (vr *verifier) nextCheckpoint(ctx context.Context) error {
	if len(vr.cps) > 0 || vr.cpDone {
		return nil
	}
	err := vr.db.SelectContext(ctx, &vr.cps, `
		SELECT size, root, note FROM audit_checkpoints WHERE size > $1 ORDER BY size LIMIT 1000`, vr.prevSize)
	if err != nil {
		return fmt.Errorf("audit: verify: read checkpoints: %w", err)
	}
	vr.cpDone = len(vr.cps) == 0
	return nil
}

// checkpointsAt verifies the checkpoint at the current tree size, if any.
func (vr *verifier) checkpointsAt(ctx context.Context) error {
	if err := vr.nextCheckpoint(ctx); err != nil {
		return err
	}
	size := int64(vr.rng.End())
	if len(vr.cps) == 0 || vr.cps[0].Size != size {
		return nil
	}
	cp := vr.cps[0]
	vr.cps = vr.cps[1:]
	// A fault here is in the entries this checkpoint added to the last good one.
	first := max(vr.prevSize, 0)
	if size == 0 {
		first = -1
	}
	bad := func(format string, args ...any) { vr.fail(first, max(size, 1), size, format, args...) }

	n, err := note.Open([]byte(cp.Note), note.VerifierList(vr.verifier))
	if err != nil {
		bad("signature does not verify with the key: %v", err)
		return nil
	}
	var body log.Checkpoint
	if rest, err := body.Unmarshal([]byte(n.Text)); err != nil || len(rest) != 0 {
		bad("the signed body is not a checkpoint")
		return nil
	}
	if vr.origin == "" {
		vr.origin = body.Origin
	}
	root, err := vr.rng.GetRootHash(nil)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	if root == nil {
		root = rfc6962.DefaultHasher.EmptyRoot()
	}
	switch {
	case body.Origin != vr.origin:
		bad("origin %q, want %q", body.Origin, vr.origin)
		return nil
	case body.Size != uint64(size) || !bytes.Equal(body.Hash, cp.Root):
		bad("the signed body (size %d) disagrees with the stored size and root", body.Size)
		return nil
	case !bytes.Equal(root, body.Hash):
		bad("the signed root is not the root of the entries: an entry in [%d, %d) differs from what was signed", max(first, 0), size)
		return nil
	}
	if vr.prevSize >= 0 {
		nodes, err := proof.Consistency(uint64(vr.prevSize), uint64(size))
		if err == nil {
			var hashes [][]byte
			if hashes, err = fetchNodes(ctx, vr.db, nodes.IDs); err == nil {
				var p [][]byte
				if p, err = nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren); err == nil {
					err = proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(vr.prevSize), uint64(size), p, vr.prevRoot, body.Hash)
				}
			}
		}
		if err != nil {
			bad("no valid consistency proof from the checkpoint at size %d: %v", vr.prevSize, err)
			return nil
		}
	}
	vr.prevSize, vr.prevRoot = size, body.Hash
	vr.rep.Checkpoints++
	vr.rep.Size, vr.rep.Root = uint64(size), body.Hash
	return nil
}

// checkStaging makes sure no entry the integrator has passed is missing
// from the leaves: the count of staged rows at or below the watermark must
// be the count of leaves.
func (vr *verifier) checkStaging(ctx context.Context, leaves int64) error {
	var staged int64
	err := vr.db.GetContext(ctx, &staged, `
		SELECT count(*) FROM audit_staging s, audit_integrator w
		WHERE w.id = 1 AND (s.xid, s.id) <= (w.watermark, w.watermark_id)`)
	if err != nil {
		return fmt.Errorf("audit: verify: count staging: %w", err)
	}
	if staged == leaves {
		return nil
	}
	var id int64
	err = vr.db.GetContext(ctx, &id, `
		SELECT s.id FROM audit_staging s, audit_integrator w
		WHERE w.id = 1 AND (s.xid, s.id) <= (w.watermark, w.watermark_id)
		AND NOT EXISTS (SELECT 1 FROM audit_leaves l WHERE l.staging_id = s.id)
		ORDER BY s.xid, s.id LIMIT 1`)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("audit: verify: staging: %w", err)
	}
	return &VerifyError{Index: -1, Checkpoint: -1,
		Reason: fmt.Sprintf("%d entries were staged before the integrator's watermark but %d are leaves (first without a leaf: staging id %d)", staged, leaves, id)}
}
