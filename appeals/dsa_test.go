package appeals_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/appeals/dsa"
	"github.com/docket-dev/docket/internal/pgtest"
)

func dsaPtr[T any](v T) *T { return &v }

// TestStatementEveryCombination maps every action x ground x automation
// (and detection, source, end date, scope and content type) to a statement
// and checks it against the Transparency Database's rules.
func TestStatementEveryCombination(t *testing.T) {
	t.Parallel()
	decided := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	n := 0
	for _, action := range []appeals.Action{"advertiser_ban", "ad_removal", "ad_restriction"} {
		for _, ground := range []appeals.Ground{"terms", "law"} {
			for _, automated := range []appeals.AutomatedDecision{"none", "partial", "full"} {
				for _, detected := range []bool{false, true} {
					for _, source := range []appeals.Source{"voluntary", "notice", "trusted_flagger", "authority"} {
						for _, ends := range []*time.Time{nil, dsaPtr(decided.Add(30 * 24 * time.Hour))} {
							for _, scope := range [][]string{nil, {"DE", "US", "FR"}} {
								for _, ct := range [][]string{nil, {"image", "text"}, {"other", "video"}} {
									d := appeals.Decision{
										ID: "0190a7a2-7c3e-7def-8abc-0123456789ab", AdvertiserID: "acme", Action: action,
										PolicyCode: "crypto-ads", PolicyVersion: 3, PolicyTextSHA256: strings.Repeat("ab", 32),
										Ground: ground, Explanation: strings.Repeat("e", 2000), Facts: strings.Repeat("f", 5000),
										Source: source, AutomatedDetection: detected, AutomatedDecision: automated,
										TerritorialScope: pq.StringArray(scope), ContentType: pq.StringArray(ct),
										EndsAt: ends, Status: appeals.StatusInEffect, DecidedAt: decided,
									}
									if action != "advertiser_ban" {
										d.AdID = dsaPtr("ad-1")
									}
									if ground == "law" {
										d.LegalReference = dsaPtr(strings.Repeat("l", 500))
									}
									name := fmt.Sprintf("%s/%s/%s/%v/%s/%v/%v/%v", action, ground, automated, detected, source, ends != nil, scope, ct)
									for _, cat := range []string{"", "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"} {
										st, ok := appeals.StatementOf(d, cat)
										require.True(t, ok, name)
										require.NoError(t, st.Validate(), name)
										n++
									}
								}
							}
						}
					}
				}
			}
		}
	}
	require.Equal(t, 3*2*3*2*4*2*2*3*2, n)
}

func TestStatementFields(t *testing.T) {
	t.Parallel()
	decided := time.Date(2026, 3, 4, 23, 59, 0, 0, time.UTC)
	d := appeals.Decision{
		ID: "d-1", Action: "advertiser_ban", PolicyCode: "p", PolicyVersion: 1, Ground: "law",
		LegalReference: dsaPtr("Art. 5 Law X"), Explanation: "why", Facts: "facts", Source: "authority",
		AutomatedDetection: true, AutomatedDecision: "partial", TerritorialScope: pq.StringArray{"SE", "NO", "CH"},
		EndsAt: dsaPtr(decided.Add(48 * time.Hour)), DecidedAt: decided,
	}
	st, ok := appeals.StatementOf(d, "")
	require.True(t, ok)
	b, err := json.Marshal(st)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, map[string]any{
		"decision_account": "DECISION_ACCOUNT_SUSPENDED", "end_date_account_restriction": "2026-03-06",
		"account_type": "ACCOUNT_TYPE_BUSINESS", "decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT",
		"illegal_content_legal_ground": "Art. 5 Law X", "illegal_content_explanation": "why",
		"content_type": []any{"CONTENT_TYPE_OTHER"}, "content_type_other": "Advertiser account",
		"category": "STATEMENT_CATEGORY_OTHER_VIOLATION_TC", "territorial_scope": []any{"NO", "SE"},
		"content_date": "2026-03-04", "application_date": "2026-03-04", "decision_facts": "facts",
		"source_type": "SOURCE_TYPE_OTHER_NOTIFICATION", "automated_detection": "Yes",
		"automated_decision": "AUTOMATED_DECISION_PARTIALLY", "puid": "d-1",
	}, m)

	d.TerritorialScope = pq.StringArray{"US", "CH"}
	_, ok = appeals.StatementOf(d, "")
	require.False(t, ok, "a decision outside the EEA has no statement")
}

// TestStatementRules shows Validate refusing what the database refuses.
func TestStatementRules(t *testing.T) {
	t.Parallel()
	good := dsa.Statement{
		DecisionVisibility: []string{"DECISION_VISIBILITY_CONTENT_REMOVED"}, DecisionGround: "DECISION_GROUND_INCOMPATIBLE_CONTENT",
		IncompatibleContentGround: "g", IncompatibleContentExplanation: "e", ContentType: []string{"CONTENT_TYPE_TEXT"},
		Category: "STATEMENT_CATEGORY_SCAMS_AND_FRAUD", TerritorialScope: []string{"DE"}, ContentDate: "2026-01-01",
		ApplicationDate: "2026-01-02", DecisionFacts: "f", SourceType: "SOURCE_VOLUNTARY", AutomatedDetection: "No",
		AutomatedDecision: "AUTOMATED_DECISION_NOT_AUTOMATED", PUID: "abc-1",
	}
	require.NoError(t, good.Validate())
	fields := func(s dsa.Statement) []string {
		err := s.Validate()
		require.Error(t, err)
		var fs []string
		for _, f := range err.(*docket.Error).Fields {
			fs = append(fs, f.Field)
		}
		return fs
	}
	cases := map[string]struct {
		edit func(*dsa.Statement)
		want []string
	}{
		"no measure":       {func(s *dsa.Statement) { s.DecisionVisibility = nil }, []string{"decision_visibility"}},
		"bad visibility":   {func(s *dsa.Statement) { s.DecisionVisibility = []string{"REMOVED"} }, []string{"decision_visibility[0]"}},
		"other needs text": {func(s *dsa.Statement) { s.DecisionVisibility = []string{"DECISION_VISIBILITY_OTHER"} }, []string{"decision_visibility_other"}},
		"illegal needs its fields": {func(s *dsa.Statement) { s.DecisionGround = "DECISION_GROUND_ILLEGAL_CONTENT" },
			[]string{"illegal_content_explanation", "illegal_content_legal_ground", "incompatible_content_explanation", "incompatible_content_ground"}},
		"ground length":      {func(s *dsa.Statement) { s.IncompatibleContentGround = strings.Repeat("x", 501) }, []string{"incompatible_content_ground"}},
		"explanation length": {func(s *dsa.Statement) { s.IncompatibleContentExplanation = strings.Repeat("x", 2001) }, []string{"incompatible_content_explanation"}},
		"facts length":       {func(s *dsa.Statement) { s.DecisionFacts = strings.Repeat("x", 5001) }, []string{"decision_facts"}},
		"illegal yes/no":     {func(s *dsa.Statement) { s.IncompatibleContentIllegal = "maybe" }, []string{"incompatible_content_illegal"}},
		"content type other": {func(s *dsa.Statement) { s.ContentType = []string{"CONTENT_TYPE_OTHER"} }, []string{"content_type_other"}},
		"category":           {func(s *dsa.Statement) { s.Category = "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE" }, []string{"category"}},
		"no category":        {func(s *dsa.Statement) { s.Category = "" }, []string{"category"}},
		"bad ground": {func(s *dsa.Statement) { s.DecisionGround = "ILLEGAL" },
			[]string{"decision_ground", "incompatible_content_explanation", "incompatible_content_ground"}},
		"scope":            {func(s *dsa.Statement) { s.TerritorialScope = []string{"US"} }, []string{"territorial_scope[0]"}},
		"dates":            {func(s *dsa.Statement) { s.ApplicationDate = "2026-1-2"; s.ContentDate = "1999-12-31" }, []string{"application_date", "content_date"}},
		"end before start": {func(s *dsa.Statement) { s.EndDateVisibilityRestriction = "2026-01-01" }, []string{"end_date_visibility_restriction"}},
		"automation":       {func(s *dsa.Statement) { s.AutomatedDecision = "Yes"; s.AutomatedDetection = "yes" }, []string{"automated_decision", "automated_detection"}},
		"source":           {func(s *dsa.Statement) { s.SourceType = "SOURCE_OTHER" }, []string{"source_type"}},
		"puid":             {func(s *dsa.Statement) { s.PUID = "a b" }, []string{"puid"}},
	}
	for name, c := range cases {
		s := good
		s.DecisionVisibility = append([]string(nil), good.DecisionVisibility...)
		c.edit(&s)
		require.Equal(t, c.want, fields(s), name)
	}
	// The messages are the shared validators' (docket.OneOf).
	s := good
	s.DecisionGround, s.Category = "ILLEGAL", ""
	require.ErrorContains(t, s.Validate(),
		"decision_ground: must be one of DECISION_GROUND_ILLEGAL_CONTENT, DECISION_GROUND_INCOMPATIBLE_CONTENT")
	require.ErrorContains(t, s.Validate(), "category: is required")
}

func TestExportDSA(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	now := time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)
	store := appeals.NewStore(db, appeals.Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	admin := docket.Actor{Role: docket.RoleAdmin, Name: "ada"}
	_, err := store.PutPolicy(ctx, admin, "scams", appeals.PolicyInput{Title: "Scams", Text: "No scams.", Category: "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"})
	require.NoError(t, err)
	_, err = store.PutPolicy(ctx, admin, "misc", appeals.PolicyInput{Title: "Misc", Text: "Other rules."})
	require.NoError(t, err)
	_, err = store.PutPolicy(ctx, admin, "bad", appeals.PolicyInput{Title: "Bad", Text: "x", Category: "SCAMS"})
	require.Equal(t, docket.Invalid, docket.ErrorCode(err))

	enforcer := docket.Actor{Role: docket.RoleEnforcer, Name: "pipeline"}
	yes := true
	var ids []string
	for i, in := range []appeals.DecisionInput{
		{AdvertiserID: "acme", AdID: "ad-1", Action: "ad_removal", PolicyCode: "scams", Ground: "terms", Explanation: "e", Facts: "f", Source: "voluntary", AutomatedDetection: &yes, AutomatedDecision: "full"},
		{AdvertiserID: "acme", Action: "advertiser_ban", PolicyCode: "misc", Ground: "law", LegalReference: "Law 1", Explanation: "e", Facts: "f", Source: "notice", AutomatedDetection: &yes, AutomatedDecision: "none"},
		{AdvertiserID: "globex", AdID: "ad-2", Action: "ad_restriction", PolicyCode: "misc", Ground: "terms", Explanation: "e", Facts: "f", Source: "voluntary", AutomatedDetection: &yes, AutomatedDecision: "none", TerritorialScope: []string{"US"}},
	} {
		now = now.Add(time.Duration(i+1) * time.Hour)
		d, err := store.RecordDecision(ctx, enforcer, in)
		require.NoError(t, err)
		ids = append(ids, d.ID)
	}

	var got []dsa.Statement
	stats, err := store.ExportDSA(ctx, docket.Actor{Role: docket.RoleAuditor, Name: "audrey"}, time.Time{}, time.Time{}, func(s *dsa.Statement) error {
		got = append(got, *s)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, appeals.DSAStats{Statements: 2, OutsideEEA: 1}, stats)
	require.Equal(t, ids[0], got[0].PUID)
	require.Equal(t, "STATEMENT_CATEGORY_SCAMS_AND_FRAUD", got[0].Category)
	require.Equal(t, ids[1], got[1].PUID)
	require.Equal(t, dsa.DefaultCategory, got[1].Category)

	// A period selects by decision time.
	got = nil
	_, err = store.ExportDSA(ctx, admin, time.Date(2026, 2, 1, 10, 30, 0, 0, time.UTC), time.Date(2026, 2, 1, 13, 0, 0, 0, time.UTC), func(s *dsa.Statement) error {
		got = append(got, *s)
		return nil
	})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, ids[1], got[0].PUID)

	_, err = store.ExportDSA(ctx, enforcer, time.Time{}, time.Time{}, func(*dsa.Statement) error { return nil })
	require.Equal(t, docket.Forbidden, docket.ErrorCode(err))
}
