package api_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/internal/logtest"
)

// appealRows are the Appeals routes' rows of the authorization matrix.
func appealRows(all func(int) map[string]int) map[string]authzRow {
	rows := map[string]authzRow{
		"POST /v1/decisions/{id}/appeals": {
			call: func(e *env, who string) (string, string, any) {
				return "POST", "/v1/decisions/" + e.decision(validDecision("crypto")) + "/appeals", map[string]any{"statement": "Wrong."}
			},
			want: map[string]int{"advertiser": 201},
		},
		"POST /v1/appeals/claim": {
			call: func(e *env, who string) (string, string, any) {
				e.appeal(e.decision(validDecision("crypto")))
				return "POST", "/v1/appeals/claim", nil
			},
			want: map[string]int{"reviewer": 200, "senior": 200},
		},
		"POST /v1/appeals/{id}/resolve": {
			call: func(e *env, who string) (string, string, any) {
				return "POST", "/v1/appeals/" + e.claimedBy(who) + "/resolve", map[string]any{"outcome": "upheld", "rationale": "Fine."}
			},
			want: map[string]int{"reviewer": 200, "senior": 200},
		},
		"POST /v1/appeals/{id}/escalate": {
			call: func(e *env, who string) (string, string, any) {
				return "POST", "/v1/appeals/" + e.claimedBy(who) + "/escalate", map[string]any{"reason": "Hard."}
			},
			want: map[string]int{"reviewer": 200, "senior": 200},
		},
		"POST /v1/appeals/{id}/withdraw": {
			call: func(e *env, who string) (string, string, any) {
				return "POST", "/v1/appeals/" + e.appeal(e.decision(validDecision("crypto"))) + "/withdraw", nil
			},
			want: map[string]int{"advertiser": 200},
		},
		"GET /v1/appeals": {call: get("/v1/appeals"), want: all(200)},
		"GET /v1/appeals/{id}": {
			call: func(e *env, who string) (string, string, any) {
				return "GET", "/v1/appeals/" + e.appeal(e.decision(validDecision("crypto"))), nil
			},
			want: all(200),
		},
		"POST /v1/policies/{code}/reversals": {
			call: func(e *env, who string) (string, string, any) {
				e.policy("bulk")
				return "POST", "/v1/policies/bulk/reversals", map[string]any{"versions": []int{1}, "rationale": "Withdrawn."}
			},
			want: map[string]int{"admin": 200},
		},
	}
	return rows
}

// appeal files an appeal of decision id as acme's advertiser and returns its id.
func (e *env) appeal(id string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/decisions/"+id+"/appeals", "advertiser", map[string]any{"statement": "The ad was lawful."})
	require.Equal(e.t, 201, r.Status, "%s", r.Body)
	return r.json(e.t)["id"].(string)
}

// claim claims as who and returns the reply's appeal, or nil on 204.
func (e *env) claim(who string) map[string]any {
	e.t.Helper()
	r := e.do("POST", "/v1/appeals/claim", who, nil)
	if r.Status == 204 {
		require.Empty(e.t, r.Body)
		return nil
	}
	require.Equal(e.t, 200, r.Status, "%s", r.Body)
	return r.json(e.t)
}

// claimedBy returns an appeal in review held by who when who is a
// reviewer; for other callers, any appeal.
func (e *env) claimedBy(who string) string {
	e.t.Helper()
	id := e.appeal(e.decision(validDecision("crypto")))
	if who != "reviewer" && who != "senior" {
		return id
	}
	for {
		a := e.claim(who)
		require.NotNil(e.t, a)
		if a["state"] == "in_review" {
			return a["id"].(string)
		}
		// An escalated one another row left behind: answer it, claim on.
		r := e.do("POST", "/v1/appeals/"+a["id"].(string)+"/resolve", who, map[string]any{"outcome": "upheld", "rationale": "x"})
		require.Equal(e.t, 200, r.Status, "%s", r.Body)
	}
}

// entryTypes counts the staged audit entries by type.
func (e *env) entryTypes() map[string]int {
	e.t.Helper()
	return logtest.EntryTypes(e.t, e.db)
}

func banDecision() map[string]any {
	d := validDecision("crypto")
	d["action"] = "advertiser_ban"
	delete(d, "ad_id")
	return d
}

func TestAppealPathsOverHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")

	// A ban recorded, appealed, claimed, upheld.
	ban := e.decision(banDecision())
	view := e.do("GET", "/v1/decisions/"+ban, "advertiser", nil).json(t)
	require.Equal(t, []any{}, view["appeals"])
	info := view["appeal"].(map[string]any)
	require.Equal(t, true, info["open"])
	require.Equal(t, view["appeal_deadline"], info["deadline"])
	require.Contains(t, info["how"], "POST /v1/decisions/"+ban+"/appeals")
	deadline, err := time.Parse(time.RFC3339Nano, info["deadline"].(string))
	require.NoError(t, err)
	require.Contains(t, info["how"], "before "+deadline.Format(time.RFC3339), "the call is named with its deadline")

	r := e.do("POST", "/v1/decisions/"+ban+"/appeals", "advertiser", map[string]any{"statement": "We are licensed.",
		"evidence": []map[string]string{{"description": "Licence", "url": "https://example.com/l.pdf"}}})
	require.Equal(t, 201, r.Status, "%s", r.Body)
	a := r.json(t)
	id := a["id"].(string)
	require.Equal(t, "/v1/appeals/"+id, r.Header.Get("Location"))
	for _, k := range []string{"id", "decision_id", "advertiser_id", "state", "statement", "evidence", "filed_by", "filed_at",
		"due_at", "assigned_to", "outcome", "rationale", "resolved_by", "resolved_at"} {
		require.Contains(t, a, k)
	}
	require.Equal(t, "pending", a["state"])
	require.Equal(t, ban, a["decision_id"])
	require.Equal(t, "acme", a["advertiser_id"])

	c := e.claim("reviewer")
	require.Equal(t, id, c["id"])
	require.Equal(t, "in_review", c["state"])
	require.Equal(t, "reviewer:rita", c["assigned_to"])
	require.Nil(t, e.claim("reviewer"), "nothing else waits")

	r = e.do("POST", "/v1/appeals/"+id+"/resolve", "reviewer", map[string]any{"outcome": "upheld", "rationale": "The ban stands."})
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, "upheld", r.json(t)["state"])
	got := e.do("GET", "/v1/appeals/"+id, "advertiser", nil).json(t)
	require.Equal(t, "upheld", got["state"])
	require.Equal(t, "upheld", got["outcome"])
	require.Equal(t, "The ban stands.", got["rationale"])
	require.Equal(t, "reviewer", got["resolved_by"], "an advertiser sees staff by role only")
	view = e.do("GET", "/v1/decisions/"+ban, "advertiser", nil).json(t)
	require.Equal(t, "in_effect", view["status"])
	require.Len(t, view["appeals"], 1)

	// An ad removal appealed, claimed, reversed: the decision is reversed.
	removal := e.decision(validDecision("crypto"))
	id = e.appeal(removal)
	require.Equal(t, id, e.claim("reviewer")["id"])
	r = e.do("POST", "/v1/appeals/"+id+"/resolve", "reviewer", map[string]any{"outcome": "reversed", "rationale": "Lawful ad."})
	require.Equal(t, 200, r.Status, "%s", r.Body)
	d := e.do("GET", "/v1/decisions/"+removal, "advertiser", nil).json(t)
	require.Equal(t, "reversed", d["status"])
	require.Equal(t, id, d["reversed_by_appeal"])
	require.NotNil(t, d["reversed_at"])
	require.Equal(t, false, d["appeal"].(map[string]any)["open"])
	require.NotContains(t, d["appeal"], "how", "no call is named when no appeal may be filed")

	// An appeal withdrawn.
	id = e.appeal(e.decision(validDecision("crypto")))
	r = e.do("POST", "/v1/appeals/"+id+"/withdraw", "advertiser", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, "withdrawn", r.json(t)["state"])

	// An escalation resolved by a senior reviewer.
	id = e.appeal(e.decision(banDecision()))
	require.Equal(t, id, e.claim("reviewer")["id"])
	r = e.do("POST", "/v1/appeals/"+id+"/escalate", "reviewer", map[string]any{"reason": "A question of law."})
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, "escalated", r.json(t)["state"])
	require.Nil(t, e.claim("reviewer"))
	c = e.claim("senior")
	require.Equal(t, id, c["id"])
	require.Equal(t, "senior_reviewer:sam", c["assigned_to"])
	r = e.do("POST", "/v1/appeals/"+id+"/resolve", "senior", map[string]any{"outcome": "reversed", "rationale": "Not a ban case."})
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, "reversed", r.json(t)["state"])

	require.Equal(t, map[string]int{"policy.revised": 1, "decision.recorded": 4, "appeal.filed": 4, "appeal.claimed": 4,
		"appeal.escalated": 1, "appeal.resolved": 3, "appeal.withdrawn": 1, "decision.reversed": 2, "token.created": 7}, e.entryTypes())

	// Lists: by state, by decision, an advertiser's own only.
	list := e.do("GET", "/v1/appeals?state=reversed", "auditor", nil).json(t)
	require.Len(t, list["items"], 2)
	list = e.do("GET", "/v1/appeals?decision_id="+ban, "advertiser", nil).json(t)
	require.Len(t, list["items"], 1)
	list = e.do("GET", "/v1/appeals", "other_advertiser", nil).json(t)
	require.Empty(t, list["items"])
	r = e.do("GET", "/v1/appeals?state=lost", "auditor", nil)
	require.Equal(t, 400, r.Status)
	require.ElementsMatch(t, []string{"state"}, r.problemFields(t))
}

func TestAppealRefusalsOverHTTP(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	e := setup(t, func(o *appeals.Options) { o.Now = clk.Now; o.ReviewDue = 48 * time.Hour })
	e.tokens["decider"] = e.token(appeals.TokenInput{Name: "pipeline", Role: docket.RoleReviewer})
	e.tokens["rob"] = e.token(appeals.TokenInput{Name: "rob", Role: docket.RoleReviewer})
	e.policy("crypto")
	require.Nil(t, e.claim("reviewer"), "an empty queue is 204")

	dec := e.decision(validDecision("crypto"))
	path := "/v1/decisions/" + dec + "/appeals"
	body := map[string]any{"statement": "Wrong."}
	problem := func(r reply, status int, detail string) {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Body)
		require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
		require.Contains(t, r.json(t)["detail"], detail)
	}
	problem(e.do("POST", path, "other_advertiser", body), 404, "not found")
	problem(e.do("POST", "/v1/decisions/nope/appeals", "advertiser", body), 404, "not found")
	for _, who := range []string{"reviewer", "senior", "enforcer", "admin", "auditor"} {
		problem(e.do("POST", path, who, body), 403, "may not")
	}
	r := e.do("POST", path, "advertiser", map[string]any{"statement": "", "evidence": []map[string]string{{"url": "javascript:alert(1)"}}})
	require.Equal(t, 400, r.Status)
	require.Equal(t, []string{"statement", "evidence[0].url"}, r.problemFields(t))
	r = e.do("POST", path, "advertiser", map[string]any{"statement": "x", "mood": "angry"})
	require.Equal(t, 400, r.Status)
	require.Equal(t, []string{"mood"}, r.problemFields(t))
	r = e.do("POST", path, "advertiser", "statement=x", "Content-Type", "text/plain")
	require.Equal(t, 415, r.Status)

	// Idempotent filing: the same key and body replay the first reply.
	first := e.do("POST", path, "advertiser", body, "Idempotency-Key", "k1")
	require.Equal(t, 201, first.Status, "%s", first.Body)
	again := e.do("POST", path, "advertiser", body, "Idempotency-Key", "k1")
	require.Equal(t, 201, again.Status)
	require.Equal(t, first.Body, again.Body)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, 422, e.do("POST", path, "advertiser", map[string]any{"statement": "Other."}, "Idempotency-Key", "k1").Status)
	id := first.json(t)["id"].(string)
	problem(e.do("POST", path, "advertiser", body), 409, "still pending")

	// Transitions the state does not allow, each naming the state.
	problem(e.do("POST", "/v1/appeals/"+id+"/resolve", "reviewer", map[string]any{"outcome": "upheld", "rationale": "r"}), 409, "is pending")
	problem(e.do("POST", "/v1/appeals/"+id+"/escalate", "reviewer", map[string]any{"reason": "r"}), 409, "is pending")

	// The decider is never handed the appeal and may never resolve it.
	require.Nil(t, e.claim("decider"))
	c := e.do("POST", "/v1/appeals/claim", "reviewer", nil, "Idempotency-Key", "c1")
	require.Equal(t, 200, c.Status)
	require.Equal(t, c.Body, e.do("POST", "/v1/appeals/claim", "reviewer", nil, "Idempotency-Key", "c1").Body)
	resolve := "/v1/appeals/" + id + "/resolve"
	problem(e.do("POST", resolve, "decider", map[string]any{"outcome": "reversed", "rationale": "mine"}), 403, "pipeline made decision")
	for _, who := range []string{"enforcer", "admin", "advertiser", "other_advertiser", "auditor"} {
		problem(e.do("POST", resolve, who, map[string]any{"outcome": "reversed", "rationale": "x"}), 403, "may not")
	}
	problem(e.do("POST", resolve, "rob", map[string]any{"outcome": "reversed", "rationale": "x"}), 409, "assigned to reviewer:rita")
	r = e.do("POST", resolve, "reviewer", map[string]any{"outcome": "maybe"})
	require.Equal(t, 400, r.Status)
	require.Equal(t, []string{"outcome", "rationale"}, r.problemFields(t))
	problem(e.do("POST", "/v1/appeals/nope/resolve", "reviewer", map[string]any{"outcome": "upheld", "rationale": "x"}), 404, "not found")
	problem(e.do("POST", "/v1/appeals/"+id+"/withdraw", "other_advertiser", nil), 404, "not found")
	problem(e.do("GET", "/v1/appeals/"+id, "other_advertiser", nil), 404, "not found")

	// The lease lapses: the appeal goes back to the queue.
	clk.Add(31 * time.Minute)
	problem(e.do("POST", resolve, "reviewer", map[string]any{"outcome": "upheld", "rationale": "late"}), 409, "lapsed")
	require.Equal(t, id, e.claim("rob")["id"])

	// Overdue after the review deadline.
	clk.Add(48 * time.Hour)
	list := e.do("GET", "/v1/appeals?overdue=true", "reviewer", nil).json(t)
	require.Len(t, list["items"], 1)
	require.Equal(t, true, list["items"].([]any)[0].(map[string]any)["overdue"])
	require.Equal(t, id, e.claim("rob")["id"], "rob's own lapsed claim, taken again")
	r = e.do("POST", resolve, "rob", map[string]any{"outcome": "reversed", "rationale": "Lawful."}, "Idempotency-Key", "r1")
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, r.Body, e.do("POST", resolve, "rob", map[string]any{"outcome": "reversed", "rationale": "Lawful."}, "Idempotency-Key", "r1").Body)
	require.Equal(t, 1, e.entryTypes()["decision.reversed"])
	problem(e.do("POST", resolve, "rob", map[string]any{"outcome": "reversed", "rationale": "Again."}), 409, "is reversed")
	problem(e.do("POST", "/v1/appeals/"+id+"/withdraw", "advertiser", nil), 409, "is reversed")
	problem(e.do("POST", path, "advertiser", body), 409, "is reversed")

	// The appeal deadline, six months after the decision.
	late := e.decision(validDecision("crypto"))
	clk.Set(clk.Now().AddDate(0, 6, 1))
	problem(e.do("POST", "/v1/decisions/"+late+"/appeals", "advertiser", body), 409, "deadline")
}

func TestReversalsOverHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, e.decision(validDecision("crypto")))
	}
	e.do("PUT", "/v1/policies/crypto", "admin", map[string]string{"title": "Crypto", "text": "Narrowed."})
	kept := e.decision(validDecision("crypto")) // under version 2
	open := e.appeal(ids[0])

	body := map[string]any{"versions": []int{1}, "rationale": "Crypto ads are allowed now."}
	r := e.do("POST", "/v1/policies/crypto/reversals", "admin", body, "Idempotency-Key", "bulk-1")
	require.Equal(t, 200, r.Status, "%s", r.Body)
	rep := r.json(t)
	require.EqualValues(t, 5, rep["reversed"])
	require.EqualValues(t, 5, rep["total_reversed"])
	require.EqualValues(t, 1, rep["appeals_resolved"])
	again := e.do("POST", "/v1/policies/crypto/reversals", "admin", body, "Idempotency-Key", "bulk-1")
	require.Equal(t, r.Body, again.Body)
	rerun := e.do("POST", "/v1/policies/crypto/reversals", "admin", body).json(t)
	require.EqualValues(t, 0, rerun["reversed"])
	require.EqualValues(t, 5, rerun["total_reversed"])
	require.Equal(t, rep["id"], rerun["id"])

	for _, id := range ids {
		require.Equal(t, "reversed", e.do("GET", "/v1/decisions/"+id, "auditor", nil).json(t)["status"])
	}
	require.Equal(t, "in_effect", e.do("GET", "/v1/decisions/"+kept, "auditor", nil).json(t)["status"])
	require.Equal(t, "reversed", e.do("GET", "/v1/appeals/"+open, "advertiser", nil).json(t)["state"])
	require.Equal(t, 5, e.entryTypes()["decision.reversed"])

	r = e.do("POST", "/v1/policies/crypto/reversals", "admin", map[string]any{"versions": []int{7}, "rationale": "x"})
	require.Equal(t, 400, r.Status)
	require.Equal(t, []string{"versions[0]"}, r.problemFields(t))
	r = e.do("POST", "/v1/policies/none/reversals", "admin", map[string]any{"versions": []int{1}, "rationale": "x"})
	require.Equal(t, 404, r.Status)
}

// Eight reviewers over HTTP: every appeal claimed exactly once.
func TestParallelClaimsOverHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	const n = 24
	for i := 0; i < n; i++ {
		e.appeal(e.decision(validDecision("crypto")))
	}
	for i := 0; i < 8; i++ {
		e.tokens[fmt.Sprint("r", i)] = e.token(appeals.TokenInput{Name: fmt.Sprint("r", i), Role: docket.RoleReviewer})
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r := e.do("POST", "/v1/appeals/claim", fmt.Sprint("r", i), nil)
				if r.Status == 204 {
					return
				}
				if r.Status != 200 {
					t.Errorf("claim: %d %s", r.Status, r.Body)
					return
				}
				id := r.json(t)["id"].(string)
				mu.Lock()
				seen[id]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, seen, n)
	for id, k := range seen {
		require.Equal(t, 1, k, "appeal %s claimed %d times", id, k)
	}
}

// clock is a test's controllable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
