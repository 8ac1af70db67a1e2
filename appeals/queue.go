package appeals

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals/groupcommit"
	"github.com/docket-dev/docket/audit"
)

// The reviewers' queue: claims and resolutions.
//
// Concurrent calls without an Idempotency-Key are answered in batches
// (group commit: Store.claims and Store.resolves, groupcommit.Batchers),
// each with two statements on its batcher's lane (see lane) and no
// transaction around them: the first reads, without locking, the rows
// the calls need; Go checks each call against them; the second, atomic
// and committed before any call is answered, makes the changes and stages
// their entries, but only on rows that are
// still the version read (xmin) and that no other transaction holds
// (FOR UPDATE SKIP LOCKED). BEGIN, locking reads and COMMIT took twice the
// round trips. A call whose row was changed or held meanwhile (errBusy,
// which sends it alone), every call of a batch that failed as a whole
// (groupcommit retries each alone), a call with a key, and a reversal,
// which also changes its decision, run alone (claimAlone, resolveAlone),
// in a transaction that locks its rows as it reads them: claims with
// FOR UPDATE SKIP LOCKED at the head of the queue. The two ways are not a
// duplicate: a batch never waits for a row, and the call alone does. Both
// go through claimIn and resolveIn, so the rules are the same.

// claimReq and resolveReq are one reviewer's call.
// A call alone may be idempotent (idem); a batch's calls never are.
type claimReq struct {
	by   docket.Actor
	idem *Idempotency
}

type resolveReq struct {
	by   docket.Actor
	id   string
	in   ResolveInput
	idem *Idempotency
}

// maxBatch bounds the calls one batch answers.
const maxBatch = groupcommit.DefaultMaxBatch

// claimSlack is how many candidates beyond one per claim are read, so
// that a reviewer passed over for appeals of their own decisions still
// finds one in the batch rather than alone.
const claimSlack = 8

// candidatesQuery locks the queue's head for a claim alone. SKIP LOCKED
// lets parallel claims pass over each other's rows instead of queueing
// behind them, so two never take the same one.
func candidatesQuery(senior bool) string {
	return peekQuery(senior) + ` FOR UPDATE SKIP LOCKED`
}

// peekQuery reads the queue's head for a batch: waiting appeals, and
// claimed ones whose lease lapsed (released lazily by the claim that takes
// them), by due_at, each with its row version.
func peekQuery(senior bool) string {
	return `SELECT ` + appealColumns + `, xmin::text AS seen FROM appeals WHERE ` + queued(senior) + `
		ORDER BY due_at, id LIMIT $2`
}

// nextQuery is candidatesQuery for one claim that found nothing among the
// batch's candidates: it skips the reviewer's own decisions ($2) and the
// rows this transaction already holds ($3), which SKIP LOCKED would not.
// It is rare, and not prepared: a generic plan cannot know that $2 is not
// the one decider of most of the queue, and then scans the table.
func nextQuery(senior bool) string {
	return `SELECT ` + appealColumns + `, xmin::text AS seen FROM appeals WHERE ` + queued(senior) + `
		  AND decider_name <> $2 AND id <> ALL($3::text[])
		ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`
}

func queued(senior bool) string {
	// Pending appeals, and claims whose lease lapsed; escalated ones for
	// senior reviewers only.
	states := []AppealState{AppealPending, AppealInReview}
	if senior {
		states = append(states, AppealEscalated)
	}
	return `state IN (` + sqlList(states...) + `) AND (assigned_to IS NULL OR lease_until <= $1)`
}

// guardedUpdate returns one statement that sets set on the appeals listed
// by the arrays (columns cols, the first id, the last seen) and stages
// the entries, whose arrays take the next parameters of p (after the
// caller's own, audit.StageChanged), and that needs no transaction around it. It
// changes an appeal only when its row is still the version the checks
// read (seen) and no one holds it (SKIP LOCKED: a batch must not wait
// behind one busy appeal, and so never takes one that a parallel claim
// took); the ids it returns are the appeals changed. Inside a transaction
// that already locked the appeals, it changes them all.
func guardedUpdate(p *audit.Params, arrays, cols, set string) string {
	return `WITH r AS (SELECT * FROM unnest(` + arrays + `) AS r(` + cols + `)),
		l AS (
			SELECT a.id FROM appeals a JOIN r ON a.id = r.id AND a.xmin = r.seen::xid
			ORDER BY a.id FOR UPDATE OF a SKIP LOCKED),
		u AS (
			UPDATE appeals a SET ` + set + `
			FROM r JOIN l ON l.id = r.id
			WHERE a.id = r.id
			RETURNING a.id)
		` + audit.StageChanged(p, "u")
}

// applyClaimsQuery takes the chosen appeals and stages their entries.
// Its own parameters are, in order: ids, states, assignees, claimed_at,
// lease_until, seen; the entries' arrays follow.
func applyClaimsQuery() string {
	var p audit.Params
	ids, states, who, at, lease, seen := p.Next(), p.Next(), p.Next(), p.Next(), p.Next(), p.Next()
	return guardedUpdate(&p, ids+`::text[], `+states+`::text[], `+who+`::text[], `+seen+`::text[]`, `id, state, who, seen`,
		`state = r.state, assigned_to = r.who, claimed_at = `+at+`, lease_until = `+lease)
}

// readAppealsQuery reads the appeals a batch of resolutions names, each
// with its row version (xmin), which every change of the row replaces.
const readAppealsQuery = `SELECT ` + appealColumns + `, xmin::text AS seen FROM appeals WHERE id = ANY($1::text[])`

// lockAppealsQuery is readAppealsQuery for a resolution alone, in its own
// transaction: it locks the appeals, in id order, as every other
// multi-row locker of appeals does, and waits for them.
const lockAppealsQuery = readAppealsQuery + ` ORDER BY id FOR UPDATE`

// appealRow is an appeal as read for a change, with its row version.
type appealRow struct {
	Appeal
	Seen string `db:"seen"`
}

// errBusy answers a batched call whose appeal another transaction held or
// changed after the batch read it, or a claim that must look past the
// candidates read: it wraps groupcommit.ErrAlone, so the call is answered
// again alone.
var errBusy = fmt.Errorf("appeals: appeal busy: %w", groupcommit.ErrAlone)

// applyResolutionsQuery resolves the checked appeals and stages their entries.
// Its own parameters are, in order: ids, outcomes, rationales, resolvers,
// resolved_at, seen; the entries' arrays follow.
func applyResolutionsQuery() string {
	var p audit.Params
	ids, outcomes, rationales, who, at, seen := p.Next(), p.Next(), p.Next(), p.Next(), p.Next(), p.Next()
	return guardedUpdate(&p, ids+`::text[], `+outcomes+`::text[], `+rationales+`::text[], `+who+`::text[], `+seen+`::text[]`,
		`id, outcome, rationale, who, seen`,
		`state = r.outcome, outcome = r.outcome, rationale = r.rationale, resolved_by = r.who, resolved_at = `+at)
}

// mayReview checks that by may take event (escalate, resolve) on an
// appeal now, as read (locked, or to be changed only if still that
// version): not its decider, a legal transition, and by's live claim.
func mayReview(a Appeal, by docket.Actor, event string, now time.Time) error {
	if a.DeciderName == by.Name {
		return docket.Errorf(docket.Forbidden, "%s made decision %s and may not review its appeal", by.Name, a.DecisionID)
	}
	if err := checkTransition(a, event); err != nil {
		return err
	}
	return holds(a, by, now)
}

// takes reports whether by may be handed a from the queue.
func takes(a Appeal, by docket.Actor) bool {
	return a.DeciderName != by.Name && (a.State != AppealEscalated || by.Role == docket.RoleSeniorReviewer)
}

// appealEntry is an appeal's audit entry; record defaults to the appeal.
func appealEntry(typ string, by docket.Actor, now time.Time, a Appeal, record any) audit.Entry {
	if record == nil {
		record = a
	}
	return audit.Entry{Type: typ, Time: now, Actor: by.String(),
		Subject: audit.Subject{Kind: "appeal", ID: a.ID},
		Refs:    []audit.Subject{{Kind: "decision", ID: a.DecisionID}},
		Record:  record,
		Keys:    AuditKeys(a.AdvertiserID, a.PolicyCode)}
}

// Claim hands by the waiting appeal with the earliest due_at, leased
// to by for Options.ClaimLease, or nil when nothing is waiting (the reply
// is then a 204: a nil *Appeal is what an idempotent claim keeps). A
// reviewer is never handed an appeal of a decision they made.
//
// A claim without an Idempotency-Key joins the claims' batch (claimBatch);
// one with a key, or one the batch sends back (errBusy), is claimed alone
// (claimAlone).
func (s *Store) Claim(ctx context.Context, by docket.Actor, opts ...WriteOption) (*Appeal, error) {
	if !by.Is(docket.Reviewers...) {
		return nil, docket.Errorf(docket.Forbidden, "only reviewers claim appeals")
	}
	req := claimReq{by: by, idem: idempotencyOf(opts)}
	if req.idem != nil {
		return s.claimAlone(ctx, req)
	}
	return s.claims.Do(ctx, req)
}

// claimBatch answers a batch of claims on the claims' lane (see claimIn).
func (s *Store) claimBatch(ctx context.Context, reqs []claimReq) ([]groupcommit.Result[*Appeal], error) {
	return inLane(s.claimLane, func(w on) ([]groupcommit.Result[*Appeal], error) {
		return s.claimIn(ctx, w, s.now(), reqs)
	})
}

// claimAlone answers one claim in its own transaction, which locks the
// appeal it takes (see claimIn).
func (s *Store) claimAlone(ctx context.Context, req claimReq) (*Appeal, error) {
	return write(ctx, s, req.idem, func(tx *sqlx.Tx, now time.Time) (*Appeal, error) {
		out, err := s.claimIn(ctx, on{tx: tx}, now, []claimReq{req})
		if err != nil {
			return nil, err
		}
		return out[0].Val, out[0].Err
	})
}

// on is where the queue's statements run: in tx, a transaction that locks
// what it reads and waits for it; or, with no tx, on a batch's lane, each
// statement its own transaction.
type on struct {
	tx   *sqlx.Tx
	lane *lane
}

func (s *Store) queueStmt(ctx context.Context, w on, q hotQuery) (*sqlx.Stmt, error) {
	if w.tx != nil {
		return s.stmt(ctx, w.tx, q), nil
	}
	return w.lane.Stmt(ctx, q)
}

// inLane runs a batch's statements on l, with no transaction around them.
// When they fail (or panic), l's connection, in a state no one knows, is
// dropped, and the error is the batch's: groupcommit then answers each
// call of a batch of more than one alone, in its own transaction, so that
// a failed statement that was one call's fault (input that got past the
// checks) fails no other call. Nothing of the batch committed: its one
// change is a single statement, and it failed.
func inLane[R any](l *lane, fn func(w on) ([]groupcommit.Result[R], error)) ([]groupcommit.Result[R], error) {
	ok := false
	defer func() {
		if !ok {
			l.Drop()
		}
	}()
	outs, err := fn(on{lane: l})
	ok = err == nil
	return outs, err
}

// readRows runs a batch's first statement, q, which changes nothing. A
// lane's connection may have died while it idled (a restarted database,
// a timeout), so on a lane a failed read is tried once more, on a new one.
func readRows[T any](ctx context.Context, s *Store, w on, q hotQuery, args ...any) ([]T, error) {
	for try := 0; ; try++ {
		var rows []T
		st, err := s.queueStmt(ctx, w, q)
		if err == nil {
			if err = st.SelectContext(ctx, &rows, args...); err == nil {
				return rows, nil
			}
		}
		if w.tx != nil || try == 1 {
			return nil, err
		}
		w.lane.Drop()
	}
}

// claimIn hands each of reqs, in order, the first appeal of the queue it
// may take; nil when none waits for it. In a batch (no tx), a claim whose
// appeal was taken meanwhile, or that finds none it may take among the
// candidates read, is errBusy. Steps: match claims to candidates, write
// the leases and their entries in one statement, answer each call.
func (s *Store) claimIn(ctx context.Context, w on, now time.Time, reqs []claimReq) ([]groupcommit.Result[*Appeal], error) {
	out, busy, err := s.matchClaims(ctx, w, now, reqs)
	if err != nil {
		return nil, fmt.Errorf("appeals: claim: %w", err)
	}
	lease := now.Add(s.opts.ClaimLease)
	entries, ids, states, whos, seen := claimChanges(reqs, out, now, lease)
	done, err := s.apply(ctx, w, qApplyClaims, entries, ids, states, whos, now, lease, seen)
	if err != nil {
		return nil, fmt.Errorf("appeals: claim: %w", err)
	}
	got := make([]groupcommit.Result[*Appeal], len(out))
	for i, row := range out {
		switch {
		case row != nil && slices.Contains(done, row.ID):
			got[i].Val = &row.Appeal
			got[i].Val.derive(now)
		case row != nil || busy[i]:
			got[i].Err = errBusy
		}
	}
	return got, nil
}

// matchClaims reads the queue's first candidates and gives each claim, in
// order, the first one it may take. Alone (in a tx, locking), a claim that
// finds none among them looks past them; in a batch it is busy instead.
func (s *Store) matchClaims(ctx context.Context, w on, now time.Time, reqs []claimReq) ([]*appealRow, []bool, error) {
	senior := slices.ContainsFunc(reqs, func(r claimReq) bool { return r.by.Role == docket.RoleSeniorReviewer })
	limit := len(reqs) + claimSlack
	candidates := qCandidates
	switch {
	case w.tx == nil && senior:
		candidates = qPeekSenior
	case w.tx == nil:
		candidates = qPeek
	case senior:
		candidates = qCandidatesSenior
	}
	cands, err := readRows[appealRow](ctx, s, w, candidates, now, limit)
	if err != nil {
		return nil, nil, err
	}
	held := make(pq.StringArray, len(cands))
	for i, a := range cands {
		held[i] = a.ID
	}
	taken := make([]bool, len(cands))
	out := make([]*appealRow, len(reqs))
	busy := make([]bool, len(reqs))
	for i, r := range reqs {
		for j := range cands {
			if !taken[j] && takes(cands[j].Appeal, r.by) {
				taken[j] = true
				out[i] = &cands[j]
				break
			}
		}
		if out[i] != nil || len(cands) < limit {
			continue // found one, or the whole unlocked queue was seen
		}
		if w.tx == nil {
			busy[i] = true // the locking claim alone looks further
			continue
		}
		// Every candidate was taken or not for r: look past them.
		var more []appealRow
		if err := w.tx.SelectContext(ctx, &more, nextQuery(r.by.Role == docket.RoleSeniorReviewer),
			now, r.by.Name, held); err != nil {
			return nil, nil, err
		}
		if len(more) == 1 {
			held = append(held, more[0].ID)
			out[i] = &more[0]
		}
	}
	return out, busy, nil
}

// claimChanges leases each matched appeal to its claimant and makes the
// entries: a lapsed lease's release first, then the claim.
func claimChanges(reqs []claimReq, out []*appealRow, now, lease time.Time) (entries []audit.Entry, ids, states, whos, seen pq.StringArray) {
	for i, row := range out {
		if row == nil {
			continue
		}
		a := &row.Appeal
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
		ids, states, whos, seen = append(ids, a.ID), append(states, string(a.State)), append(whos, who), append(seen, row.Seen)
	}
	return entries, ids, states, whos, seen
}

// Resolve answers an appeal by its assignee. A reversal reverses the
// decision in the same transaction, with both entries.
//
// An upholding without an Idempotency-Key joins the resolutions' batch
// (resolveBatch); a reversal, which also changes its decision, one with a
// key, and one the batch sends back (errBusy) are resolved alone
// (resolveAlone).
func (s *Store) Resolve(ctx context.Context, by docket.Actor, id string, in ResolveInput, opts ...WriteOption) (Appeal, error) {
	if !by.Is(docket.Reviewers...) {
		return Appeal{}, docket.Errorf(docket.Forbidden, "only reviewers resolve appeals; resolution is never automated")
	}
	if err := in.Validate(); err != nil {
		return Appeal{}, err
	}
	// Before the batch: an id Postgres would refuse must fail this call
	// alone, not the statement that answers every call in the batch.
	if err := checkID("appeal", "id", id); err != nil {
		return Appeal{}, err
	}
	req := resolveReq{by: by, id: id, in: in, idem: idempotencyOf(opts)}
	if req.idem == nil && in.Outcome == AppealUpheld {
		return s.resolves.Do(ctx, req)
	}
	return s.resolveAlone(ctx, req)
}

// resolveBatch answers a batch of resolutions on the resolutions' lane
// (see resolveIn).
func (s *Store) resolveBatch(ctx context.Context, reqs []resolveReq) ([]groupcommit.Result[Appeal], error) {
	return inLane(s.resolveLane, func(w on) ([]groupcommit.Result[Appeal], error) {
		return s.resolveIn(ctx, w, s.now(), reqs)
	})
}

// resolveAlone answers one resolution in its own transaction, which locks
// the appeal, and for a reversal its decision first, waiting for them.
func (s *Store) resolveAlone(ctx context.Context, req resolveReq) (Appeal, error) {
	return write(ctx, s, req.idem, func(tx *sqlx.Tx, now time.Time) (Appeal, error) {
		var d Decision
		if req.in.Outcome == AppealReversed {
			// Decision before appeal, as FileAppeal and bulk reversals lock them.
			peek, err := getAppeal(ctx, tx, req.id, false)
			if err != nil {
				return Appeal{}, err
			}
			if d, err = getDecision(ctx, tx, peek.DecisionID, true); err != nil {
				return Appeal{}, err
			}
		}
		outs, err := s.resolveIn(ctx, on{tx: tx}, now, []resolveReq{req})
		if err != nil {
			return Appeal{}, err
		}
		a, err := outs[0].Val, outs[0].Err
		if err != nil {
			return Appeal{}, err
		}
		if req.in.Outcome == AppealReversed && d.Status == StatusInEffect {
			if err := s.reverseDecision(ctx, tx, d, req.by, now, &a.ID, nil, req.in.Rationale,
				[]audit.Subject{{Kind: "appeal", ID: a.ID}}); err != nil {
				return Appeal{}, err
			}
		}
		return a, nil
	})
}

// resolveIn resolves each of reqs whose checks hold, in order: a second
// resolution of one appeal in the same call finds it resolved. In tx, it
// locks the appeals first, waiting for them. With no tx (a batch), it
// locks nothing ahead: it reads the appeals, checks them, and the one
// statement that resolves them skips any appeal changed since the read or
// held by another transaction; every call about such an appeal is
// errBusy, and is checked again alone.
func (s *Store) resolveIn(ctx context.Context, w on, now time.Time, reqs []resolveReq) ([]groupcommit.Result[Appeal], error) {
	ids := make(pq.StringArray, len(reqs))
	for i, r := range reqs {
		ids[i] = r.id
	}
	read := qReadAppeals
	if w.tx != nil {
		read = qLockAppeals
	}
	rows, err := readRows[appealRow](ctx, s, w, read, ids)
	if err != nil {
		return nil, fmt.Errorf("appeals: resolve: %w", err)
	}
	byID := make(map[string]*appealRow, len(rows))
	for i := range rows {
		byID[rows[i].ID] = &rows[i]
	}
	out := make([]groupcommit.Result[Appeal], len(reqs))
	var upd, outcomes, rationales, whos, seen pq.StringArray
	var entries []audit.Entry
	for i, r := range reqs {
		row, ok := byID[r.id]
		if !ok {
			out[i].Err = docket.Errorf(docket.NotFound, "appeal %q not found", r.id)
			continue
		}
		a := &row.Appeal
		if err := mayReview(*a, r.by, evResolve, now); err != nil {
			out[i].Err = err
			continue
		}
		who, result, rationale := r.by.String(), r.in.Outcome, r.in.Rationale
		a.State, a.Outcome, a.Rationale, a.ResolvedBy, a.ResolvedAt = result, &result, &rationale, &who, &now
		entries = append(entries, appealEntry(EntryAppealResolved, r.by, now, *a, nil))
		upd, outcomes = append(upd, a.ID), append(outcomes, string(result))
		rationales, whos, seen = append(rationales, rationale), append(whos, who), append(seen, row.Seen)
		out[i].Val = *a
		out[i].Val.derive(now)
	}
	done, err := s.apply(ctx, w, qApplyResolutions, entries, upd, outcomes, rationales, whos, now, seen)
	if err != nil {
		return nil, fmt.Errorf("appeals: resolve: %w", err)
	}
	resolved := make(map[string]bool, len(done))
	for _, id := range done {
		resolved[id] = true
	}
	// A later call about a skipped appeal was checked against a change
	// that did not happen: it is busy too.
	for i, r := range reqs {
		if slices.Contains(upd, r.id) && !resolved[r.id] {
			out[i] = groupcommit.Result[Appeal]{Err: errBusy}
		}
	}
	return out, nil
}

// apply runs one of the apply queries with args, followed by the staging
// arrays of entries, and returns the subject ids of the entries staged;
// with no entries there is nothing to change.
func (s *Store) apply(ctx context.Context, w on, query hotQuery, entries []audit.Entry, args ...any) ([]string, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	staged, err := audit.StageArrays(entries)
	if err != nil {
		return nil, err
	}
	st, err := s.queueStmt(ctx, w, query)
	if err != nil {
		return nil, err
	}
	var subjects []string
	err = st.SelectContext(ctx, &subjects, append(args, staged...)...)
	return subjects, err
}
