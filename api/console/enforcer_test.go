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

// Enforcers (staff, by hand) and admins record decisions and notices in
// the console as with POST /v1/decisions and POST
// /v1/decisions/{id}/notices: every field checked by the store and shown
// by field, the advertiser reading the decision at once; no other role may.
func TestEnforcerRecordsDecisionsAndNotices(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	enf := e.as("enforcer")
	p := enf.get("/ui/decisions")
	require.Equal(t, 200, p.Status, p.Body)
	require.Contains(t, p.Body, `href="/ui/decisions/new"`)
	p = enf.get("/ui/decisions/new")
	require.Equal(t, 200, p.Status, p.Body)
	requireSecurityHeaders(t, "/ui/decisions/new", p)
	require.NotRegexp(t, `<script>|\son[a-z]+=|style=`, p.Body)
	require.Contains(t, p.Body, `<option value="crypto">crypto: Crypto assets (version 2)</option>`)

	ends := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Minute)
	form := url.Values{"advertiser_id": {"acme"}, "action": {"ad_restriction"}, "ad_id": {"ad-9"}, "policy_code": {"crypto"},
		"ground": {"terms"}, "explanation": {"The ad promises returns.\r\nThe policy forbids it."}, "facts": {"Seen <i>today</i>."},
		"source": {"notice"}, "automated_detection": {"yes"}, "automated_decision": {"none"},
		"territorial_scope": {"de, fr"}, "ends_at": {ends.Format("2006-01-02T15:04")}, "content_type": {"image", "text"}}
	p = enf.post("/ui/decisions", form)
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	m := regexp.MustCompile(`^/ui/decisions/([^/?]+)\?done=decided$`).FindStringSubmatch(p.Location)
	require.NotNil(t, m, p.Location)
	d, err := e.store.Decision(ctx, admin, m[1])
	require.NoError(t, err)
	require.Equal(t, "acme", d.AdvertiserID)
	require.Equal(t, appeals.ActionAdRestriction, d.Action)
	require.Equal(t, 2, d.PolicyVersion, "the policy's current version")
	require.Equal(t, "The ad promises returns.\nThe policy forbids it.", d.Explanation)
	require.Equal(t, []string{"DE", "FR"}, []string(d.TerritorialScope))
	require.ElementsMatch(t, []string{"image", "text"}, []string(d.ContentType))
	require.True(t, d.AutomatedDetection)
	require.NotNil(t, d.EndsAt)
	require.True(t, d.EndsAt.Equal(ends), "ends_at read as UTC: %v", d.EndsAt)
	require.Equal(t, "enforcer:pipeline", d.DecidedBy)
	p = enf.get(p.Location)
	require.Contains(t, p.Body, "The decision is recorded")
	require.Contains(t, p.Body, "Seen &lt;i&gt;today&lt;/i&gt;.")
	adv := e.as("advertiser")
	p = adv.get("/ui/decisions/" + d.ID)
	require.Equal(t, 200, p.Status, "the advertiser reads it at once")
	require.NotContains(t, p.Body, `id="notice-form"`, "advertisers record no notices")

	// The store's checks, shown by field, with what was typed kept.
	bad := url.Values{"advertiser_id": {"acme"}, "action": {"ad_removal"}, "policy_code": {"crypto"}, "ground": {"law"},
		"explanation": {""}, "facts": {"Kept as typed."}, "source": {"voluntary"}, "automated_detection": {"no"},
		"automated_decision": {"none"}, "territorial_scope": {"XX"}, "content_type": {"smell"}}
	p = enf.post("/ui/decisions", bad)
	require.Equal(t, http.StatusBadRequest, p.Status, p.Body)
	for _, want := range []string{`class="field-error">Ad id`, `class="field-error">Legal reference`,
		`class="field-error">Explanation is required`, `class="field-error">Territorial scope:`, `class="field-error">Content type:`} {
		require.Contains(t, p.Body, want)
	}
	require.Contains(t, p.Body, "Kept as typed.")
	require.Contains(t, p.Body, `<input type="radio" id="d-ground-law" name="ground" value="law" checked>`)
	p = enf.post("/ui/decisions", url.Values{"advertiser_id": {"acme"}})
	require.Equal(t, http.StatusBadRequest, p.Status)
	require.Contains(t, p.Body, `class="field-error">Automated detection`)

	// A notice, by an enforcer (the mailer's role) or an admin.
	p = enf.get("/ui/decisions/" + d.ID)
	require.Contains(t, p.Body, `id="notice-form"`)
	p = enf.post("/ui/decisions/"+d.ID+"/notices", url.Values{"channel": {"email"}, "reference": {"msg-1"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Equal(t, "/ui/decisions/"+d.ID+"?done=notified", p.Location)
	require.Contains(t, enf.get(p.Location).Body, "The notice is recorded.")
	d, err = e.store.Decision(ctx, admin, d.ID)
	require.NoError(t, err)
	require.NotNil(t, d.NotifiedAt)
	p = enf.post("/ui/decisions/"+d.ID+"/notices", url.Values{"channel": {"pigeon"}})
	require.Equal(t, http.StatusBadRequest, p.Status, p.Body)
	require.Equal(t, http.StatusNotFound, enf.post("/ui/decisions/nope/notices", url.Values{"channel": {"email"}}).Status)
	adm := e.as("admin")
	require.Equal(t, http.StatusSeeOther, adm.post("/ui/decisions/"+e.decision.ID+"/notices", url.Values{"channel": {"post"}}).Status)

	before, err := e.store.ListDecisions(ctx, admin, appeals.DecisionFilter{})
	require.NoError(t, err)
	for _, who := range []string{"reviewer", "senior", "advertiser", "auditor"} {
		b := e.as(who)
		require.Equal(t, http.StatusForbidden, b.get("/ui/decisions/new").Status, who)
		b.get("/ui/decisions") // its CSRF token
		require.Equal(t, http.StatusForbidden, b.post("/ui/decisions", form).Status, who)
		require.Equal(t, http.StatusForbidden, b.post("/ui/decisions/"+d.ID+"/notices", url.Values{"channel": {"email"}}).Status, who)
		require.False(t, strings.Contains(b.get("/ui/decisions").Body, `href="/ui/decisions/new"`), who)
	}
	after, err := e.store.ListDecisions(ctx, admin, appeals.DecisionFilter{})
	require.NoError(t, err)
	require.Len(t, after.Items, len(before.Items), "the other roles' forms recorded nothing")
}

// The appeals list reads as GET /v1/appeals: an advertiser's own only,
// staff every one (with the advertiser named), by state or overdue.
func TestAppealsList(t *testing.T) {
	t.Parallel()
	e := setupWith(t, appeals.Options{ReviewDue: time.Microsecond}) // every open appeal is overdue at once
	ctx := context.Background()
	mine := e.fileAppeal("Please look again.")
	no := false
	d, err := e.store.RecordDecision(ctx, enforcer, appeals.DecisionInput{AdvertiserID: "globex", AdID: "ad-2",
		Action: appeals.ActionAdRemoval, PolicyCode: "crypto", Ground: "terms", Explanation: "x", Facts: "y",
		Source: "voluntary", AutomatedDetection: &no, AutomatedDecision: "none"})
	require.NoError(t, err)
	globex := docket.Actor{Role: docket.RoleAdvertiser, Name: "globex-owner", AdvertiserID: "globex"}
	theirs, err := e.store.FileAppeal(ctx, globex, d.ID, appeals.AppealInput{Statement: "Not ours to see."})
	require.NoError(t, err)
	_, err = e.store.Withdraw(ctx, globex, theirs.ID)
	require.NoError(t, err)

	adv := e.as("advertiser")
	p := adv.get("/ui/appeals")
	require.Equal(t, 200, p.Status, p.Body)
	requireSecurityHeaders(t, "/ui/appeals", p)
	require.Contains(t, p.Body, `href="/ui/appeals/`+mine.ID+`"`)
	require.NotContains(t, p.Body, theirs.ID, "another advertiser's appeal")
	require.NotContains(t, p.Body, "<th scope=\"col\">Advertiser</th>")
	require.Contains(t, p.Body, `href="/ui/appeals">My appeals</a>`)

	for _, who := range []string{"reviewer", "auditor", "admin"} {
		p = e.as(who).get("/ui/appeals")
		require.Equal(t, 200, p.Status, who)
		require.Contains(t, p.Body, mine.ID, who)
		require.Contains(t, p.Body, theirs.ID, who)
		require.Contains(t, p.Body, "<code>globex</code>", who)
	}
	rev := e.as("reviewer")
	p = rev.get("/ui/appeals?state=withdrawn")
	require.Contains(t, p.Body, theirs.ID)
	require.NotContains(t, p.Body, mine.ID)
	require.Contains(t, p.Body, `<option value="withdrawn" selected>`)
	p = rev.get("/ui/appeals?overdue=true")
	require.Contains(t, p.Body, mine.ID)
	require.NotContains(t, p.Body, theirs.ID, "a withdrawn appeal is not overdue")
	require.Contains(t, p.Body, `<span class="badge overdue">Overdue</span>`)
	require.Contains(t, rev.get("/ui/appeals?overdue=true&state=pending&cursor=").Body, mine.ID)
	require.Contains(t, rev.get("/ui/appeals?state=upheld").Body, "No appeals match.")
	require.Equal(t, http.StatusBadRequest, rev.get("/ui/appeals?state=lost").Status)
	require.Equal(t, http.StatusBadRequest, rev.get("/ui/appeals?overdue=maybe").Status)
	require.Equal(t, http.StatusBadRequest, rev.get("/ui/appeals?advertiser_id=acme").Status, "the page takes only its parameters")
}

// The decision form is sent once: sent again with its key (a double
// click, the back button) it shows the decision it recorded; sent again
// with other values it records nothing.
func TestDecisionFormSentTwice(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	enf := e.as("enforcer")
	p := enf.get("/ui/decisions/new")
	m := regexp.MustCompile(`name="form_key" value="([^"]+)"`).FindStringSubmatch(p.Body)
	require.NotNil(t, m, "the form carries its key")
	form := url.Values{"form_key": {m[1]}, "advertiser_id": {"acme"}, "action": {"advertiser_ban"}, "policy_code": {"crypto"},
		"ground": {"terms"}, "explanation": {"Repeated token sales."}, "facts": {"Five ads in November."}, "source": {"voluntary"},
		"automated_detection": {"no"}, "automated_decision": {"none"}}
	first := enf.post("/ui/decisions", form)
	require.Equal(t, http.StatusSeeOther, first.Status, first.Body)
	again := enf.post("/ui/decisions", form)
	require.Equal(t, http.StatusSeeOther, again.Status, again.Body)
	require.Equal(t, first.Location, again.Location, "the same decision")
	form.Set("facts", "Six ads in November.")
	p = enf.post("/ui/decisions", form)
	require.Equal(t, http.StatusConflict, p.Status, p.Body)
	require.Contains(t, p.Body, "open a new form to record another")
	ds, err := e.store.ListDecisions(ctx, admin, appeals.DecisionFilter{AdvertiserID: "acme"})
	require.NoError(t, err)
	require.Len(t, ds.Items, 2, "setup's decision and this form's, once")

	// Another person's use of the key is a request of its own.
	adm := e.as("admin")
	form.Del("csrf") // the enforcer's; post adds the admin's
	p = adm.post("/ui/decisions", form)
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.NotEqual(t, first.Location, p.Location)
	require.Equal(t, http.StatusBadRequest, enf.post("/ui/decisions", url.Values{"form_key": {strings.Repeat("k", 65)}}).Status)
}
