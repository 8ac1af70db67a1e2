// Package dsa is the statement of reasons of the EU DSA Transparency
// Database (Art. 24(5)), in the field names and enumerations of its API
// (https://transparency.dsa.ec.europa.eu/page/api-documentation): the
// Statement a platform submits, the database's closed sets of values, and
// Validate, which holds a statement to the database's own rules so that an
// export never carries one it would refuse.
//
// It is a format, as a C2SP note is: it knows nothing of Docket's
// decisions. Package appeals maps a decision onto a Statement
// (appeals.StatementOf, whose comment tables the mapping) and exports one
// per decision (Store.ExportDSA).
package dsa

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/docket-dev/docket"
)

// DefaultCategory is the category of decisions under a policy without
// one: a breach of the platform's own terms (it was named
// STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE before the 2025 schema).
const DefaultCategory = "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"

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

	puidRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,500}$`)
)

// Categories lists the STATEMENT_CATEGORY_* values ValidCategory accepts.
func Categories() []string { return slices.Clone(dsaCategories) }

// ValidCategory reports whether c is a STATEMENT_CATEGORY_* the database accepts.
func ValidCategory(c string) bool { return slices.Contains(dsaCategories, c) }

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

// EEACountries are the territorial_scope values the database accepts:
// the 27 EU members and Iceland, Liechtenstein and Norway, sorted.
func EEACountries() []string { return slices.Clone(eeaCountries) }

// InEEA reports whether c is one of EEACountries.
func InEEA(c string) bool { return slices.Contains(eeaCountries, c) }

// DateFormat is the form of the database's dates (YYYY-MM-DD).
const DateFormat = "2006-01-02"

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
			docket.Required(&p, d.field, v, d.max)
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

// The two grounds of a decision: illegal content (a law), or content
// incompatible with the platform's terms.
const (
	GroundIllegal      = "DECISION_GROUND_ILLEGAL_CONTENT"
	GroundIncompatible = "DECISION_GROUND_INCOMPATIBLE_CONTENT"
)

var statementDependents = []dependent{
	{"decision_visibility_other", func(s Statement) string { return s.DecisionVisibilityOther },
		func(s Statement) bool { return slices.Contains(s.DecisionVisibility, "DECISION_VISIBILITY_OTHER") }, "with DECISION_VISIBILITY_OTHER", 500},
	{"decision_monetary_other", func(s Statement) string { return s.DecisionMonetaryOther },
		func(s Statement) bool { return s.DecisionMonetary == "DECISION_MONETARY_OTHER" }, "with DECISION_MONETARY_OTHER", 500},
	{"content_type_other", func(s Statement) string { return s.ContentTypeOther },
		func(s Statement) bool { return slices.Contains(s.ContentType, "CONTENT_TYPE_OTHER") }, "with CONTENT_TYPE_OTHER", 500},
	{"illegal_content_legal_ground", func(s Statement) string { return s.IllegalContentLegalGround },
		func(s Statement) bool { return s.DecisionGround == GroundIllegal }, "with " + GroundIllegal, 500},
	{"illegal_content_explanation", func(s Statement) string { return s.IllegalContentExplanation },
		func(s Statement) bool { return s.DecisionGround == GroundIllegal }, "with " + GroundIllegal, 2000},
	{"incompatible_content_ground", func(s Statement) string { return s.IncompatibleContentGround },
		func(s Statement) bool { return s.DecisionGround == GroundIncompatible }, "with " + GroundIncompatible, 500},
	{"incompatible_content_explanation", func(s Statement) string { return s.IncompatibleContentExplanation },
		func(s Statement) bool { return s.DecisionGround == GroundIncompatible }, "with " + GroundIncompatible, 2000},
	{"incompatible_content_illegal", func(s Statement) string { return s.IncompatibleContentIllegal },
		func(s Statement) bool { return s.DecisionGround == GroundIncompatible }, "with " + GroundIncompatible, 0},
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
	docket.EachOneOf(p, "decision_visibility", s.DecisionVisibility, dsaVisibilities)
	docket.OptionalOneOf(p, "decision_monetary", s.DecisionMonetary, dsaMonetaries)
	docket.OptionalOneOf(p, "decision_provision", s.DecisionProvision, dsaProvisions)
	docket.OptionalOneOf(p, "decision_account", s.DecisionAccount, dsaAccounts)
	docket.OptionalOneOf(p, "account_type", s.AccountType, dsaAccountTypes)
}

// checkGround: the ground is required and one of the two; what it
// requires in turn is in statementDependents.
func (s Statement) checkGround(p *docket.Problems) {
	docket.OneOf(p, "decision_ground", s.DecisionGround, dsaGrounds)
	if s.DecisionGround == GroundIncompatible {
		docket.OptionalOneOf(p, "incompatible_content_illegal", s.IncompatibleContentIllegal, dsaYesNo)
	}
	docket.MaxLen(p, "decision_ground_reference_url", s.DecisionGroundReferenceURL, 500)
}

// checkContent: content types, category and the territorial scope.
func (s Statement) checkContent(p *docket.Problems) {
	if len(s.ContentType) == 0 {
		p.Add("content_type", "is required")
	}
	docket.EachOneOf(p, "content_type", s.ContentType, dsaContentTypes)
	docket.OneOf(p, "category", s.Category, dsaCategories)
	if len(s.TerritorialScope) == 0 {
		p.Add("territorial_scope", "is required")
	}
	for i, c := range s.TerritorialScope {
		if !InEEA(c) {
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
	docket.Required(p, "decision_facts", s.DecisionFacts, 5000)
	docket.OneOf(p, "source_type", s.SourceType, dsaSourceTypes)
	docket.MaxLen(p, "source_identity", s.SourceIdentity, 500)
	docket.OneOf(p, "automated_detection", s.AutomatedDetection, dsaYesNo)
	docket.OneOf(p, "automated_decision", s.AutomatedDecision, dsaAutomatedDecs)
	if s.PUID == "" {
		p.Add("puid", "is required")
	} else if !puidRe.MatchString(s.PUID) {
		p.Add("puid", "must be 1 to 500 characters of A-Z, a-z, 0-9, '-' and '_'")
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
	t, err := time.Parse(DateFormat, v)
	if err != nil || t.Format(DateFormat) != v {
		p.Add(field, "must be a date YYYY-MM-DD")
		return time.Time{}
	}
	if v < min {
		p.Add(field, "must be on or after %s", min)
	}
	return t
}
