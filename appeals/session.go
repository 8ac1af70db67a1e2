package appeals

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/docket-dev/docket"
)

// Console sessions. A browser signs in with a bearer token once and then
// holds a session id instead (api/console): 256 random bits, stored only as
// their SHA-256, like a token's secret. A session is linked to its token,
// so revoking the token ends every session opened with it at once (each
// look-up joins the token and refuses a revoked one, and a token whose
// NAME's binding disagrees, as Authenticate does). It also ends when idle
// for its idle time, at its absolute expiry, and when signed out.

// SessionLimits are a session's idle and absolute lifetimes.
type SessionLimits struct {
	Idle, Absolute time.Duration
}

// Default session lifetimes.
const (
	DefaultSessionIdle     = 30 * time.Minute
	DefaultSessionAbsolute = 12 * time.Hour
)

func (l SessionLimits) withDefaults() SessionLimits {
	if l.Idle <= 0 {
		l.Idle = DefaultSessionIdle
	}
	if l.Absolute <= 0 {
		l.Absolute = DefaultSessionAbsolute
	}
	if l.Idle > l.Absolute {
		l.Idle = l.Absolute
	}
	return l
}

// Session is a live console session as a request finds it.
type Session struct {
	Actor docket.Actor
	// CSRF is the token every state-changing form of this session carries.
	CSRF string
	// ExpiresAt is the absolute expiry; IdleUntil when it ends unused.
	ExpiresAt, IdleUntil time.Time
}

// NewSession is a session just opened: ID is the secret for the cookie,
// shown this once.
type NewSession struct {
	Session
	ID string
}

func randomSecret() (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("appeals: session secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw[:]), nil
}

// StartSession opens a session for the actor a live token's secret stands
// for (the same check as Authenticate); an unknown or revoked token is
// Unauthorized. It also clears the token's sessions that have expired.
func (s *Store) StartSession(ctx context.Context, tokenSecret string, lim SessionLimits) (NewSession, error) {
	lim = lim.withDefaults()
	a, tokenID, err := s.authenticate(ctx, tokenSecret)
	if err != nil {
		return NewSession{}, err
	}
	id, err := randomSecret()
	if err != nil {
		return NewSession{}, err
	}
	csrf, err := randomSecret()
	if err != nil {
		return NewSession{}, err
	}
	now := s.now()
	ns := NewSession{ID: id, Session: Session{Actor: a, CSRF: csrf, ExpiresAt: now.Add(lim.Absolute), IdleUntil: now.Add(lim.Idle)}}
	if _, err := s.db.ExecContext(ctx, `WITH gone AS (
			DELETE FROM console_sessions WHERE token_id = $2 AND (expires_at <= $4 OR ended_at IS NOT NULL))
		INSERT INTO console_sessions (id_hash, token_id, csrf, created_at, last_seen_at, idle_seconds, expires_at)
		VALUES ($1, $2, $3, $4, $4, $5, $6)`,
		hashSecret(id), tokenID, csrf, now, int(lim.Idle/time.Second), ns.ExpiresAt); err != nil {
		return NewSession{}, fmt.Errorf("appeals: start session: %w", err)
	}
	return ns, nil
}

// LookupSession returns the live session of id and marks it used now. A
// session that is unknown, ended, idle too long, past its absolute expiry,
// or whose token was revoked is Unauthorized.
func (s *Store) LookupSession(ctx context.Context, id string) (Session, error) {
	if id == "" || len(id) > 128 {
		return Session{}, docket.Errorf(docket.Unauthorized, "no session")
	}
	now := s.now()
	var row struct {
		Role         docket.Role `db:"role"`
		Name         string      `db:"name"`
		AdvertiserID *string     `db:"advertiser_id"`
		CSRF         string      `db:"csrf"`
		ExpiresAt    time.Time   `db:"expires_at"`
		IdleUntil    time.Time   `db:"idle_until"`
	}
	err := s.db.GetContext(ctx, &row, `UPDATE console_sessions s SET last_seen_at = $2
		FROM tokens t JOIN actor_names n ON n.name = t.name AND n.tenant = t.tenant
		WHERE s.id_hash = $1 AND t.id = s.token_id AND t.revoked_at IS NULL
		  AND s.ended_at IS NULL AND s.expires_at > $2
		  AND s.last_seen_at + s.idle_seconds * interval '1 second' > $2
		RETURNING t.role, t.name, t.advertiser_id, s.csrf, s.expires_at,
		  least(s.expires_at, $2 + s.idle_seconds * interval '1 second') AS idle_until`, hashSecret(id), now)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, docket.Errorf(docket.Unauthorized, "the session is unknown, ended or expired, or its token was revoked; sign in again")
	}
	if err != nil {
		return Session{}, fmt.Errorf("appeals: look up session: %w", err)
	}
	a := docket.Actor{Role: row.Role, Name: row.Name}
	if row.AdvertiserID != nil {
		a.AdvertiserID = *row.AdvertiserID
	}
	return Session{Actor: a, CSRF: row.CSRF, ExpiresAt: row.ExpiresAt.UTC(), IdleUntil: row.IdleUntil.UTC()}, nil
}

// EndSession signs a session out; an unknown or ended one is no error.
func (s *Store) EndSession(ctx context.Context, id string) error {
	if id == "" || len(id) > 128 {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE console_sessions SET ended_at = $2 WHERE id_hash = $1 AND ended_at IS NULL`,
		hashSecret(id), s.now()); err != nil {
		return fmt.Errorf("appeals: end session: %w", err)
	}
	return nil
}
