package appeals

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/docket-dev/docket/audit"
)

// The reviewers' queue: claims and resolutions. Concurrent calls without
// an Idempotency-Key are answered in batches, one transaction each (see
// batcher); a call with a key, or a reversal, which also changes its
// decision, runs alone. Both go through claimIn and resolveIn, so the
// rules are the same either way.

// claimReq and resolveReq are one reviewer's call.
type claimReq struct{ by Actor }

type resolveReq struct {
	by Actor
	id string
	in ResolveInput
}

// maxBatch bounds the calls one transaction answers.
const maxBatch = 64

// claimSlack is how many candidates beyond one per claim a batch locks, so
// that a reviewer passed over for appeals of their own decisions still
// finds one without a second query.
const claimSlack = 8

// candidatesQuery locks the queue's head: waiting appeals, and claimed ones
// whose lease lapsed (released lazily by the claim that takes them), by
// due_at. SKIP LOCKED lets parallel claims pass over each other's rows
// instead of queueing behind them, so two never take the same one.
func candidatesQuery(senior bool) string {
	return `SELECT ` + appealColumns + ` FROM appeals WHERE ` + queued(senior) + `
		ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`
}

// nextQuery is candidatesQuery for one claim that found nothing among the
// batch's candidates: it skips the reviewer's own decisions ($2) and the
// rows this transaction already holds ($3), which SKIP LOCKED would not.
// It is rare, and not prepared: a generic plan cannot know that $2 is not
// the one decider of most of the queue, and then scans the table.
func nextQuery(senior bool) string {
	return `SELECT ` + appealColumns + ` FROM appeals WHERE ` + queued(senior) + `
		  AND decider_name <> $2 AND id <> ALL($3::text[])
		ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`
}

func queued(senior bool) string {
	states := `'pending', 'in_review'`
	if senior {
		states += `, 'escalated'`
	}
	return `state IN (` + states + `) AND (assigned_to IS NULL OR lease_until <= $1)`
}

// applyClaimsQuery takes the chosen appeals and stages their entries.
func applyClaimsQuery() string {
	return `WITH u AS (
			UPDATE appeals a SET state = r.state, assigned_to = r.who, claimed_at = $4, lease_until = $5
			FROM unnest($1::text[], $2::text[], $3::text[]) AS r(id, state, who)
			WHERE a.id = r.id)
		` + audit.StageEach(6)
}

// lockAppealsQuery locks the appeals a resolution names, in id order, as
// every other multi-row locker of appeals does. A batch skips the rows
// another transaction holds (skipLockedQuery): its callers would all wait
// behind one busy appeal; those few are resolved alone, by their callers.
const lockAppealsQuery = `SELECT ` + appealColumns + ` FROM appeals WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`

const skipLockedQuery = lockAppealsQuery + ` SKIP LOCKED`

// errBusy answers a batched call whose appeal another transaction held.
var errBusy = errors.New("appeals: appeal busy; resolve alone")

// applyResolutionsQuery resolves the checked appeals and stages their entries.
func applyResolutionsQuery() string {
	return `WITH u AS (
			UPDATE appeals a SET state = r.outcome, outcome = r.outcome, rationale = r.rationale,
				resolved_by = r.who, resolved_at = $5
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS r(id, outcome, rationale, who)
			WHERE a.id = r.id)
		` + audit.StageEach(6)
}

// mayReview checks that by may take event (escalate, resolve) on a locked
// appeal now: not its decider, a legal transition, and by's live claim.
func mayReview(a Appeal, by Actor, event string, now time.Time) error {
	if a.DeciderName == by.Name {
		return Errorf(Forbidden, "%s made decision %s and may not review its appeal", by.Name, a.DecisionID)
	}
	if err := checkTransition(a, event); err != nil {
		return err
	}
	return holds(a, by, now)
}

// takes reports whether by may be handed a from the queue.
func takes(a Appeal, by Actor) bool {
	return a.DeciderName != by.Name && (a.State != AppealEscalated || by.Role == RoleSeniorReviewer)
}

// appealEntry is an appeal's audit entry; record defaults to the appeal.
func appealEntry(typ string, by Actor, now time.Time, a Appeal, record any) audit.Entry {
	if record == nil {
		record = a
	}
	return audit.Entry{Type: typ, Time: now, Actor: by.String(),
		Subject: audit.Subject{Kind: "appeal", ID: a.ID},
		Refs:    []audit.Subject{{Kind: "decision", ID: a.DecisionID}},
		Record:  record}
}

// Claim hands by the waiting appeal with the earliest due_at, leased to by
// for Options.ClaimLease. ok is false when nothing is waiting. A reviewer
// is never handed an appeal of a decision they made.
func (s *Store) Claim(ctx context.Context, by Actor) (a Appeal, ok bool, err error) {
	p, err := s.ClaimReply(ctx, by)
	if err != nil || p == nil {
		return Appeal{}, false, err
	}
	return *p, true, nil
}

// ClaimReply is Claim for callers that keep the reply: nil when nothing waits.
func (s *Store) ClaimReply(ctx context.Context, by Actor) (*Appeal, error) {
	if !by.Is(RoleReviewer, RoleSeniorReviewer) {
		return nil, Errorf(Forbidden, "only reviewers claim appeals")
	}
	if idem, _ := ctx.Value(idemKey{}).(*Idempotency); idem == nil {
		return s.claims.do(ctx, claimReq{by: by})
	}
	return write(ctx, s, func(tx *sqlx.Tx, now time.Time) (*Appeal, error) {
		out, err := s.claimIn(ctx, tx, now, []claimReq{{by: by}})
		if err != nil {
			return nil, err
		}
		return out[0], nil
	})
}

// runClaims answers a batch of claims in one transaction.
func (s *Store) runClaims(ctx context.Context, reqs []claimReq) []outcome[*Appeal] {
	return inBatch(ctx, s, len(reqs), func(tx *sqlx.Tx, now time.Time) ([]outcome[*Appeal], error) {
		got, err := s.claimIn(ctx, tx, now, reqs)
		outs := make([]outcome[*Appeal], len(got))
		for i, a := range got {
			outs[i].val = a
		}
		return outs, err
	})
}

// inBatch runs fn as a batch's transaction; when the transaction fails,
// its error answers every call.
func inBatch[R any](ctx context.Context, s *Store, n int,
	fn func(tx *sqlx.Tx, now time.Time) ([]outcome[R], error)) []outcome[R] {
	outs, err := write(WithIdempotency(ctx, nil), s, fn)
	if err != nil {
		outs = make([]outcome[R], n)
		for i := range outs {
			outs[i].err = err
		}
	}
	return outs
}

// claimIn hands each of reqs, in order, the first appeal of the queue it
// may take, in tx; nil when none waits for it.
func (s *Store) claimIn(ctx context.Context, tx *sqlx.Tx, now time.Time, reqs []claimReq) ([]*Appeal, error) {
	senior := false
	for _, r := range reqs {
		senior = senior || r.by.Role == RoleSeniorReviewer
	}
	limit := len(reqs) + claimSlack
	var cands []Appeal
	candidates := qCandidates
	if senior {
		candidates = qCandidatesSenior
	}
	if err := s.stmt(ctx, tx, candidates).SelectContext(ctx, &cands, now, limit); err != nil {
		return nil, fmt.Errorf("appeals: claim: %w", err)
	}
	held := make(pq.StringArray, len(cands))
	for i, a := range cands {
		held[i] = a.ID
	}
	taken := make([]bool, len(cands))
	out := make([]*Appeal, len(reqs))
	for i, r := range reqs {
		for j := range cands {
			if !taken[j] && takes(cands[j], r.by) {
				taken[j] = true
				out[i] = &cands[j]
				break
			}
		}
		if out[i] != nil || len(cands) < limit {
			continue // found one, or the whole unlocked queue was seen
		}
		// Every candidate was taken or not for r: look past them.
		var more []Appeal
		if err := tx.SelectContext(ctx, &more, nextQuery(r.by.Role == RoleSeniorReviewer),
			now, r.by.Name, held); err != nil {
			return nil, fmt.Errorf("appeals: claim: %w", err)
		}
		if len(more) == 1 {
			held = append(held, more[0].ID)
			out[i] = &more[0]
		}
	}

	var ids, states, whos pq.StringArray
	var entries []audit.Entry
	lease := now.Add(s.opts.ClaimLease)
	for i, a := range out {
		if a == nil {
			continue
		}
		by := reqs[i].by
		if prev := a.AssignedTo; prev != nil {
			// The lease had lapsed: the log says the appeal went back to
			// the queue before it says who took it.
			back := *a
			back.AssignedTo, back.ClaimedAt, back.LeaseUntil = nil, nil, nil
			if back.State == AppealInReview {
				back.State = AppealPending
			}
			entries = append(entries, appealEntry(EntryAppealReleased, systemActor, now, back,
				releaseRecord{Appeal: back, ReleasedFrom: *prev}))
		}
		if a.State != AppealEscalated {
			a.State = AppealInReview
		}
		who := by.String()
		a.AssignedTo, a.ClaimedAt, a.LeaseUntil = &who, &now, &lease
		entries = append(entries, appealEntry(EntryAppealClaimed, by, now, *a, nil))
		ids, states, whos = append(ids, a.ID), append(states, a.State), append(whos, who)
	}
	if err := s.apply(ctx, tx, qApplyClaims, entries, ids, states, whos, now, lease); err != nil {
		return nil, fmt.Errorf("appeals: claim: %w", err)
	}
	for _, a := range out {
		if a != nil {
			a.derive(now)
		}
	}
	return out, nil
}

// Resolve answers an appeal by its assignee. A reversal reverses the
// decision in the same transaction, with both entries.
func (s *Store) Resolve(ctx context.Context, by Actor, id string, in ResolveInput) (Appeal, error) {
	if !by.Is(RoleReviewer, RoleSeniorReviewer) {
		return Appeal{}, Errorf(Forbidden, "only reviewers resolve appeals; resolution is never automated")
	}
	if err := in.Validate(); err != nil {
		return Appeal{}, err
	}
	req := resolveReq{by: by, id: id, in: in}
	if idem, _ := ctx.Value(idemKey{}).(*Idempotency); idem == nil && in.Outcome == AppealUpheld {
		a, err := s.resolves.do(ctx, req)
		if !errors.Is(err, errBusy) {
			return a, err
		}
	}
	return write(ctx, s, func(tx *sqlx.Tx, now time.Time) (Appeal, error) {
		var d Decision
		if in.Outcome == AppealReversed {
			// Decision before appeal, as FileAppeal and bulk reversals lock them.
			peek, err := getAppeal(ctx, tx, id, false)
			if err != nil {
				return Appeal{}, err
			}
			if d, err = getDecision(ctx, tx, peek.DecisionID, true); err != nil {
				return Appeal{}, err
			}
		}
		outs, err := s.resolveIn(ctx, tx, now, []resolveReq{req}, false)
		if err != nil {
			return Appeal{}, err
		}
		a, err := outs[0].val, outs[0].err
		if err != nil {
			return Appeal{}, err
		}
		if in.Outcome == AppealReversed && d.Status == StatusInEffect {
			if err := s.reverseDecision(ctx, tx, d, by, now, &a.ID, nil, in.Rationale,
				[]audit.Subject{{Kind: "appeal", ID: a.ID}}); err != nil {
				return Appeal{}, err
			}
		}
		return a, nil
	})
}

// runResolves answers a batch of resolutions in one transaction.
func (s *Store) runResolves(ctx context.Context, reqs []resolveReq) []outcome[Appeal] {
	return inBatch(ctx, s, len(reqs), func(tx *sqlx.Tx, now time.Time) ([]outcome[Appeal], error) {
		return s.resolveIn(ctx, tx, now, reqs, true)
	})
}

// resolveIn resolves each of reqs whose checks hold, in tx, in order: a
// second resolution of one appeal in the same batch finds it resolved.
// With skipLocked, an appeal another transaction holds is errBusy.
func (s *Store) resolveIn(ctx context.Context, tx *sqlx.Tx, now time.Time, reqs []resolveReq,
	skipLocked bool) ([]outcome[Appeal], error) {
	ids := make(pq.StringArray, len(reqs))
	for i, r := range reqs {
		ids[i] = r.id
	}
	var rows []Appeal
	lock := qLockAppeals
	if skipLocked {
		lock = qSkipLocked
	}
	if err := s.stmt(ctx, tx, lock).SelectContext(ctx, &rows, ids); err != nil {
		return nil, fmt.Errorf("appeals: resolve: %w", err)
	}
	byID := make(map[string]*Appeal, len(rows))
	for i := range rows {
		byID[rows[i].ID] = &rows[i]
	}
	out := make([]outcome[Appeal], len(reqs))
	var upd, outcomes, rationales, whos pq.StringArray
	var entries []audit.Entry
	for i, r := range reqs {
		a, ok := byID[r.id]
		if !ok && skipLocked {
			out[i].err = errBusy // or missing: alone, it waits for the lock and then knows
			continue
		} else if !ok {
			out[i].err = Errorf(NotFound, "appeal %q not found", r.id)
			continue
		}
		if err := mayReview(*a, r.by, evResolve, now); err != nil {
			out[i].err = err
			continue
		}
		who, result, rationale := r.by.String(), r.in.Outcome, r.in.Rationale
		a.State, a.Outcome, a.Rationale, a.ResolvedBy, a.ResolvedAt = result, &result, &rationale, &who, &now
		entries = append(entries, appealEntry(EntryAppealResolved, r.by, now, *a, nil))
		upd, outcomes = append(upd, a.ID), append(outcomes, result)
		rationales, whos = append(rationales, rationale), append(whos, who)
		out[i].val = *a
		out[i].val.derive(now)
	}
	if err := s.apply(ctx, tx, qApplyResolutions, entries, upd, outcomes, rationales, whos, now); err != nil {
		return nil, fmt.Errorf("appeals: resolve: %w", err)
	}
	return out, nil
}

// apply runs one of the apply queries with args, followed by the staging
// arrays of entries; with no entries there is nothing to change.
func (s *Store) apply(ctx context.Context, tx *sqlx.Tx, query hotQuery, entries []audit.Entry, args ...any) error {
	if len(entries) == 0 {
		return nil
	}
	staged, err := audit.StageArrays(entries)
	if err != nil {
		return err
	}
	_, err = s.stmt(ctx, tx, query).ExecContext(ctx, append(args, staged...)...)
	return err
}
