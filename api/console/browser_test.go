package console_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
)

// screenshotsEnv names a folder where the browser test saves a PNG of each
// step (`make screenshots` sets it to docs/screenshots). Unset, they go to
// the test's own temporary folder, removed after; on failure a PNG of each
// tab is kept in a new temporary folder the test names.
const screenshotsEnv = "DOCKET_SCREENSHOTS"

// chromium finds Debian's Chromium; the browser tests fail, never skip,
// without it.
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the console's browser tests need Debian's Chromium, and it is not installed (%v): "+
			"run `apt-get update && apt-get install -y chromium` (make test and .ci/run do this when they may)", err)
	}
	return path
}

// startBrowser starts one headless Chromium for the test, with the flags
// this machine's closed network needs and a fresh profile.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900),
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), 90*time.Second)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc(); cancelTimeout() })
	require.NoError(t, chromedp.Do(browser, chromedp.Navigate("about:blank")), "start chromium")
	return browser
}

// person is one person's tab, in a browser context (cookies) of its own.
type person struct {
	t    *testing.T
	name string
	ctx  context.Context
	url  string
	step int
	// shots is the test's temporary folder for screenshots.
	shots string
}

func (e *env) person(browser context.Context, name string) *person {
	e.t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	p := &person{t: e.t, name: name, ctx: ctx, url: e.srv.URL, shots: e.t.TempDir()}
	e.t.Cleanup(cancel)
	// Registered after cancel, so it runs before it: the tab is still there.
	e.t.Cleanup(func() {
		if !e.t.Failed() {
			return
		}
		dir, err := os.MkdirTemp("", "docket-console-failure-")
		if err != nil {
			e.t.Logf("screenshot on failure: %v", err)
			return
		}
		if err := p.shoot(dir, "failure"); err != nil {
			e.t.Log(err)
		}
	})
	return p
}

// do runs actions in the person's tab, failing the test on error.
func (p *person) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	require.NoError(p.t, chromedp.Do(p.ctx, actions...), p.name)
}

func (p *person) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(p.t, err, "%s: text of %s", p.name, sel)
	return s
}

func (p *person) eval(js string) bool {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](js))
	require.NoError(p.t, err, "%s: %s", p.name, js)
	return v
}

// tabTo presses Tab until the focused element matches sel: the element is
// reachable by keyboard, in the page's focus order.
func (p *person) tabTo(sel string) {
	p.t.Helper()
	check := fmt.Sprintf("document.activeElement !== null && document.activeElement.matches(%q)", sel)
	for range 60 {
		if p.eval(check) {
			return
		}
		p.do(chromedp.KeyEvent(kb.Tab))
	}
	require.Failf(p.t, "not reachable by Tab", "%s: %s", p.name, sel)
}

// shoot saves a full-page PNG into dir.
func (p *person) shoot(dir, what string) error {
	p.t.Helper()
	p.step++
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("screenshot %s: %w", what, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		return fmt.Errorf("screenshot %s: not a PNG", what)
	}
	file := filepath.Join(dir, fmt.Sprintf("%s-%s.png", p.name, what))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		return fmt.Errorf("screenshot %s: %w", what, err)
	}
	p.t.Logf("screenshot: %s", file)
	return nil
}

// snap saves a step's screenshot: into the folder screenshotsEnv names
// (make screenshots: docs/screenshots), else into the test's temporary
// folder, removed after, so that make test checks every PNG the README
// shows can be made and never rewrites a tracked file.
func (p *person) snap(what string) {
	p.t.Helper()
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		dir = p.shots
	}
	require.NoError(p.t, os.MkdirAll(dir, 0o755))
	require.NoError(p.t, p.shoot(dir, what))
}

// a11yCheck lists, as strings, what on the page breaks the checks a
// browser can make alone: a form control without a label, and text whose
// contrast with its background is under WCAG AA (4.5:1; 3:1 for large text).
const a11yCheck = `(() => {
  const bad = [];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    if (el.labels.length === 0 && !el.getAttribute("aria-label")) bad.push("no label: " + (el.id || el.name));
  }
  const rgb = s => { const m = s.match(/[\d.]+/g).map(Number); return m.length > 3 ? m : m.concat([1]); };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const background = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor); if (c[3] > 0) return c; } return [255, 255, 255, 1]; };
  for (const el of document.querySelectorAll("body *")) {
    const text = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim() !== "");
    if (!text || el.offsetParent === null && getComputedStyle(el).position !== "fixed") continue;
    const st = getComputedStyle(el);
    if (parseFloat(st.left) < -100) continue; // the skip link, off screen until focused
    const l1 = lum(rgb(st.color)), l2 = lum(background(el));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(st.fontSize), large = size >= 24 || (size >= 18.66 && parseInt(st.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) bad.push("contrast " + ratio.toFixed(2) + ": " + el.tagName + " " + el.textContent.trim().slice(0, 40));
  }
  return bad;
})()`

// accessible fails the test on what a11yCheck finds.
func (p *person) accessible() {
	p.t.Helper()
	bad, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](a11yCheck))
	require.NoError(p.t, err, p.name)
	require.Empty(p.t, bad, "%s: accessibility problems", p.name)
}

// noInlineScript checks the page runs under the CSP with only its files.
func (p *person) noInlineScript() {
	p.t.Helper()
	require.True(p.t, p.eval(`document.querySelectorAll("script:not([src]), [style]").length === 0`), p.name)
}

// The whole path in a real browser: an advertiser signs in, reads a
// decision's reasons and files an appeal, by keyboard only; a reviewer on
// a phone-sized screen claims it, sees the policy's diff and the lease
// countdown, and reverses it; the advertiser then sees the decision reversed.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	e := setup(t)
	browser := startBrowser(t)
	d := e.decision.ID

	// The advertiser, on a laptop, by keyboard only.
	adv := e.person(browser, "advertiser")
	adv.do(chromedp.Navigate(adv.url+"/ui/signin"), chromedp.WaitVisible(chromedp.CSS("#token")))
	adv.snap("signin")
	adv.accessible()
	adv.tabTo("#token")
	adv.do(chromedp.KeyEvent(e.tokens["advertiser"]), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#decisions")))
	adv.accessible()
	adv.snap("decisions")
	adv.tabTo(fmt.Sprintf(`a[href="/ui/decisions/%s"]`, d))
	adv.do(chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#sor")))
	adv.noInlineScript()
	adv.accessible()
	require.Contains(t, adv.text("#measure"), "Ad removal of ad ad-1")
	require.Equal(t, "Ad ad-1 showed a token sale on 2026-11-20.", adv.text("#facts"))
	require.Contains(t, adv.text("#policy-text"), "Ads must name the issuer.", "the policy text as it was")
	require.NotContains(t, adv.text("#policy-text"), "licence", "not today's version")
	require.Contains(t, adv.text("#appeal-window"), "You may appeal this decision until")
	adv.snap("decision")
	adv.tabTo("#statement")
	adv.do(chromedp.KeyEvent("The ad names a licensed issuer; see the licence."))
	adv.tabTo("#ev-desc-0")
	adv.do(chromedp.KeyEvent("Issuer licence"), chromedp.KeyEvent(kb.Tab))
	adv.tabTo("#ev-url-0")
	adv.do(chromedp.KeyEvent("https://example.com/licence"))
	adv.tabTo("#file-appeal")
	adv.do(chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#flash")))
	require.Contains(t, adv.text("#flash"), "Your appeal was filed")
	require.Contains(t, adv.text("#appeals .appeal .state"), "Pending")
	adv.snap("appeal-filed")

	// The reviewer, on a phone.
	rev := e.person(browser, "reviewer")
	rev.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch),
		chromedp.Navigate(rev.url+"/ui/signin"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), e.tokens["reviewer"]),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS("#count-waiting")))
	require.Equal(t, "1", rev.text("#count-waiting"))
	require.Equal(t, "0", rev.text("#count-mine"))
	rev.accessible()
	rev.snap("queue-phone")
	rev.do(chromedp.Click(chromedp.CSS("#claim-next"), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS("#review")))
	rev.noInlineScript()
	rev.accessible()
	require.True(t, rev.eval(`document.documentElement.scrollWidth <= window.innerWidth`), "no sideways scrolling on a phone")
	require.Contains(t, rev.text("#the-appeal-h + .appeal .statement"), "licensed issuer")
	require.Contains(t, rev.text("#policy-diff"), "+ Ads must name the issuer and its licence.")
	require.Contains(t, rev.text("#policy-diff"), "− Ads must name the issuer.")
	countdown := rev.text(".countdown")
	require.Regexp(t, regexp.MustCompile(`^\d+:\d\d$`), countdown, "the lease's time left")
	// lease.js ticks it down (event-driven: the page is polled until it has).
	_, err := chromedp.Run(rev.ctx, chromedp.Poll[bool](
		fmt.Sprintf(`document.querySelector(".countdown").textContent !== %q`, countdown),
		chromedp.WithPollingTimeout(5*time.Second)))
	require.NoError(t, err, "the countdown never ticked")
	rev.snap("appeal-phone")
	rev.do(chromedp.Click(chromedp.CSS("#outcome-reversed"), chromedp.NodeVisible),
		chromedp.SendKeys(chromedp.CSS("#rationale"), "The issuer is licensed in DE and FR; the ad names it."),
		chromedp.Click(chromedp.CSS("#resolve"), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	require.Contains(t, rev.text("#flash"), "the decision is reversed")
	rev.snap("resolved-phone")

	// The advertiser sees the decision reversed, with the rationale.
	adv.do(chromedp.Navigate(adv.url+"/ui/decisions/"+d), chromedp.WaitVisible(chromedp.CSS("#status")))
	require.Equal(t, "Reversed", adv.text("#status"))
	adv.accessible()
	require.Equal(t, "Reversed", adv.text("#appeals .outcome"))
	require.Contains(t, adv.text("#appeals .rationale"), "The issuer is licensed")
	require.False(t, strings.Contains(adv.text("#appeals"), "rita"), "the reviewer is shown by role only")
	adv.snap("reversed")
}

// Every screenshot the README shows is in docs/screenshots, where make
// screenshots writes it.
func TestReadmeScreenshotsExist(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	refs := regexp.MustCompile(`\(docs/screenshots/([a-z0-9-]+\.png)\)`).FindAllStringSubmatch(string(readme), -1)
	require.GreaterOrEqual(t, len(refs), 12, "a screenshot of each console")
	for _, m := range refs {
		_, err := os.Stat(filepath.Join("../../docs/screenshots", m[1]))
		require.NoError(t, err, "README shows %s", m[1])
	}
}
