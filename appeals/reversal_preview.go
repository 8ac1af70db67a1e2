package appeals

import (
	"context"
	"fmt"

	"github.com/lib/pq"

	"github.com/docket-dev/docket"
)

// PolicyVersions returns every version of policy code, oldest first.
func (s *Store) PolicyVersions(ctx context.Context, code string) ([]Policy, error) {
	if err := checkCode(code); err != nil {
		return nil, err
	}
	var ps []Policy
	if err := s.db.SelectContext(ctx, &ps, `SELECT `+policyColumns+` FROM policies WHERE code = $1 ORDER BY version`, code); err != nil {
		return nil, fmt.Errorf("appeals: list policy versions: %w", err)
	}
	if len(ps) == 0 {
		return nil, docket.Errorf(docket.NotFound, "there is no policy %q", code)
	}
	return ps, nil
}

// ReversalPreview is what a bulk reversal would reverse now: the
// decisions in effect under each of the versions.
type ReversalPreview struct {
	PolicyCode string        `json:"policy_code"`
	ByVersion  map[int]int64 `json:"by_version"`
	Total      int64         `json:"total"`
	// OpenAppeals counts the open appeals of those decisions, which the
	// reversal would close as reversed.
	OpenAppeals int64 `json:"open_appeals"`
}

// CountReversible previews ReversePolicyVersions without changing
// anything: the same role (admins), the same checks of the code and the
// versions (every version must exist), and the same selection of
// decisions (in effect, not ended). The rationale is not needed yet.
func (s *Store) CountReversible(ctx context.Context, by docket.Actor, code string, versions []int) (ReversalPreview, error) {
	if !by.Is(docket.Admins...) {
		return ReversalPreview{}, docket.Errorf(docket.Forbidden, "only admins reverse decisions in bulk")
	}
	p := codeProblems(code)
	// Validate as the reversal would, with a stand-in rationale.
	if err := (ReversalInput{Versions: versions, Rationale: "preview"}).Validate(); err != nil {
		p.Merge(err)
	}
	if err := p.Err(); err != nil {
		return ReversalPreview{}, err
	}
	if err := checkVersions(ctx, s.db, code, versions); err != nil {
		return ReversalPreview{}, err
	}
	prev := ReversalPreview{PolicyCode: code, ByVersion: map[int]int64{}}
	for _, v := range versions {
		prev.ByVersion[v] = 0
	}
	var rows []struct {
		Version int   `db:"policy_version"`
		N       int64 `db:"n"`
		Open    int64 `db:"open"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT d.policy_version, count(*) AS n,
			coalesce(sum((SELECT count(*) FROM appeals a WHERE a.decision_id = d.id
				AND a.state IN (`+openStatesSQL+`))), 0) AS open
		FROM decisions d
		WHERE d.policy_code = $1 AND d.policy_version = ANY($2) AND d.status = 'in_effect'
		  AND (d.ends_at IS NULL OR d.ends_at > $3)
		GROUP BY d.policy_version`, code, pq.Array(versions), s.now()); err != nil {
		return ReversalPreview{}, fmt.Errorf("appeals: count reversible decisions: %w", err)
	}
	for _, r := range rows {
		prev.ByVersion[r.Version] = r.N
		prev.Total += r.N
		prev.OpenAppeals += r.Open
	}
	return prev, nil
}
