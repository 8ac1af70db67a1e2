package appeals

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/audit"
)

// Decision is an enforcement decision with its full statement of reasons
// (DSA Art. 17): the measure, the policy version, facts, ground, automation.
type Decision struct {
	ID                 string            `json:"id" db:"id"`
	AdvertiserID       string            `json:"advertiser_id" db:"advertiser_id"`
	AdID               *string           `json:"ad_id,omitempty" db:"ad_id"`
	Action             Action            `json:"action" db:"action" enumSet:"action"`
	PolicyCode         string            `json:"policy_code" db:"policy_code"`
	PolicyVersion      int               `json:"policy_version" db:"policy_version"`
	PolicyTextSHA256   string            `json:"policy_text_sha256" db:"policy_text_sha256"`
	Ground             Ground            `json:"ground" db:"ground" enumSet:"ground"`
	LegalReference     *string           `json:"legal_reference,omitempty" db:"legal_reference"`
	Explanation        string            `json:"explanation" db:"explanation"`
	Facts              string            `json:"facts" db:"facts"`
	Source             Source            `json:"source" db:"source" enumSet:"source"`
	AutomatedDetection bool              `json:"automated_detection" db:"automated_detection"`
	AutomatedDecision  AutomatedDecision `json:"automated_decision" db:"automated_decision" enumSet:"automated_decision"`
	TerritorialScope   pq.StringArray    `json:"territorial_scope" db:"territorial_scope"`
	ContentType        pq.StringArray    `json:"content_type" db:"content_type" enumSet:"content_type"`
	EndsAt             *time.Time        `json:"ends_at,omitempty" db:"ends_at"`
	Status             DecisionStatus    `json:"status" db:"status" enumSet:"decision_status"`
	DecidedBy          string            `json:"decided_by" db:"decided_by" doc:"ROLE:NAME of the enforcer or admin; read with an advertiser's token, the role only (for example enforcer)."`
	DecidedAt          time.Time         `json:"decided_at" db:"decided_at"`
	AppealDeadline     time.Time         `json:"appeal_deadline" db:"appeal_deadline"`
	ReversedAt         *time.Time        `json:"reversed_at" db:"reversed_at"`
	ReversedByAppeal   *string           `json:"reversed_by_appeal" db:"reversed_by_appeal"`
	NotifiedAt         *time.Time        `json:"notified_at" db:"notified_at"`
	// Appeals and Appeal are the advertiser's view, filled on single reads
	// only (never in lists, never in the log's records): the decision's
	// appeals, oldest first, and whether and how it can be appealed now.
	Appeals []Appeal    `json:"appeals,omitzero" db:"-"`
	Appeal  *AppealInfo `json:"appeal,omitempty" db:"-"`
}

// effective derives the expired status: a measure whose end has passed.
// Expiry is a fact of time, not a change anyone makes, so it has no entry.
func (d *Decision) effective(now time.Time) {
	if d.Status == StatusInEffect && d.EndsAt != nil && !d.EndsAt.After(now) {
		d.Status = StatusExpired
	}
}

// DecisionInput is a decision as submitted. Strings left empty count as
// missing; times are strings so that a malformed one is reported by field.
type DecisionInput struct {
	AdvertiserID       string            `json:"advertiser_id" pattern:"platform_id"`
	AdID               string            `json:"ad_id" pattern:"platform_id" doc:"Required for ad_removal and ad_restriction; absent for advertiser_ban."`
	Action             Action            `json:"action" enumSet:"action"`
	PolicyCode         string            `json:"policy_code" pattern:"policy_code"`
	Ground             Ground            `json:"ground" enumSet:"ground"`
	LegalReference     string            `json:"legal_reference" maxLength:"500" doc:"Required when ground is law; absent otherwise."`
	Explanation        string            `json:"explanation" maxLength:"2000"`
	Facts              string            `json:"facts" maxLength:"5000"`
	Source             Source            `json:"source" enumSet:"source"`
	AutomatedDetection *bool             `json:"automated_detection"`
	AutomatedDecision  AutomatedDecision `json:"automated_decision" enumSet:"automated_decision"`
	TerritorialScope   []string          `json:"territorial_scope" maxItems:"250" enumSet:"countries" uniqueItems:"true"`
	EndsAt             string            `json:"ends_at" format:"date-time" doc:"In the future."`
	ContentType        []string          `json:"content_type" enumSet:"content_type" maxItems:"8" uniqueItems:"true"`
}

// MaxTerritorialScope bounds territorial_scope: ISO 3166-1 has 249 codes,
// so a longer list repeats one.
const MaxTerritorialScope = 250

// Validate checks every field's shape and names each bad one, in the
// order of the fields.
func (in DecisionInput) Validate() error {
	var p docket.Problems
	if in.AdvertiserID == "" {
		p.Add("advertiser_id", "is required")
	} else if !ValidPlatformID(in.AdvertiserID) {
		p.Add("advertiser_id", "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'")
	}
	docket.OneOf(&p, "action", in.Action, actions)
	in.checkAdID(&p)
	if in.PolicyCode == "" {
		p.Add("policy_code", "is required")
	} else if !ValidPolicyCode(in.PolicyCode) {
		p.Add("policy_code", "must be 1 to 64 characters of a-z, 0-9 and -")
	}
	docket.OneOf(&p, "ground", in.Ground, grounds)
	in.checkLegalReference(&p)
	docket.Required(&p, "explanation", in.Explanation, 2000)
	docket.Required(&p, "facts", in.Facts, 5000)
	docket.OneOf(&p, "source", in.Source, sources)
	if in.AutomatedDetection == nil {
		p.Add("automated_detection", "is required")
	}
	docket.OneOf(&p, "automated_decision", in.AutomatedDecision, automatedDecisions)
	checkScope(&p, in.TerritorialScope)
	docket.EachOneOf(&p, "content_type", in.ContentType, contentTypes)
	checkEndsAt(&p, in.EndsAt)
	return p.Err()
}

// checkAdID checks the ad: an advertiser ban has none, the other
// actions need one.
func (in DecisionInput) checkAdID(p *docket.Problems) {
	switch {
	case in.Action == ActionAdvertiserBan && in.AdID != "":
		p.Add("ad_id", "must be absent for advertiser_ban")
	case in.Action != ActionAdvertiserBan && slices.Contains(actions, in.Action) && in.AdID == "":
		p.Add("ad_id", "is required for %s", in.Action)
	case in.AdID != "" && !ValidPlatformID(in.AdID):
		p.Add("ad_id", "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'")
	}
}

// checkLegalReference checks the legal reference: required on the ground
// of law, refused on any other.
func (in DecisionInput) checkLegalReference(p *docket.Problems) {
	switch {
	case in.Ground == GroundLaw && strings.TrimSpace(in.LegalReference) == "":
		p.Add("legal_reference", "is required when ground is law")
	case in.Ground != GroundLaw && in.LegalReference != "":
		p.Add("legal_reference", "is only allowed when ground is law")
	case !docket.CleanString(in.LegalReference):
		p.Add("legal_reference", docket.DirtyMessage)
	case utf8.RuneCountInString(in.LegalReference) > 500:
		p.Add("legal_reference", "must be at most 500 characters")
	}
}

// checkScope checks a territorial scope: ISO 3166-1 codes, none twice.
func checkScope(p *docket.Problems, scope []string) {
	if len(scope) > MaxTerritorialScope {
		p.Add("territorial_scope", "must have at most %d items", MaxTerritorialScope)
		scope = scope[:MaxTerritorialScope]
	}
	seen := map[string]bool{}
	for i, c := range scope {
		if !ValidCountry(c) {
			p.Add(fmt.Sprintf("territorial_scope[%d]", i), "must be an ISO 3166-1 alpha-2 code")
		} else if seen[c] {
			p.Add(fmt.Sprintf("territorial_scope[%d]", i), "repeats %s", c)
		}
		seen[c] = true
	}
}

// checkEndsAt checks the end of a measure, when it has one. A time past
// 9999 in UTC (9999-12-31T23:59:59-01:00) cannot be encoded in the
// decision's audit entry.
func checkEndsAt(p *docket.Problems, endsAt string) {
	if t, err := time.Parse(time.RFC3339, endsAt); endsAt != "" && (err != nil || !docket.CleanString(endsAt)) {
		p.Add("ends_at", "must be an RFC 3339 timestamp")
	} else if endsAt != "" && t.UTC().Year() > 9999 {
		p.Add("ends_at", "must be before the year 10000 in UTC")
	}
}

// validateAt is Validate plus the one rule that needs the clock.
func (in DecisionInput) validateAt(now time.Time) error {
	var p docket.Problems
	p.Merge(in.Validate())
	if t, err := time.Parse(time.RFC3339, in.EndsAt); err == nil && !t.After(now) {
		p.Add("ends_at", "must be in the future")
	}
	return p.Err()
}

const decisionColumns = `id, advertiser_id, ad_id, action, policy_code, policy_version, policy_text_sha256,
	ground, legal_reference, explanation, facts, source, automated_detection, automated_decision,
	territorial_scope, content_type, ends_at, status, decided_by, decided_at, appeal_deadline,
	reversed_at, reversed_by_appeal, notified_at`

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// recordQuery inserts a decision under the policy version given as current
// (version, sha) and stages its audit entry, in one statement: without
// an Idempotency-Key that is one round trip in an implicit transaction,
// where BEGIN, INSERT, INSERT, COMMIT took four. It inserts nothing when
// version is not, or no longer, the policy's current version; the caller
// then reads the current one and tries again. Its parameters are numbered
// as they are taken (audit.Params), in the order of recordArgs, and the
// entry's follow (audit.StageArgs).
func recordQuery() string {
	var p audit.Params
	id, adv, ad, action, code, version, sha := p.Next(), p.Next(), p.Next(), p.Next(), p.Next(), p.Next(), p.Next()
	ground, legal, explanation, facts, source := p.Next(), p.Next(), p.Next(), p.Next(), p.Next()
	detection, automated, scope, content := p.Next(), p.Next(), p.Next(), p.Next()
	ends, status, by, at, deadline := p.Next(), p.Next(), p.Next(), p.Next(), p.Next()
	return `WITH pinned AS (
			SELECT code FROM policies
			WHERE code = ` + code + `::text AND version = ` + version + `::int
			  AND version = (SELECT max(version) FROM policies WHERE code = ` + code + `::text)),
		d AS (
			INSERT INTO decisions (id, advertiser_id, ad_id, action, policy_code, policy_version,
				policy_text_sha256, ground, legal_reference, explanation, facts, source, automated_detection,
				automated_decision, territorial_scope, content_type, ends_at, status, decided_by, decided_at,
				appeal_deadline)
			SELECT ` + id + `::text, ` + adv + `::text, ` + ad + `::text, ` + action + `::text, code, ` + version + `::int, ` + sha + `::text,
				` + ground + `::text, ` + legal + `::text, ` + explanation + `::text, ` + facts + `::text, ` + source + `::text,
				` + detection + `::boolean, ` + automated + `::text, ` + scope + `::text[], ` + content + `::text[],
				` + ends + `::timestamptz, ` + status + `::text, ` + by + `::text, ` + at + `::timestamptz, ` + deadline + `::timestamptz
			FROM pinned RETURNING id)
		` + audit.StageAfter("d", &p)
}

// recordArgs are recordQuery's own arguments for d, in the order it takes
// their placeholders.
func recordArgs(d Decision) []any {
	return []any{d.ID, d.AdvertiserID, d.AdID, d.Action, d.PolicyCode,
		d.PolicyVersion, d.PolicyTextSHA256, d.Ground, d.LegalReference, d.Explanation, d.Facts, d.Source,
		d.AutomatedDetection, d.AutomatedDecision, d.TerritorialScope, d.ContentType, d.EndsAt, d.Status,
		d.DecidedBy, d.DecidedAt, d.AppealDeadline}
}

// pins caches each policy's current version for RecordDecision, which
// would otherwise read it on every write. A stale pin costs a retry, never
// a decision under an old version: recordQuery checks it.
type pins struct {
	mu sync.Mutex
	m  map[string]Policy
}

func (p *pins) get(code string) (Policy, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[code]
	return v, ok
}

func (p *pins) set(v Policy) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[string]Policy)
	}
	p.m[v.Code] = Policy{Code: v.Code, Version: v.Version, TextSHA256: v.TextSHA256}
}

// RecordDecision records a decision under the current version of its policy.
func (s *Store) RecordDecision(ctx context.Context, by docket.Actor, in DecisionInput, opts ...WriteOption) (Decision, error) {
	if !by.Is(docket.Recorders...) {
		return Decision{}, docket.Errorf(docket.Forbidden, "only enforcers and admins record decisions")
	}
	if err := in.validateAt(s.now()); err != nil {
		return Decision{}, err
	}
	idem := idempotencyOf(opts)
	if idem == nil {
		if err := s.hot.prepare(ctx, s.db); err != nil {
			return Decision{}, err
		}
		return s.recordDecision(ctx, s.hot.stmts[qRecord], s.db, by, in, s.now())
	}
	return write(ctx, s, idem, func(tx *sqlx.Tx, now time.Time) (Decision, error) {
		return s.recordDecision(ctx, s.stmt(ctx, tx, qRecord), tx, by, in, now)
	})
}

// recordDecision runs recordQuery through stmt, bound to the pool or to a
// transaction, and reads the policy's current version through q when the
// pin is missing or stale.
func (s *Store) recordDecision(ctx context.Context, stmt *sqlx.Stmt, q sqlx.QueryerContext, by docket.Actor,
	in DecisionInput, now time.Time) (Decision, error) {
	d := Decision{
		ID: uuid.Must(uuid.NewV7()).String(), AdvertiserID: in.AdvertiserID, AdID: nullable(in.AdID),
		Action: in.Action, PolicyCode: in.PolicyCode, Ground: in.Ground, LegalReference: nullable(in.LegalReference),
		Explanation: in.Explanation, Facts: in.Facts, Source: in.Source, AutomatedDetection: *in.AutomatedDetection,
		AutomatedDecision: in.AutomatedDecision, TerritorialScope: pq.StringArray(in.TerritorialScope),
		ContentType: pq.StringArray(in.ContentType), Status: StatusInEffect, DecidedBy: by.String(),
		DecidedAt: now, AppealDeadline: s.appealDeadline(now),
	}
	if d.TerritorialScope == nil {
		d.TerritorialScope = pq.StringArray{}
	}
	if d.ContentType == nil {
		d.ContentType = pq.StringArray{}
	}
	if in.EndsAt != "" {
		t, _ := time.Parse(time.RFC3339, in.EndsAt)
		t = t.UTC()
		d.EndsAt = &t
	}
	pin, ok := s.pins.get(d.PolicyCode)
	// A policy revised between the read and the insert retries; three
	// revisions in a row of one policy within a write are not a real load.
	for range 3 {
		if !ok {
			cur, err := currentPolicy(ctx, q, d.PolicyCode)
			if docket.ErrorCode(err) == docket.NotFound {
				return Decision{}, &docket.Error{Code: docket.Invalid, Message: "the request has invalid fields",
					Fields: []docket.FieldError{{Field: "policy_code", Message: fmt.Sprintf("no policy %q exists", in.PolicyCode)}}}
			} else if err != nil {
				return Decision{}, err
			}
			s.pins.set(cur)
			pin = cur
		}
		d.PolicyVersion, d.PolicyTextSHA256 = pin.Version, pin.TextSHA256
		entry, err := audit.StageArgs(audit.Entry{Type: EntryDecisionRecorded, Time: now, Actor: by.String(),
			Subject: audit.Subject{Kind: "decision", ID: d.ID},
			Refs:    []audit.Subject{{Kind: "policy", ID: fmt.Sprintf("%s@%d", d.PolicyCode, d.PolicyVersion)}},
			Record:  d, Keys: AuditKeys(d.AdvertiserID, d.PolicyCode)})
		if err != nil {
			return Decision{}, err
		}
		var staged int64
		err = stmt.QueryRowxContext(ctx, append(recordArgs(d), entry...)...).Scan(&staged)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Decision{}, fmt.Errorf("appeals: insert decision: %w", err)
		}
		ok = false
	}
	return Decision{}, docket.Errorf(docket.Conflict, "policy %s was revised while the decision was recorded; try again", in.PolicyCode)
}

// listScope is how a list starts: it checks the filter f, then narrows
// its advertiser filter to by's own (scopeToAdvertiser). It is false when
// the list is empty for by (the error, if any, says why).
func listScope(by docket.Actor, f interface{ Validate() error }, advertiserID *string) (bool, error) {
	if err := f.Validate(); err != nil {
		return false, err
	}
	return scopeToAdvertiser(by, advertiserID), nil
}

// scopeToAdvertiser narrows a list's advertiser filter to an advertiser
// caller's own id; false means the caller asked for another advertiser's
// records, and the list is empty.
func scopeToAdvertiser(by docket.Actor, advertiserID *string) bool {
	if by.Role != docket.RoleAdvertiser {
		return true
	}
	if *advertiserID != "" && *advertiserID != by.AdvertiserID {
		return false
	}
	*advertiserID = by.AdvertiserID
	return true
}

// canSee reports whether by may read records about advertiserID.
func canSee(by docket.Actor, advertiserID string) bool {
	return by.Role != docket.RoleAdvertiser || by.AdvertiserID == advertiserID
}

// Decision returns one decision. Another advertiser's is NotFound, so that
// its existence does not leak.
func (s *Store) Decision(ctx context.Context, by docket.Actor, id string) (Decision, error) {
	d, err := getDecision(ctx, s.db, id, false)
	if err != nil {
		return Decision{}, err
	}
	if !canSee(by, d.AdvertiserID) {
		return Decision{}, docket.Errorf(docket.NotFound, "decision %q not found", id)
	}
	now := s.now()
	d.effective(now)
	if err := s.withAppeals(ctx, &d, now); err != nil {
		return Decision{}, err
	}
	return d.ViewFor(by), nil
}

func getDecision(ctx context.Context, q sqlx.QueryerContext, id string, forUpdate bool) (Decision, error) {
	return getRow[Decision](ctx, q, "decision", `SELECT `+decisionColumns+` FROM decisions`, id, forUpdate)
}

// getRow reads the record of a kind by its id (locked for the rest of
// the transaction when forUpdate), as selected by from; a malformed id is
// invalid and a missing one not found.
func getRow[T any](ctx context.Context, q sqlx.QueryerContext, kind, from, id string, forUpdate bool) (T, error) {
	var row T
	if err := checkID(kind, "id", id); err != nil {
		return row, err
	}
	query := from + ` WHERE id = $1`
	if forUpdate {
		query += ` FOR UPDATE`
	}
	if err := sqlx.GetContext(ctx, q, &row, query, id); err != nil {
		var zero T
		return zero, notFound(err, kind, id)
	}
	return row, nil
}

// DecisionFilter narrows a list of decisions; empty fields match all.
type DecisionFilter struct {
	AdvertiserID string
	Action       Action
	Status       DecisionStatus
	PolicyCode   string
	PageRequest
}

// Validate checks the filter's enumerations.
func (f DecisionFilter) Validate() error {
	var p docket.Problems
	docket.OptionalOneOf(&p, "action", f.Action, actions)
	docket.OptionalOneOf(&p, "status", f.Status, decisionStatuses)
	if f.AdvertiserID != "" && !ValidPlatformID(f.AdvertiserID) {
		p.Add("advertiser_id", "is not a valid advertiser id")
	}
	if f.PolicyCode != "" && !ValidPolicyCode(f.PolicyCode) {
		p.Add("policy_code", "is not a valid policy code")
	}
	p.Merge(f.PageRequest.Validate())
	return p.Err()
}

// ListDecisions lists decisions newest first; an advertiser sees only its own.
func (s *Store) ListDecisions(ctx context.Context, by docket.Actor, f DecisionFilter) (Page[Decision], error) {
	if ok, err := listScope(by, f, &f.AdvertiserID); !ok {
		return Page[Decision]{Items: []Decision{}}, err
	}
	now := s.now()
	var q filterSQL
	q.eq("advertiser_id", f.AdvertiserID)
	q.eq("action", string(f.Action))
	q.eq("policy_code", f.PolicyCode)
	switch f.Status {
	case StatusReversed:
		q.add("status = 'reversed'")
	case StatusInEffect:
		q.add("status = 'in_effect' AND (ends_at IS NULL OR ends_at > " + q.arg(now) + ")")
	case StatusExpired:
		q.add("status = 'in_effect' AND ends_at <= " + q.arg(now))
	}
	return list(ctx, s.db, &q, `SELECT `+decisionColumns+` FROM decisions`, f.PageRequest,
		func(d Decision) string { return d.ID }, func(d *Decision) { d.effective(now); *d = d.ViewFor(by) })
}
