package api_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

func TestDecisionValidation(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	long := strings.Repeat("x", 2001)
	cases := []struct {
		name   string
		change func(m map[string]any)
		fields []string
	}{
		{"advertiser_id missing", func(m map[string]any) { delete(m, "advertiser_id") }, []string{"advertiser_id"}},
		{"advertiser_id malformed", func(m map[string]any) { m["advertiser_id"] = "a b" }, []string{"advertiser_id"}},
		{"ad_id missing for removal", func(m map[string]any) { delete(m, "ad_id") }, []string{"ad_id"}},
		{"ad_id present for ban", func(m map[string]any) { m["action"] = "advertiser_ban" }, []string{"ad_id"}},
		{"action missing", func(m map[string]any) { delete(m, "action") }, []string{"action"}},
		{"action unknown", func(m map[string]any) { m["action"] = "shadow_ban" }, []string{"action"}},
		{"policy_code missing", func(m map[string]any) { delete(m, "policy_code") }, []string{"policy_code"}},
		{"policy_code unknown", func(m map[string]any) { m["policy_code"] = "nope" }, []string{"policy_code"}},
		{"ground unknown", func(m map[string]any) { m["ground"] = "vibes" }, []string{"ground"}},
		{"legal_reference missing for law", func(m map[string]any) { m["ground"] = "law" }, []string{"legal_reference"}},
		{"legal_reference with terms", func(m map[string]any) { m["legal_reference"] = "Art. 1" }, []string{"legal_reference"}},
		{"explanation missing", func(m map[string]any) { m["explanation"] = "" }, []string{"explanation"}},
		{"explanation too long", func(m map[string]any) { m["explanation"] = long }, []string{"explanation"}},
		{"facts too long", func(m map[string]any) { m["facts"] = strings.Repeat("f", 5001) }, []string{"facts"}},
		{"source unknown", func(m map[string]any) { m["source"] = "rumour" }, []string{"source"}},
		{"automated_detection missing", func(m map[string]any) { delete(m, "automated_detection") }, []string{"automated_detection"}},
		{"automated_detection wrong type", func(m map[string]any) { m["automated_detection"] = "yes" }, []string{"automated_detection"}},
		{"automated_decision unknown", func(m map[string]any) { m["automated_decision"] = "mostly" }, []string{"automated_decision"}},
		{"territorial_scope bad code", func(m map[string]any) { m["territorial_scope"] = []string{"DE", "XX"} }, []string{"territorial_scope[1]"}},
		{"content_type unknown", func(m map[string]any) { m["content_type"] = []string{"hologram"} }, []string{"content_type[0]"}},
		{"content_type repeated", func(m map[string]any) { m["content_type"] = []string{"image", "text", "image"} }, []string{"content_type[2]"}},
		{"ends_at malformed", func(m map[string]any) { m["ends_at"] = "tomorrow" }, []string{"ends_at"}},
		{"ends_at past", func(m map[string]any) { m["ends_at"] = "2001-01-01T00:00:00Z" }, []string{"ends_at"}},
		{"unknown field", func(m map[string]any) { m["severity"] = 3 }, []string{"severity"}},
		{"explanation wrong type", func(m map[string]any) { m["explanation"] = 7 }, []string{"explanation"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := validDecision("crypto")
			c.change(body)
			r := e.do("POST", "/v1/decisions", "enforcer", body)
			require.Equal(t, 400, r.Status, "%s", r.Body)
			require.ElementsMatch(t, c.fields, r.problemFields(t))
		})
	}
	var n int
	require.NoError(t, e.db.Get(&n, `SELECT count(*) FROM decisions`))
	require.Zero(t, n, "no invalid decision may be stored")
}

func TestDecisionFourMissingFieldsNamedAtOnce(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	body := validDecision("crypto")
	for _, f := range []string{"explanation", "facts", "source", "automated_decision"} {
		delete(body, f)
	}
	r := e.do("POST", "/v1/decisions", "enforcer", body)
	require.Equal(t, 400, r.Status)
	require.ElementsMatch(t, []string{"explanation", "facts", "source", "automated_decision"}, r.problemFields(t))
}

func TestBodyRules(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	big := `{"explanation":"` + strings.Repeat("x", 1<<20) + `"}`
	r := e.do("POST", "/v1/decisions", "enforcer", big)
	require.Equal(t, 413, r.Status, "%s", r.Body)

	r = e.do("POST", "/v1/decisions", "enforcer", nil, "Content-Type", "text/plain")
	require.Equal(t, 415, r.Status, "empty text body: %s", r.Body)

	r = e.do("POST", "/v1/decisions", "enforcer", `{"action":`)
	require.Equal(t, 400, r.Status)
	require.Equal(t, []string{"body"}, r.problemFields(t))

	r = e.do("POST", "/v1/decisions", "enforcer", `{} {}`)
	require.Equal(t, 400, r.Status)
	require.Equal(t, []string{"body"}, r.problemFields(t))

	r = e.do("POST", "/v1/decisions", "enforcer", `[1,2]`)
	require.Equal(t, 400, r.Status)
}

func TestDecisionReadBack(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	body := validDecision("crypto")
	body["action"] = "advertiser_ban"
	delete(body, "ad_id")
	body["territorial_scope"] = []string{"DE", "FR"}
	id := e.decision(body)

	r := e.do("GET", "/v1/decisions/"+id, "advertiser", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	d := r.json(t)
	require.Equal(t, "in_effect", d["status"])
	require.Equal(t, float64(1), d["policy_version"])
	// Staff are shown to an advertiser by role only (api-v1.md, Appeals).
	require.Equal(t, "enforcer", d["decided_by"])
	require.NotEmpty(t, d["appeal_deadline"])

	// Another advertiser gets 404, not 403: existence does not leak.
	r = e.do("GET", "/v1/decisions/"+id, "other_advertiser", nil)
	require.Equal(t, 404, r.Status)
	r = e.do("GET", "/v1/decisions?advertiser_id=acme", "other_advertiser", nil)
	require.Equal(t, 200, r.Status)
	require.Empty(t, r.json(t)["items"])
	r = e.do("GET", "/v1/decisions", "other_advertiser", nil)
	require.Empty(t, r.json(t)["items"])
	r = e.do("GET", "/v1/decisions", "advertiser", nil)
	require.Len(t, r.json(t)["items"], 1)
}

func TestDecisionPolicyVersionPinned(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	first := e.decision(validDecision("crypto"))
	r := e.do("PUT", "/v1/policies/crypto", "admin", map[string]string{"title": "Crypto v2", "text": "Narrower text"})
	require.Equal(t, 201, r.Status)
	require.Equal(t, float64(2), r.json(t)["version"])
	// Same text again: nothing new.
	r = e.do("PUT", "/v1/policies/crypto", "admin", map[string]string{"title": "Crypto v2", "text": "Narrower text"})
	require.Equal(t, 200, r.Status)
	require.Equal(t, float64(2), r.json(t)["version"])
	second := e.decision(validDecision("crypto"))

	d1 := e.do("GET", "/v1/decisions/"+first, "auditor", nil).json(t)
	d2 := e.do("GET", "/v1/decisions/"+second, "auditor", nil).json(t)
	require.Equal(t, float64(1), d1["policy_version"])
	require.Equal(t, float64(2), d2["policy_version"])
	require.NotEqual(t, d1["policy_text_sha256"], d2["policy_text_sha256"])
	v1 := e.do("GET", "/v1/policies/crypto/versions/1", "advertiser", nil).json(t)
	require.Equal(t, d1["policy_text_sha256"], v1["text_sha256"])
}

func TestDecisionListPaginationAndFilters(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	e.policy("weapons")
	for i := 0; i < 7; i++ {
		b := validDecision("crypto")
		if i%2 == 1 {
			b["policy_code"] = "weapons"
			b["action"] = "ad_restriction"
		}
		e.decision(b)
	}
	seen := map[string]bool{}
	cursor := ""
	pages := 0
	for {
		r := e.do("GET", "/v1/decisions?limit=3&cursor="+cursor, "auditor", nil)
		require.Equal(t, 200, r.Status, "%s", r.Body)
		m := r.json(t)
		for _, it := range m["items"].([]any) {
			id := it.(map[string]any)["id"].(string)
			require.False(t, seen[id], "repeated %s", id)
			seen[id] = true
		}
		pages++
		next, _ := m["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	require.Len(t, seen, 7)
	require.Equal(t, 3, pages)

	r := e.do("GET", "/v1/decisions?policy_code=weapons&action=ad_restriction&status=in_effect", "auditor", nil)
	require.Len(t, r.json(t)["items"], 3)
	r = e.do("GET", "/v1/decisions?status=reversed", "auditor", nil)
	require.Empty(t, r.json(t)["items"])
	r = e.do("GET", "/v1/decisions?status=bogus&limit=9999", "auditor", nil)
	require.Equal(t, 400, r.Status)
	require.ElementsMatch(t, []string{"limit"}, r.problemFields(t))
	r = e.do("GET", "/v1/decisions?status=bogus", "auditor", nil)
	require.ElementsMatch(t, []string{"status"}, r.problemFields(t))
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	body := validDecision("crypto")

	first := e.do("POST", "/v1/decisions", "enforcer", body, "Idempotency-Key", "k-1")
	require.Equal(t, 201, first.Status)
	again := e.do("POST", "/v1/decisions", "enforcer", body, "Idempotency-Key", "k-1")
	require.Equal(t, 201, again.Status)
	require.Equal(t, string(first.Body), string(again.Body), "a replay returns the first reply")
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.NotEmpty(t, first.Header.Get("Location"))
	require.Equal(t, first.Header.Get("Location"), again.Header.Get("Location"), "a replay carries the first reply's headers")

	other := validDecision("crypto")
	other["facts"] = "different facts"
	r := e.do("POST", "/v1/decisions", "enforcer", other, "Idempotency-Key", "k-1")
	require.Equal(t, 422, r.Status, "%s", r.Body)

	// The key is the caller's own: another actor with the same key writes.
	e.tokens["enforcer2"] = e.token(appeals.TokenInput{Name: "pipeline-2", Role: docket.RoleEnforcer})
	r = e.do("POST", "/v1/decisions", "enforcer2", body, "Idempotency-Key", "k-1")
	require.Equal(t, 201, r.Status)
	require.NotEqual(t, first.json(t)["id"], r.json(t)["id"])

	// Concurrent retries of one key: one decision, identical replies.
	var wg sync.WaitGroup
	replies := make([]reply, 12)
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = e.do("POST", "/v1/decisions", "enforcer", body, "Idempotency-Key", "k-concurrent")
		}()
	}
	wg.Wait()
	for _, r := range replies {
		require.Equal(t, 201, r.Status, "%s", r.Body)
		require.Equal(t, string(replies[0].Body), string(r.Body))
	}
	var n int
	require.NoError(t, e.db.Get(&n, `SELECT count(*) FROM decisions`))
	require.Equal(t, 3, n, "k-1 (per actor) and k-concurrent each wrote exactly one decision")
	require.NoError(t, e.db.Get(&n, `SELECT count(*) FROM audit_staging WHERE type = 'decision.recorded'`))
	require.Equal(t, 3, n)

	r = e.do("POST", "/v1/decisions", "enforcer", body, "Idempotency-Key", "bad key with spaces")
	require.Equal(t, 400, r.Status)
	require.Equal(t, []string{"Idempotency-Key"}, r.problemFields(t))

	// PUT is idempotent under a key too, and a replay after a new version
	// still returns the first reply.
	p1 := e.do("PUT", "/v1/policies/crypto", "admin", map[string]string{"title": "T", "text": "v2"}, "Idempotency-Key", "p-1")
	require.Equal(t, 201, p1.Status)
	p2 := e.do("PUT", "/v1/policies/crypto", "admin", map[string]string{"title": "T", "text": "v2"}, "Idempotency-Key", "p-1")
	require.Equal(t, 201, p2.Status)
	require.Equal(t, string(p1.Body), string(p2.Body))
}

func TestDecisionAndEntryCommitTogether(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	// Make the audit write fail for decisions only, as a full disk or a
	// broken log table would.
	_, err := e.db.Exec(`CREATE FUNCTION fail_decision_entries() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.type = 'decision.recorded' THEN RAISE EXCEPTION 'audit log unavailable'; END IF; RETURN NEW; END $$;
		CREATE TRIGGER fail_decision_entries BEFORE INSERT ON audit_staging FOR EACH ROW EXECUTE FUNCTION fail_decision_entries();`)
	require.NoError(t, err)
	// Without a key a decision is one statement; with one, a transaction
	// that also keeps the key's reply: both must leave nothing behind.
	r := e.do("POST", "/v1/decisions", "enforcer", validDecision("crypto"))
	require.Equal(t, 500, r.Status, "%s", r.Body)
	require.NotContains(t, string(r.Body), "audit log unavailable", "internal errors are not leaked")
	r = e.do("POST", "/v1/decisions", "enforcer", validDecision("crypto"), "Idempotency-Key", "d-atomic")
	require.Equal(t, 500, r.Status, "%s", r.Body)
	var n int
	require.NoError(t, e.db.Get(&n, `SELECT count(*) FROM idempotency_keys WHERE key = 'd-atomic'`))
	require.Zero(t, n, "a failed write keeps no reply for its key")
	require.NoError(t, e.db.Get(&n, `SELECT count(*) FROM decisions`))
	require.Zero(t, n, "a decision whose entry failed must not exist")
	require.NoError(t, e.db.Get(&n, `SELECT count(*) FROM audit_staging WHERE type = 'decision.recorded'`))
	require.Zero(t, n)
}

func TestEveryChangeHasOneEntry(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	id := e.decision(validDecision("crypto"))
	type row struct {
		Type    string `db:"type"`
		Actor   string `db:"actor"`
		Subject string `db:"subject_id"`
	}
	var rows []row
	require.NoError(t, e.db.Select(&rows, `SELECT type, actor, subject_id FROM audit_staging ORDER BY id`))
	// Seven tokens from setup, one policy, one decision.
	var types []string
	for _, r := range rows {
		types = append(types, r.Type)
	}
	require.Equal(t, append(repeat("token.created", 7), "policy.revised", "decision.recorded"), types)
	last := rows[len(rows)-1]
	require.Equal(t, "enforcer:pipeline", last.Actor)
	require.Equal(t, id, last.Subject)
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestUnknownRoutesAreProblems(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.do("GET", "/v1/nothing-here", "admin", nil)
	require.Equal(t, 404, r.Status)
	require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	r = e.do("DELETE", "/v1/decisions", "admin", nil)
	require.Equal(t, 405, r.Status)
	require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	require.Contains(t, r.Header.Get("Allow"), "POST")
}

func TestEveryBadFieldNamedAtOnce(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	// Two wrong types, an unknown field and two missing fields: one 400
	// names all five.
	body := validDecision("crypto")
	body["automated_detection"] = "yes"
	body["territorial_scope"] = "DE"
	body["severity"] = 3
	delete(body, "facts")
	delete(body, "source")
	r := e.do("POST", "/v1/decisions", "enforcer", body)
	require.Equal(t, 400, r.Status, "%s", r.Body)
	require.ElementsMatch(t, []string{"automated_detection", "territorial_scope", "severity", "facts", "source"}, r.problemFields(t))

	// The same for every write: a policy with a wrong type and a missing field.
	r = e.do("PUT", "/v1/policies/crypto", "admin", map[string]any{"text": 42})
	require.Equal(t, 400, r.Status, "%s", r.Body)
	require.ElementsMatch(t, []string{"text", "title"}, r.problemFields(t))
	r = e.do("POST", "/v1/policies/crypto/reversals", "admin", map[string]any{"versions": "1"})
	require.Equal(t, 400, r.Status, "%s", r.Body)
	require.ElementsMatch(t, []string{"versions", "rationale"}, r.problemFields(t))
}
