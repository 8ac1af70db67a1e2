package audit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/mod/sumdb/note"
)

// EntryPredecessor is the type of the entry that opens a log succeeding
// another: after the old log's key was compromised, its last trusted
// checkpoint becomes the new log's first leaf, so that every checkpoint of
// the new log commits to where the old one ended.
const EntryPredecessor = "log.predecessor"

// Predecessor is the record of an EntryPredecessor entry.
type Predecessor struct {
	Origin      string `json:"origin"`
	Size        uint64 `json:"size"`
	RootHash    string `json:"root_hash"` // base64, as in the checkpoint
	VerifierKey string `json:"verifier_key"`
	// Checkpoint is the old log's signed checkpoint, verbatim.
	Checkpoint string `json:"checkpoint"`
	Reason     string `json:"reason,omitempty"`
}

// ErrLogNotEmpty is returned by Succeed for a log that has entries already.
var ErrLogNotEmpty = errors.New("audit: the log already has entries; a predecessor can only be its first")

// Succeed records, as the first entry of an empty log, the final signed
// checkpoint of the log it succeeds. The checkpoint must verify with
// verifierKey, and its origin must differ from newOrigin (a successor is
// another log, with another origin and key). Writers are shut out while it
// checks that nothing is staged, so nothing can take index 0 before it.
func Succeed(ctx context.Context, db *sqlx.DB, checkpoint []byte, verifierKey, newOrigin, actor, reason string, now time.Time) (Predecessor, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return Predecessor{}, fmt.Errorf("audit: predecessor's verifier key: %w", err)
	}
	cp, err := OpenCheckpoint(checkpoint, v, "")
	if err != nil {
		return Predecessor{}, fmt.Errorf("audit: predecessor's checkpoint: %w", err)
	}
	if cp.Origin == newOrigin {
		return Predecessor{}, fmt.Errorf("audit: the new log's origin %q is the predecessor's; a successor needs its own origin (DOCKET_LOG_ORIGIN)", newOrigin)
	}
	p := Predecessor{Origin: cp.Origin, Size: cp.Size, RootHash: base64.StdEncoding.EncodeToString(cp.Hash),
		VerifierKey: verifierKey, Checkpoint: string(checkpoint), Reason: reason}

	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return Predecessor{}, fmt.Errorf("audit: succeed: %w", err)
	}
	defer tx.Rollback()
	// EXCLUSIVE conflicts with the ROW EXCLUSIVE of every insert: a writer
	// still in flight is waited for (and then seen), a later one waits.
	if _, err := tx.ExecContext(ctx, `LOCK TABLE audit_staging IN EXCLUSIVE MODE`); err != nil {
		return Predecessor{}, fmt.Errorf("audit: succeed: %w", err)
	}
	var staged bool
	if err := tx.GetContext(ctx, &staged, `SELECT EXISTS (SELECT 1 FROM audit_staging)`); err != nil {
		return Predecessor{}, fmt.Errorf("audit: succeed: %w", err)
	}
	if staged {
		return Predecessor{}, ErrLogNotEmpty
	}
	if _, err := Append(ctx, tx, Entry{Type: EntryPredecessor, Time: now, Actor: actor,
		Subject: Subject{Kind: "log", ID: cp.Origin}, Record: p}); err != nil {
		return Predecessor{}, err
	}
	if err := tx.Commit(); err != nil {
		return Predecessor{}, fmt.Errorf("audit: succeed: %w", err)
	}
	return p, nil
}
