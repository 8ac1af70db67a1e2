package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/appeals/dsa"
	"github.com/docket-dev/docket/audit"
)

// integrate runs the real integrator until every staged entry is a leaf.
func (e *env) integrate() {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		_, err := e.log.IntegrateOnce(context.Background())
		require.NoError(e.t, err)
		var left int
		require.NoError(e.t, e.db.Get(&left, `SELECT count(*) FROM audit_staging s
			WHERE NOT EXISTS (SELECT 1 FROM audit_leaves l WHERE l.staging_id = s.id)`))
		return left == 0
	}, 2*time.Minute, 5*time.Millisecond)
}

func jsonLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		out = append(out, m)
	}
	return out
}

func TestExportAuditHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	d1 := e.decision(validDecision("crypto"))
	other := validDecision("crypto")
	other["advertiser_id"] = "globex"
	e.decision(other)
	e.integrate()
	var leaves int
	require.NoError(t, e.db.Get(&leaves, `SELECT count(*) FROM audit_leaves`))

	r := e.do("GET", "/v1/exports/audit", "auditor", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, "application/x-ndjson", r.Header.Get("Content-Type"))
	ls := jsonLines(t, r.Body)
	require.Len(t, ls, leaves)
	for i, l := range ls {
		require.EqualValues(t, i, l["index"])
		require.NotEmpty(t, l["leaf_hash"])
		require.Equal(t, l["type"], l["entry"].(map[string]any)["type"])
	}

	r = e.do("GET", "/v1/exports/audit?type=decision.recorded&advertiser_id=acme", "admin", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	ls = jsonLines(t, r.Body)
	require.Len(t, ls, 1)
	require.Equal(t, d1, ls[0]["entry"].(map[string]any)["subject"].(map[string]any)["id"])

	r = e.do("GET", "/v1/exports/audit?from=1&to=2&format=csv", "auditor", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, "text/csv; charset=utf-8", r.Header.Get("Content-Type"))
	recs, err := csv.NewReader(bytes.NewReader(r.Body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.Equal(t, "1", recs[1][0])

	r = e.do("GET", "/v1/exports/audit?from=yesterday&format=xml&advertiser_id=a%20b", "auditor", nil)
	require.Equal(t, 400, r.Status)
	require.ElementsMatch(t, []string{"from", "format", "advertiser_id"}, r.problemFields(t))
}

func TestExportDSAHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	id := e.decision(validDecision("crypto"))
	r := e.do("GET", "/v1/exports/dsa?from=2000-01-01", "auditor", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	ls := jsonLines(t, r.Body)
	require.Len(t, ls, 1)
	require.Equal(t, id, ls[0]["puid"])
	require.Equal(t, []any{"DECISION_VISIBILITY_CONTENT_REMOVED"}, ls[0]["decision_visibility"])
	require.Equal(t, "AUTOMATED_DECISION_PARTIALLY", ls[0]["automated_decision"])
	require.Equal(t, dsa.DefaultCategory, ls[0]["category"])

	r = e.do("GET", "/v1/exports/dsa?from=2030-01-01&to=2029-01-01", "auditor", nil)
	require.Equal(t, 400, r.Status)
	require.Equal(t, []string{"to"}, r.problemFields(t))
}

func TestReportAppealsHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	e.decision(validDecision("crypto"))
	r := e.do("GET", "/v1/reports/appeals", "auditor", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	m := r.json(t)
	overall := m["overall"].(map[string]any)
	require.EqualValues(t, 1, overall["decisions"])
	require.EqualValues(t, 1, overall["decisions_by_action"].(map[string]any)["ad_removal"])
	require.Len(t, m["policies"], 1)

	r = e.do("GET", "/v1/reports/appeals?format=csv", "admin", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	recs, err := csv.NewReader(bytes.NewReader(r.Body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.Equal(t, "policy_code", recs[0][0])
}

func TestPolicyDSACategory(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.do("PUT", "/v1/policies/scams", "admin", map[string]string{"title": "Scams", "text": "No scams.", "category": "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"})
	require.Equal(t, 201, r.Status, "%s", r.Body)
	require.Equal(t, "STATEMENT_CATEGORY_SCAMS_AND_FRAUD", r.json(t)["category"])
	// A new category is a new version; the same one changes nothing.
	r = e.do("PUT", "/v1/policies/scams", "admin", map[string]string{"title": "Scams", "text": "No scams.", "category": "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"})
	require.Equal(t, 200, r.Status, "%s", r.Body)
	r = e.do("PUT", "/v1/policies/scams", "admin", map[string]string{"title": "Scams", "text": "No scams.", "category": "STATEMENT_CATEGORY_CONSUMER_INFORMATION"})
	require.Equal(t, 201, r.Status, "%s", r.Body)
	require.EqualValues(t, 2, r.json(t)["version"])
	r = e.do("PUT", "/v1/policies/scams", "admin", map[string]string{"title": "Scams", "text": "No scams.", "category": "FRAUD"})
	require.Equal(t, 400, r.Status)
	require.Equal(t, []string{"category"}, r.problemFields(t))

	id := e.decision(validDecision("scams"))
	r = e.do("GET", "/v1/exports/dsa", "auditor", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	ls := jsonLines(t, r.Body)
	require.Len(t, ls, 1)
	require.Equal(t, id, ls[0]["puid"])
	require.Equal(t, "STATEMENT_CATEGORY_CONSUMER_INFORMATION", ls[0]["category"])
}

// TestExportBundleHTTP fetches bundles as an auditor would, with no key
// but the public one, and verifies them offline.
func TestExportBundleHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.do("GET", "/v1/exports/bundle", "auditor", nil)
	require.Equal(t, 404, r.Status, "no checkpoint signed yet: %s", r.Body)

	e.policy("crypto")
	e.decision(validDecision("crypto"))
	other := validDecision("crypto")
	other["advertiser_id"] = "globex"
	e.decision(other)
	e.integrateLog()
	cp, err := e.log.LatestCheckpoint(context.Background())
	require.NoError(t, err)

	r = e.do("GET", "/v1/exports/bundle", "auditor", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, "application/x-ndjson", r.Header.Get("Content-Type"))
	require.Contains(t, r.Header.Get("Content-Disposition"), "attachment")
	res, err := audit.VerifyBundle(bytes.NewReader(r.Body), e.log.VerifierKey(), nil)
	require.NoError(t, err)
	require.Equal(t, audit.BundleFull, res.Mode)
	require.EqualValues(t, cp.Size, res.Entries)

	r = e.do("GET", "/v1/exports/bundle?advertiser_id=globex&type=decision.recorded", "admin", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	res, err = audit.VerifyBundle(bytes.NewReader(r.Body), e.log.VerifierKey(), nil)
	require.NoError(t, err)
	require.Equal(t, audit.BundleProofs, res.Mode)
	require.EqualValues(t, 1, res.Entries)

	// One changed byte fails verification.
	b := bytes.Clone(r.Body)
	at := bytes.LastIndex(b, []byte(`"data":"`)) + 12
	b[at] ^= 1
	_, err = audit.VerifyBundle(bytes.NewReader(b), e.log.VerifierKey(), nil)
	require.Error(t, err)

	r = e.do("GET", "/v1/exports/bundle?from=yesterday&advertiser_id=a%20b", "auditor", nil)
	require.Equal(t, 400, r.Status)
	require.ElementsMatch(t, []string{"from", "advertiser_id"}, r.problemFields(t))
	require.Equal(t, 403, e.do("GET", "/v1/exports/bundle", "advertiser", nil).Status)
}
