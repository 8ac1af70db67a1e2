package audit

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Options tune the integrator. Zero values take the defaults.
type Options struct {
	// CheckpointInterval is the least time between two checkpoints, and so
	// the longest a new leaf waits for one. Default 250ms; negative signs a
	// checkpoint after every batch that adds leaves.
	CheckpointInterval time.Duration
	// PollInterval is how often an idle integrator looks for new entries.
	// Default 20ms.
	PollInterval time.Duration
	// BatchSize caps the leaves one integration transaction adds. Default 20000.
	BatchSize int
	// LockRetry is how often a standby integrator tries to take over. Default 1s.
	LockRetry time.Duration
	// PinFile, when set, is where the integrator keeps the latest
	// checkpoint it signed or verified (`docket serve` puts it in the data
	// directory, PinFileName): outside the database, so that a rewrite of
	// the database, checkpoints and all, still meets a checkpoint it must
	// extend. Empty: no pin.
	PinFile string
	// Witnesses hold further checkpoints every signed tree must extend.
	Witnesses []Witness
	Logger    *slog.Logger
	Now       func() time.Time
}

func (o Options) withDefaults() Options {
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = 250 * time.Millisecond
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 20 * time.Millisecond
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 20000
	}
	if o.LockRetry <= 0 {
		o.LockRetry = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ErrNotFound means the entry, checkpoint or tree size asked for does not
// exist (yet).
var ErrNotFound = errors.New("audit: not found")

// ErrInvalid means a request's arguments are impossible (an index beyond
// the size it is proven in, a consistency proof from a larger size).
var ErrInvalid = errors.New("audit: invalid request")

// lockSQL elects the one integrator of a database. The lock is held by a
// session, so it dies with the connection of a crashed holder.
const lockSQL = `SELECT pg_try_advisory_lock(hashtextextended('docket.audit/integrator', 0))`

// Log is the transparency log over the audit tables: the integrator that
// turns staged entries into leaves and signed checkpoints, and the reads
// and proofs served from them.
type Log struct {
	db       *sqlx.DB
	signer   note.Signer
	verifier note.Verifier
	vkey     string
	origin   string
	opts     Options
	rf       *compact.RangeFactory

	// mu serializes integration within the process; the row lock on
	// audit_integrator serializes it across processes.
	mu sync.Mutex
	// st is the integrator's view of the tree; nil means "reload from the
	// database", after a start or any failure.
	st *treeState
	// identityOK is set once the identity row is known to be ours: the
	// table is insert-only, so it stays so.
	identityOK bool

	pin       *pinFile
	observeMu sync.Mutex

	// statusMu guards what Status reports; never held across I/O.
	statusMu sync.Mutex
	halt     error // the fork or identity error that stopped signing
	cpSeen   int64
	// Counters and the leader flag behind Status.
	leader                                     bool
	integrated, signed, signFailures, failures uint64
}

// treeState is what the integrator keeps between batches.
type treeState struct {
	rng    *compact.Range
	wmXID  uint64
	wmID   int64
	cpSize int64 // latest stored checkpoint's size, -1 when none
	cpAt   time.Time
}

// NewLog returns a log signing checkpoints for origin with signer, whose
// public half is verifierKey.
func NewLog(db *sqlx.DB, signer note.Signer, verifierKey, origin string, opts Options) (*Log, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return nil, fmt.Errorf("audit: verifier key: %w", err)
	}
	if v.Name() != signer.Name() || v.KeyHash() != signer.KeyHash() {
		return nil, fmt.Errorf("audit: verifier key %q is not the signer's (%s+%08x)", verifierKey, signer.Name(), signer.KeyHash())
	}
	if origin == "" {
		return nil, errors.New("audit: empty origin")
	}
	l := &Log{db: db, signer: signer, verifier: v, vkey: verifierKey, origin: origin, cpSeen: -1,
		opts: opts.withDefaults(), rf: &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}}
	if opts.PinFile != "" {
		// Loaded now, so that a pin of another log stops the start and a
		// standby never writes a pin older than the one on disk.
		l.pin = &pinFile{path: opts.PinFile}
		if err := l.pin.load(l); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// VerifierKey is the note verifier key (name+hash+base64key) of the log's signer.
func (l *Log) VerifierKey() string { return l.vkey }

// Origin is the checkpoints' origin line.
func (l *Log) Origin() string { return l.origin }

// Verifier checks the log's signatures.
func (l *Log) Verifier() note.Verifier { return l.verifier }

// Run competes for the integrator lock and, while holding it, integrates
// until ctx ends. A process that loses keeps retrying, so that it takes
// over when the holder dies. On the way out the leader makes one last pass
// and signs a checkpoint, so entries committed before shutdown are covered.
func (l *Log) Run(ctx context.Context) error {
	lg := l.opts.Logger
	for {
		_, err := l.term(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			lg.Error("audit integrator failed; retrying", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.opts.LockRetry):
		}
	}
}

// term is one attempt at leadership: it reports whether it led.
func (l *Log) term(ctx context.Context) (bool, error) {
	conn, err := l.db.Connx(ctx)
	if err != nil {
		return false, fmt.Errorf("audit: integrator connection: %w", err)
	}
	// A pooled connection would keep the session lock: discard it instead.
	defer func() {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
	}()
	var ok bool
	if err := conn.GetContext(ctx, &ok, lockSQL); err != nil {
		return false, fmt.Errorf("audit: integrator lock: %w", err)
	}
	if !ok {
		return false, nil
	}
	l.setLeader(true)
	l.opts.Logger.Info("audit integrator elected", slog.String("origin", l.origin))
	err = l.lead(ctx, conn)
	// Said before the deferred discard gives up the lock, so that a
	// successor's "elected" never precedes it: the crash harness checks
	// from these two lines that terms never overlap.
	l.setLeader(false)
	l.opts.Logger.Info("audit integrator stepped down")
	return true, err
}

func (l *Log) lead(ctx context.Context, conn *sqlx.Conn) error {
	for {
		res, err := l.integrate(ctx, conn, false)
		if err != nil {
			if l.halted() != nil {
				// Keep the lock: a standby with no pin must not take
				// over and sign the fork this one refused.
				<-ctx.Done()
				return nil
			}
			if ctx.Err() != nil {
				return l.finalPass(conn)
			}
			return err
		}
		if res.full {
			continue
		}
		wait := l.opts.PollInterval
		if res.cpPending && res.cpWait < wait {
			wait = max(res.cpWait, time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return l.finalPass(conn)
		case <-time.After(wait):
		}
	}
}

// finalPass integrates what committed before shutdown and signs it.
func (l *Log) finalPass(conn *sqlx.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		res, err := l.integrate(ctx, conn, true)
		if err != nil {
			return err
		}
		if !res.full {
			return nil
		}
	}
}

// IntegrateOnce runs one integration batch without the election: it adds
// up to BatchSize leaves and signs a checkpoint when one is due (always
// when the log has none). It is safe beside a running integrator, which it
// waits for. It returns how many leaves it added.
func (l *Log) IntegrateOnce(ctx context.Context) (int, error) {
	res, err := l.integrate(ctx, l.db, false)
	return res.n, err
}

type txBeginner interface {
	BeginTxx(ctx context.Context, opts *sql.TxOptions) (*sqlx.Tx, error)
}

type batchResult struct {
	n         int
	full      bool          // the batch hit BatchSize: more may be waiting
	cpPending bool          // leaves exist that no checkpoint covers yet
	cpWait    time.Duration // until the next checkpoint may be signed
	signed    bool          // the batch signed a checkpoint
}

// stagedRow is one staging row taken by a batch.
type stagedRow struct {
	ID    int64  `db:"id"`
	XID   uint64 `db:"xid"`
	Entry []byte `db:"entry"`
}

// integrate is one transaction: lock the watermark row, take the staging
// rows of every transaction older than the oldest running one, in (xid,
// id) order, give them the next indices, store leaves, nodes and maybe a
// checkpoint, advance the watermark.
func (l *Log) integrate(ctx context.Context, b txBeginner, forceCP bool) (batchResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.halted(); err != nil {
		return batchResult{}, err
	}
	now := l.opts.Now()

	// An idle poll costs one cheap read, not a transaction with a row lock.
	if st := l.st; st != nil && !forceCP && !l.checkpointDue(st, int64(st.rng.End()), now) {
		var exists bool
		err := sqlx.GetContext(ctx, l.queryer(b), &exists, `
			SELECT EXISTS (SELECT 1 FROM audit_staging
				WHERE (xid, id) > ($1::text::xid8, $2) AND xid < pg_snapshot_xmin(pg_current_snapshot()))`,
			strconv.FormatUint(st.wmXID, 10), st.wmID)
		if err != nil {
			l.st = nil
			return batchResult{}, fmt.Errorf("audit: poll staging: %w", err)
		}
		if !exists {
			return l.pending(st, now), nil
		}
	}

	res, err := l.integrateTx(ctx, b, now, forceCP)
	l.count(res, err)
	if err != nil {
		l.st = nil
		l.stopOn(err)
	}
	return res, err
}

func (l *Log) setLeader(on bool) {
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	l.leader = on
}

// count adds a batch's outcome to the figures Status reports.
func (l *Log) count(res batchResult, err error) {
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	if err != nil {
		l.failures++
		var se *signError
		if errors.As(err, &se) {
			l.signFailures++
		}
		return
	}
	l.integrated += uint64(res.n)
	if res.signed {
		l.signed++
	}
}

// signError marks a failure of the signer itself, counted apart: a key
// that can no longer sign (a revoked or unreachable KMS key) leaves the
// log growing with no checkpoint, which only this figure shows at once.
type signError struct{ err error }

func (e *signError) Error() string { return "audit: sign checkpoint: " + e.err.Error() }
func (e *signError) Unwrap() error { return e.err }

func (l *Log) queryer(b txBeginner) sqlx.QueryerContext {
	if q, ok := b.(sqlx.QueryerContext); ok {
		return q
	}
	return l.db
}

func (l *Log) checkpointDue(st *treeState, size int64, now time.Time) bool {
	if st.cpSize < 0 {
		return true
	}
	if size <= st.cpSize {
		return false
	}
	return l.opts.CheckpointInterval < 0 || now.Sub(st.cpAt) >= l.opts.CheckpointInterval
}

func (l *Log) pending(st *treeState, now time.Time) batchResult {
	if int64(st.rng.End()) <= st.cpSize {
		return batchResult{}
	}
	return batchResult{cpPending: true, cpWait: l.opts.CheckpointInterval - now.Sub(st.cpAt)}
}

// integrateTx is one batch, in one transaction, as named steps: lock the
// watermark, find the tree, read what is staged and hash it in, store the
// hashes, move the watermark, sign when due; then, once committed, pin.
func (l *Log) integrateTx(ctx context.Context, b txBeginner, now time.Time, forceCP bool) (batchResult, error) {
	tx, err := b.BeginTxx(ctx, nil)
	if err != nil {
		return batchResult{}, fmt.Errorf("audit: integrate: begin: %w", err)
	}
	defer tx.Rollback()

	wm, err := lockWatermark(ctx, tx)
	if err != nil {
		return batchResult{}, err
	}
	st, err := l.tree(ctx, tx)
	if err != nil {
		return batchResult{}, err
	}
	st.wmXID, st.wmID = wm.XID, wm.ID
	bt, err := l.readStaged(ctx, tx, st, wm)
	if err != nil {
		return batchResult{}, err
	}
	n, newSize := len(bt.idxs), int64(bt.rng.End())
	due := l.checkpointDue(st, newSize, now) || (forceCP && newSize > st.cpSize)
	if n == 0 && !due {
		// Keep what was read: a state reloaded here is the database's.
		l.st = st
		return l.pending(st, now), nil
	}
	if err := storeHashes(ctx, tx, bt, now); err != nil {
		return batchResult{}, err
	}
	full := n == l.opts.BatchSize
	newWM, err := advanceWatermark(ctx, tx, wm, bt, full)
	if err != nil {
		return batchResult{}, err
	}
	var signed, root []byte
	if due {
		if signed, root, err = l.signCheckpoint(ctx, tx, bt.rng, now); err != nil {
			return batchResult{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return batchResult{}, fmt.Errorf("audit: integrate: commit: %w", err)
	}
	if signed != nil {
		l.pinCommitted(signed, newSize, root)
	}
	l.st = &treeState{rng: bt.rng, wmXID: newWM.XID, wmID: newWM.ID, cpSize: st.cpSize, cpAt: st.cpAt}
	if due {
		l.st.cpSize, l.st.cpAt = newSize, now
	}
	res := l.pending(l.st, now)
	res.n, res.full, res.signed = n, full, signed != nil
	return res, nil
}

// watermark is the integrator's position in staging order (xid, id).
type watermark struct {
	XID uint64 `db:"watermark"`
	ID  int64  `db:"watermark_id"`
}

// lockWatermark reads the watermark under a row lock, which makes
// integrators take turns even without the election.
func lockWatermark(ctx context.Context, tx *sqlx.Tx) (watermark, error) {
	var wm watermark
	if err := tx.GetContext(ctx, &wm, `SELECT watermark, watermark_id FROM audit_integrator WHERE id = 1 FOR UPDATE`); err != nil {
		return wm, fmt.Errorf("audit: integrate: watermark: %w", err)
	}
	return wm, nil
}

// tree returns the tree the log has now: the one in memory when the
// database agrees on both its size and its latest checkpoint, else the
// stored one, proven to extend what we trust (a start, a takeover, or a
// tree grown or signed by another integrator). The size alone is not
// enough: another integrator may have signed the very size this one
// left unsigned, and signing it again would collide with that checkpoint.
func (l *Log) tree(ctx context.Context, tx *sqlx.Tx) (*treeState, error) {
	var cur struct {
		Size int64 `db:"size"`
		CP   int64 `db:"cp"`
	}
	if err := tx.GetContext(ctx, &cur, `SELECT (SELECT coalesce(max(idx) + 1, 0) FROM audit_leaves) AS size,
		(SELECT coalesce(max(size), -1) FROM audit_checkpoints) AS cp`); err != nil {
		return nil, fmt.Errorf("audit: integrate: size: %w", err)
	}
	if st := l.st; st != nil && int64(st.rng.End()) == cur.Size && st.cpSize == cur.CP {
		return st, nil
	}
	st, err := l.loadState(ctx, tx, cur.Size)
	if err != nil {
		return nil, err
	}
	// Pins the database's latest checkpoint once the tree extends it.
	if err := l.takeOver(ctx, tx, st); err != nil {
		return nil, err
	}
	return st, nil
}

// batch is what one integration appends: leaves, the complete subtrees
// they finish, and the range after them.
type batch struct {
	rng                        *compact.Range
	cur                        uint64 // the snapshot's xmin
	last                       stagedRow
	idxs, sids, nlevels, nidxs []int64
	leafHashes, nodeHashes     [][]byte
}

// readStaged takes the staged rows past the watermark whose transactions
// have all ended (below the snapshot's xmin: nothing can commit behind an
// index given here), in order, and hashes them onto a copy of the range.
func (l *Log) readStaged(ctx context.Context, tx *sqlx.Tx, st *treeState, wm watermark) (*batch, error) {
	bt := &batch{}
	if err := tx.GetContext(ctx, &bt.cur, `SELECT pg_snapshot_xmin(pg_current_snapshot())`); err != nil {
		return nil, fmt.Errorf("audit: integrate: snapshot: %w", err)
	}
	rng, err := l.rf.NewRange(0, st.rng.End(), append([][]byte(nil), st.rng.Hashes()...))
	if err != nil {
		return nil, fmt.Errorf("audit: integrate: %w", err)
	}
	bt.rng = rng
	rows, err := tx.QueryxContext(ctx, `
		SELECT id, xid, entry FROM audit_staging
		WHERE (xid, id) > ($1::text::xid8, $2) AND xid < $3::text::xid8
		ORDER BY xid, id LIMIT $4`,
		strconv.FormatUint(wm.XID, 10), wm.ID, strconv.FormatUint(bt.cur, 10), l.opts.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("audit: integrate: read staging: %w", err)
	}
	defer rows.Close()
	visit := func(id compact.NodeID, h []byte) {
		if id.Level > 0 {
			bt.nlevels = append(bt.nlevels, int64(id.Level))
			bt.nidxs = append(bt.nidxs, int64(id.Index))
			bt.nodeHashes = append(bt.nodeHashes, h)
		}
	}
	for rows.Next() {
		if err := rows.StructScan(&bt.last); err != nil {
			return nil, fmt.Errorf("audit: integrate: scan staging: %w", err)
		}
		h := rfc6962.DefaultHasher.HashLeaf(bt.last.Entry)
		bt.idxs = append(bt.idxs, int64(rng.End()))
		bt.sids = append(bt.sids, bt.last.ID)
		bt.leafHashes = append(bt.leafHashes, h)
		if err := rng.Append(h, visit); err != nil {
			return nil, fmt.Errorf("audit: integrate: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: integrate: read staging: %w", err)
	}
	return bt, nil
}

// storeHashes inserts the batch's leaves and completed subtrees. The
// primary key on idx is the last guard against a second integrator that
// somehow shares our view of the size.
func storeHashes(ctx context.Context, tx *sqlx.Tx, bt *batch, now time.Time) error {
	if len(bt.idxs) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO audit_leaves (idx, staging_id, leaf_hash, integrated_at)
		SELECT i, s, h, $4 FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) AS t(i, s, h)`,
		pq.Int64Array(bt.idxs), pq.Int64Array(bt.sids), pq.ByteaArray(bt.leafHashes), now); err != nil {
		return fmt.Errorf("audit: integrate: insert leaves: %w", err)
	}
	if len(bt.nlevels) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO audit_nodes (level, idx, hash)
		SELECT l, i, h FROM unnest($1::int[], $2::bigint[], $3::bytea[]) AS t(l, i, h)`,
		pq.Int64Array(bt.nlevels), pq.Int64Array(bt.nidxs), pq.ByteaArray(bt.nodeHashes)); err != nil {
		return fmt.Errorf("audit: integrate: insert nodes: %w", err)
	}
	return nil
}

// advanceWatermark moves the watermark past what the batch took: to its
// last row when the batch was cut short by its size, else to the snapshot's
// xmin, below which every row is now a leaf.
func advanceWatermark(ctx context.Context, tx *sqlx.Tx, wm watermark, bt *batch, full bool) (watermark, error) {
	next := wm
	if full {
		next.XID, next.ID = bt.last.XID, bt.last.ID
	} else if bt.cur > wm.XID {
		next.XID, next.ID = bt.cur, 0
	}
	if next == wm {
		return wm, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_integrator SET watermark = $1::text::xid8, watermark_id = $2 WHERE id = 1`,
		strconv.FormatUint(next.XID, 10), next.ID); err != nil {
		return wm, fmt.Errorf("audit: integrate: watermark: %w", err)
	}
	return next, nil
}

// signCheckpoint signs the range's root and stores the checkpoint, after
// proving that the new tree, this batch's nodes included, extends every
// checkpoint we trust: never sign a fork.
func (l *Log) signCheckpoint(ctx context.Context, tx *sqlx.Tx, rng *compact.Range, now time.Time) (signed, root []byte, err error) {
	size := int64(rng.End())
	if root, err = rng.GetRootHash(nil); err != nil {
		return nil, nil, fmt.Errorf("audit: integrate: root: %w", err)
	}
	if root == nil {
		root = rfc6962.DefaultHasher.EmptyRoot()
	}
	if _, err := l.checkTrust(ctx, tx, uint64(size), root); err != nil {
		return nil, nil, err
	}
	if err := l.recordIdentity(ctx, tx); err != nil {
		return nil, nil, err
	}
	if signed, err = l.sign(uint64(size), root); err != nil {
		return nil, nil, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4)`,
		size, root, string(signed), now); err != nil {
		return nil, nil, fmt.Errorf("audit: integrate: insert checkpoint: %w", err)
	}
	return signed, root, nil
}

// pinCommitted pins a checkpoint once its transaction committed: a pin
// ahead of the log would read as a truncation on the next start.
func (l *Log) pinCommitted(signed []byte, size int64, root []byte) {
	l.identityOK = true // committed with this checkpoint
	l.sawCheckpoint(size)
	if l.pin != nil {
		if err := l.pin.advance(signed, uint64(size), root); err != nil {
			l.opts.Logger.Error("audit: checkpoint signed but not pinned", slog.Int64("size", size), slog.Any("err", err))
		}
	}
}

func (l *Log) sign(size uint64, root []byte) ([]byte, error) {
	body := log.Checkpoint{Origin: l.origin, Size: size, Hash: root}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(body)}, l.signer)
	if err != nil {
		return nil, &signError{err}
	}
	return signed, nil
}

// loadState rebuilds the compact range of the first size leaves from the
// stored nodes (at most one per level), and finds the latest checkpoint.
func (l *Log) loadState(ctx context.Context, q sqlx.QueryerContext, size int64) (*treeState, error) {
	ids := compact.RangeNodes(0, uint64(size), nil)
	hashes, err := fetchNodes(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	rng, err := l.rf.NewRange(0, uint64(size), hashes)
	if err != nil {
		return nil, fmt.Errorf("audit: rebuild tree: %w", err)
	}
	var cp struct {
		Size sql.NullInt64 `db:"size"`
		At   sql.NullTime  `db:"created_at"`
	}
	if err := sqlx.GetContext(ctx, q, &cp, `SELECT size, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1`); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("audit: latest checkpoint: %w", err)
	}
	st := &treeState{rng: rng, cpSize: -1}
	if cp.Size.Valid {
		st.cpSize, st.cpAt = cp.Size.Int64, cp.At.Time
	}
	return st, nil
}

// fetchNodes reads the hashes of the given nodes in one query, in order:
// level 0 from the leaves, the rest from audit_nodes.
func fetchNodes(ctx context.Context, q sqlx.QueryerContext, ids []compact.NodeID) ([][]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	levels := make([]int64, len(ids))
	idxs := make([]int64, len(ids))
	for i, id := range ids {
		levels[i], idxs[i] = int64(id.Level), int64(id.Index)
	}
	// LATERAL keeps each lookup an index probe whatever the planner
	// thinks of the array's length.
	rows, err := q.QueryxContext(ctx, `
		SELECT w.ord, h.hash
		FROM unnest($1::int[], $2::bigint[]) WITH ORDINALITY AS w(level, idx, ord)
		LEFT JOIN LATERAL (
			SELECT n.hash FROM audit_nodes n WHERE w.level > 0 AND n.level = w.level AND n.idx = w.idx
			UNION ALL
			SELECT l.leaf_hash FROM audit_leaves l WHERE w.level = 0 AND l.idx = w.idx
		) h ON true
		ORDER BY w.ord`, pq.Int64Array(levels), pq.Int64Array(idxs))
	if err != nil {
		return nil, fmt.Errorf("audit: read nodes: %w", err)
	}
	defer rows.Close()
	out := make([][]byte, len(ids))
	for rows.Next() {
		var ord int64
		var h []byte
		if err := rows.Scan(&ord, &h); err != nil {
			return nil, fmt.Errorf("audit: read nodes: %w", err)
		}
		out[ord-1] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: read nodes: %w", err)
	}
	for i, h := range out {
		if h == nil {
			return nil, fmt.Errorf("audit: node %d/%d is missing", ids[i].Level, ids[i].Index)
		}
	}
	return out, nil
}

// takeOver checks a freshly loaded tree against the trusted checkpoints
// and advances the pin to the database's latest checkpoint.
func (l *Log) takeOver(ctx context.Context, tx *sqlx.Tx, st *treeState) error {
	if l.pin != nil {
		if err := l.pin.load(l); err != nil {
			return err
		}
	}
	root, err := st.rng.GetRootHash(nil)
	if err != nil {
		return fmt.Errorf("audit: integrate: root: %w", err)
	}
	if root == nil {
		root = rfc6962.DefaultHasher.EmptyRoot()
	}
	latest, err := l.checkTrust(ctx, tx, st.rng.End(), root)
	if err != nil {
		return err
	}
	if latest == nil {
		return nil
	}
	l.sawCheckpoint(latest.Size)
	if l.pin != nil {
		if err := l.pin.advance([]byte(latest.Note), uint64(latest.Size), latest.Root); err != nil {
			l.opts.Logger.Warn("audit: could not advance the pin", slog.Any("err", err))
		}
	}
	return nil
}

// recordIdentity makes sure the log's identity is this signer's, recording
// it with the first checkpoint (or adopting it for a log older than the
// identity table, whose latest checkpoint checkTrust just verified with
// this key), in the checkpoint's transaction.
func (l *Log) recordIdentity(ctx context.Context, tx *sqlx.Tx) error {
	if l.identityOK {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log_identity (id, origin, verifier_key) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`,
		l.origin, l.vkey); err != nil {
		return fmt.Errorf("audit: integrate: record identity: %w", err)
	}
	id, err := readIdentity(ctx, tx)
	if err != nil {
		return err
	}
	if id == nil {
		return errors.New("audit: integrate: the log identity is missing")
	}
	return l.matchIdentity(*id)
}
