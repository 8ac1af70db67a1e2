package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Identity is what makes a log one log: the origin its checkpoints name
// and the key that signs them. It is stored once (audit_log_identity,
// migration 00007) and never changes.
type Identity struct {
	Origin string
	// VerifierKey is the note verifier key, name+hash+base64key.
	VerifierKey string
}

// KeyID is the short, printable name of a verifier key: name+hash, the
// part a note signature line carries.
func KeyID(vkey string) string {
	// A note name holds no '+', but the base64 key may.
	if parts := strings.SplitN(vkey, "+", 3); len(parts) == 3 {
		return parts[0] + "+" + parts[1]
	}
	return vkey
}

// LogState is what the database says about whose log it is.
type LogState struct {
	// Identity is the recorded identity, nil before the first checkpoint
	// (and in a log that predates the identity table, until adopted).
	Identity *Identity
	// Checkpoints reports whether any checkpoint has been signed.
	Checkpoints bool
	// LatestSigner names the key (name+hash) of the latest checkpoint's
	// signatures, for a log with checkpoints but no recorded identity.
	LatestSigner string
	// LatestOrigin is the latest checkpoint's origin line.
	LatestOrigin string
	latestNote   []byte
}

// Signed reports whether the log has an identity already, recorded or implied
// by a checkpoint: a signer then must be that one, never a new one.
func (s LogState) Signed() bool { return s.Identity != nil || s.Checkpoints }

// KeyID names the log's key for messages: the recorded one, else the latest
// checkpoint's signer.
func (s LogState) KeyID() string {
	if s.Identity != nil {
		return KeyID(s.Identity.VerifierKey)
	}
	return s.LatestSigner
}

// ReadLogState reads the recorded identity and the latest checkpoint.
func ReadLogState(ctx context.Context, q sqlx.QueryerContext) (LogState, error) {
	var st LogState
	id, err := readIdentity(ctx, q)
	if err != nil {
		return st, err
	}
	st.Identity = id
	var cpNote string
	err = sqlx.GetContext(ctx, q, &cpNote, `SELECT note FROM audit_checkpoints ORDER BY size DESC LIMIT 1`)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return st, nil
	case err != nil:
		return st, fmt.Errorf("audit: latest checkpoint: %w", err)
	}
	st.Checkpoints, st.latestNote = true, []byte(cpNote)
	st.LatestSigner = signersOf(st.latestNote)
	st.LatestOrigin = originOf(st.latestNote)
	if st.LatestSigner == "" {
		st.LatestSigner = "an unreadable signature"
	}
	return st, nil
}

func readIdentity(ctx context.Context, q sqlx.QueryerContext) (*Identity, error) {
	var row struct {
		Origin string `db:"origin"`
		Key    string `db:"verifier_key"`
	}
	err := sqlx.GetContext(ctx, q, &row, `SELECT origin, verifier_key FROM audit_log_identity WHERE id = 1`)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: log identity: %w", err)
	}
	return &Identity{Origin: row.Origin, VerifierKey: row.Key}, nil
}

// IdentityError means a signer is not the log's: signing with it would make
// checkpoints no verifier of the log accepts.
type IdentityError struct {
	// LogKey and LogOrigin are the log's (LogKey as name+hash).
	LogKey, LogOrigin string
	// Key and Origin are this signer's (Key as name+hash).
	Key, Origin string
	Reason      string
}

func (e *IdentityError) Error() string {
	return fmt.Sprintf("audit: this signer is not the log's: the log is signed by key %s with origin %q, this process has key %s with origin %q: %s",
		e.LogKey, e.LogOrigin, e.Key, e.Origin, e.Reason)
}

// Claim makes sure this Log's signer and origin are the log's identity,
// before it signs anything. A log with no checkpoint yet is anyone's: the
// first checkpoint records the identity. A log that predates the identity
// table adopts the identity of its latest checkpoint, when this signer's
// key verifies it. Any other disagreement is an *IdentityError.
func (l *Log) Claim(ctx context.Context) error {
	st, err := ReadLogState(ctx, l.db)
	if err != nil {
		return err
	}
	if st.Identity != nil {
		return l.matchIdentity(*st.Identity)
	}
	if !st.Checkpoints {
		return nil
	}
	if _, err := l.openCheckpoint(st.latestNote); err != nil {
		return &IdentityError{LogKey: st.LatestSigner, LogOrigin: st.LatestOrigin, Key: KeyID(l.vkey), Origin: l.origin,
			Reason: fmt.Sprintf("the latest checkpoint does not verify with this key and origin (%v)", err)}
	}
	if _, err := l.db.ExecContext(ctx, `INSERT INTO audit_log_identity (id, origin, verifier_key) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`,
		l.origin, l.vkey); err != nil {
		return fmt.Errorf("audit: record log identity: %w", err)
	}
	l.opts.Logger.Info("audit log identity adopted from the latest checkpoint",
		slog.String("origin", l.origin), slog.String("key", KeyID(l.vkey)))
	// Another process may have recorded a different one meanwhile.
	id, err := readIdentity(ctx, l.db)
	if err != nil {
		return err
	}
	if id == nil {
		return errors.New("audit: log identity vanished after it was recorded")
	}
	return l.matchIdentity(*id)
}

func (l *Log) matchIdentity(id Identity) error {
	if id.VerifierKey == l.vkey && id.Origin == l.origin {
		return nil
	}
	return &IdentityError{LogKey: KeyID(id.VerifierKey), LogOrigin: id.Origin, Key: KeyID(l.vkey), Origin: l.origin,
		Reason: "a log has one key and one origin for good"}
}

// openCheckpoint verifies a signed checkpoint with the log's key and origin.
func (l *Log) openCheckpoint(signed []byte) (log.Checkpoint, error) {
	n, err := note.Open(signed, note.VerifierList(l.verifier))
	if err != nil {
		return log.Checkpoint{}, fmt.Errorf("signature: %w", err)
	}
	var body log.Checkpoint
	if rest, err := body.Unmarshal([]byte(n.Text)); err != nil || len(rest) != 0 {
		return log.Checkpoint{}, errors.New("the signed body is not a checkpoint")
	}
	if body.Origin != l.origin {
		return log.Checkpoint{}, fmt.Errorf("origin %q, want %q", body.Origin, l.origin)
	}
	return body, nil
}

// signersOf names the keys (name+hash) that signed a note, without
// verifying anything: for messages about a key that is not ours.
func signersOf(signed []byte) string {
	var unverified *note.UnverifiedNoteError
	if _, err := note.Open(signed, nil); !errors.As(err, &unverified) {
		return ""
	}
	var names []string
	for _, s := range unverified.Note.UnverifiedSigs {
		names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	return strings.Join(names, ", ")
}

// originOf is an unverified note's checkpoint origin, "" when unreadable.
func originOf(signed []byte) string {
	var unverified *note.UnverifiedNoteError
	if _, err := note.Open(signed, nil); !errors.As(err, &unverified) {
		return ""
	}
	var body log.Checkpoint
	if _, err := body.Unmarshal([]byte(unverified.Note.Text)); err != nil {
		return ""
	}
	return body.Origin
}

// OpenCheckpoint verifies a signed checkpoint with v and returns its
// body; an empty origin accepts any. It is how a client of the log (the
// remote verifier in api/client, a successor log) opens a checkpoint it
// was handed.
func OpenCheckpoint(signed []byte, v note.Verifier, origin string) (log.Checkpoint, error) {
	var cp log.Checkpoint
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return cp, fmt.Errorf("signature: %w", err)
	}
	if rest, err := cp.Unmarshal([]byte(n.Text)); err != nil || len(rest) != 0 {
		return cp, errors.New("the signed text is not a checkpoint")
	}
	if origin != "" && cp.Origin != origin {
		return cp, fmt.Errorf("origin %q, want %q", cp.Origin, origin)
	}
	return cp, nil
}
