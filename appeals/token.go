package appeals

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/audit"
)

// Token is a bearer credential's record; the secret is never stored, only
// its SHA-256 (the secret is 256 random bits, so a fast hash suffices).
type Token struct {
	ID           string      `json:"id" db:"id"`
	Name         string      `json:"name" db:"name"`
	Role         docket.Role `json:"role" db:"role"`
	AdvertiserID *string     `json:"advertiser_id,omitempty" db:"advertiser_id"`
	CreatedAt    time.Time   `json:"created_at" db:"created_at"`
	CreatedBy    string      `json:"created_by" db:"created_by"`
	RevokedAt    *time.Time  `json:"revoked_at,omitempty" db:"revoked_at"`
}

// TokenInput is a token to create.
type TokenInput struct {
	Name         string
	Role         docket.Role
	AdvertiserID string
}

// Validate checks the name, the role and the advertiser binding.
func (in TokenInput) Validate() error {
	var p docket.Problems
	if !tokenNameRe.MatchString(in.Name) {
		p.Add("name", "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '@' and '-'")
	}
	if !in.Role.Valid() {
		p.Add("role", "must be one of %s", strings.Join(docket.Strings(docket.Roles), ", "))
	}
	switch {
	case in.Role == docket.RoleAdvertiser && !ValidPlatformID(in.AdvertiserID):
		p.Add("advertiser", "an advertiser token needs a valid advertiser id")
	case in.Role != docket.RoleAdvertiser && in.AdvertiserID != "":
		p.Add("advertiser", "only advertiser tokens are bound to an advertiser")
	}
	return p.Err()
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

const tokenColumns = `id, name, role, advertiser_id, created_at, created_by, revoked_at`

// CreateToken makes a token and returns its record and its secret, which
// is shown this once.
//
// A NAME is one person or system for good: the first token of a NAME binds
// it, to its advertiser for an advertiser token, to staff otherwise, and a
// later token of that NAME that disagrees is refused (Conflict, naming the
// binding). Were an advertiser NAME allowed a staff role, one person would
// be both the tenant and a reviewer of its appeals; were one NAME allowed
// two advertisers, `advertiser:NAME` would stand for two tenants in the
// log, in separation of duties and in idempotency.
func (s *Store) CreateToken(ctx context.Context, by docket.Actor, in TokenInput) (Token, string, error) {
	if err := in.Validate(); err != nil {
		return Token{}, "", err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Token{}, "", fmt.Errorf("appeals: token secret: %w", err)
	}
	secret := "dkt_" + base64.RawURLEncoding.EncodeToString(raw[:])
	t, err := write(ctx, s, nil, func(tx *sqlx.Tx, now time.Time) (Token, error) {
		if err := bindName(ctx, tx, by, in, now); err != nil {
			return Token{}, err
		}
		t := Token{ID: uuid.Must(uuid.NewV7()).String(), Name: in.Name, Role: in.Role,
			AdvertiserID: nullable(in.AdvertiserID), CreatedAt: now, CreatedBy: by.String()}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, name, role, advertiser_id, hash, created_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, t.ID, t.Name, t.Role, t.AdvertiserID, hashSecret(secret), t.CreatedAt, t.CreatedBy); err != nil {
			return Token{}, fmt.Errorf("appeals: insert token: %w", err)
		}
		err := s.append(ctx, tx, audit.Entry{Type: EntryTokenCreated, Time: now, Actor: by.String(),
			Subject: audit.Subject{Kind: "token", ID: t.ID}, Record: t, Keys: AuditKeys(strOrEmpty(t.AdvertiserID), "")})
		return t, err
	})
	return t, secret, err
}

// bindName binds in.Name to in's tenant, or checks the binding it has. The
// insert waits for a concurrent transaction binding the same NAME and then
// returns that binding, so of two concurrent creations for two tenants
// exactly one wins; the tokens' foreign key to the binding backs this up.
func bindName(ctx context.Context, tx *sqlx.Tx, by docket.Actor, in TokenInput, now time.Time) error {
	var tenant string
	// DO UPDATE, not DO NOTHING: it returns the row that won, in one statement.
	if err := tx.GetContext(ctx, &tenant, `INSERT INTO actor_names (name, tenant, bound_at, bound_by)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET name = actor_names.name
		RETURNING tenant`, in.Name, in.AdvertiserID, now, by.String()); err != nil {
		return fmt.Errorf("appeals: bind name: %w", err)
	}
	if tenant == in.AdvertiserID {
		return nil
	}
	return nameTaken(in, tenant)
}

func nameTaken(in TokenInput, tenant string) error {
	bound := "to staff (admin, enforcer, reviewer, senior_reviewer, auditor)"
	if tenant != "" {
		bound = fmt.Sprintf("to advertiser %q", tenant)
	}
	want := "staff"
	if in.AdvertiserID != "" {
		want = fmt.Sprintf("advertiser %q", in.AdvertiserID)
	}
	return docket.Errorf(docket.Conflict, "the name %q is bound %s for good; a token of that name for %s is refused (one name is one actor): choose another name",
		in.Name, bound, want)
}

// RevokeTokens revokes every live token named name (of role, when given)
// and returns how many it revoked.
func (s *Store) RevokeTokens(ctx context.Context, by docket.Actor, name string, role docket.Role) (int, error) {
	return write(ctx, s, nil, func(tx *sqlx.Tx, now time.Time) (int, error) {
		var revoked []Token
		if err := tx.SelectContext(ctx, &revoked, `UPDATE tokens SET revoked_at = $1
			WHERE name = $2 AND revoked_at IS NULL AND ($3 = '' OR role = $3)
			RETURNING `+tokenColumns, now, name, string(role)); err != nil {
			return 0, fmt.Errorf("appeals: revoke tokens: %w", err)
		}
		if len(revoked) == 0 {
			return 0, docket.Errorf(docket.NotFound, "no live token named %q", name)
		}
		for _, t := range revoked {
			if err := s.append(ctx, tx, audit.Entry{Type: EntryTokenRevoked, Time: now, Actor: by.String(),
				Subject: audit.Subject{Kind: "token", ID: t.ID}, Record: t,
				Keys: AuditKeys(strOrEmpty(t.AdvertiserID), "")}); err != nil {
				return 0, err
			}
		}
		return len(revoked), nil
	})
}

// ListTokens lists every token, newest first.
func (s *Store) ListTokens(ctx context.Context) ([]Token, error) {
	var ts []Token
	if err := s.db.SelectContext(ctx, &ts, `SELECT `+tokenColumns+` FROM tokens ORDER BY id DESC`); err != nil {
		return nil, fmt.Errorf("appeals: list tokens: %w", err)
	}
	return ts, nil
}

// Authenticate returns the actor a live token's secret stands for. A
// token that disagrees with its NAME's binding (possible only for tokens
// made before names were bound) is refused: it would be a second tenant
// under one actor.
func (s *Store) Authenticate(ctx context.Context, secret string) (docket.Actor, error) {
	a, _, err := s.authenticate(ctx, secret)
	return a, err
}

// authenticate is Authenticate that also returns the token's id (sessions
// are linked to it, so that revoking the token ends them).
func (s *Store) authenticate(ctx context.Context, secret string) (docket.Actor, string, error) {
	var t struct {
		Token
		Bound *string `db:"bound"`
	}
	err := s.db.GetContext(ctx, &t, `SELECT `+tokenColumns+`, (SELECT n.tenant FROM actor_names n WHERE n.name = tokens.name) AS bound
		FROM tokens WHERE hash = $1 AND revoked_at IS NULL`, hashSecret(secret))
	if err != nil {
		if docket.ErrorCode(notFound(err, "token", "")) == docket.NotFound {
			return docket.Actor{}, "", docket.Errorf(docket.Unauthorized, "the token is unknown or revoked")
		}
		return docket.Actor{}, "", fmt.Errorf("appeals: authenticate: %w", err)
	}
	a := docket.Actor{Role: t.Role, Name: t.Name}
	if t.AdvertiserID != nil {
		a.AdvertiserID = *t.AdvertiserID
	}
	if t.Bound == nil || *t.Bound != a.AdvertiserID {
		return docket.Actor{}, "", docket.Errorf(docket.Unauthorized, "the token's name %q is bound to another actor; ask for a token of another name", t.Name)
	}
	return a, t.ID, nil
}
