package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/api/client"
)

// TestExportBundleThroughTheAPI is an auditor's path: a token, no key
// file and no database: export --bundle over --url, then verify offline.
func TestExportBundleThroughTheAPI(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	admin := s.token("--role", "admin", "--name", "alice")
	enforcer := s.token("--role", "enforcer", "--name", "ads-pipeline")
	auditor := s.token("--role", "auditor", "--name", "audrey")
	ctx := context.Background()
	c, err := client.New(s.url, admin, nil)
	require.NoError(t, err)
	_, _, err = c.PutPolicy(ctx, "crypto-ads", client.PolicyInput{Title: "No crypto ads", Text: "No ads for tokens."})
	require.NoError(t, err)
	yes := true
	_, err = c.WithToken(enforcer).CreateDecision(ctx, client.DecisionInput{AdvertiserID: "acme", AdID: "ad-1", Action: "ad_removal",
		PolicyCode: "crypto-ads", Ground: "terms", Explanation: "Token sale.", Facts: "Seen on 2026-11-20.", Source: "voluntary",
		AutomatedDetection: &yes, AutomatedDecision: "partial"})
	require.NoError(t, err)
	key, err := c.Key(ctx)
	require.NoError(t, err)
	// Wait for a checkpoint over the decision.
	require.Eventually(t, func() bool {
		rc, err := c.WithToken(auditor).ExportBundle(ctx, client.ExportQuery{Types: []string{"decision.recorded"}})
		if err != nil {
			return false
		}
		defer rc.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(rc)
		return strings.Contains(b.String(), `"count":1`)
	}, 30*time.Second, 50*time.Millisecond)

	dir := t.TempDir()
	file := filepath.Join(dir, "bundle.jsonl")
	// Standard error a file, not a terminal: no progress bar.
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	require.NoError(t, err)
	defer stderr.Close()
	noDB := func(k string) string { return map[string]string{"DOCKET_TOKEN": auditor}[k] }
	var out bytes.Buffer
	err = run(ctx, []string{"docket", "export", "--bundle", file, "--url", s.url}, noDB, strings.NewReader(""), &out, stderr)
	require.NoError(t, err)
	logged, err := os.ReadFile(stderr.Name())
	require.NoError(t, err)
	require.Contains(t, string(logged), "wrote a bundle of")
	require.NotContains(t, string(logged), "\r", "no progress bar off a terminal")
	require.NotContains(t, string(logged), auditor, "the token is never printed")

	verify := func() (string, error) {
		var vout, verr bytes.Buffer
		err := run(ctx, []string{"docket", "verify", "--bundle", file, "--key", key}, func(string) string { return "" },
			strings.NewReader(""), &vout, &verr)
		return vout.String() + verr.String(), err
	}
	got, err := verify()
	require.NoError(t, err)
	require.Contains(t, got, "OK:")
	require.NotContains(t, got, "\r")

	changeLastEntry(t, file)
	_, err = verify()
	require.ErrorContains(t, err, "leaf hash")

	// The filters go along; a token is required; an advertiser's is refused.
	err = run(ctx, []string{"docket", "export", "--url", s.url, "--type", "decision.recorded", "--quiet"}, noDB, strings.NewReader(""), &out, stderr)
	require.NoError(t, err)
	require.Contains(t, out.String(), `"type":"decision.recorded"`)
	err = run(ctx, []string{"docket", "export", "--bundle", file, "--url", s.url}, func(string) string { return "" }, strings.NewReader(""), &out, stderr)
	require.ErrorContains(t, err, "DOCKET_TOKEN")
	adv := s.token("--role", "advertiser", "--name", "acme-owner", "--advertiser", "acme")
	err = run(ctx, []string{"docket", "export", "--bundle", file, "--url", s.url, "--token", adv}, func(string) string { return "" }, strings.NewReader(""), &out, stderr)
	require.Equal(t, 403, client.StatusOf(err))
	require.NotContains(t, err.Error(), adv)
}

func TestProgressOnlyOnATerminal(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.False(t, isTerminal(&buf))
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	require.False(t, isTerminal(f))
	p := newProgress(&buf, false, "entries", 10)
	p.update(5)
	p.done(10)
	require.Empty(t, buf.String())
	p = newProgress(&buf, true, "entries", 10)
	p.update(5)
	p.done(10)
	require.Contains(t, buf.String(), "10/10")
}
