package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"time"

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
	// Saved are signed checkpoints kept outside the database (saved by a
	// client, the integrator's pin): the log must have grown from each, so
	// a log smaller than one was truncated, and one whose root at that
	// size differs was rewritten, even with its own checkpoints gone.
	Saved []SavedCheckpoint
	// MaxUnsignedAge, when positive, is how long an entry may stay without
	// a checkpoint over it: an older one means the integrator is stopped,
	// or the checkpoints over it were removed.
	MaxUnsignedAge time.Duration
}

// SavedCheckpoint is a signed checkpoint from outside the database.
type SavedCheckpoint struct {
	// Name says where it came from (a file name), for messages.
	Name string
	Note []byte
}

// Report describes a log that verified.
type Report struct {
	Leaves      uint64
	Nodes       int64
	Checkpoints int64
	// Size and Root are the latest checkpoint's.
	Size uint64
	Root []byte
	// Saved is how many saved checkpoints the log extends.
	Saved int
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
// checkpoint from the rewritten entry on, or whose checkpoints the attacker
// deleted, leaves nothing in the database to contradict it: that is caught
// only against a checkpoint kept outside (opts.Saved, or VerifyRemote).
// Then come the checks of what may be missing: saved checkpoints the log
// must extend, a checkpoint over any leaves, and none left unsigned for
// longer than opts.MaxUnsignedAge.
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
	if err := vr.identity(ctx, verifierKey); err != nil {
		return vr.rep, err
	}
	if err := vr.openSaved(opts.Saved); err != nil {
		return vr.rep, err
	}
	rep, err := vr.run(ctx, opts)
	if err != nil {
		return rep, err
	}
	return rep, vr.checkSigned(ctx, opts.MaxUnsignedAge)
}

// identity refuses a key or origin other than the log's recorded ones.
func (vr *verifier) identity(ctx context.Context, vkey string) error {
	id, err := readIdentity(ctx, vr.db)
	if err != nil || id == nil {
		return err
	}
	if id.VerifierKey != vkey {
		return &VerifyError{Index: -1, Checkpoint: -1,
			Reason: fmt.Sprintf("the log's recorded key is %s, not the key given (%s)", KeyID(id.VerifierKey), KeyID(vkey))}
	}
	if vr.origin != "" && id.Origin != vr.origin {
		return &VerifyError{Index: -1, Checkpoint: -1,
			Reason: fmt.Sprintf("the log's recorded origin is %q, not %q", id.Origin, vr.origin)}
	}
	vr.origin = id.Origin
	return nil
}

type savedCheckpoint struct {
	name string
	body log.Checkpoint
	root []byte // the recomputed root at body.Size, once reached
}

func (vr *verifier) openSaved(saved []SavedCheckpoint) error {
	vr.saved = map[uint64][]*savedCheckpoint{}
	for _, s := range saved {
		n, err := note.Open(s.Note, note.VerifierList(vr.verifier))
		if err != nil {
			return &VerifyError{Index: -1, Checkpoint: -1, Reason: fmt.Sprintf("saved checkpoint %s: signature does not verify with the key: %v", s.Name, err)}
		}
		var body log.Checkpoint
		if rest, err := body.Unmarshal([]byte(n.Text)); err != nil || len(rest) != 0 {
			return &VerifyError{Index: -1, Checkpoint: -1, Reason: fmt.Sprintf("saved checkpoint %s: the signed body is not a checkpoint", s.Name)}
		}
		if vr.origin != "" && body.Origin != vr.origin {
			return &VerifyError{Index: -1, Checkpoint: int64(body.Size), Reason: fmt.Sprintf("saved checkpoint %s: origin %q, want %q", s.Name, body.Origin, vr.origin)}
		}
		vr.saved[body.Size] = append(vr.saved[body.Size], &savedCheckpoint{name: s.Name, body: body})
	}
	vr.reachSaved()
	return nil
}

// reachSaved records the recomputed root for the saved checkpoints at the
// current size.
func (vr *verifier) reachSaved() {
	cps := vr.saved[vr.rng.End()]
	if len(cps) == 0 {
		return
	}
	root, err := vr.rng.GetRootHash(nil)
	if err != nil || root == nil {
		root = rfc6962.DefaultHasher.EmptyRoot()
	}
	for _, c := range cps {
		c.root = root
	}
}

// checkSaved fails when the log of n leaves did not grow from a saved
// checkpoint: it is smaller (truncated) or differs at that size.
func (vr *verifier) checkSaved(n uint64) error {
	sizes := make([]uint64, 0, len(vr.saved))
	for size := range vr.saved {
		sizes = append(sizes, size)
	}
	slices.Sort(sizes)
	for _, size := range sizes {
		for _, c := range vr.saved[size] {
			if size > n {
				return &VerifyError{Index: int64(n), Checkpoint: int64(size),
					Reason: fmt.Sprintf("truncated: the log has %d leaves but the saved checkpoint %s covers %d (root %x)", n, c.name, size, c.body.Hash)}
			}
			if !bytes.Equal(c.root, c.body.Hash) {
				return &VerifyError{Index: -1, Checkpoint: int64(size),
					Reason: fmt.Sprintf("rewritten: at size %d the log's root is %x but the saved checkpoint %s has root %x", size, c.root, c.name, c.body.Hash)}
			}
			vr.rep.Saved++
		}
	}
	return nil
}

// checkSigned fails when entries exist that no checkpoint covers: any, if
// there is no checkpoint at all, or older than maxAge (by the database's
// clock) otherwise.
func (vr *verifier) checkSigned(ctx context.Context, maxAge time.Duration) error {
	if vr.rep.Leaves > 0 && vr.rep.Checkpoints == 0 {
		return &VerifyError{Index: 0, Checkpoint: -1,
			Reason: fmt.Sprintf("the log has %d leaves but no checkpoint: nothing vouches for them (checkpoints removed?)", vr.rep.Leaves)}
	}
	if maxAge <= 0 {
		return nil
	}
	var row struct {
		Leaf   sql.NullTime `db:"leaf"`
		Staged sql.NullTime `db:"staged"`
		Now    time.Time    `db:"now"`
	}
	// Leaves above the latest checkpoint, and staged entries the
	// integrator has not reached: both by the index on their order.
	err := vr.db.GetContext(ctx, &row, `
		SELECT (SELECT min(s.created_at) FROM audit_leaves l JOIN audit_staging s ON s.id = l.staging_id WHERE l.idx >= $1) AS leaf,
		       (SELECT min(s.created_at) FROM audit_staging s, audit_integrator w
		        WHERE w.id = 1 AND (s.xid, s.id) > (w.watermark, w.watermark_id)) AS staged,
		       now() AS now`, int64(vr.rep.Size))
	if err != nil {
		return fmt.Errorf("audit: verify: unsigned entries: %w", err)
	}
	var oldest time.Time
	for _, t := range []sql.NullTime{row.Leaf, row.Staged} {
		if t.Valid && (oldest.IsZero() || t.Time.Before(oldest)) {
			oldest = t.Time
		}
	}
	if !oldest.IsZero() && row.Now.Sub(oldest) > maxAge {
		return &VerifyError{Index: int64(vr.rep.Size), Checkpoint: int64(vr.rep.Size),
			Reason: fmt.Sprintf("entries from %s on (%s old) have no checkpoint over them, longer than the %s allowed: the latest checkpoint covers %d of %d leaves",
				oldest.UTC().Format(time.RFC3339), row.Now.Sub(oldest).Round(time.Second), maxAge, vr.rep.Size, vr.rep.Leaves)}
	}
	return nil
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

	saved map[uint64][]*savedCheckpoint // by size
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

// run verifies the log in steps: the leaves in batches (each entry
// rehashed, the tree rebuilt, every checkpoint met on the way checked, the
// batch's stored nodes compared), then the end (saved checkpoints, a
// checkpoint past the last leaf, the node count, the staging table).
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
		if err := vr.batch(ctx, batch); err != nil {
			return vr.rep, err
		}
		if opts.Progress != nil {
			opts.Progress(vr.rep.Leaves)
		}
	}
	return vr.rep, vr.end(ctx)
}

// batch verifies one batch of leaves, in index order.
func (vr *verifier) batch(ctx context.Context, batch []leafRow) error {
	begin := vr.rng.End()
	nodes := make(map[compact.NodeID][]byte, len(batch))
	visit := func(id compact.NodeID, h []byte) {
		if id.Level > 0 {
			nodes[id] = h
		}
	}
	for _, r := range batch {
		h, ok := vr.leaf(r)
		if !ok {
			break
		}
		// The tree is rebuilt from the entries, not the stored hashes.
		if err := vr.rng.Append(h, visit); err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		vr.rep.Leaves++
		vr.reachSaved()
		if err := vr.checkpointsAt(ctx); err != nil {
			return err
		}
	}
	if err := vr.checkNodes(ctx, begin, vr.rng.End(), nodes); err != nil {
		return err
	}
	if vr.fault != nil {
		return vr.fault
	}
	return nil
}

// leaf checks one leaf against its place and its entry and returns the
// hash of the entry's bytes; ok is false when the leaf cannot be placed
// in the tree at all (missing, or its entry gone).
func (vr *verifier) leaf(r leafRow) (h []byte, ok bool) {
	want := int64(vr.rng.End())
	if r.Idx != want {
		vr.fail(want, want+1, -1, "leaf missing (the next stored leaf is %d)", r.Idx)
		return nil, false
	}
	if r.ID == nil {
		vr.fail(want, want+1, -1, "its staged entry is gone")
		return nil, false
	}
	if *r.XID < vr.prevXID || (*r.XID == vr.prevXID && *r.ID <= vr.prevID) {
		// Either this leaf moved back or the one before moved forward.
		vr.fail(want-1, want, -1, "leaves %d and %d are out of staging order (moved or swapped)", want-1, want)
	}
	vr.prevXID, vr.prevID = *r.XID, *r.ID
	h = rfc6962.DefaultHasher.HashLeaf(r.Entry)
	if !bytes.Equal(h, r.LeafHash) {
		vr.fail(want, want+1, -1, "the entry's bytes do not match its leaf hash (edited or swapped)")
	}
	return h, true
}

// end checks what only the whole log shows: saved checkpoints past it,
// a stored checkpoint larger than it, the node count and the staging.
func (vr *verifier) end(ctx context.Context) error {
	n := int64(vr.rng.End())
	// Before the log's own bookkeeping: a saved checkpoint names the
	// truncation or the rewrite plainly, whatever else was removed with it.
	if err := vr.checkSaved(uint64(n)); err != nil {
		return err
	}
	if err := vr.nextCheckpoint(ctx); err != nil {
		return err
	}
	if len(vr.cps) > 0 {
		return &VerifyError{Index: n, Checkpoint: vr.cps[0].Size,
			Reason: fmt.Sprintf("the checkpoint covers %d entries but the log has %d leaves", vr.cps[0].Size, n)}
	}
	if err := vr.db.GetContext(ctx, &vr.rep.Nodes, `SELECT count(*) FROM audit_nodes`); err != nil {
		return fmt.Errorf("audit: verify: count nodes: %w", err)
	}
	if want := n - int64(bits.OnesCount64(uint64(n))); vr.rep.Nodes != want {
		return &VerifyError{Index: n, Checkpoint: -1,
			Reason: fmt.Sprintf("%d stored nodes where a tree of %d leaves has %d", vr.rep.Nodes, n, want)}
	}
	return vr.checkStaging(ctx, n)
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
		if err := vr.consistentWithPrevious(ctx, size, body.Hash); err != nil {
			bad("no valid consistency proof from the checkpoint at size %d: %v", vr.prevSize, err)
			return nil
		}
	}
	vr.prevSize, vr.prevRoot = size, body.Hash
	vr.rep.Checkpoints++
	vr.rep.Size, vr.rep.Root = uint64(size), body.Hash
	return nil
}

// consistentWithPrevious proves, from the stored tree nodes, that the tree
// of size with root extends the last checkpoint verified.
func (vr *verifier) consistentWithPrevious(ctx context.Context, size int64, root []byte) error {
	nodes, err := proof.Consistency(uint64(vr.prevSize), uint64(size))
	if err != nil {
		return err
	}
	hashes, err := fetchNodes(ctx, vr.db, nodes.IDs)
	if err != nil {
		return err
	}
	p, err := nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return err
	}
	return proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(vr.prevSize), uint64(size), p, vr.prevRoot, root)
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
