package appeals

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/audit"
)

// ReversalInput asks to reverse every in-effect decision taken under some
// versions of a policy, with one rationale.
type ReversalInput struct {
	Versions  []int  `json:"versions" maxItems:"1000" minimum:"1" uniqueItems:"true"`
	Rationale string `json:"rationale" maxLength:"5000"`
}

// MaxReversalVersions bounds one request's list of versions.
const MaxReversalVersions = 1000

// Validate checks the versions and the rationale.
func (in ReversalInput) Validate() error {
	var p docket.Problems
	switch {
	case len(in.Versions) == 0:
		p.Add("versions", "is required: at least one policy version")
	case len(in.Versions) > MaxReversalVersions:
		p.Add("versions", "must have at most %d versions", MaxReversalVersions)
	}
	seen := map[int]bool{}
	for i, v := range in.Versions[:min(len(in.Versions), MaxReversalVersions)] {
		if v < 1 {
			p.Add(fmt.Sprintf("versions[%d]", i), "must be a version number from 1")
		} else if seen[v] {
			p.Add(fmt.Sprintf("versions[%d]", i), "repeats %d", v)
		}
		seen[v] = true
	}
	docket.Required(&p, "rationale", in.Rationale, MaxRationale)
	return p.Err()
}

// ReversalReport is the state of a bulk reversal after a run.
type ReversalReport struct {
	// ID names the job: the same code, versions and rationale are the same
	// job, so a re-run after a crash resumes it.
	ID          string `json:"id"`
	PolicyCode  string `json:"policy_code"`
	Versions    []int  `json:"versions"`
	Rationale   string `json:"rationale"`
	RequestedBy string `json:"requested_by"`
	// Reversed counts the decisions this run reversed; TotalReversed those
	// the job reversed over all its runs.
	Reversed      int `json:"reversed"`
	TotalReversed int `json:"total_reversed"`
	// AppealsResolved counts the open appeals this run closed as reversed.
	AppealsResolved int        `json:"appeals_resolved"`
	CreatedAt       time.Time  `json:"created_at" db:"created_at"`
	CompletedAt     *time.Time `json:"completed_at" db:"completed_at"`
}

// reversalBatch is how many decisions one transaction reverses: a crash
// loses at most one uncommitted batch, which the re-run redoes.
const reversalBatch = 200

func reversalID(code string, versions []int, rationale string) string {
	vs := slices.Clone(versions)
	slices.Sort(vs)
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.Itoa(v)
	}
	h := sha256.Sum256([]byte(code + "\n" + strings.Join(parts, ",") + "\n" + rationale))
	return "rev-" + hex.EncodeToString(h[:16])
}

// ReversePolicyVersions reverses every in-effect decision taken under the
// given versions of policy code, each with its own decision.reversed entry,
// in batches of committed transactions. It is idempotent and resumable:
// running the same request again reverses only what is left.
func (s *Store) ReversePolicyVersions(ctx context.Context, by docket.Actor, code string, in ReversalInput, opts ...WriteOption) (ReversalReport, error) {
	return s.reversePolicyVersions(ctx, by, code, in, reversalBatch, nil, idempotencyOf(opts))
}

// reversePolicyVersions is ReversePolicyVersions with its batch size and a
// hook after each committed batch, so that tests can stop it midway.
func (s *Store) reversePolicyVersions(ctx context.Context, by docket.Actor, code string, in ReversalInput,
	batch int, afterBatch func(reversed int) error, idem *Idempotency) (ReversalReport, error) {
	if !by.Is(docket.Admins...) {
		return ReversalReport{}, docket.Errorf(docket.Forbidden, "only admins reverse decisions in bulk")
	}
	p := codeProblems(code)
	p.Merge(in.Validate())
	if err := p.Err(); err != nil {
		return ReversalReport{}, err
	}
	// The request's key answers only the final write; a retry of a finished
	// request replays that reply before doing anything again. The job's
	// own writes (its record, each batch) are not the request's.
	if idem != nil {
		if err := s.peekKey(ctx, idem); err != nil {
			return ReversalReport{}, err
		}
	}
	id := reversalID(code, in.Versions, in.Rationale)
	if err := s.startReversal(ctx, by, id, code, in); err != nil {
		return ReversalReport{}, err
	}
	run, err := s.runReversal(ctx, by, id, code, in, batch, afterBatch)
	if err != nil {
		return run, err
	}
	return s.finishReversal(ctx, id, run, idem)
}

// startReversal records the job id, once: the policy must exist with
// every version asked for.
func (s *Store) startReversal(ctx context.Context, by docket.Actor, id, code string, in ReversalInput) error {
	_, err := write(ctx, s, nil, func(tx *sqlx.Tx, now time.Time) (struct{}, error) {
		if err := checkVersions(ctx, tx, code, in.Versions); err != nil {
			return struct{}{}, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO policy_reversals (id, policy_code, versions, rationale, requested_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
			id, code, pq.Array(in.Versions), in.Rationale, by.String(), now); err != nil {
			return struct{}{}, fmt.Errorf("appeals: record reversal job: %w", err)
		}
		return struct{}{}, nil
	})
	return err
}

// checkVersions checks that policy code exists and has each of versions,
// naming every one it lacks.
func checkVersions(ctx context.Context, q sqlx.QueryerContext, code string, versions []int) error {
	if _, err := currentPolicy(ctx, q, code); err != nil {
		return err
	}
	var known []int
	if err := sqlx.SelectContext(ctx, q, &known, `SELECT version FROM policies WHERE code = $1 AND version = ANY($2)`,
		code, pq.Array(versions)); err != nil {
		return fmt.Errorf("appeals: read policy versions: %w", err)
	}
	var p docket.Problems
	for i, v := range versions {
		if !slices.Contains(known, v) {
			p.Add(fmt.Sprintf("versions[%d]", i), "policy %s has no version %d", code, v)
		}
	}
	return p.Err()
}

// runReversal reverses the job's decisions batch by batch, each batch its
// own transaction, until none is left; it counts what this run did.
func (s *Store) runReversal(ctx context.Context, by docket.Actor, id, code string, in ReversalInput,
	batch int, afterBatch func(reversed int) error) (ReversalReport, error) {
	var rep ReversalReport
	for {
		n, closed, err := s.reverseBatch(ctx, by, id, code, in, batch)
		rep.Reversed += n
		rep.AppealsResolved += closed
		if err != nil {
			return rep, err
		}
		// Zero, not a short batch, ends the job: a row a concurrent run
		// reversed drops out of a locked batch and shortens it.
		if n == 0 {
			return rep, nil
		}
		if afterBatch != nil {
			if err := afterBatch(rep.Reversed); err != nil {
				return rep, err
			}
		}
	}
}

// finishReversal marks the job complete (at its first completion) and
// reports it: run's counts, and the job as recorded. It is the request's
// write, so its reply is what the key keeps.
func (s *Store) finishReversal(ctx context.Context, id string, run ReversalReport, idem *Idempotency) (ReversalReport, error) {
	return write(ctx, s, idem, func(tx *sqlx.Tx, now time.Time) (ReversalReport, error) {
		r := run
		var job struct {
			RequestedBy string        `db:"requested_by"`
			Versions    pq.Int64Array `db:"versions"`
			CreatedAt   time.Time     `db:"created_at"`
			CompletedAt *time.Time    `db:"completed_at"`
			Rationale   string        `db:"rationale"`
			Code        string        `db:"policy_code"`
		}
		if err := tx.GetContext(ctx, &job, `UPDATE policy_reversals SET completed_at = coalesce(completed_at, $2)
			WHERE id = $1 RETURNING requested_by, versions, created_at, completed_at, rationale, policy_code`, id, now); err != nil {
			return ReversalReport{}, fmt.Errorf("appeals: complete reversal job: %w", err)
		}
		if err := tx.GetContext(ctx, &r.TotalReversed, `SELECT count(*) FROM decisions WHERE reversed_by_reversal = $1`, id); err != nil {
			return ReversalReport{}, fmt.Errorf("appeals: count reversals: %w", err)
		}
		r.ID, r.PolicyCode, r.Rationale, r.RequestedBy = id, job.Code, job.Rationale, job.RequestedBy
		r.CreatedAt, r.CompletedAt = job.CreatedAt, job.CompletedAt
		r.Versions = make([]int, len(job.Versions))
		for i, v := range job.Versions {
			r.Versions[i] = int(v)
		}
		return r, nil
	})
}

// peekKey answers a retried request from its stored reply without taking
// the key: it tries the key in a transaction it then rolls back.
func (s *Store) peekKey(ctx context.Context, idem *Idempotency) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("appeals: begin: %w", err)
	}
	defer tx.Rollback()
	return claimKey(ctx, tx, idem, s.now())
}

// reverseBatch reverses up to batch decisions of the job in one transaction
// and closes their open appeals as reversed.
func (s *Store) reverseBatch(ctx context.Context, by docket.Actor, id, code string, in ReversalInput, batch int) (reversed, closed int, err error) {
	type result struct{ reversed, closed int }
	res, err := write(ctx, s, nil, func(tx *sqlx.Tx, now time.Time) (result, error) {
		var ds []Decision
		if err := tx.SelectContext(ctx, &ds, `SELECT `+decisionColumns+` FROM decisions
			WHERE policy_code = $1 AND policy_version = ANY($2) AND status = 'in_effect'
			  AND (ends_at IS NULL OR ends_at > $3)
			ORDER BY id LIMIT $4 FOR UPDATE`, code, pq.Array(in.Versions), now, batch); err != nil {
			return result{}, fmt.Errorf("appeals: select decisions to reverse: %w", err)
		}
		job := audit.Subject{Kind: "policy_reversal", ID: id}
		ids := make([]string, len(ds))
		for i, d := range ds {
			ids[i] = d.ID
			if err := s.reverseDecision(ctx, tx, d, by, now, nil, &id, in.Rationale, []audit.Subject{job,
				{Kind: "policy", ID: fmt.Sprintf("%s@%d", d.PolicyCode, d.PolicyVersion)}}); err != nil {
				return result{}, err
			}
		}
		if len(ds) == 0 {
			return result{}, nil
		}
		// An open appeal of a decision reversed here has its answer: close it
		// as reversed, so no reviewer reviews a decision no longer in effect.
		var open []Appeal
		if err := tx.SelectContext(ctx, &open, `SELECT `+appealColumns+` FROM appeals
			WHERE decision_id = ANY($1) AND state IN (`+openStatesSQL+`) ORDER BY id FOR UPDATE`,
			pq.Array(ids)); err != nil {
			return result{}, fmt.Errorf("appeals: select appeals to close: %w", err)
		}
		who, outcome, rationale := by.String(), AppealReversed, in.Rationale
		for _, a := range open {
			a.State, a.Outcome, a.Rationale, a.ResolvedBy, a.ResolvedAt = AppealReversed, &outcome, &rationale, &who, &now
			if err := updateAppeal(ctx, tx, a); err != nil {
				return result{}, err
			}
			if err := s.append(ctx, tx, audit.Entry{Type: EntryAppealResolved, Time: now, Actor: who,
				Subject: audit.Subject{Kind: "appeal", ID: a.ID},
				Refs:    []audit.Subject{{Kind: "decision", ID: a.DecisionID}, job},
				Record:  a, Keys: AuditKeys(a.AdvertiserID, a.PolicyCode)}); err != nil {
				return result{}, err
			}
		}
		return result{reversed: len(ds), closed: len(open)}, nil
	})
	return res.reversed, res.closed, err
}
