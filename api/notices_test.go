package api_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// noticeRows is the notice route's row of the authorization matrix.
func noticeRows() map[string]authzRow {
	return map[string]authzRow{"POST /v1/decisions/{id}/notices": {
		call: func(e *env, who string) (string, string, any) {
			return "POST", "/v1/decisions/" + e.decision(validDecision("crypto")) + "/notices", map[string]string{"channel": "email"}
		},
		want: map[string]int{"admin": 200, "enforcer": 200},
	}}
}

func TestRecordNotice(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	id := e.decision(validDecision("crypto"))
	r := e.do("GET", "/v1/decisions/"+id, "advertiser", nil)
	require.Equal(t, 200, r.Status)
	require.Nil(t, r.json(t)["notified_at"])

	r = e.do("POST", "/v1/decisions/"+id+"/notices", "enforcer", map[string]any{"channel": "fax", "delivered_at": "soon", "extra": 1})
	require.Equal(t, 400, r.Status, "%s", r.Body)
	r = e.do("POST", "/v1/decisions/"+id+"/notices", "enforcer", map[string]any{"channel": "fax", "delivered_at": "soon"})
	require.Equal(t, 400, r.Status, "%s", r.Body)
	require.ElementsMatch(t, []string{"channel", "delivered_at"}, r.problemFields(t))
	r = e.do("POST", "/v1/decisions/nope/notices", "enforcer", map[string]any{"channel": "email"})
	require.Equal(t, 404, r.Status, "%s", r.Body)

	at := time.Now().UTC().Truncate(time.Second)
	body := map[string]any{"channel": "email", "delivered_at": at.Format(time.RFC3339), "reference": "m-1"}
	r = e.do("POST", "/v1/decisions/"+id+"/notices", "enforcer", body, "Idempotency-Key", "n-1")
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, at.Format(time.RFC3339), r.json(t)["notified_at"])
	again := e.do("POST", "/v1/decisions/"+id+"/notices", "enforcer", body, "Idempotency-Key", "n-1")
	require.Equal(t, 200, again.Status)
	require.JSONEq(t, string(r.Body), string(again.Body))

	r = e.do("GET", "/v1/decisions/"+id, "advertiser", nil)
	require.Equal(t, at.Format(time.RFC3339), r.json(t)["notified_at"])
	var n int
	require.NoError(t, e.db.Get(&n, `SELECT count(*) FROM audit_staging WHERE type = 'notice.delivered'`))
	require.Equal(t, 1, n, "the replayed request wrote no second entry")
}
