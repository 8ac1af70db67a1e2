package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The real `docket serve` serves the consoles under /ui/: a token from
// `docket token create` signs in, and the pages carry the security headers.
func TestServeMountsTheConsoles(t *testing.T) {
	t.Parallel()
	s := startServer(t, map[string]string{"DOCKET_SESSION_IDLE": "10m", "DOCKET_SESSION_MAX": "1h",
		"DOCKET_TRUSTED_PROXIES": "127.0.0.1, ::1"})
	tok := s.token("--role", "advertiser", "--name", "acme-owner", "--advertiser", "acme")
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar}

	// /ui leads to the sign-in page.
	resp, err := c.Get(s.url + "/ui")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "/ui/signin", resp.Request.URL.Path)

	resp, err = c.Get(s.url + "/ui/signin")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	nonce := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(string(body))
	require.NotNil(t, nonce)

	resp, err = c.PostForm(s.url+"/ui/signin", url.Values{"csrf": {nonce[1]}, "token": {tok}})
	require.NoError(t, err)
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, "signed in and sent to the decisions: %s", body)
	require.Equal(t, "/ui/decisions", resp.Request.URL.Path)
	require.True(t, strings.Contains(string(body), "Signed in as <strong>acme-owner</strong>"))

	// Behind a trusted proxy that terminated TLS, the session cookie is
	// Secure, and it lives DOCKET_SESSION_MAX.
	resp, err = c.Get(s.url + "/ui/signin?next=/ui/decisions")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "/ui/decisions", resp.Request.URL.Path, "already signed in")
	fresh, err := cookiejar.New(nil)
	require.NoError(t, err)
	c = &http.Client{Jar: fresh, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = c.Get(s.url + "/ui/signin")
	require.NoError(t, err)
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	nonce = regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(string(body))
	require.NotNil(t, nonce)
	req, err := http.NewRequest("POST", s.url+"/ui/signin", strings.NewReader(url.Values{"csrf": {nonce[1]}, "token": {tok}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err = c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "docket_session" {
			session = ck
		}
	}
	require.NotNil(t, session)
	require.True(t, session.Secure, "X-Forwarded-Proto from a trusted proxy")
	require.InDelta(t, 3600, session.MaxAge, 10, "DOCKET_SESSION_MAX")
}
