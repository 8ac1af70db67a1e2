package console_test

import (
	"context"
	"encoding/base64"
	"github.com/docket-dev/docket"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/appeals"
)

// An auditor pins a checkpoint in the browser, sees an entry verified
// there (inclusion, then consistency with the pinned checkpoint once the
// log has grown), pastes a checkpoint saved earlier from
// /v1/audit/checkpoint and sees the entry verified against it, and a
// tampered one refused; then the charts drawn. An admin compares two
// versions of a policy, previews and runs a bulk reversal, and opens the
// forms that write policies, decisions and notices.
func TestAuditorAndAdminInBrowser(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.seedFigures()
	e.fileAppeal("Please look again.")
	e.integrate()
	// The checkpoint an auditor saved on an earlier day, as the API serves it.
	resp, err := e.srv.Client().Get(e.srv.URL + "/v1/audit/checkpoint")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	saved := string(body)
	savedSize := strings.Split(saved, "\n")[1]
	browser := startBrowser(t)
	verified := func(p *person) string {
		p.t.Helper()
		_, err := chromedp.Run(p.ctx, chromedp.Poll[bool](
			`document.querySelector("#browser-verdict").className !== ""`, chromedp.WithPollingTimeout(10*time.Second)))
		require.NoError(t, err, "the browser's check never ended")
		return p.text("#browser-verdict")
	}

	aud := e.person(browser, "auditor")
	aud.do(chromedp.Navigate(aud.url+"/ui/signin"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), e.tokens["auditor"]),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS("#checkpoint")))
	require.Contains(t, aud.text("#cp-size"), savedSize+" entries")
	aud.accessible()
	aud.snap("log")
	aud.do(chromedp.Navigate(aud.url+"/ui/audit/entries/1"), chromedp.WaitVisible(chromedp.CSS("#pin-latest")))
	require.Contains(t, aud.text("#browser-verdict"), "No checkpoint is pinned")
	aud.noInlineScript()
	aud.accessible()
	aud.do(chromedp.Click(chromedp.CSS("#pin-latest"), chromedp.NodeVisible))
	got := verified(aud)
	require.Contains(t, got, "Verified in this browser: entry 1 is included")
	require.Contains(t, got, "the checkpoint's signature is valid", "Chromium checks Ed25519 with WebCrypto")
	aud.snap("entry-verified")

	// The log grows; the pinned checkpoint is checked against the new one.
	_, err = e.store.PutPolicy(context.Background(), admin, "gambling", appeals.PolicyInput{Title: "Gambling", Text: "No casinos."})
	require.NoError(t, err)
	e.integrate()
	aud.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#pin-latest")))
	got = verified(aud)
	require.Contains(t, got, "Verified in this browser")
	m := regexp.MustCompile(`checkpoint of size (\d+), which extends the checkpoint of size (\d+) you hold`).FindStringSubmatch(got)
	require.NotNil(t, m, got)
	require.NotEqual(t, m[1], m[2], "a consistency proof from the pinned size to a larger one")

	// A checkpoint held but forged (another root under the real signature) is refused.
	aud.eval(`(() => { const k = "docket-checkpoint:" + location.host, n = localStorage.getItem(k).split("\n");
		n[2] = btoa("x".repeat(32)); localStorage.setItem(k, n.join("\n")); return true; })()`)
	aud.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#pin-latest")))
	require.Contains(t, verified(aud), "NOT verified: the checkpoint you hold is not signed by the log's key")

	// A checkpoint the auditor pastes: the one saved before the log grew
	// verifies, through a consistency proof from its size; the same with
	// its size or root altered is refused, as is text that is no note.
	paste := func(note string) string {
		aud.t.Helper()
		aud.eval(`(() => { document.querySelector("#browser-verdict").className = ""; return true; })()`)
		aud.do(chromedp.SetValue(chromedp.CSS("#pasted-checkpoint"), note),
			chromedp.Click(chromedp.CSS("#use-pasted"), chromedp.NodeVisible))
		return verified(aud)
	}
	got = paste(saved)
	require.Contains(t, got, "Verified in this browser: entry 1 is included")
	require.Contains(t, got, "which extends the checkpoint of size "+savedSize+" you hold", "checked against the pasted checkpoint")
	require.NotContains(t, got, "of size "+savedSize+", which", "the server's checkpoint is newer than the pasted one")
	aud.snap("entry-verified-pasted")
	n, err := strconv.Atoi(savedSize)
	require.NoError(t, err)
	lines := strings.Split(saved, "\n")
	lines[1] = strconv.Itoa(n - 1) // a smaller tree under the same root and signature
	require.Contains(t, paste(strings.Join(lines, "\n")), "NOT verified: the checkpoint you hold is not signed by the log's key")
	lines = strings.Split(saved, "\n")
	lines[2] = base64.StdEncoding.EncodeToString(make([]byte, 32)) // another root
	require.Contains(t, paste(strings.Join(lines, "\n")), "NOT verified: the checkpoint you hold is not signed by the log's key")
	require.Contains(t, paste("docket.local/audit\n3\n"), "NOT verified: the checkpoint is not a signed note")

	aud.do(chromedp.Navigate(aud.url+"/ui/audit/report"), chromedp.WaitVisible(chromedp.CSS("#chart-weeks svg rect")))
	require.True(t, aud.eval(`document.querySelectorAll("svg.bars rect").length >= 3`), "the charts are drawn")
	require.True(t, aud.eval(`document.querySelector("#chart-weeks svg").getBoundingClientRect().height > 20`))
	aud.noInlineScript()
	aud.accessible()
	aud.snap("report")

	adm := e.person(browser, "admin")
	adm.do(chromedp.Navigate(adm.url+"/ui/signin"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), e.tokens["admin"]),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS("#decisions")),
		chromedp.Navigate(adm.url+"/ui/policies/crypto"), chromedp.WaitVisible(chromedp.CSS("#reversal-form")))
	adm.accessible()
	adm.snap("policy")
	adm.do(chromedp.Click(chromedp.CSS("#version-1"), chromedp.NodeVisible),
		chromedp.SendKeys(chromedp.CSS("#reversal-rationale"), "Version 1 forbade licensed issuers' ads."),
		chromedp.Click(chromedp.CSS("#preview-reversal"), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS("#preview-total")))
	require.Contains(t, adm.text("#preview-total"), "This will reverse 1 decisions")
	adm.accessible()
	adm.snap("reversal-preview")
	adm.do(chromedp.Click(chromedp.CSS("#run-reversal"), chromedp.NodeVisible), chromedp.WaitVisible(chromedp.CSS("#report-reversed")))
	require.Equal(t, "1", adm.text("#report-reversed"))
	adm.snap("reversal-report")

	// The other forms an admin fills in pass the same checks in the browser.
	for _, pg := range []struct{ path, sel, snap string }{
		{"/ui/policies", "#new-policy-form", ""},
		{"/ui/decisions/new", "#decision-form", "decision-new"},
		{"/ui/decisions/" + e.decision.ID, "#notice-form", ""},
		{"/ui/appeals", "#appeals-list", "appeals"},
	} {
		adm.do(chromedp.Navigate(adm.url+pg.path), chromedp.WaitVisible(chromedp.CSS(pg.sel)))
		adm.noInlineScript()
		adm.accessible()
		if pg.snap != "" {
			adm.snap(pg.snap)
		}
	}
}

// seedFigures gives the charts something to draw: two more policies'
// decisions about two advertisers, their notices, and two appeals
// resolved, one upheld and one reversed; the queue is empty after.
func (e *env) seedFigures() {
	e.t.Helper()
	ctx := context.Background()
	rita := docket.Actor{Role: docket.RoleReviewer, Name: "rita"}
	globex := docket.Actor{Role: docket.RoleAdvertiser, Name: "globex-owner", AdvertiserID: "globex"}
	_, err := e.store.PutPolicy(ctx, admin, "health", appeals.PolicyInput{Title: "Health claims", Text: "Ads may not claim to cure."})
	require.NoError(e.t, err)
	no := false
	for i, c := range []struct {
		by       docket.Actor
		outcome  appeals.AppealState
		policy   string
		appealed bool
	}{{acme, "upheld", "health", true}, {globex, "reversed", "crypto", true}, {globex, "", "health", false}} {
		d, err := e.store.RecordDecision(ctx, enforcer, appeals.DecisionInput{AdvertiserID: c.by.AdvertiserID,
			AdID: "ad-" + strconv.Itoa(10+i), Action: appeals.ActionAdRestriction, PolicyCode: c.policy, Ground: "terms",
			Explanation: "The ad breaks the policy.", Facts: "Seen on 2026-11-21.", Source: "notice",
			AutomatedDetection: &no, AutomatedDecision: "none"})
		require.NoError(e.t, err)
		_, err = e.store.RecordNotice(ctx, enforcer, d.ID, appeals.NoticeInput{Channel: "email"})
		require.NoError(e.t, err)
		if !c.appealed {
			continue
		}
		_, err = e.store.FileAppeal(ctx, c.by, d.ID, appeals.AppealInput{Statement: "The ad is within the policy."})
		require.NoError(e.t, err)
		a, err := e.store.Claim(ctx, rita)
		require.NoError(e.t, err)
		require.NotNil(e.t, a)
		_, err = e.store.Resolve(ctx, rita, a.ID, appeals.ResolveInput{Outcome: c.outcome, Rationale: "Read against the policy."})
		require.NoError(e.t, err)
	}
}
