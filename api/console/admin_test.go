package console_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

// Only admins read the policy pages: the versions, a diff between two,
// and the bulk reversal, previewed with its count, then run.
func TestAdminPreviewsAndRunsBulkReversal(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.fileAppeal("Please look again.")
	adm := e.as("admin")
	p := adm.get("/ui/policies")
	require.Equal(t, 200, p.Status, p.Body)
	requireSecurityHeaders(t, "/ui/policies", p)
	require.Contains(t, p.Body, `href="/ui/policies/crypto"`)
	p = adm.get("/ui/policies/crypto")
	require.Equal(t, 200, p.Status, p.Body)
	requireSecurityHeaders(t, "/ui/policies/crypto", p)
	require.NotRegexp(t, `<script>|\son[a-z]+=|style=`, p.Body)
	require.Contains(t, p.Body, "Changes from version 1 to version 2")
	require.Contains(t, p.Body, "<ins>Ads must name the issuer and its licence.</ins>")
	require.Contains(t, p.Body, "<del>Ads must name the issuer.</del>")
	require.Contains(t, adm.get("/ui/policies/crypto?from=2&to=2").Body, "nothing to compare")
	require.Equal(t, http.StatusBadRequest, adm.get("/ui/policies/crypto?from=9").Status)
	require.Equal(t, http.StatusNotFound, adm.get("/ui/policies/nope").Status)

	for _, who := range []string{"auditor", "reviewer", "advertiser", "enforcer"} {
		b := e.as(who)
		require.Equal(t, http.StatusForbidden, b.get("/ui/policies").Status, who)
		require.Equal(t, http.StatusForbidden, b.get("/ui/policies/crypto").Status, who)
		b.get("/ui/decisions") // its CSRF token
		p = b.post("/ui/policies/crypto/reversal", url.Values{"step": {"run"}, "versions": {"1"}, "rationale": {"r"}})
		require.Equal(t, http.StatusForbidden, p.Status, who)
	}

	// Without the CSRF token, or cross-site, nothing runs.
	run := url.Values{"step": {"run"}, "versions": {"1"}, "rationale": {"Version 1 was too broad."}}
	bad := url.Values{"csrf": {"nope"}}
	for k, v := range run {
		bad[k] = v
	}
	require.Equal(t, http.StatusForbidden, adm.post("/ui/policies/crypto/reversal", bad).Status)
	require.Equal(t, http.StatusForbidden, adm.post("/ui/policies/crypto/reversal", run, "Sec-Fetch-Site", "cross-site").Status)
	d, err := e.store.Decision(context.Background(), admin, e.decision.ID)
	require.NoError(t, err)
	require.Equal(t, appeals.StatusInEffect, d.Status)

	// The form's problems are shown by field.
	p = adm.post("/ui/policies/crypto/reversal", url.Values{"step": {"preview"}, "rationale": {"x"}})
	require.Equal(t, http.StatusBadRequest, p.Status, p.Body)
	require.Contains(t, p.Body, `class="field-error">Versions is required`)
	p = adm.post("/ui/policies/crypto/reversal", url.Values{"step": {"preview"}, "versions": {"7"}, "rationale": {"x"}})
	require.Equal(t, http.StatusBadRequest, p.Status, p.Body)
	require.Contains(t, p.Body, "policy crypto has no version 7")

	// The preview counts, escapes the rationale and changes nothing.
	p = adm.post("/ui/policies/crypto/reversal", url.Values{"step": {"preview"}, "versions": {"1", "2"},
		"rationale": {`<b>Version 1</b> was too broad.`}})
	require.Equal(t, 200, p.Status, p.Body)
	requireSecurityHeaders(t, "preview", p)
	require.Contains(t, p.Body, "This will reverse <strong>1</strong> decisions")
	require.Contains(t, p.Body, "close 1 open appeals")
	require.NotContains(t, p.Body, "<b>Version 1</b>")
	require.Contains(t, p.Body, "&lt;b&gt;Version 1&lt;/b&gt;")
	d, err = e.store.Decision(context.Background(), admin, e.decision.ID)
	require.NoError(t, err)
	require.Equal(t, appeals.StatusInEffect, d.Status, "a preview reverses nothing")

	// The confirmation runs the store's reversal and shows its report.
	p = adm.post("/ui/policies/crypto/reversal", run)
	require.Equal(t, 200, p.Status, p.Body)
	require.Contains(t, p.Body, `id="report-reversed">1<`)
	d, err = e.store.Decision(context.Background(), admin, e.decision.ID)
	require.NoError(t, err)
	require.Equal(t, appeals.StatusReversed, d.Status)
	p = adm.post("/ui/policies/crypto/reversal", url.Values{"step": {"preview"}, "versions": {"1"}, "rationale": {"again"}})
	require.Contains(t, p.Body, "This will reverse <strong>0</strong> decisions")
}

// Auditors (and admins) read the figures as SVG charts and download the
// exports with their session; no one else does.
func TestAuditorChartsAndExports(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	a := e.fileAppeal("Please look again.")
	rita := docket.Actor{Role: docket.RoleReviewer, Name: "rita"}
	claimed, err := e.store.Claim(ctx, rita)
	require.NoError(t, err)
	require.Equal(t, a.ID, claimed.ID)
	_, err = e.store.Resolve(ctx, rita, a.ID, appeals.ResolveInput{Outcome: "reversed", Rationale: "The issuer is licensed."})
	require.NoError(t, err)
	e.integrate()

	aud := e.as("auditor")
	p := aud.get("/ui/audit/report")
	require.Equal(t, 200, p.Status, p.Body)
	requireSecurityHeaders(t, "/ui/audit/report", p)
	require.NotRegexp(t, `<script>|\son[a-z]+=|style=`, p.Body)
	for _, id := range []string{"chart-weeks", "chart-reversal", "chart-resolve", "chart-notice"} {
		require.Contains(t, p.Body, `id="`+id+`"`)
	}
	require.Contains(t, p.Body, "<svg")
	require.Contains(t, p.Body, "<rect")
	require.Contains(t, p.Body, "100.0%", "crypto's one decided appeal was reversed")
	require.Contains(t, p.Body, `>under 1 hour<`)
	require.Equal(t, http.StatusBadRequest, aud.get("/ui/audit/report?from=yesterday").Status)
	require.Equal(t, 200, e.as("admin").get("/ui/audit/report").Status)

	for file, want := range map[string]string{
		"audit.jsonl": `"type":"appeal.resolved"`, "audit.csv": "index,leaf_hash,type", "dsa.jsonl": `"decision_ground"`,
		"report.csv": "policy_code,decisions", "report.json": `"reversal_rate":1`,
	} {
		p = aud.get("/ui/exports/" + file)
		require.Equal(t, 200, p.Status, "%s: %s", file, p.Body)
		require.Contains(t, p.Header.Get("Content-Disposition"), "docket-"+file)
		require.Contains(t, p.Body, want, file)
	}
	require.Equal(t, http.StatusNotFound, aud.get("/ui/exports/secrets.txt").Status)
	for _, who := range []string{"advertiser", "reviewer", "enforcer"} {
		b := e.as(who)
		require.Equal(t, http.StatusForbidden, b.get("/ui/audit/report").Status, who)
		require.Equal(t, http.StatusForbidden, b.get("/ui/exports/audit.jsonl").Status, who)
	}

	// The bundle verifies without the server: the note's signature with
	// the key, and the root recomputed from the entries' bytes.
	p = aud.get("/ui/exports/bundle.json")
	require.Equal(t, 200, p.Status, p.Body)
	var b struct {
		VerifierKey string `json:"verifier_key"`
		Checkpoint  string `json:"checkpoint"`
		Size        int    `json:"size"`
		Entries     []struct {
			Index    int64  `json:"index"`
			LeafHash []byte `json:"leaf_hash"`
			Data     []byte `json:"data"`
		} `json:"entries"`
	}
	require.NoError(t, json.Unmarshal([]byte(p.Body), &b))
	require.Len(t, b.Entries, b.Size)
	v, err := note.NewVerifier(b.VerifierKey)
	require.NoError(t, err)
	n, err := note.Open([]byte(b.Checkpoint), note.VerifierList(v))
	require.NoError(t, err)
	leaves := make([][]byte, len(b.Entries))
	for i, en := range b.Entries {
		require.Equal(t, int64(i), en.Index)
		leaves[i] = rfc6962.DefaultHasher.HashLeaf(en.Data)
		require.Equal(t, en.LeafHash, leaves[i])
	}
	root := base64.StdEncoding.EncodeToString(mth(leaves))
	require.Equal(t, root, strings.Split(n.Text, "\n")[2], "the checkpoint's root from the bundle's entries")
}

// mth is RFC 6962's Merkle tree hash of leaf hashes.
func mth(leaves [][]byte) []byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return rfc6962.DefaultHasher.HashChildren(mth(leaves[:k]), mth(leaves[k:]))
}

// The entry page hands the browser what verify.js checks; the consistency
// proofs it fetches are for auditors and admins only, and verify.
func TestBrowserCheckInputs(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.integrate()
	first, err := e.log.LatestCheckpoint(context.Background())
	require.NoError(t, err)
	_, err = e.store.PutPolicy(context.Background(), admin, "gambling", appeals.PolicyInput{Title: "Gambling", Text: "No casinos."})
	require.NoError(t, err)
	e.integrate()
	latest, err := e.log.LatestCheckpoint(context.Background())
	require.NoError(t, err)
	require.Greater(t, latest.Size, first.Size)

	aud := e.as("auditor")
	p := aud.get("/ui/audit/entries/1")
	require.Equal(t, 200, p.Status, p.Body)
	require.Contains(t, p.Header.Get("Content-Security-Policy"), "connect-src 'self'")
	require.Contains(t, p.Body, `<script src="/ui/static/verify.js" defer></script>`)
	require.Contains(t, p.Body, `id="browser-check" data-index="1" data-entry="`)
	require.Contains(t, p.Body, `data-key="`+strings.ReplaceAll(e.log.VerifierKey(), "+", "&#43;")+`"`)
	require.Equal(t, 200, aud.get("/ui/static/verify.js").Status)

	path := "/ui/audit/consistency?from=" + strconv.FormatUint(first.Size, 10) + "&to=" + strconv.FormatUint(latest.Size, 10)
	p = aud.get(path)
	require.Equal(t, 200, p.Status, p.Body)
	var c struct{ Hashes []string }
	require.NoError(t, json.Unmarshal([]byte(p.Body), &c))
	hashes := make([][]byte, len(c.Hashes))
	for i, h := range c.Hashes {
		hashes[i], err = base64.StdEncoding.DecodeString(h)
		require.NoError(t, err)
	}
	require.NoError(t, proof.VerifyConsistency(rfc6962.DefaultHasher, first.Size, latest.Size, hashes, first.Root, latest.Root))
	require.Equal(t, http.StatusBadRequest, aud.get("/ui/audit/consistency?from=9&to=2").Status)
	require.Equal(t, http.StatusBadRequest, aud.get("/ui/audit/consistency?from=x&to=2").Status)
	for _, who := range []string{"advertiser", "reviewer"} {
		require.Equal(t, http.StatusForbidden, e.as(who).get(path).Status, who)
	}
}

// The store's new reads keep the API's roles: the preview is the bulk
// reversal's (admins), the chart figures the report's (auditors, admins).
func TestPreviewAndSeriesRoles(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	auditor := docket.Actor{Role: docket.RoleAuditor, Name: "audrey"}
	_, err := e.store.CountReversible(ctx, auditor, "crypto", []int{1})
	require.Equal(t, docket.Forbidden, docket.ErrorCode(err))
	_, err = e.store.CountReversible(ctx, admin, "crypto", []int{1, 1})
	require.Equal(t, docket.Invalid, docket.ErrorCode(err), "the reversal's own checks")
	_, err = e.store.CountReversible(ctx, admin, "nope", []int{1})
	require.Equal(t, docket.NotFound, docket.ErrorCode(err))
	prev, err := e.store.CountReversible(ctx, admin, "crypto", []int{1, 2})
	require.NoError(t, err)
	require.Equal(t, map[int]int64{1: 1, 2: 0}, prev.ByVersion)
	_, err = e.store.ReportSeries(ctx, acme, appeals.Period{})
	require.Equal(t, docket.Forbidden, docket.ErrorCode(err))
	s, err := e.store.ReportSeries(ctx, auditor, appeals.Period{})
	require.NoError(t, err)
	require.Len(t, s.Resolve, 6)
}

// Admins write policies in the console as with PUT /v1/policies/{code}:
// a new one from the list (its code must be new), a revision from its
// page (the same text again makes no version), each field's problems
// shown by field, lines kept as LF whatever the browser sends; no other
// role may.
func TestAdminWritesPolicies(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	adm := e.as("admin")
	p := adm.get("/ui/policies")
	require.Equal(t, 200, p.Status, p.Body)
	require.Contains(t, p.Body, `id="new-policy-form"`)
	require.Contains(t, p.Body, `<option value="STATEMENT_CATEGORY_SCAMS_AND_FRAUD">`)

	// A new policy; a browser sends the textarea's lines with CRLF.
	p = adm.post("/ui/policies", url.Values{"code": {"gambling"}, "title": {"Gambling <b>ads</b>"},
		"text": {"No casinos.\r\nNo betting."}, "category": {"STATEMENT_CATEGORY_SCAMS_AND_FRAUD"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Equal(t, "/ui/policies/gambling?done=policy-saved", p.Location)
	g, err := e.store.Policy(ctx, "gambling")
	require.NoError(t, err)
	require.Equal(t, 1, g.Version)
	require.Equal(t, "No casinos.\nNo betting.", g.Text)
	require.Equal(t, "admin:ada", g.CreatedBy)
	require.NotNil(t, g.Category)
	require.Equal(t, "STATEMENT_CATEGORY_SCAMS_AND_FRAUD", *g.Category)
	p = adm.get(p.Location)
	require.Equal(t, 200, p.Status, p.Body)
	require.Contains(t, p.Body, "The policy is saved as a new version.")
	require.Contains(t, p.Body, "Gambling &lt;b&gt;ads&lt;/b&gt;")
	require.NotContains(t, p.Body, "<b>ads</b>")
	require.Contains(t, p.Body, `<option value="STATEMENT_CATEGORY_SCAMS_AND_FRAUD" selected>`, "the revision form starts from the current version")

	// A new policy's code must be new, and valid; its fields are checked by field.
	p = adm.post("/ui/policies", url.Values{"code": {"crypto"}, "title": {"Crypto"}, "text": {"Anything goes."}})
	require.Equal(t, http.StatusConflict, p.Status, p.Body)
	require.Contains(t, p.Body, `class="field-error">Code is taken`)
	require.Contains(t, p.Body, "Anything goes.", "the form keeps what was typed")
	p = adm.post("/ui/policies", url.Values{"code": {"Not A Code"}, "title": {""}, "text": {"x"}, "category": {"STATEMENT_CATEGORY_NOPE"}})
	require.Equal(t, http.StatusBadRequest, p.Status, p.Body)
	require.Contains(t, p.Body, `class="field-error">Code must be 1 to 64 characters`)
	require.Contains(t, p.Body, `class="field-error">Title is required`)
	require.Contains(t, p.Body, `class="field-error">Category`)
	cur, err := e.store.Policy(ctx, "crypto")
	require.NoError(t, err)
	require.Equal(t, 2, cur.Version, "the refused forms changed nothing")

	// A revision: the same again is no new version; a change is one, and the page diffs it.
	same := url.Values{"title": {cur.Title}, "text": {strings.ReplaceAll(cur.Text, "\n", "\r\n")}}
	p = adm.post("/ui/policies/crypto", same)
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Equal(t, "/ui/policies/crypto?done=policy-unchanged", p.Location)
	require.Contains(t, adm.get(p.Location).Body, "no new version was made")
	p = adm.post("/ui/policies/crypto", url.Values{"title": {cur.Title}, "text": {cur.Text + "\r\nAds must show the risks."}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Equal(t, "/ui/policies/crypto?done=policy-saved", p.Location)
	p = adm.get(p.Location)
	require.Contains(t, p.Body, "Changes from version 2 to version 3")
	require.Contains(t, p.Body, "<ins>Ads must show the risks.</ins>")
	vs, err := e.store.PolicyVersions(ctx, "crypto")
	require.NoError(t, err)
	require.Len(t, vs, 3)
	d, err := e.store.Decision(ctx, admin, e.decision.ID)
	require.NoError(t, err)
	require.Equal(t, 1, d.PolicyVersion, "a decision keeps the version it was taken under")

	p = adm.post("/ui/policies/crypto", url.Values{"title": {""}, "text": {"Kept as typed."}})
	require.Equal(t, http.StatusBadRequest, p.Status, p.Body)
	require.Contains(t, p.Body, `class="field-error">Title is required`)
	require.Contains(t, p.Body, "Kept as typed.")
	require.Equal(t, http.StatusNotFound, adm.post("/ui/policies/nope", url.Values{"title": {"T"}, "text": {"x"}}).Status,
		"only a policy that exists is revised; a new one is written from the list")
	_, err = e.store.Policy(ctx, "nope")
	require.Equal(t, docket.NotFound, docket.ErrorCode(err))

	for _, who := range []string{"auditor", "reviewer", "advertiser", "enforcer"} {
		b := e.as(who)
		b.get("/ui/decisions") // its CSRF token
		require.Equal(t, http.StatusForbidden, b.post("/ui/policies", url.Values{"code": {"alcohol"}, "title": {"A"}, "text": {"x"}}).Status, who)
		require.Equal(t, http.StatusForbidden, b.post("/ui/policies/crypto", url.Values{"title": {"A"}, "text": {"x"}}).Status, who)
	}
	_, err = e.store.Policy(ctx, "alcohol")
	require.Equal(t, docket.NotFound, docket.ErrorCode(err))
	vs, err = e.store.PolicyVersions(ctx, "crypto")
	require.NoError(t, err)
	require.Len(t, vs, 3, "the other roles' forms changed nothing")
}
