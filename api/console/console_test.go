package console_test

import (
	"context"
	"github.com/docket-dev/docket"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/appeals"
)

func requireSecurityHeaders(t *testing.T, path string, p page) {
	t.Helper()
	csp := p.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "default-src 'none'", path)
	require.Contains(t, csp, "script-src 'self'", path)
	require.Contains(t, csp, "frame-ancestors 'none'", path)
	require.NotContains(t, csp, "unsafe-inline", path)
	require.Equal(t, "nosniff", p.Header.Get("X-Content-Type-Options"), path)
	require.Equal(t, "no-referrer", p.Header.Get("Referrer-Policy"), path)
	require.Equal(t, "DENY", p.Header.Get("X-Frame-Options"), path)
}

// Every reply under /ui/ carries the CSP and the other headers: pages,
// redirects, errors, static files; and no page has an inline script.
func TestSecurityHeadersOnEveryPage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.fileAppeal("Please look again.")
	anon := e.browser()
	adv := e.as("advertiser")
	rev := e.as("reviewer")
	for _, c := range []struct {
		b    *browser
		path string
		want int
	}{
		{anon, "/ui/", 303}, {anon, "/ui/signin", 200}, {anon, "/ui/decisions", 303}, {anon, "/ui/nope", 404},
		{anon, "/ui/static/console.css", 200}, {anon, "/ui/static/lease.js", 200}, {anon, "/ui/static/missing.js", 404},
		{adv, "/ui/decisions", 200}, {adv, "/ui/decisions/" + e.decision.ID, 200}, {adv, "/ui/decisions?status=reversed", 200},
		{adv, "/ui/queue", 403}, {adv, "/ui/decisions?bogus=1", 400}, {adv, "/ui/decisions/nope", 404},
		{rev, "/ui/queue", 200}, {rev, "/ui/appeals/" + a.ID, 200}, {rev, "/ui/decisions/" + e.decision.ID, 200},
	} {
		p := c.b.get(c.path)
		require.Equal(t, c.want, p.Status, "%s: %s", c.path, p.Body)
		requireSecurityHeaders(t, c.path, p)
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			require.NotRegexp(t, `<script>|<script [^>]*>[^<]|\son[a-z]+=|style=`, p.Body, c.path)
			require.Equal(t, "no-store", p.Header.Get("Cache-Control"), c.path)
		}
	}
	p := anon.post("/ui/signin", url.Values{})
	requireSecurityHeaders(t, "POST /ui/signin", p)
	p = anon.get("/ui/signin?next=/ui/decisions&x=1")
	require.Equal(t, 400, p.Status, "unknown query parameters are refused")
	p = anon.get("/ui/signin?next=a&next=b")
	require.Equal(t, 400, p.Status, "repeated query parameters are refused")
}

func sessionCookie(t *testing.T, p page) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if c.Name == "docket_session" {
			return c
		}
	}
	require.Fail(t, "no session cookie set")
	return nil
}

// The session cookie is HttpOnly, SameSite=Strict, scoped to /ui/, and
// Secure when served over TLS; it holds no token.
func TestSessionCookieFlags(t *testing.T) {
	t.Parallel()
	for _, tls := range []bool{false, true} {
		e := setup(t, tls)
		r := e.browser().signIn("advertiser")
		require.Equal(t, http.StatusSeeOther, r.Status, r.Body)
		require.Equal(t, "/ui/decisions", r.Location)
		c := sessionCookie(t, r)
		require.True(t, c.HttpOnly)
		require.Equal(t, http.SameSiteStrictMode, c.SameSite)
		require.Equal(t, "/ui/", c.Path)
		require.Equal(t, tls, c.Secure, "Secure over TLS only (tls=%v)", tls)
		require.Positive(t, c.MaxAge)
		require.NotContains(t, c.Value, e.tokens["advertiser"])
		require.NotContains(t, r.Header.Get("Set-Cookie"), "dkt_")
	}
}

// Every state-changing form needs the session's CSRF token, and a
// cross-site request is refused even with it; nothing changes.
func TestCSRFRequiredOnEveryForm(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.fileAppeal("Please look again.")
	adv := e.as("advertiser")
	rev := e.as("reviewer")
	adm := e.as("admin")
	enf := e.as("enforcer")
	forms := []struct {
		b    *browser
		path string
		form url.Values
	}{
		{adv, "/ui/decisions/" + e.decision.ID + "/appeals", url.Values{"statement": {"again"}}},
		{adv, "/ui/appeals/" + a.ID + "/withdraw", nil},
		{rev, "/ui/queue/claim", nil},
		{rev, "/ui/appeals/" + a.ID + "/resolve", url.Values{"outcome": {"reversed"}, "rationale": {"r"}}},
		{rev, "/ui/appeals/" + a.ID + "/escalate", url.Values{"reason": {"r"}}},
		{enf, "/ui/decisions", url.Values{"advertiser_id": {"acme"}, "action": {"advertiser_ban"}, "policy_code": {"crypto"},
			"ground": {"terms"}, "explanation": {"x"}, "facts": {"y"}, "source": {"voluntary"}, "automated_detection": {"no"},
			"automated_decision": {"none"}}},
		{enf, "/ui/decisions/" + e.decision.ID + "/notices", url.Values{"channel": {"email"}}},
		{adm, "/ui/policies", url.Values{"code": {"gambling"}, "title": {"Gambling"}, "text": {"No casinos."}}},
		{adm, "/ui/policies/crypto", url.Values{"title": {"Crypto"}, "text": {"Anything goes."}}},
		{adm, "/ui/policies/crypto/reversal", url.Values{"step": {"run"}, "versions": {"1"}, "rationale": {"r"}}},
		{adv, "/ui/signout", nil},
	}
	for _, f := range forms {
		for _, bad := range []string{"", "not-the-token"} {
			form := url.Values{"csrf": {bad}}
			for k, v := range f.form {
				form[k] = v
			}
			p := f.b.post(f.path, form)
			require.Equal(t, http.StatusForbidden, p.Status, "%s with csrf %q: %s", f.path, bad, p.Body)
			require.Contains(t, p.Body, "security token")
		}
		p := f.b.post(f.path, f.form, "Sec-Fetch-Site", "cross-site")
		require.Equal(t, http.StatusForbidden, p.Status, "%s cross-site", f.path)
		p = f.b.post(f.path, f.form, "Origin", "https://evil.example")
		require.Equal(t, http.StatusForbidden, p.Status, "%s from another origin", f.path)
	}
	got, err := e.store.Appeal(context.Background(), system, a.ID)
	require.NoError(t, err)
	require.Equal(t, appeals.AppealPending, got.State, "no form changed anything")
	ds, err := e.store.ListDecisions(context.Background(), admin, appeals.DecisionFilter{})
	require.NoError(t, err)
	require.Len(t, ds.Items, 1, "no form changed anything")
	require.Nil(t, ds.Items[0].NotifiedAt, "no form changed anything")
	pol, err := e.store.Policy(context.Background(), "crypto")
	require.NoError(t, err)
	require.Equal(t, 2, pol.Version, "no form changed anything")
	_, err = e.store.Policy(context.Background(), "gambling")
	require.Equal(t, docket.NotFound, docket.ErrorCode(err), "no form changed anything")
	require.Equal(t, 200, adv.get("/ui/decisions").Status, "still signed in")

	// The sign-in form needs its nonce too (login CSRF).
	anon := e.browser()
	p := anon.post("/ui/signin", url.Values{"token": {e.tokens["advertiser"]}, "csrf": {"forged"}})
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Empty(t, (&http.Response{Header: p.Header}).Cookies()[0:0])
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		require.NotEqual(t, "docket_session", c.Name)
	}
	// And the right token passes the same forms.
	p = rev.post("/ui/queue/claim", nil)
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Equal(t, "/ui/appeals/"+a.ID, p.Location)
}

// Another advertiser's decisions and appeals are 404 pages, as in the API,
// and absent from its list.
func TestOtherAdvertisersPagesAre404(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.fileAppeal("Please look again.")
	other := e.as("other")
	for _, path := range []string{"/ui/decisions/" + e.decision.ID, "/ui/appeals/" + a.ID} {
		p := other.get(path)
		require.Equal(t, http.StatusNotFound, p.Status, path)
		require.NotContains(t, p.Body, "token sale")
	}
	p := other.post("/ui/decisions/"+e.decision.ID+"/appeals", url.Values{"statement": {"mine now"}})
	require.Equal(t, http.StatusNotFound, p.Status, p.Body)
	p = other.post("/ui/appeals/"+a.ID+"/withdraw", nil)
	require.Equal(t, http.StatusNotFound, p.Status, p.Body)
	p = other.get("/ui/decisions")
	require.Equal(t, 200, p.Status)
	require.NotContains(t, p.Body, e.decision.ID)
	require.Contains(t, p.Body, "No decisions match")
}

// Statements, facts and rationales containing markup are shown as text.
func TestMarkupIsEscaped(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	yes := true
	d, err := e.store.RecordDecision(ctx, enforcer, appeals.DecisionInput{AdvertiserID: "acme", AdID: "ad-2",
		Action: appeals.ActionAdRestriction, PolicyCode: "crypto", Ground: "terms",
		Explanation: `<script>alert("explanation")</script>`, Facts: `<img src=x onerror=alert(1)>`,
		Source: "voluntary", AutomatedDetection: &yes, AutomatedDecision: "none"})
	require.NoError(t, err)
	adv := e.as("advertiser")
	p := adv.post("/ui/decisions/"+d.ID+"/appeals", url.Values{"statement": {`<b onclick="x()">bold</b>`},
		"evidence_description": {`<i>desc</i>`, "", ""}, "evidence_url": {`https://example.com/?q=<x>"`, "", ""}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	rev := e.as("reviewer")
	p = rev.post("/ui/queue/claim", nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	id := strings.TrimPrefix(p.Location, "/ui/appeals/")
	rev.get(p.Location)
	p = rev.post("/ui/appeals/"+id+"/resolve", url.Values{"outcome": {"upheld"}, "rationale": {`<a href="javascript:x()">rationale</a>`}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)

	for _, b := range []*browser{adv, rev} {
		for _, path := range []string{"/ui/decisions/" + d.ID, "/ui/appeals/" + id} {
			p := b.get(path)
			if p.Status == http.StatusSeeOther {
				p = b.get(p.Location)
			}
			require.Equal(t, 200, p.Status, p.Body)
			for _, raw := range []string{`<script>alert`, `<img src=x`, `<b onclick`, `<i>desc`, `<a href="javascript`, `<x>"`} {
				require.NotContains(t, p.Body, raw, path)
			}
			require.Contains(t, p.Body, `&lt;script&gt;alert(&#34;explanation&#34;)&lt;/script&gt;`, path)
			require.Contains(t, p.Body, `&lt;a href=&#34;javascript:x()&#34;&gt;rationale&lt;/a&gt;`, path)
		}
	}
}

// Revoking a token ends the sessions opened with it, at the next request.
func TestRevokedTokenEndsItsSessions(t *testing.T) {
	t.Parallel()
	e := setup(t)
	one, two := e.as("advertiser"), e.as("advertiser")
	require.Equal(t, 200, one.get("/ui/decisions").Status)
	_, err := e.store.RevokeTokens(context.Background(), system, "acme-owner", "")
	require.NoError(t, err)
	for _, b := range []*browser{one, two} {
		p := b.get("/ui/decisions")
		require.Equal(t, http.StatusSeeOther, p.Status)
		require.Equal(t, "/ui/signin?next=%2Fui%2Fdecisions", p.Location)
	}
	r := e.browser().signIn("advertiser")
	require.Equal(t, http.StatusUnauthorized, r.Status)
	require.Contains(t, r.Body, "unknown or revoked")
}

// Signing out ends the session on the server, not only in the browser.
func TestSignOutEndsTheSession(t *testing.T) {
	t.Parallel()
	e := setup(t)
	b := e.as("advertiser")
	c := b.c.Jar.Cookies(mustURL(t, e.srv.URL+"/ui/"))
	p := b.post("/ui/signout", nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "/ui/signin", p.Location)
	// The old cookie, replayed, no longer opens anything.
	replay := e.browser()
	replay.c.Jar.SetCookies(mustURL(t, e.srv.URL+"/ui/"), c)
	require.Equal(t, http.StatusSeeOther, replay.get("/ui/decisions").Status)
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// A decider who is also a reviewer is refused with a clear message, by
// the store's rule, and the page says so before they try.
func TestSeparationOfDutiesRefusalIsShown(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.fileAppeal("Please look again.")
	decider := e.as("decider")
	p := decider.get("/ui/appeals/" + a.ID)
	require.Equal(t, 200, p.Status)
	require.Contains(t, p.Body, `id="sod"`)
	p = decider.post("/ui/queue/claim", nil)
	require.Equal(t, "/ui/queue?done=empty", p.Location, "the decider is never handed its own decision's appeal")
	p = decider.post("/ui/appeals/"+a.ID+"/resolve", url.Values{"outcome": {"reversed"}, "rationale": {"mine"}})
	require.Equal(t, http.StatusForbidden, p.Status, p.Body)
	require.Contains(t, p.Body, "Refused (separation of duties): pipeline made decision")
}

// The advertiser's view names staff by role only; the reviewer's names them.
func TestAdvertiserSeesStaffByRoleOnly(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.fileAppeal("Please look again.")
	rev := e.as("reviewer")
	p := rev.post("/ui/queue/claim", nil)
	rev.get(p.Location)
	id := strings.TrimPrefix(p.Location, "/ui/appeals/")
	p = rev.post("/ui/appeals/"+id+"/escalate", url.Values{"reason": {"internal: needs legal"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	p = e.as("advertiser").get("/ui/decisions/" + e.decision.ID)
	require.Equal(t, 200, p.Status)
	require.NotContains(t, p.Body, "rita")
	require.NotContains(t, p.Body, "pipeline")
	require.NotContains(t, p.Body, "internal: needs legal")
	require.Contains(t, p.Body, "Escalated by</dt><dd>reviewer")
	p = rev.get("/ui/appeals/" + id)
	require.Contains(t, p.Body, "reviewer:rita")
	require.Contains(t, p.Body, "internal: needs legal")
}

// Guessing tokens through the sign-in form meets the API's limit on
// failed authentications per address, and then even a good token waits.
func TestFailedSignInsAreThrottled(t *testing.T) {
	t.Parallel()
	e := setup(t)
	b := e.browser()
	var last page
	for range 40 {
		last = b.signIn("dkt_guess")
		if last.Status == http.StatusTooManyRequests {
			break
		}
		require.Equal(t, http.StatusUnauthorized, last.Status, last.Body)
	}
	require.Equal(t, http.StatusTooManyRequests, last.Status)
	require.NotEmpty(t, last.Header.Get("Retry-After"))
	require.Equal(t, http.StatusTooManyRequests, b.signIn("advertiser").Status)
}

// A bad appeal form is shown again with its problems by field and what
// was typed; a good one files; the advertiser may withdraw it.
func TestAppealFormValidatesAndWithdraws(t *testing.T) {
	t.Parallel()
	e := setup(t)
	adv := e.as("advertiser")
	path := "/ui/decisions/" + e.decision.ID
	adv.get(path)
	p := adv.post(path+"/appeals", url.Values{"statement": {"   "},
		"evidence_description": {"kept", "", ""}, "evidence_url": {"ftp://nope", "", ""}})
	require.Equal(t, http.StatusBadRequest, p.Status, p.Body)
	require.Contains(t, p.Body, `id="statement-err"`)
	require.Contains(t, p.Body, "Link 1 must be an absolute http or https URL")
	require.Contains(t, p.Body, `value="kept"`, "what was typed is kept")
	p = adv.post(path+"/appeals", url.Values{"statement": {"Look again."},
		"evidence_description": {"only one row", ""}, "evidence_url": {""}})
	require.Equal(t, http.StatusBadRequest, p.Status, "evidence rows must pair up")

	p = adv.post(path+"/appeals", url.Values{"statement": {"Look again."},
		"evidence_description": {"", "", ""}, "evidence_url": {"", "", ""}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	p = adv.get(p.Location)
	require.Contains(t, p.Body, "Your appeal was filed")
	require.NotContains(t, p.Body, `id="appeal-form"`, "one open appeal at a time")
	m := regexp.MustCompile(`action="(/ui/appeals/[^/]+/withdraw)"`).FindStringSubmatch(p.Body)
	require.NotNil(t, m)
	p = adv.post(m[1], nil)
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	p = adv.get(p.Location)
	require.Contains(t, p.Body, "Your appeal was withdrawn")
	require.Contains(t, p.Body, "Withdrawn")
	p = adv.post(m[1], nil)
	require.Equal(t, http.StatusConflict, p.Status, "a withdrawn appeal cannot be withdrawn again")
}

// The list filters by status, measure and policy, pages on, and refuses
// values the API refuses.
func TestDecisionListFiltersAndPages(t *testing.T) {
	t.Parallel()
	e := setup(t)
	adv := e.as("advertiser")
	p := adv.get("/ui/decisions?status=in_effect&action=ad_removal&policy=crypto")
	require.Equal(t, 200, p.Status)
	require.Contains(t, p.Body, e.decision.ID)
	for _, q := range []string{"status=reversed", "action=advertiser_ban", "policy=other"} {
		p = adv.get("/ui/decisions?" + q)
		require.Equal(t, 200, p.Status, q)
		require.NotContains(t, p.Body, e.decision.ID, q)
	}
	p = adv.get("/ui/decisions?status=bogus")
	require.Equal(t, http.StatusBadRequest, p.Status)
	require.Contains(t, p.Body, "status must be one of")
	p = adv.get("/ui/decisions?cursor=%00")
	require.Equal(t, http.StatusBadRequest, p.Status)
}

// The queue counts waiting, mine, escalated and overdue, marks overdue
// appeals in words, and hands escalated ones to senior reviewers only.
func TestQueueCountsAndEscalation(t *testing.T) {
	t.Parallel()
	e := setupWith(t, appeals.Options{ReviewDue: time.Microsecond}) // every appeal is overdue at once
	a := e.fileAppeal("Please look again.")
	rev := e.as("reviewer")
	p := rev.get("/ui/queue")
	require.Contains(t, p.Body, `id="count-waiting">1<`)
	require.Contains(t, p.Body, `id="count-mine">0<`)
	require.Contains(t, p.Body, `id="count-overdue">1<`)
	require.Contains(t, p.Body, `<tr class="overdue">`)
	require.Contains(t, p.Body, `badge overdue">Overdue<`)

	p = rev.post("/ui/queue/claim", nil)
	require.Equal(t, "/ui/appeals/"+a.ID, p.Location)
	p = rev.get("/ui/queue")
	require.Contains(t, p.Body, `id="count-mine">1<`)
	require.Contains(t, p.Body, `id="count-waiting">0<`)
	p = rev.get("/ui/appeals/" + a.ID)
	require.Contains(t, p.Body, `class="countdown" data-until="`)
	require.Contains(t, p.Body, `id="escalate-form"`)
	p = rev.post("/ui/appeals/"+a.ID+"/resolve", url.Values{"outcome": {"upheld"}, "rationale": {""}})
	require.Equal(t, http.StatusBadRequest, p.Status)
	require.Contains(t, p.Body, "Rationale is required")
	p = rev.post("/ui/appeals/"+a.ID+"/escalate", url.Values{"reason": {"needs a senior"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	p = rev.get(p.Location)
	require.Contains(t, p.Body, "escalated to a senior reviewer")
	require.Contains(t, p.Body, `id="not-held"`)

	require.Equal(t, "/ui/queue?done=empty", rev.post("/ui/queue/claim", nil).Location, "a reviewer is not handed escalated appeals")
	senior := e.as("senior")
	p = senior.get("/ui/queue")
	require.Contains(t, p.Body, `id="count-escalated">1<`)
	require.Contains(t, p.Body, a.ID)
	p = senior.post("/ui/queue/claim", nil)
	require.Equal(t, "/ui/appeals/"+a.ID, p.Location)
	p = senior.get(p.Location)
	require.Contains(t, p.Body, `id="resolve-form"`)
	require.NotContains(t, p.Body, `id="escalate-form"`, "an escalated appeal is not escalated again")
	p = senior.post("/ui/appeals/"+a.ID+"/resolve", url.Values{"outcome": {"upheld"}, "rationale": {"The ad broke the policy."}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Contains(t, senior.get(p.Location).Body, "the decision is upheld")
}

// Auditors and admins read the log: the signed checkpoint, the entries,
// each entry's exact bytes with its inclusion proof; no one else does.
func TestAuditorReadsTheLog(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.fileAppeal(`<script>alert("in the log")</script>`)
	e.integrate()
	aud := e.as("auditor")
	p := aud.get("/ui/")
	require.Equal(t, "/ui/audit", p.Location, "an auditor starts at the log")
	p = aud.get("/ui/audit")
	require.Equal(t, 200, p.Status, p.Body)
	require.Contains(t, p.Body, `id="cp-size"`)
	require.Contains(t, p.Body, "decision.recorded")
	require.Contains(t, p.Body, "appeal.filed")
	require.Contains(t, p.Body, "enforcer:pipeline", "auditors read names")
	m := regexp.MustCompile(`href="(/ui/audit/entries/\d+)">\d+</a></th><td><code>appeal.filed`).FindStringSubmatch(p.Body)
	require.NotNil(t, m, p.Body)
	p = aud.get(m[1])
	require.Equal(t, 200, p.Status, p.Body)
	require.Contains(t, p.Body, "Included in the signed checkpoint of size")
	require.NotContains(t, p.Body, `<script>alert`)
	require.Contains(t, p.Body, `\u003cscript\u003e`, "the entry's JSON as stored, escaped by encoding/json and the template")

	require.Equal(t, 200, e.as("admin").get("/ui/audit").Status)
	for _, who := range []string{"advertiser", "reviewer", "enforcer"} {
		require.Equal(t, http.StatusForbidden, e.as(who).get("/ui/audit").Status, who)
	}
	require.Equal(t, http.StatusNotFound, aud.get("/ui/audit/entries/999").Status)
	require.Equal(t, http.StatusNotFound, aud.get("/ui/audit/entries/x").Status)
	require.Equal(t, http.StatusBadRequest, aud.get("/ui/audit?start=-1").Status)
}
