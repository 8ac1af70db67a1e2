package appeals

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docket-dev/docket"
)

// Statements of reasons for the EU DSA Transparency Database (Art. 24(5)),
// in the field names and enumerations of its API
// (https://transparency.dsa.ec.europa.eu/page/api-documentation).
//
// How a Docket decision maps to a statement:
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

// DefaultDSACategory is the category of decisions under a policy without
// one: a breach of the platform's own terms (it was named
// STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE before the 2025 schema).
const DefaultDSACategory = "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"

// The Transparency Database's enumerations (schema of 1 July 2025).
var (
	dsaCategories = []string{
		"STATEMENT_CATEGORY_ANIMAL_WELFARE",
		"STATEMENT_CATEGORY_CONSUMER_INFORMATION",
		"STATEMENT_CATEGORY_CYBER_VIOLENCE",
		"STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN",
		"STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
		"STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
		"STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
		"STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
		"STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE",
		"STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
		"STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
		"STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
		"STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
		"STATEMENT_CATEGORY_SELF_HARM",
		"STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS",
		"STATEMENT_CATEGORY_VIOLENCE",
	}
	dsaVisibilities = []string{
		"DECISION_VISIBILITY_CONTENT_REMOVED", "DECISION_VISIBILITY_CONTENT_DISABLED",
		"DECISION_VISIBILITY_CONTENT_DEMOTED", "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
		"DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED", "DECISION_VISIBILITY_CONTENT_LABELLED",
		"DECISION_VISIBILITY_OTHER",
	}
	dsaMonetaries = []string{"DECISION_MONETARY_SUSPENSION", "DECISION_MONETARY_TERMINATION", "DECISION_MONETARY_OTHER"}
	dsaProvisions = []string{
		"DECISION_PROVISION_PARTIAL_SUSPENSION", "DECISION_PROVISION_TOTAL_SUSPENSION",
		"DECISION_PROVISION_PARTIAL_TERMINATION", "DECISION_PROVISION_TOTAL_TERMINATION",
	}
	dsaAccounts      = []string{"DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"}
	dsaAccountTypes  = []string{"ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"}
	dsaGrounds       = []string{"DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT"}
	dsaContentTypes  = []string{"CONTENT_TYPE_APP", "CONTENT_TYPE_AUDIO", "CONTENT_TYPE_IMAGE", "CONTENT_TYPE_PRODUCT", "CONTENT_TYPE_SYNTHETIC_MEDIA", "CONTENT_TYPE_TEXT", "CONTENT_TYPE_VIDEO", "CONTENT_TYPE_OTHER"}
	dsaSourceTypes   = []string{"SOURCE_ARTICLE_16", "SOURCE_TRUSTED_FLAGGER", "SOURCE_TYPE_OTHER_NOTIFICATION", "SOURCE_VOLUNTARY"}
	dsaYesNo         = []string{"Yes", "No"}
	dsaAutomatedDecs = []string{"AUTOMATED_DECISION_FULLY", "AUTOMATED_DECISION_PARTIALLY", "AUTOMATED_DECISION_NOT_AUTOMATED"}
	// eeaCountries are the territorial_scope values the database accepts:
	// the 27 EU members and Iceland, Liechtenstein and Norway.
	eeaCountries = []string{"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
		"IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK"}

	// Docket's enumerations to the database's.
	dsaSourceOf = map[Source]string{SourceVoluntary: "SOURCE_VOLUNTARY", SourceNotice: "SOURCE_ARTICLE_16",
		SourceTrustedFlagger: "SOURCE_TRUSTED_FLAGGER", SourceAuthority: "SOURCE_TYPE_OTHER_NOTIFICATION"}
	dsaAutomatedOf = map[AutomatedDecision]string{AutomatedFull: "AUTOMATED_DECISION_FULLY",
		AutomatedPartial: "AUTOMATED_DECISION_PARTIALLY", AutomatedNone: "AUTOMATED_DECISION_NOT_AUTOMATED"}
	dsaContentTypeOf = map[ContentType]string{ContentText: "CONTENT_TYPE_TEXT", ContentImage: "CONTENT_TYPE_IMAGE",
		ContentVideo: "CONTENT_TYPE_VIDEO", ContentAudio: "CONTENT_TYPE_AUDIO", ContentApp: "CONTENT_TYPE_APP",
		ContentProduct: "CONTENT_TYPE_PRODUCT", ContentSyntheticMedia: "CONTENT_TYPE_SYNTHETIC_MEDIA",
		ContentOther: "CONTENT_TYPE_OTHER"}

	puidRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,500}$`)
)

// DSACategories lists the STATEMENT_CATEGORY_* values ValidDSACategory accepts.
func DSACategories() []string { return slices.Clone(dsaCategories) }

// ValidDSACategory reports whether c is a STATEMENT_CATEGORY_* the database accepts.
func ValidDSACategory(c string) bool { return slices.Contains(dsaCategories, c) }

// Statement is a statement of reasons as the Transparency Database's API
// takes it. Optional fields are omitted when empty.
type Statement struct {
	DecisionVisibility             []string `json:"decision_visibility,omitempty"`
	DecisionVisibilityOther        string   `json:"decision_visibility_other,omitempty"`
	EndDateVisibilityRestriction   string   `json:"end_date_visibility_restriction,omitempty"`
	DecisionMonetary               string   `json:"decision_monetary,omitempty"`
	DecisionMonetaryOther          string   `json:"decision_monetary_other,omitempty"`
	EndDateMonetaryRestriction     string   `json:"end_date_monetary_restriction,omitempty"`
	DecisionProvision              string   `json:"decision_provision,omitempty"`
	EndDateServiceRestriction      string   `json:"end_date_service_restriction,omitempty"`
	DecisionAccount                string   `json:"decision_account,omitempty"`
	EndDateAccountRestriction      string   `json:"end_date_account_restriction,omitempty"`
	AccountType                    string   `json:"account_type,omitempty"`
	DecisionGround                 string   `json:"decision_ground"`
	DecisionGroundReferenceURL     string   `json:"decision_ground_reference_url,omitempty"`
	IllegalContentLegalGround      string   `json:"illegal_content_legal_ground,omitempty"`
	IllegalContentExplanation      string   `json:"illegal_content_explanation,omitempty"`
	IncompatibleContentGround      string   `json:"incompatible_content_ground,omitempty"`
	IncompatibleContentExplanation string   `json:"incompatible_content_explanation,omitempty"`
	IncompatibleContentIllegal     string   `json:"incompatible_content_illegal,omitempty"`
	ContentType                    []string `json:"content_type"`
	ContentTypeOther               string   `json:"content_type_other,omitempty"`
	Category                       string   `json:"category"`
	TerritorialScope               []string `json:"territorial_scope"`
	ContentDate                    string   `json:"content_date"`
	ApplicationDate                string   `json:"application_date"`
	DecisionFacts                  string   `json:"decision_facts"`
	SourceType                     string   `json:"source_type"`
	SourceIdentity                 string   `json:"source_identity,omitempty"`
	AutomatedDetection             string   `json:"automated_detection"`
	AutomatedDecision              string   `json:"automated_decision"`
	PUID                           string   `json:"puid"`
}

const dsaDate = "2006-01-02"

// StatementOf maps a decision to its statement of reasons; category is
// the category of the decision's policy version ("" for the default). It
// returns false for a decision that applies outside the EU/EEA only.
func StatementOf(d Decision, category string) (Statement, bool) {
	if category == "" {
		category = DefaultDSACategory
	}
	decided := d.DecidedAt.UTC().Format(dsaDate)
	st := Statement{
		AccountType: "ACCOUNT_TYPE_BUSINESS", Category: category,
		ContentDate: decided, ApplicationDate: decided, DecisionFacts: d.Facts,
		SourceType: dsaSourceOf[d.Source], AutomatedDecision: dsaAutomatedOf[d.AutomatedDecision],
		AutomatedDetection: "No", PUID: d.ID,
	}
	if d.AutomatedDetection {
		st.AutomatedDetection = "Yes"
	}
	st.measureOf(d)
	st.groundOf(d)
	st.contentOf(d)
	if !st.territoryOf(d) {
		return Statement{}, false
	}
	return st, true
}

// measureOf states the decision's action: what became of the ad, or of
// the account, and until when.
func (s *Statement) measureOf(d Decision) {
	var end string
	if d.EndsAt != nil {
		end = d.EndsAt.UTC().Format(dsaDate)
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
func (s *Statement) groundOf(d Decision) {
	if d.Ground == GroundLaw {
		s.DecisionGround = groundIllegal
		if d.LegalReference != nil {
			s.IllegalContentLegalGround = *d.LegalReference
		}
		s.IllegalContentExplanation = d.Explanation
		return
	}
	s.DecisionGround = groundIncompatible
	s.IncompatibleContentGround = fmt.Sprintf("Advertising policy %q, version %d (text SHA-256 %s)",
		d.PolicyCode, d.PolicyVersion, d.PolicyTextSHA256)
	s.IncompatibleContentExplanation = d.Explanation
	s.IncompatibleContentIllegal = "No"
}

// contentOf states the decision's content types, each once; none is
// CONTENT_TYPE_OTHER, which the database wants described.
func (s *Statement) contentOf(d Decision) {
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
func (s *Statement) territoryOf(d Decision) bool {
	if len(d.TerritorialScope) == 0 {
		s.TerritorialScope = slices.Clone(eeaCountries)
		return true
	}
	for _, c := range d.TerritorialScope {
		if slices.Contains(eeaCountries, c) && !slices.Contains(s.TerritorialScope, c) {
			s.TerritorialScope = append(s.TerritorialScope, c)
		}
	}
	slices.Sort(s.TerritorialScope)
	return len(s.TerritorialScope) > 0
}

// Validate checks a statement against the Transparency Database's own
// rules: required fields, enumerations, lengths, the fields that depend on
// the ground and on "other" choices (statementDependents), date forms and
// order, and the puid's alphabet. It names every field that breaks one.
func (s Statement) Validate() error {
	var p docket.Problems
	s.checkMeasures(&p)
	s.checkGround(&p)
	s.checkContent(&p)
	s.checkDates(&p)
	s.checkSource(&p)
	for _, d := range statementDependents {
		v, applies := d.value(s), d.when(s)
		switch {
		case applies && d.max > 0:
			required(&p, d.field, v, d.max)
		case !applies && v != "":
			p.Add(d.field, "is only allowed %s", d.what)
		}
	}
	slices.SortStableFunc(p, func(a, b docket.FieldError) int { return strings.Compare(a.Field, b.Field) })
	return p.Err()
}

// dependent is a field allowed only when another field has a value; with
// max > 0 it is then also required, of at most max characters.
type dependent struct {
	field string
	value func(Statement) string
	when  func(Statement) bool
	what  string
	max   int
}

const (
	groundIllegal      = "DECISION_GROUND_ILLEGAL_CONTENT"
	groundIncompatible = "DECISION_GROUND_INCOMPATIBLE_CONTENT"
)

var statementDependents = []dependent{
	{"decision_visibility_other", func(s Statement) string { return s.DecisionVisibilityOther },
		func(s Statement) bool { return slices.Contains(s.DecisionVisibility, "DECISION_VISIBILITY_OTHER") }, "with DECISION_VISIBILITY_OTHER", 500},
	{"decision_monetary_other", func(s Statement) string { return s.DecisionMonetaryOther },
		func(s Statement) bool { return s.DecisionMonetary == "DECISION_MONETARY_OTHER" }, "with DECISION_MONETARY_OTHER", 500},
	{"content_type_other", func(s Statement) string { return s.ContentTypeOther },
		func(s Statement) bool { return slices.Contains(s.ContentType, "CONTENT_TYPE_OTHER") }, "with CONTENT_TYPE_OTHER", 500},
	{"illegal_content_legal_ground", func(s Statement) string { return s.IllegalContentLegalGround },
		func(s Statement) bool { return s.DecisionGround == groundIllegal }, "with " + groundIllegal, 500},
	{"illegal_content_explanation", func(s Statement) string { return s.IllegalContentExplanation },
		func(s Statement) bool { return s.DecisionGround == groundIllegal }, "with " + groundIllegal, 2000},
	{"incompatible_content_ground", func(s Statement) string { return s.IncompatibleContentGround },
		func(s Statement) bool { return s.DecisionGround == groundIncompatible }, "with " + groundIncompatible, 500},
	{"incompatible_content_explanation", func(s Statement) string { return s.IncompatibleContentExplanation },
		func(s Statement) bool { return s.DecisionGround == groundIncompatible }, "with " + groundIncompatible, 2000},
	{"incompatible_content_illegal", func(s Statement) string { return s.IncompatibleContentIllegal },
		func(s Statement) bool { return s.DecisionGround == groundIncompatible }, "with " + groundIncompatible, 0},
	{"end_date_visibility_restriction", func(s Statement) string { return s.EndDateVisibilityRestriction },
		func(s Statement) bool { return len(s.DecisionVisibility) > 0 }, "with decision_visibility", 0},
	{"end_date_monetary_restriction", func(s Statement) string { return s.EndDateMonetaryRestriction },
		func(s Statement) bool { return s.DecisionMonetary != "" }, "with decision_monetary", 0},
	{"end_date_service_restriction", func(s Statement) string { return s.EndDateServiceRestriction },
		func(s Statement) bool { return s.DecisionProvision != "" }, "with decision_provision", 0},
	{"end_date_account_restriction", func(s Statement) string { return s.EndDateAccountRestriction },
		func(s Statement) bool { return s.DecisionAccount != "" }, "with decision_account", 0},
}

// checkMeasures: at least one restriction, each of its enumeration.
func (s Statement) checkMeasures(p *docket.Problems) {
	if len(s.DecisionVisibility) == 0 && s.DecisionMonetary == "" && s.DecisionProvision == "" && s.DecisionAccount == "" {
		p.Add("decision_visibility", "is required when none of decision_monetary, decision_provision, decision_account is present")
	}
	enumList(p, "decision_visibility", s.DecisionVisibility, dsaVisibilities)
	optionalEnum(p, "decision_monetary", s.DecisionMonetary, dsaMonetaries)
	optionalEnum(p, "decision_provision", s.DecisionProvision, dsaProvisions)
	optionalEnum(p, "decision_account", s.DecisionAccount, dsaAccounts)
	optionalEnum(p, "account_type", s.AccountType, dsaAccountTypes)
}

// checkGround: the ground is required and one of the two; what it
// requires in turn is in statementDependents.
func (s Statement) checkGround(p *docket.Problems) {
	switch s.DecisionGround {
	case "":
		p.Add("decision_ground", "is required")
	case groundIllegal:
	case groundIncompatible:
		optionalEnum(p, "incompatible_content_illegal", s.IncompatibleContentIllegal, dsaYesNo)
	default:
		p.Add("decision_ground", "must be one of %s", strings.Join(dsaGrounds, ", "))
	}
	maxLen(p, "decision_ground_reference_url", s.DecisionGroundReferenceURL, 500)
}

// checkContent: content types, category and the territorial scope.
func (s Statement) checkContent(p *docket.Problems) {
	if len(s.ContentType) == 0 {
		p.Add("content_type", "is required")
	}
	enumList(p, "content_type", s.ContentType, dsaContentTypes)
	if s.Category == "" {
		p.Add("category", "is required")
	} else if !ValidDSACategory(s.Category) {
		p.Add("category", "must be one of %s", strings.Join(dsaCategories, ", "))
	}
	if len(s.TerritorialScope) == 0 {
		p.Add("territorial_scope", "is required")
	}
	for i, c := range s.TerritorialScope {
		if !slices.Contains(eeaCountries, c) {
			p.Add(fmt.Sprintf("territorial_scope[%d]", i), "must be an EU/EEA country code")
		} else if slices.Index(s.TerritorialScope, c) != i {
			p.Add(fmt.Sprintf("territorial_scope[%d]", i), "repeats %s", c)
		}
	}
}

// checkDates: each date's form and lower bound; content before the
// application, every restriction's end after it.
func (s Statement) checkDates(p *docket.Problems) {
	content := statementDate(p, "content_date", s.ContentDate, true, "2000-01-01")
	application := statementDate(p, "application_date", s.ApplicationDate, true, "2020-01-01")
	if !content.IsZero() && !application.IsZero() && content.After(application) {
		p.Add("content_date", "must not be after application_date")
	}
	for field, v := range map[string]string{
		"end_date_visibility_restriction": s.EndDateVisibilityRestriction,
		"end_date_monetary_restriction":   s.EndDateMonetaryRestriction,
		"end_date_service_restriction":    s.EndDateServiceRestriction,
		"end_date_account_restriction":    s.EndDateAccountRestriction,
	} {
		if t := statementDate(p, field, v, false, "2020-01-01"); !t.IsZero() && !application.IsZero() && t.Before(application) {
			p.Add(field, "must be on or after application_date")
		}
	}
}

// checkSource: facts, source, automation and the puid.
func (s Statement) checkSource(p *docket.Problems) {
	required(p, "decision_facts", s.DecisionFacts, 5000)
	requiredEnum(p, "source_type", s.SourceType, dsaSourceTypes)
	maxLen(p, "source_identity", s.SourceIdentity, 500)
	requiredEnum(p, "automated_detection", s.AutomatedDetection, dsaYesNo)
	requiredEnum(p, "automated_decision", s.AutomatedDecision, dsaAutomatedDecs)
	if s.PUID == "" {
		p.Add("puid", "is required")
	} else if !puidRe.MatchString(s.PUID) {
		p.Add("puid", "must be 1 to 500 characters of A-Z, a-z, 0-9, '-' and '_'")
	}
}

func requiredEnum(p *docket.Problems, field, v string, values []string) {
	if v == "" {
		p.Add(field, "is required")
		return
	}
	optionalEnum(p, field, v, values)
}

func maxLen(p *docket.Problems, field, v string, n int) {
	if utf8.RuneCountInString(v) > n {
		p.Add(field, "must be at most %d characters", n)
	}
}

// statementDate parses a YYYY-MM-DD date of the Transparency Database, not
// before min; the zero time when absent or bad.
func statementDate(p *docket.Problems, field, v string, required bool, min string) time.Time {
	if v == "" {
		if required {
			p.Add(field, "is required")
		}
		return time.Time{}
	}
	t, err := time.Parse(dsaDate, v)
	if err != nil || t.Format(dsaDate) != v {
		p.Add(field, "must be a date YYYY-MM-DD")
		return time.Time{}
	}
	if v < min {
		p.Add(field, "must be on or after %s", min)
	}
	return t
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
func (s *Store) ExportDSA(ctx context.Context, by docket.Actor, from, to time.Time, fn func(*Statement) error) (DSAStats, error) {
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
