package appeals

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals/dsa"
	"github.com/docket-dev/docket/audit"
)

// Policy is one version of a rule decisions are taken under. Versions are
// never changed: a decision pins the version and the hash of its text.
type Policy struct {
	Code       string    `json:"code" db:"code"`
	Title      string    `json:"title" db:"title"`
	Text       string    `json:"text" db:"text"`
	Version    int       `json:"version" db:"version"`
	TextSHA256 string    `json:"text_sha256" db:"text_sha256"`
	CreatedAt  time.Time `json:"created_at" db:"created_at"`
	CreatedBy  string    `json:"created_by" db:"created_by" doc:"ROLE:NAME of the admin; read with an advertiser's token, the role only."`
	// Category is the DSA Transparency Database category (STATEMENT_CATEGORY_*)
	// decisions under this policy are reported with; nil means DefaultDSACategory.
	Category *string `json:"category,omitempty" db:"dsa_category"`
}

// PolicyInput is a revision as submitted.
type PolicyInput struct {
	Title    string `json:"title" maxLength:"200"`
	Text     string `json:"text" maxLength:"100000"`
	Category string `json:"category,omitempty" enumSet:"dsa_categories" doc:"The DSA Transparency Database's STATEMENT_CATEGORY_* the policy falls under."`
}

// codeProblems checks a policy code taken from the path.
func codeProblems(code string) docket.Problems {
	var p docket.Problems
	if !ValidPolicyCode(code) {
		p.Add("code", "must be 1 to 64 characters of a-z, 0-9 and -")
	}
	return p
}

// Validate checks a revision's fields.
func (in PolicyInput) Validate() error {
	var p docket.Problems
	switch n := utf8.RuneCountInString(in.Title); {
	case !docket.CleanString(in.Title):
		p.Add("title", docket.DirtyMessage)
	case n == 0:
		p.Add("title", "is required")
	case n > 200:
		p.Add("title", "must be at most 200 characters")
	}
	switch n := utf8.RuneCountInString(in.Text); {
	case !docket.CleanString(in.Text):
		p.Add("text", docket.DirtyMessage)
	case n == 0:
		p.Add("text", "is required")
	case n > 100000:
		p.Add("text", "must be at most 100000 characters")
	}
	if in.Category != "" && !dsa.ValidCategory(in.Category) {
		p.Add("category", "must be a STATEMENT_CATEGORY_* of the DSA Transparency Database")
	}
	return p.Err()
}

// PolicyRevision is the result of PutPolicy: Created is false when the text
// and title were unchanged and no version was added.
type PolicyRevision struct {
	Policy
	Created bool `json:"-"`
}

func textHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

const policyColumns = `code, title, text, version, text_sha256, created_at, created_by, dsa_category`

// PutPolicy adds a version of the policy code when its title or text
// differ from the current version's.
func (s *Store) PutPolicy(ctx context.Context, by docket.Actor, code string, in PolicyInput, opts ...WriteOption) (PolicyRevision, error) {
	if !by.Is(docket.Admins...) {
		return PolicyRevision{}, docket.Errorf(docket.Forbidden, "only admins revise policies")
	}
	p := codeProblems(code)
	p.Merge(in.Validate())
	if err := p.Err(); err != nil {
		return PolicyRevision{}, err
	}
	return write(ctx, s, idempotencyOf(opts), func(tx *sqlx.Tx, now time.Time) (PolicyRevision, error) {
		// Serialize revisions of one code, not of all policies.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('policy:' || $1, 0))`, code); err != nil {
			return PolicyRevision{}, fmt.Errorf("appeals: lock policy: %w", err)
		}
		cur, err := currentPolicy(ctx, tx, code)
		if err != nil && docket.ErrorCode(err) != docket.NotFound {
			return PolicyRevision{}, err
		}
		// The category is part of a version: decisions pin it with the text.
		if err == nil && cur.Title == in.Title && cur.Text == in.Text && strOrEmpty(cur.Category) == in.Category {
			return PolicyRevision{Policy: cur}, nil
		}
		p := Policy{Code: code, Title: in.Title, Text: in.Text, Version: cur.Version + 1,
			TextSHA256: textHash(in.Text), CreatedAt: now, CreatedBy: by.String(), Category: nullable(in.Category)}
		if _, err := tx.NamedExecContext(ctx, `INSERT INTO policies (`+policyColumns+`)
			VALUES (:code, :title, :text, :version, :text_sha256, :created_at, :created_by, :dsa_category)`, p); err != nil {
			return PolicyRevision{}, fmt.Errorf("appeals: insert policy: %w", err)
		}
		if err := s.append(ctx, tx, audit.Entry{Type: EntryPolicyRevised, Time: now, Actor: by.String(),
			Subject: audit.Subject{Kind: "policy", ID: code}, Record: p, Keys: AuditKeys("", code)}); err != nil {
			return PolicyRevision{}, err
		}
		return PolicyRevision{Policy: p, Created: true}, nil
	})
}

func currentPolicy(ctx context.Context, q sqlx.QueryerContext, code string) (Policy, error) {
	if err := checkCode(code); err != nil {
		return Policy{}, err
	}
	var p Policy
	err := sqlx.GetContext(ctx, q, &p, `SELECT `+policyColumns+` FROM policies WHERE code = $1 ORDER BY version DESC LIMIT 1`, code)
	if err != nil {
		return Policy{}, notFound(err, "policy", code)
	}
	return p, nil
}

// Policy returns the current version of code.
func (s *Store) Policy(ctx context.Context, code string) (Policy, error) {
	return currentPolicy(ctx, s.db, code)
}

// PolicyVersion returns one version of code.
func (s *Store) PolicyVersion(ctx context.Context, code string, version int) (Policy, error) {
	if err := checkCode(code); err != nil {
		return Policy{}, err
	}
	var p Policy
	err := s.db.GetContext(ctx, &p, `SELECT `+policyColumns+` FROM policies WHERE code = $1 AND version = $2`, code, version)
	if err != nil {
		return Policy{}, notFound(err, "policy version", fmt.Sprintf("%s/%d", code, version))
	}
	return p, nil
}

// ListPolicies returns the current version of each policy, by code.
func (s *Store) ListPolicies(ctx context.Context, page PageRequest) (Page[Policy], error) {
	after, err := page.after(ValidPolicyCode)
	if err != nil {
		return Page[Policy]{}, err
	}
	var items []Policy
	err = s.db.SelectContext(ctx, &items, `SELECT DISTINCT ON (code) `+policyColumns+` FROM policies
		WHERE code > $1 ORDER BY code, version DESC LIMIT $2`, after, page.limit()+1)
	if err != nil {
		return Page[Policy]{}, fmt.Errorf("appeals: list policies: %w", err)
	}
	return makePage(items, page.limit(), func(p Policy) string { return p.Code }), nil
}
