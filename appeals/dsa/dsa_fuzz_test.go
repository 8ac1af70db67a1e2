package dsa_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals/dsa"
)

// FuzzStatementValidate runs a statement's validation on any JSON: no
// panic, refusals are Invalid, and a statement that validates survives a
// JSON round trip unchanged.
func FuzzStatementValidate(f *testing.F) {
	var plain dsa.Statement
	require.NoError(f, json.Unmarshal(plainRemoval, &plain))
	require.NoError(f, plain.Validate(), "the first seed validates, so the round trip is exercised")
	f.Add(plainRemoval)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"decision_visibility":["DECISION_VISIBILITY_OTHER","DECISION_VISIBILITY_OTHER"],"content_date":"2026-02-30"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var s dsa.Statement
		if json.Unmarshal(body, &s) != nil {
			return
		}
		err := s.Validate()
		if err != nil {
			require.Equal(t, docket.Invalid, docket.ErrorCode(err))
			return
		}
		again, err := json.Marshal(s)
		require.NoError(t, err)
		var back dsa.Statement
		require.NoError(t, json.Unmarshal(again, &back))
		require.Equal(t, s, back)
	})
}

// plainRemoval is the statement appeals.StatementOf makes of a plain ad
// removal.
var plainRemoval = []byte(`{"decision_visibility":["DECISION_VISIBILITY_CONTENT_REMOVED"],"account_type":"ACCOUNT_TYPE_BUSINESS","decision_ground":"DECISION_GROUND_INCOMPATIBLE_CONTENT","incompatible_content_ground":"Advertising policy \"crypto\", version 1 (text SHA-256 e3b98a4da31a127d4bde6e43033f66ba274cab0eb7eb1c70ec41402bf6273dd8)","incompatible_content_explanation":"e","incompatible_content_illegal":"No","content_type":["CONTENT_TYPE_OTHER"],"content_type_other":"Advertisement","category":"STATEMENT_CATEGORY_OTHER_VIOLATION_TC","territorial_scope":["AT","BE","BG","CY","CZ","DE","DK","EE","ES","FI","FR","GR","HR","HU","IE","IS","IT","LI","LT","LU","LV","MT","NL","NO","PL","PT","RO","SE","SI","SK"],"content_date":"2026-01-02","application_date":"2026-01-02","decision_facts":"f","source_type":"SOURCE_VOLUNTARY","automated_detection":"No","automated_decision":"AUTOMATED_DECISION_NOT_AUTOMATED","puid":"0192f0c4-5e1a-7000-8000-000000000001"}`)
