package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/jmoiron/sqlx"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// PinFileName is the pin's name in a data directory (see Options.PinFile).
const PinFileName = "checkpoint.pin"

// TrustedCheckpoint is a checkpoint the integrator must never contradict:
// every tree it signs must extend it.
type TrustedCheckpoint struct {
	// Source names where it came from, for messages.
	Source string
	Size   uint64
	Root   []byte
}

// Witness holds checkpoints of the log outside its database: the local
// pin now, independent witnesses' cosigned checkpoints later. The
// integrator asks every witness each time before it signs, so Checkpoints
// must answer from memory, and only with checkpoints whose signature it
// has already verified against the log's key.
type Witness interface {
	Checkpoints(ctx context.Context) ([]TrustedCheckpoint, error)
}

// ForkError means the tree in the database does not extend a trusted
// checkpoint: entries were rewritten or removed behind the log's back.
// The integrator signs nothing more once it has seen one.
type ForkError struct {
	Source                string
	TrustedSize, TreeSize uint64
	TrustedRoot, TreeRoot []byte
	Reason                string
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("audit: fork: the tree at size %d (root %x) does not extend the %s checkpoint at size %d (root %x): %s",
		e.TreeSize, e.TreeRoot, e.Source, e.TrustedSize, e.TrustedRoot, e.Reason)
}

// Status is the integrator's health, for readiness checks and metrics.
type Status struct {
	// Halted is set once a fork or a foreign identity was found; the
	// integrator then signs nothing until the process restarts.
	Halted bool
	Reason string
	// CheckpointSize is the size of the latest checkpoint this process
	// signed or verified, -1 before any.
	CheckpointSize int64
	// PinnedSize is the pin's size, -1 when there is no pin.
	PinnedSize int64
	// Leader is set while this process holds the integrator's election:
	// from the lock's grant until just before its connection, and so the
	// lock, is given up.
	Leader bool
}

// Status reports the integrator's health.
func (l *Log) Status() Status {
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	st := Status{CheckpointSize: l.cpSeen, PinnedSize: -1, Leader: l.leader}
	if l.halt != nil {
		st.Halted, st.Reason = true, l.halt.Error()
	}
	if l.pin != nil {
		if cp := l.pin.latest(); cp != nil {
			st.PinnedSize = int64(cp.Size)
		}
	}
	return st
}

func (l *Log) halted() error {
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	return l.halt
}

// stopOn halts the integrator for good when err says the log cannot be
// trusted; other errors are retried as before.
func (l *Log) stopOn(err error) {
	var fe *ForkError
	var ie *IdentityError
	if !errors.As(err, &fe) && !errors.As(err, &ie) {
		return
	}
	l.statusMu.Lock()
	first := l.halt == nil
	if first {
		l.halt = err
	}
	l.statusMu.Unlock()
	if !first {
		return
	}
	attrs := []any{slog.Any("err", err)}
	if fe != nil {
		attrs = append(attrs, slog.String("source", fe.Source),
			slog.Uint64("trusted_size", fe.TrustedSize), slog.String("trusted_root", fmt.Sprintf("%x", fe.TrustedRoot)),
			slog.Uint64("tree_size", fe.TreeSize), slog.String("tree_root", fmt.Sprintf("%x", fe.TreeRoot)))
	}
	l.opts.Logger.Error("audit integrator halted: it signs nothing more until restarted with the log repaired", attrs...)
}

func (l *Log) sawCheckpoint(size int64) {
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	l.cpSeen = max(l.cpSeen, size)
}

// checkTrust proves that the tree of the given size and root, whose nodes
// q can read, extends every trusted checkpoint: the database's latest, the
// pin and the witnesses'. Each costs one consistency proof, O(log n) nodes
// in one query. It returns the database's latest checkpoint, nil when none.
func (l *Log) checkTrust(ctx context.Context, q sqlx.QueryerContext, size uint64, root []byte) (*storedCheckpoint, error) {
	var trusted []TrustedCheckpoint
	var latest storedCheckpoint
	err := sqlx.GetContext(ctx, q, &latest, `SELECT size, root, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1`)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("audit: latest checkpoint: %w", err)
	default:
		body, err := l.openCheckpoint([]byte(latest.Note))
		if err == nil && (body.Size != uint64(latest.Size) || !bytes.Equal(body.Hash, latest.Root)) {
			err = errors.New("the signed size and root are not the stored ones")
		}
		if err != nil {
			return nil, &ForkError{Source: "database's latest", TrustedSize: uint64(latest.Size), TrustedRoot: latest.Root,
				TreeSize: size, TreeRoot: root, Reason: fmt.Sprintf("it is not a checkpoint of this log: %v", err)}
		}
		trusted = append(trusted, TrustedCheckpoint{Source: "database's latest", Size: body.Size, Root: body.Hash})
	}
	witnesses := l.opts.Witnesses
	if l.pin != nil {
		witnesses = append([]Witness{l.pin}, witnesses...)
	}
	for _, w := range witnesses {
		cps, err := w.Checkpoints(ctx)
		if err != nil {
			return nil, fmt.Errorf("audit: trusted checkpoints: %w", err)
		}
		trusted = append(trusted, cps...)
	}
	for i, t := range trusted {
		// The pin is mostly the database's latest: one proof will do.
		if i > 0 && t.Size == trusted[0].Size && bytes.Equal(t.Root, trusted[0].Root) {
			continue
		}
		if err := extends(ctx, q, t, size, root); err != nil {
			return nil, err
		}
	}
	if latest.Note == "" {
		return nil, nil
	}
	return &latest, nil
}

// extends proves the tree (size, root) extends t, from the stored nodes.
func extends(ctx context.Context, q sqlx.QueryerContext, t TrustedCheckpoint, size uint64, root []byte) error {
	fork := func(format string, args ...any) error {
		return &ForkError{Source: t.Source, TrustedSize: t.Size, TrustedRoot: t.Root, TreeSize: size, TreeRoot: root,
			Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case t.Size > size:
		return fork("the tree is smaller than the checkpoint: entries were removed (truncated)")
	case t.Size == size:
		if !bytes.Equal(t.Root, root) {
			return fork("the roots differ at the same size: entries were rewritten")
		}
		return nil
	}
	nodes, err := proof.Consistency(t.Size, size)
	if err != nil {
		return fmt.Errorf("audit: consistency proof: %w", err)
	}
	hashes, err := fetchNodes(ctx, q, nodes.IDs)
	if err != nil {
		return err
	}
	p, err := nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return fmt.Errorf("audit: consistency proof: %w", err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, t.Size, size, p, t.Root, root); err != nil {
		return fork("no consistency proof from the stored tree (%v): entries below %d were rewritten", err, t.Size)
	}
	return nil
}

// pinFile is the latest checkpoint this data directory has signed or
// verified, kept outside the database so that a rewrite of the database
// (checkpoints included) cannot make the integrator forget it.
type pinFile struct {
	path string
	mu   sync.Mutex
	cp   *TrustedCheckpoint
}

func (p *pinFile) latest() *TrustedCheckpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cp
}

func (p *pinFile) Checkpoints(context.Context) ([]TrustedCheckpoint, error) {
	if cp := p.latest(); cp != nil {
		return []TrustedCheckpoint{*cp}, nil
	}
	return nil, nil
}

// load reads the pin from disk; no file is no pin. A pin the log's key does
// not verify belongs to another log: that is an *IdentityError.
func (p *pinFile) load(l *Log) error {
	b, err := os.ReadFile(p.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: read pin: %w", err)
	}
	body, err := l.openCheckpoint(b)
	if err != nil {
		signer := "an unknown key"
		if s := signersOf(b); s != "" {
			signer = s
		}
		return &IdentityError{LogKey: signer, LogOrigin: originOf(b), Key: KeyID(l.vkey), Origin: l.origin,
			Reason: fmt.Sprintf("the pin %s does not verify (%v): this data directory served another log", p.path, err)}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cp == nil || body.Size >= p.cp.Size {
		p.cp = &TrustedCheckpoint{Source: "pinned (" + p.path + ")", Size: body.Size, Root: body.Hash}
	}
	return nil
}

// advance pins signed, a checkpoint of (size, root) that is committed and
// verified, when it is newer than the pin. It never moves the pin back.
func (p *pinFile) advance(signed []byte, size uint64, root []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cp != nil && size <= p.cp.Size {
		return nil
	}
	if err := writeFileAtomic(p.path, signed); err != nil {
		return fmt.Errorf("audit: write pin: %w", err)
	}
	p.cp = &TrustedCheckpoint{Source: "pinned (" + p.path + ")", Size: size, Root: root}
	return nil
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old file or the new one, both complete.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// observeCheckpoint pins a checkpoint this process serves or reads but did
// not sign (a standby's view of the leader's work), once its signature
// verifies and it provably extends the pin. A checkpoint that does not
// extend the pin halts the integrator, as a fork found at signing does.
func (l *Log) observeCheckpoint(ctx context.Context, size uint64, signed []byte) {
	if l.pin == nil {
		return
	}
	cur := l.pin.latest()
	if cur != nil && size <= cur.Size {
		return // the common case, checked before any signature
	}
	body, err := l.openCheckpoint(signed)
	if err != nil {
		return
	}
	// Serving must not queue behind a slow pin write: one observer at a time.
	if !l.observeMu.TryLock() {
		return
	}
	defer l.observeMu.Unlock()
	if cur != nil {
		if err := extends(ctx, l.db, *cur, body.Size, body.Hash); err != nil {
			l.stopOn(err)
			return
		}
	}
	if err := l.pin.advance(signed, body.Size, body.Hash); err != nil {
		l.opts.Logger.Warn("audit: could not advance the pin", slog.Any("err", err))
	}
}
