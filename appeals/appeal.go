package appeals

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/audit"
)

// Limits of an appeal's input.
const (
	MaxStatement     = 5000
	MaxEvidenceItems = 20
	MaxEvidenceText  = 1000
	MaxEvidenceURL   = 2048
	MaxRationale     = 5000
	MaxReason        = 2000
)

// The states that sets of appeals are selected by, each named once here:
// Go checks a state against the list, and every statement splices in the
// same list as an SQL literal (sqlList), not as a parameter, so that the
// planner matches the partial indexes whose predicates the migrations
// wrote with the same values (appeals_one_open, appeals_queue: open;
// appeals_leases: leased). TestStateListsMatchTheIndexes holds the
// indexes to these lists.
var (
	// openStates are an appeal's states while it awaits its answer: at
	// most one open appeal per decision.
	openStates = []AppealState{AppealPending, AppealInReview, AppealEscalated}
	// leasedStates are the open states held by a reviewer's claim, whose
	// lease may lapse.
	leasedStates = []AppealState{AppealInReview, AppealEscalated}
	// resolvedStates are the outcomes of a review (see outcomes).
	resolvedStates = outcomes

	openStatesSQL     = sqlList(openStates...)
	leasedStatesSQL   = sqlList(leasedStates...)
	resolvedStatesSQL = sqlList(resolvedStates...)
)

func isOpen(state AppealState) bool { return slices.Contains(openStates, state) }

// sqlList writes constant values as the items of an SQL IN list.
func sqlList[T ~string](vals ...T) string {
	quoted := make([]string, len(vals))
	for i, v := range vals {
		quoted[i] = pq.QuoteLiteral(string(v))
	}
	return strings.Join(quoted, ", ")
}

// systemActor is recorded for what Docket does on its own (lease expiry).
var systemActor = docket.Actor{Role: docket.RoleSystem, Name: "docket"}

// EvidenceItem is one piece of evidence an advertiser attaches.
type EvidenceItem struct {
	Description string `json:"description" maxLength:"1000"`
	URL         string `json:"url" maxLength:"2048" format:"uri" doc:"An absolute http or https URL."`
}

// Evidence is stored as a jsonb array.
type Evidence []EvidenceItem

// Value encodes the evidence for the jsonb column; nil is an empty array.
// It is text, not bytes: with binary_parameters lib/pq sends []byte in
// binary form, which jsonb would read as its versioned binary format.
func (e Evidence) Value() (driver.Value, error) {
	if e == nil {
		return "[]", nil
	}
	b, err := json.Marshal([]EvidenceItem(e))
	if err != nil {
		return nil, fmt.Errorf("appeals: encode evidence: %w", err)
	}
	return string(b), nil
}

// Scan decodes the jsonb column.
func (e *Evidence) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	case nil:
		*e = Evidence{}
		return nil
	default:
		return fmt.Errorf("appeals: evidence: unexpected %T", src)
	}
	items := Evidence{}
	if err := json.Unmarshal(b, &items); err != nil {
		return fmt.Errorf("appeals: decode evidence: %w", err)
	}
	*e = items
	return nil
}

// Appeal is an advertiser's complaint against a decision (DSA Art. 20) and
// its handling: the queue's lease, an escalation, and the reasoned outcome.
type Appeal struct {
	ID           string      `json:"id" db:"id"`
	DecisionID   string      `json:"decision_id" db:"decision_id"`
	AdvertiserID string      `json:"advertiser_id" db:"advertiser_id"`
	State        AppealState `json:"state" db:"state" enumSet:"appeal_state"`
	Statement    string      `json:"statement" db:"statement"`
	Evidence     Evidence    `json:"evidence" db:"evidence"`
	FiledBy      string      `json:"filed_by" db:"filed_by"`
	FiledAt      time.Time   `json:"filed_at" db:"filed_at"`
	DueAt        time.Time   `json:"due_at" db:"due_at"`
	// Overdue is derived on reads: still open past due_at.
	Overdue          bool         `json:"overdue" db:"-"`
	AssignedTo       *string      `json:"assigned_to" db:"assigned_to" doc:"Read with an advertiser's token: the role only (for example reviewer), never the name."`
	ClaimedAt        *time.Time   `json:"claimed_at" db:"claimed_at"`
	LeaseUntil       *time.Time   `json:"lease_until" db:"lease_until"`
	EscalationReason *string      `json:"escalation_reason" db:"escalation_reason" doc:"An internal note between reviewers: null when read with an advertiser's token."`
	EscalatedBy      *string      `json:"escalated_by" db:"escalated_by" doc:"Read with an advertiser's token: the role only (for example reviewer), never the name."`
	EscalatedAt      *time.Time   `json:"escalated_at" db:"escalated_at"`
	Outcome          *AppealState `json:"outcome" db:"outcome" enumSet:"outcome"`
	Rationale        *string      `json:"rationale" db:"rationale"`
	ResolvedBy       *string      `json:"resolved_by" db:"resolved_by" doc:"Read with an advertiser's token: the role only (for example reviewer), never the name."`
	ResolvedAt       *time.Time   `json:"resolved_at" db:"resolved_at"`
	WithdrawnAt      *time.Time   `json:"withdrawn_at" db:"withdrawn_at"`
	// DeciderName is the name of who made the decision: the one person who
	// may never review it. Kept out of replies; the decision says it.
	DeciderName string `json:"-" db:"decider_name"`
	// PolicyCode is the decision's policy, copied like DeciderName: the
	// index key of the appeal's audit entries (AuditKeys). Kept out of
	// replies and of the entries' records.
	PolicyCode string `json:"-" db:"policy_code"`
}

func (a *Appeal) derive(now time.Time) {
	a.Overdue = isOpen(a.State) && a.DueAt.Before(now)
}

const appealColumns = `id, decision_id, advertiser_id, state, statement, evidence, filed_by, filed_at, due_at,
	assigned_to, claimed_at, lease_until, escalation_reason, escalated_by, escalated_at,
	outcome, rationale, resolved_by, resolved_at, withdrawn_at, decider_name, policy_code`

// AppealInput is an appeal as the advertiser files it.
type AppealInput struct {
	Statement string         `json:"statement" maxLength:"5000"`
	Evidence  []EvidenceItem `json:"evidence" maxItems:"20"`
}

// Validate checks the statement and each evidence item.
func (in AppealInput) Validate() error {
	var p docket.Problems
	docket.Required(&p, "statement", in.Statement, MaxStatement)
	items := in.Evidence
	if len(items) > MaxEvidenceItems {
		// Only the items that could be kept are checked: a body of
		// 340,000 empty items must not cost 340,000 errors.
		p.Add("evidence", "must have at most %d items", MaxEvidenceItems)
		items = items[:MaxEvidenceItems]
	}
	for i, e := range items {
		field := fmt.Sprintf("evidence[%d]", i)
		if !docket.Clean(&p, field+".description", e.Description) || !docket.Clean(&p, field+".url", e.URL) {
			continue
		}
		if strings.TrimSpace(e.Description) == "" && e.URL == "" {
			p.Add(field, "needs a description or a url")
		}
		if utf8.RuneCountInString(e.Description) > MaxEvidenceText {
			p.Add(field+".description", "must be at most %d characters", MaxEvidenceText)
		}
		if e.URL != "" && !validURL(e.URL) {
			p.Add(field+".url", "must be an absolute http or https URL of at most %d characters", MaxEvidenceURL)
		}
	}
	return p.Err()
}

func validURL(s string) bool {
	if len(s) > MaxEvidenceURL {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// ResolveInput is a reviewer's answer to an appeal.
type ResolveInput struct {
	Outcome   AppealState `json:"outcome" enumSet:"outcome"`
	Rationale string      `json:"rationale" maxLength:"5000"`
}

// Validate checks the outcome and the rationale.
func (in ResolveInput) Validate() error {
	var p docket.Problems
	docket.OneOf(&p, "outcome", in.Outcome, outcomes)
	docket.Required(&p, "rationale", in.Rationale, MaxRationale)
	return p.Err()
}

// EscalateInput says why an appeal needs a senior reviewer.
type EscalateInput struct {
	Reason string `json:"reason" maxLength:"2000"`
}

// Validate checks the reason.
func (in EscalateInput) Validate() error {
	var p docket.Problems
	docket.Required(&p, "reason", in.Reason, MaxReason)
	return p.Err()
}

// The state machine: which events each state admits. Anything else is a
// Conflict naming the current state.
const (
	evClaim    = "claimed"
	evEscalate = "escalated"
	evResolve  = "resolved"
	evWithdraw = "withdrawn"
	evRelease  = "released"
)

var transitions = map[AppealState][]string{
	AppealPending:   {evClaim, evWithdraw},
	AppealInReview:  {evEscalate, evResolve, evWithdraw, evRelease},
	AppealEscalated: {evClaim, evResolve, evRelease},
}

func checkTransition(a Appeal, event string) error {
	if slices.Contains(transitions[a.State], event) {
		return nil
	}
	return docket.Errorf(docket.Conflict, "appeal %s is %s; it cannot be %s", a.ID, a.State, event)
}

// holds checks that by is the appeal's current assignee with a live lease.
func holds(a Appeal, by docket.Actor, now time.Time) error {
	switch {
	case a.AssignedTo == nil && a.State == AppealEscalated:
		return docket.Errorf(docket.Conflict, "appeal %s is escalated and waits for a senior reviewer to claim it", a.ID)
	case a.AssignedTo == nil:
		return docket.Errorf(docket.Conflict, "appeal %s is %s and assigned to no one; claim it first", a.ID, a.State)
	case *a.AssignedTo != by.String():
		return docket.Errorf(docket.Conflict, "appeal %s is %s and assigned to %s", a.ID, a.State, *a.AssignedTo)
	case a.LeaseUntil != nil && !a.LeaseUntil.After(now):
		return docket.Errorf(docket.Conflict, "appeal %s is %s but your claim lapsed at %s; claim again", a.ID, a.State,
			a.LeaseUntil.Format(time.RFC3339))
	}
	return nil
}

func getAppeal(ctx context.Context, q sqlx.QueryerContext, id string, forUpdate bool) (Appeal, error) {
	return getRow[Appeal](ctx, q, "appeal", `SELECT `+appealColumns+` FROM appeals`, id, forUpdate)
}

// appealsOf returns a decision's appeals, oldest first.
func appealsOf(ctx context.Context, q sqlx.QueryerContext, decisionID string) ([]Appeal, error) {
	var as []Appeal
	if err := sqlx.SelectContext(ctx, q, &as, `SELECT `+appealColumns+` FROM appeals
		WHERE decision_id = $1 ORDER BY id`, decisionID); err != nil {
		return nil, fmt.Errorf("appeals: read appeals of %s: %w", decisionID, err)
	}
	return as, nil
}

// appealable says why d cannot be appealed now, given its appeals, or nil.
func (s *Store) appealable(d Decision, history []Appeal, now time.Time) error {
	if d.Status != StatusInEffect {
		return docket.Errorf(docket.Conflict, "decision %s is %s; only a decision in effect can be appealed", d.ID, d.Status)
	}
	if now.After(d.AppealDeadline) {
		return docket.Errorf(docket.Conflict, "the appeal deadline of decision %s passed at %s", d.ID, d.AppealDeadline.Format(time.RFC3339))
	}
	resolved := 0
	for _, a := range history {
		if isOpen(a.State) {
			return docket.Errorf(docket.Conflict, "appeal %s of decision %s is still %s", a.ID, d.ID, a.State)
		}
		if a.State == AppealUpheld || a.State == AppealReversed {
			resolved++
		}
	}
	if resolved > *s.opts.FurtherAppeals {
		return docket.Errorf(docket.Conflict, "decision %s has had %d resolved appeals; no further appeal is allowed", d.ID, resolved)
	}
	return nil
}

func insertAppeal(ctx context.Context, tx *sqlx.Tx, a Appeal) error {
	_, err := tx.NamedExecContext(ctx, `INSERT INTO appeals (`+appealColumns+`) VALUES (
		:id, :decision_id, :advertiser_id, :state, :statement, :evidence, :filed_by, :filed_at, :due_at,
		:assigned_to, :claimed_at, :lease_until, :escalation_reason, :escalated_by, :escalated_at,
		:outcome, :rationale, :resolved_by, :resolved_at, :withdrawn_at, :decider_name, :policy_code)`, a)
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" && pqErr.Constraint == "appeals_one_open" {
		// A concurrent filing won the race the decision's lock did not cover.
		return docket.Errorf(docket.Conflict, "an appeal of decision %s is still open", a.DecisionID)
	}
	if err != nil {
		return fmt.Errorf("appeals: insert appeal: %w", err)
	}
	return nil
}

// updateAppeal writes every mutable column of a.
func updateAppeal(ctx context.Context, tx *sqlx.Tx, a Appeal) error {
	_, err := tx.NamedExecContext(ctx, `UPDATE appeals SET state = :state, assigned_to = :assigned_to,
		claimed_at = :claimed_at, lease_until = :lease_until, escalation_reason = :escalation_reason,
		escalated_by = :escalated_by, escalated_at = :escalated_at, outcome = :outcome, rationale = :rationale,
		resolved_by = :resolved_by, resolved_at = :resolved_at, withdrawn_at = :withdrawn_at
		WHERE id = :id`, a)
	if err != nil {
		return fmt.Errorf("appeals: update appeal %s: %w", a.ID, err)
	}
	return nil
}

func (s *Store) appendAppealEntry(ctx context.Context, tx *sqlx.Tx, typ string, by docket.Actor, now time.Time, a Appeal, record any) error {
	return s.append(ctx, tx, appealEntry(typ, by, now, a, record))
}

// FileAppeal files an appeal of decision decisionID for the advertiser it is about.
func (s *Store) FileAppeal(ctx context.Context, by docket.Actor, decisionID string, in AppealInput, opts ...WriteOption) (Appeal, error) {
	if !by.Is(docket.Appellants...) {
		return Appeal{}, docket.Errorf(docket.Forbidden, "only the advertiser a decision is about may appeal it")
	}
	if err := in.Validate(); err != nil {
		return Appeal{}, err
	}
	return write(ctx, s, idempotencyOf(opts), func(tx *sqlx.Tx, now time.Time) (Appeal, error) {
		// The decision's lock serializes filings and reversals of one decision.
		d, err := getDecision(ctx, tx, decisionID, true)
		if err != nil {
			return Appeal{}, err
		}
		if !canSee(by, d.AdvertiserID) {
			return Appeal{}, docket.Errorf(docket.NotFound, "decision %q not found", decisionID)
		}
		d.effective(now)
		history, err := appealsOf(ctx, tx, d.ID)
		if err != nil {
			return Appeal{}, err
		}
		if err := s.appealable(d, history, now); err != nil {
			return Appeal{}, err
		}
		a := Appeal{ID: uuid.Must(uuid.NewV7()).String(), DecisionID: d.ID, AdvertiserID: d.AdvertiserID,
			State: AppealPending, Statement: in.Statement, Evidence: Evidence(in.Evidence), FiledBy: by.String(),
			FiledAt: now, DueAt: now.Add(s.opts.ReviewDue), DeciderName: docket.NameOf(d.DecidedBy),
			PolicyCode: d.PolicyCode}
		if a.Evidence == nil {
			a.Evidence = Evidence{}
		}
		if err := insertAppeal(ctx, tx, a); err != nil {
			return Appeal{}, err
		}
		if err := s.appendAppealEntry(ctx, tx, EntryAppealFiled, by, now, a, nil); err != nil {
			return Appeal{}, err
		}
		a.derive(now)
		// The view, not the row, is what the idempotent reply keeps.
		return a.ViewFor(by), nil
	})
}

// releaseRecord is an appeal.released entry's record: the appeal back in
// the queue and whose claim lapsed.
type releaseRecord struct {
	Appeal
	ReleasedFrom string `json:"released_from"`
}

// release returns an appeal whose lease lapsed to its queue: in_review
// goes back to pending, an escalated one waits for seniors again.
func (s *Store) release(ctx context.Context, tx *sqlx.Tx, a Appeal, now time.Time) (Appeal, error) {
	if err := checkTransition(a, evRelease); err != nil {
		return Appeal{}, err
	}
	from := ""
	if a.AssignedTo != nil {
		from = *a.AssignedTo
	}
	if a.State == AppealInReview {
		a.State = AppealPending
	}
	a.AssignedTo, a.ClaimedAt, a.LeaseUntil = nil, nil, nil
	if err := updateAppeal(ctx, tx, a); err != nil {
		return Appeal{}, err
	}
	if err := s.appendAppealEntry(ctx, tx, EntryAppealReleased, systemActor, now, a,
		releaseRecord{Appeal: a, ReleasedFrom: from}); err != nil {
		return Appeal{}, err
	}
	return a, nil
}

// lapsedQuery finds claims whose lease lapsed, through the index of open
// appeals' leases.
var lapsedQuery = `SELECT ` + appealColumns + ` FROM appeals
	WHERE lease_until <= $1 AND state IN (` + leasedStatesSQL + `)
	ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED`

// releaseBatch is how many lapsed leases one transaction releases.
const releaseBatch = 100

// ReleaseExpired returns every appeal whose claim lapsed to the queue, with
// an appeal.released entry each, and reports how many. Claims release
// lapsed leases lazily too; this keeps lists and reports current.
func (s *Store) ReleaseExpired(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := write(ctx, s, nil, func(tx *sqlx.Tx, now time.Time) (int, error) {
			var rows []Appeal
			if err := tx.SelectContext(ctx, &rows, lapsedQuery, now, releaseBatch); err != nil {
				return 0, fmt.Errorf("appeals: find lapsed claims: %w", err)
			}
			for _, a := range rows {
				if _, err := s.release(ctx, tx, a, now); err != nil {
					return 0, err
				}
			}
			return len(rows), nil
		})
		total += n
		if err != nil {
			return total, err
		}
		if n < releaseBatch {
			return total, nil
		}
	}
}

// reversalRecord is a decision.reversed entry's record: the decision after
// the change, and what downstream systems do about it.
type reversalRecord struct {
	Decision
	// Effect tells the ad server what to undo: ad_may_run for an ad removal
	// or restriction, advertiser_reinstated for a ban.
	Effect    string `json:"effect"`
	Rationale string `json:"rationale"`
}

func effectOf(action Action) string {
	if action == ActionAdvertiserBan {
		return "advertiser_reinstated"
	}
	return "ad_may_run"
}

// reverseDecision sets a locked, in-effect decision to reversed and appends
// its decision.reversed entry, naming what caused it in refs.
func (s *Store) reverseDecision(ctx context.Context, tx *sqlx.Tx, d Decision, by docket.Actor, now time.Time,
	appealID, reversalID *string, rationale string, refs []audit.Subject) error {
	d.Status, d.ReversedAt, d.ReversedByAppeal = StatusReversed, &now, appealID
	if _, err := tx.ExecContext(ctx, `UPDATE decisions SET status = 'reversed', reversed_at = $2,
		reversed_by_appeal = $3, reversed_by_reversal = $4 WHERE id = $1`, d.ID, now, appealID, reversalID); err != nil {
		return fmt.Errorf("appeals: reverse decision %s: %w", d.ID, err)
	}
	err := s.append(ctx, tx, audit.Entry{Type: EntryDecisionReversed, Time: now, Actor: by.String(),
		Subject: audit.Subject{Kind: "decision", ID: d.ID}, Refs: refs,
		Record: reversalRecord{Decision: d, Effect: effectOf(d.Action), Rationale: rationale},
		Keys:   AuditKeys(d.AdvertiserID, d.PolicyCode)})
	return err
}

// Escalate hands an appeal in review to the senior reviewers' queue.
func (s *Store) Escalate(ctx context.Context, by docket.Actor, id string, in EscalateInput, opts ...WriteOption) (Appeal, error) {
	if !by.Is(docket.Reviewers...) {
		return Appeal{}, docket.Errorf(docket.Forbidden, "only reviewers escalate appeals")
	}
	if err := in.Validate(); err != nil {
		return Appeal{}, err
	}
	return write(ctx, s, idempotencyOf(opts), func(tx *sqlx.Tx, now time.Time) (Appeal, error) {
		a, err := getAppeal(ctx, tx, id, true)
		if err != nil {
			return Appeal{}, err
		}
		if err := mayReview(a, by, evEscalate, now); err != nil {
			return Appeal{}, err
		}
		who := by.String()
		a.State, a.EscalationReason, a.EscalatedBy, a.EscalatedAt = AppealEscalated, &in.Reason, &who, &now
		a.AssignedTo, a.ClaimedAt, a.LeaseUntil = nil, nil, nil
		if err := updateAppeal(ctx, tx, a); err != nil {
			return Appeal{}, err
		}
		if err := s.appendAppealEntry(ctx, tx, EntryAppealEscalated, by, now, a, nil); err != nil {
			return Appeal{}, err
		}
		a.derive(now)
		return a, nil
	})
}

// Withdraw lets the advertiser take back an appeal not yet escalated or resolved.
func (s *Store) Withdraw(ctx context.Context, by docket.Actor, id string, opts ...WriteOption) (Appeal, error) {
	if !by.Is(docket.Appellants...) {
		return Appeal{}, docket.Errorf(docket.Forbidden, "only the advertiser who appealed may withdraw")
	}
	return write(ctx, s, idempotencyOf(opts), func(tx *sqlx.Tx, now time.Time) (Appeal, error) {
		a, err := getAppeal(ctx, tx, id, true)
		if err != nil {
			return Appeal{}, err
		}
		if !canSee(by, a.AdvertiserID) {
			return Appeal{}, docket.Errorf(docket.NotFound, "appeal %q not found", id)
		}
		if err := checkTransition(a, evWithdraw); err != nil {
			return Appeal{}, err
		}
		a.State, a.WithdrawnAt = AppealWithdrawn, &now
		a.AssignedTo, a.ClaimedAt, a.LeaseUntil = nil, nil, nil
		if err := updateAppeal(ctx, tx, a); err != nil {
			return Appeal{}, err
		}
		if err := s.appendAppealEntry(ctx, tx, EntryAppealWithdrawn, by, now, a, nil); err != nil {
			return Appeal{}, err
		}
		a.derive(now)
		// Only pending and in-review appeals are withdrawn and the claim is
		// cleared, so no staff field is set today; the view keeps it so if
		// the state machine changes (the reply is also what a replay returns).
		return a.ViewFor(by), nil
	})
}

// Appeal returns one appeal. Another advertiser's is NotFound.
func (s *Store) Appeal(ctx context.Context, by docket.Actor, id string) (Appeal, error) {
	a, err := getAppeal(ctx, s.db, id, false)
	if err != nil {
		return Appeal{}, err
	}
	if !canSee(by, a.AdvertiserID) {
		return Appeal{}, docket.Errorf(docket.NotFound, "appeal %q not found", id)
	}
	a.derive(s.now())
	return a.ViewFor(by), nil
}

// AppealFilter narrows a list of appeals; empty fields match all.
type AppealFilter struct {
	State        AppealState
	AdvertiserID string
	DecisionID   string
	// AssignedTo keeps the appeals claimed by this recorded actor
	// ("role:name"); the console's "mine". Staff only: an advertiser's
	// list ignores it, as an advertiser sees staff by role only.
	AssignedTo string
	// Overdue keeps open appeals past their due_at.
	Overdue bool
	PageRequest
}

// Validate checks the filter's values.
func (f AppealFilter) Validate() error {
	var p docket.Problems
	docket.OptionalOneOf(&p, "state", f.State, appealStates)
	if f.AdvertiserID != "" && !ValidPlatformID(f.AdvertiserID) {
		p.Add("advertiser_id", "is not a valid advertiser id")
	}
	if f.DecisionID != "" && docket.Clean(&p, "decision_id", f.DecisionID) && !ValidPlatformID(f.DecisionID) {
		p.Add("decision_id", "is not a decision id")
	}
	if f.AssignedTo != "" && (len(f.AssignedTo) > 200 || !docket.CleanString(f.AssignedTo)) {
		p.Add("assigned_to", "is not an actor")
	}
	p.Merge(f.PageRequest.Validate())
	return p.Err()
}

// ListAppeals lists appeals newest first; an advertiser sees only its own.
func (s *Store) ListAppeals(ctx context.Context, by docket.Actor, f AppealFilter) (Page[Appeal], error) {
	if ok, err := listScope(by, f, &f.AdvertiserID); !ok {
		return Page[Appeal]{Items: []Appeal{}}, err
	}
	now := s.now()
	var q filterSQL
	q.eq("state", string(f.State))
	q.eq("advertiser_id", f.AdvertiserID)
	q.eq("decision_id", f.DecisionID)
	if by.Role != docket.RoleAdvertiser {
		q.eq("assigned_to", f.AssignedTo)
	}
	if f.Overdue {
		q.add("state IN (" + openStatesSQL + ") AND due_at < " + q.arg(now))
	}
	return list(ctx, s.db, &q, `SELECT `+appealColumns+` FROM appeals`, f.PageRequest,
		func(a Appeal) string { return a.ID }, func(a *Appeal) { a.derive(now); *a = a.ViewFor(by) })
}

// AppealInfo tells a decision's reader whether and how it can be appealed.
type AppealInfo struct {
	// Open is true while a new appeal may be filed.
	Open     bool      `json:"open"`
	Deadline time.Time `json:"deadline"`
	// How names the call that files an appeal, while Open. The domain
	// leaves it empty: the API, which owns the routes, renders it.
	How string `json:"how,omitempty"`
	// Reason says why no appeal may be filed now, when not Open.
	Reason string `json:"reason,omitempty"`
}

// withAppeals fills the advertiser's view of d: its appeals and whether it
// can be appealed now.
func (s *Store) withAppeals(ctx context.Context, d *Decision, now time.Time) error {
	history, err := appealsOf(ctx, s.db, d.ID)
	if err != nil {
		return err
	}
	for i := range history {
		history[i].derive(now)
	}
	d.Appeals = history
	if d.Appeals == nil {
		d.Appeals = []Appeal{}
	}
	info := &AppealInfo{Deadline: d.AppealDeadline}
	if err := s.appealable(*d, history, now); err != nil {
		var e *docket.Error
		if !errors.As(err, &e) {
			return err
		}
		info.Reason = e.Message
	} else {
		info.Open = true
	}
	d.Appeal = info
	return nil
}
