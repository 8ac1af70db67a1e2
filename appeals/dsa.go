package appeals

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals/dsa"
)

// Statements of reasons for the EU DSA Transparency Database (package
// dsa holds the format and its rules); here, how a Docket decision maps
// to one:
//
//	Docket                          Transparency Database
//	id                              puid
//	action ad_removal               decision_visibility [DECISION_VISIBILITY_CONTENT_REMOVED], end_date_visibility_restriction = ends_at
//	action ad_restriction           decision_visibility [DECISION_VISIBILITY_CONTENT_DISABLED] with a territorial_scope (access disabled there),
//	                                otherwise [DECISION_VISIBILITY_CONTENT_DEMOTED] (delivery limited); end_date_visibility_restriction = ends_at
//	action advertiser_ban           decision_account DECISION_ACCOUNT_TERMINATED, or DECISION_ACCOUNT_SUSPENDED with
//	                                end_date_account_restriction = ends_at when the ban ends
//	(advertisers are traders)       account_type ACCOUNT_TYPE_BUSINESS
//	ground law                      decision_ground DECISION_GROUND_ILLEGAL_CONTENT,
//	                                illegal_content_legal_ground = legal_reference, illegal_content_explanation = explanation
//	ground terms                    decision_ground DECISION_GROUND_INCOMPATIBLE_CONTENT, incompatible_content_ground = the
//	                                policy code, version and text hash, incompatible_content_explanation = explanation,
//	                                incompatible_content_illegal No
//	content_type text, image, ...   content_type CONTENT_TYPE_TEXT, _IMAGE, _VIDEO, _AUDIO, _APP, _PRODUCT, _SYNTHETIC_MEDIA, _OTHER;
//	                                none given: [CONTENT_TYPE_OTHER]; content_type_other "Advertisement" ("Advertiser account" for a ban)
//	policy version's category       category (STATEMENT_CATEGORY_*; unset: STATEMENT_CATEGORY_OTHER_VIOLATION_TC)
//	territorial_scope               territorial_scope: its EU/EEA countries, sorted; empty (everywhere) = all 30 EEA countries;
//	                                a decision whose scope has no EEA country is outside the DSA and not exported
//	decided_at                      application_date and content_date (YYYY-MM-DD, UTC; Docket does not record when the ad was made)
//	facts                           decision_facts
//	source voluntary                source_type SOURCE_VOLUNTARY
//	source notice                   source_type SOURCE_ARTICLE_16
//	source trusted_flagger          source_type SOURCE_TRUSTED_FLAGGER
//	source authority                source_type SOURCE_TYPE_OTHER_NOTIFICATION
//	automated_detection true/false  automated_detection Yes/No
//	automated_decision full         automated_decision AUTOMATED_DECISION_FULLY
//	automated_decision partial      automated_decision AUTOMATED_DECISION_PARTIALLY
//	automated_decision none         automated_decision AUTOMATED_DECISION_NOT_AUTOMATED

var (
	// Docket's enumerations to the database's.
	dsaSourceOf = map[Source]string{SourceVoluntary: "SOURCE_VOLUNTARY", SourceNotice: "SOURCE_ARTICLE_16",
		SourceTrustedFlagger: "SOURCE_TRUSTED_FLAGGER", SourceAuthority: "SOURCE_TYPE_OTHER_NOTIFICATION"}
	dsaAutomatedOf = map[AutomatedDecision]string{AutomatedFull: "AUTOMATED_DECISION_FULLY",
		AutomatedPartial: "AUTOMATED_DECISION_PARTIALLY", AutomatedNone: "AUTOMATED_DECISION_NOT_AUTOMATED"}
	dsaContentTypeOf = map[ContentType]string{ContentText: "CONTENT_TYPE_TEXT", ContentImage: "CONTENT_TYPE_IMAGE",
		ContentVideo: "CONTENT_TYPE_VIDEO", ContentAudio: "CONTENT_TYPE_AUDIO", ContentApp: "CONTENT_TYPE_APP",
		ContentProduct: "CONTENT_TYPE_PRODUCT", ContentSyntheticMedia: "CONTENT_TYPE_SYNTHETIC_MEDIA",
		ContentOther: "CONTENT_TYPE_OTHER"}
)

// StatementOf maps a decision to its statement of reasons; category is
// the category of the decision's policy version ("" for the default). It
// returns false for a decision that applies outside the EU/EEA only.
func StatementOf(d Decision, category string) (dsa.Statement, bool) {
	if category == "" {
		category = dsa.DefaultCategory
	}
	decided := d.DecidedAt.UTC().Format(dsa.DateFormat)
	st := dsa.Statement{
		AccountType: "ACCOUNT_TYPE_BUSINESS", Category: category,
		ContentDate: decided, ApplicationDate: decided, DecisionFacts: d.Facts,
		SourceType: dsaSourceOf[d.Source], AutomatedDecision: dsaAutomatedOf[d.AutomatedDecision],
		AutomatedDetection: "No", PUID: d.ID,
	}
	if d.AutomatedDetection {
		st.AutomatedDetection = "Yes"
	}
	measureOf(&st, d)
	groundOf(&st, d)
	contentOf(&st, d)
	if !territoryOf(&st, d) {
		return dsa.Statement{}, false
	}
	return st, true
}

// measureOf states the decision's action: what became of the ad, or of
// the account, and until when.
func measureOf(s *dsa.Statement, d Decision) {
	var end string
	if d.EndsAt != nil {
		end = d.EndsAt.UTC().Format(dsa.DateFormat)
	}
	switch d.Action {
	case ActionAdRemoval:
		s.DecisionVisibility = []string{"DECISION_VISIBILITY_CONTENT_REMOVED"}
		s.EndDateVisibilityRestriction = end
	case ActionAdRestriction:
		s.DecisionVisibility = []string{"DECISION_VISIBILITY_CONTENT_DEMOTED"}
		if len(d.TerritorialScope) > 0 {
			s.DecisionVisibility = []string{"DECISION_VISIBILITY_CONTENT_DISABLED"}
		}
		s.EndDateVisibilityRestriction = end
	case ActionAdvertiserBan:
		s.DecisionAccount = "DECISION_ACCOUNT_TERMINATED"
		if end != "" {
			s.DecisionAccount = "DECISION_ACCOUNT_SUSPENDED"
			s.EndDateAccountRestriction = end
		}
	}
}

// groundOf states the decision's ground: the law it applies, or the
// policy version it enforces.
func groundOf(s *dsa.Statement, d Decision) {
	if d.Ground == GroundLaw {
		s.DecisionGround = dsa.GroundIllegal
		if d.LegalReference != nil {
			s.IllegalContentLegalGround = *d.LegalReference
		}
		s.IllegalContentExplanation = d.Explanation
		return
	}
	s.DecisionGround = dsa.GroundIncompatible
	s.IncompatibleContentGround = fmt.Sprintf("Advertising policy %q, version %d (text SHA-256 %s)",
		d.PolicyCode, d.PolicyVersion, d.PolicyTextSHA256)
	s.IncompatibleContentExplanation = d.Explanation
	s.IncompatibleContentIllegal = "No"
}

// contentOf states the decision's content types, each once; none is
// CONTENT_TYPE_OTHER, which the database wants described.
func contentOf(s *dsa.Statement, d Decision) {
	for _, c := range d.ContentType {
		if t, ok := dsaContentTypeOf[ContentType(c)]; ok && !slices.Contains(s.ContentType, t) {
			s.ContentType = append(s.ContentType, t)
		}
	}
	if len(s.ContentType) == 0 {
		s.ContentType = []string{"CONTENT_TYPE_OTHER"}
	}
	if slices.Contains(s.ContentType, "CONTENT_TYPE_OTHER") {
		s.ContentTypeOther = "Advertisement"
		if d.Action == ActionAdvertiserBan {
			s.ContentTypeOther = "Advertiser account"
		}
	}
}

// territoryOf states where the decision applies within the EU/EEA: all of
// it when the decision names no scope. It reports false when the scope
// lies outside it entirely.
func territoryOf(s *dsa.Statement, d Decision) bool {
	if len(d.TerritorialScope) == 0 {
		s.TerritorialScope = dsa.EEACountries()
		return true
	}
	for _, c := range d.TerritorialScope {
		if dsa.InEEA(c) && !slices.Contains(s.TerritorialScope, c) {
			s.TerritorialScope = append(s.TerritorialScope, c)
		}
	}
	slices.Sort(s.TerritorialScope)
	return len(s.TerritorialScope) > 0
}

// DSAStats counts what ExportDSA wrote and left out.
type DSAStats struct {
	Statements int64 `json:"statements"`
	// OutsideEEA counts decisions that apply outside the EU/EEA only.
	OutsideEEA int64 `json:"outside_eea"`
}

type decisionWithCategory struct {
	Decision
	Category *string `db:"dsa_category"`
}

// ExportDSA streams one statement of reasons per decision taken in
// [from, to) (zero times are open ends), in order of decision time. It
// reads in keyset batches so memory stays constant; each statement is
// checked with Validate before fn sees it, so an export never carries a
// statement the database would refuse.
func (s *Store) ExportDSA(ctx context.Context, by docket.Actor, from, to time.Time, fn func(*dsa.Statement) error) (DSAStats, error) {
	var stats DSAStats
	if by.Role != docket.RoleSystem && !by.Is(docket.Auditors...) {
		return stats, docket.Errorf(docket.Forbidden, "only auditors and admins export statements of reasons")
	}
	if from.IsZero() {
		from = time.Unix(0, 0)
	}
	if to.IsZero() {
		to = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	const batch = 1000
	// Every id sorts after "", so the first batch starts at from itself.
	lastAt, lastID := from, ""
	for {
		var rows []decisionWithCategory
		err := s.db.SelectContext(ctx, &rows, `SELECT `+decisionColumns+`,
			(SELECT p.dsa_category FROM policies p WHERE p.code = d.policy_code AND p.version = d.policy_version) AS dsa_category
			FROM decisions d
			WHERE (decided_at, id) > ($1, $2) AND decided_at >= $3 AND decided_at < $4
			ORDER BY decided_at, id LIMIT $5`, lastAt, lastID, from, to, batch)
		if err != nil {
			return stats, fmt.Errorf("appeals: export dsa: %w", err)
		}
		for i := range rows {
			r := &rows[i]
			st, ok := StatementOf(r.Decision, strOrEmpty(r.Category))
			if !ok {
				stats.OutsideEEA++
				continue
			}
			if err := st.Validate(); err != nil {
				return stats, fmt.Errorf("appeals: statement of decision %s: %w", r.ID, err)
			}
			if err := fn(&st); err != nil {
				return stats, err
			}
			stats.Statements++
		}
		if len(rows) < batch {
			return stats, nil
		}
		lastAt, lastID = rows[len(rows)-1].DecidedAt, rows[len(rows)-1].ID
	}
}

func strOrEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
