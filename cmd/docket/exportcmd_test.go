package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/logtest"
	"github.com/docket-dev/docket/internal/pgtest"
	"github.com/docket-dev/docket/migrations"
)

// exportEnv is a database with a few decisions, integrated and signed
// with a key kept where `docket serve` would keep it.
type exportEnv struct {
	vars map[string]string
	vkey string
	dir  string
}

func newExportEnv(t *testing.T) *exportEnv {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.NewURL(t)
	db, err := sqlx.Open("postgres", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, migrations.Up(ctx, db.DB))
	dir := t.TempDir()
	skey, vkey, err := audit.GenerateKey("docket.local/audit")
	require.NoError(t, err)
	keyFile := filepath.Join(dir, "signer.key")
	require.NoError(t, audit.WriteKeyFiles(keyFile, skey, vkey))

	store := appeals.NewStore(db, appeals.Options{})
	admin := docket.Actor{Role: docket.RoleAdmin, Name: "ada"}
	_, err = store.PutPolicy(ctx, admin, "crypto", appeals.PolicyInput{Title: "Crypto", Text: "No crypto ads.", Category: "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"})
	require.NoError(t, err)
	yes := true
	for _, adv := range []string{"acme", "globex", "acme"} {
		_, err := store.RecordDecision(ctx, docket.Actor{Role: docket.RoleEnforcer, Name: "pipeline"}, appeals.DecisionInput{
			AdvertiserID: adv, AdID: "ad-1", Action: "ad_removal", PolicyCode: "crypto", Ground: "terms",
			Explanation: "e", Facts: "f", Source: "voluntary", AutomatedDetection: &yes, AutomatedDecision: "full"})
		require.NoError(t, err)
	}
	signer, _, err := audit.ParseSignerKey(skey)
	require.NoError(t, err)
	lg, err := audit.NewLog(db, signer, vkey, "docket.local/audit", audit.Options{CheckpointInterval: -1})
	require.NoError(t, err)
	require.Equal(t, 4, logtest.DrainSigned(t, lg))
	return &exportEnv{vkey: vkey, dir: dir, vars: map[string]string{
		"DATABASE_URL": dsn, "DOCKET_SIGNER_KEY_FILE": keyFile,
	}}
}

func (x *exportEnv) run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"docket"}, args...), func(k string) string { return x.vars[k] },
		strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

// verify runs `docket verify` with no database: the bundle mode is offline.
func (x *exportEnv) verify(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"docket", "verify"}, args...), func(string) string { return "" },
		strings.NewReader(""), &out, &errOut)
	return out.String(), err
}

func TestExportCommand(t *testing.T) {
	t.Parallel()
	x := newExportEnv(t)
	out, _, err := x.run(t, "export", "--quiet")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4) // a policy revision and three decisions
	var first map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	require.EqualValues(t, 0, first["index"])
	require.Equal(t, "policy.revised", first["type"])

	out, _, err = x.run(t, "export", "--advertiser", "acme", "--type", "decision.recorded")
	require.NoError(t, err)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 2)

	csvFile := filepath.Join(x.dir, "audit.csv")
	_, _, err = x.run(t, "export", "--format", "csv", "--from", "1", "--to", "3", "--output", csvFile)
	require.NoError(t, err)
	b, err := os.ReadFile(csvFile)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "index,leaf_hash,type,"))
	require.Len(t, strings.Split(strings.TrimSpace(string(b)), "\n"), 3)

	_, _, err = x.run(t, "export", "--from", "yesterday")
	require.ErrorContains(t, err, "--from")
}

func TestExportBundleAndVerify(t *testing.T) {
	t.Parallel()
	x := newExportEnv(t)
	for _, args := range [][]string{{}, {"--advertiser", "acme"}} {
		file := filepath.Join(x.dir, "bundle"+strings.Join(args, "")+".jsonl")
		_, stderr, err := x.run(t, append([]string{"export", "--bundle", file}, args...)...)
		require.NoError(t, err)
		require.Contains(t, stderr, "bundle of")

		// The key as a string, and as the .pub file beside the signer key.
		out, err := x.verify(t, "--bundle", file, "--key", x.vkey)
		require.NoError(t, err)
		require.Contains(t, out, "OK:")
		_, err = x.verify(t, "--bundle", file, "--key", x.vars["DOCKET_SIGNER_KEY_FILE"]+".pub")
		require.NoError(t, err)

		// One changed byte in the last entry's data is caught and named.
		changeLastEntry(t, file)
		_, err = x.verify(t, "--bundle", file, "--key", x.vkey)
		require.ErrorContains(t, err, "entry")
		require.ErrorContains(t, err, "leaf hash")
	}
	_, err := x.verify(t, "--bundle", filepath.Join(x.dir, "bundle.jsonl"))
	require.ErrorContains(t, err, "--key")
}

func TestReportCommand(t *testing.T) {
	t.Parallel()
	x := newExportEnv(t)
	out, _, err := x.run(t, "report", "--json")
	require.NoError(t, err)
	var rep appeals.AppealsReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.EqualValues(t, 3, rep.Overall.Decisions)
	require.EqualValues(t, 3, rep.Overall.ByAutomation["full"])

	out, _, err = x.run(t, "report")
	require.NoError(t, err)
	require.Contains(t, out, "decisions")
	require.Contains(t, out, "crypto")

	out, _, err = x.run(t, "report", "--csv", "--from", "2000-01-01")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out, "policy_code,decisions,"))
}

// changeLastEntry changes one byte of the last entry's data in a bundle
// file, for a verification to catch.
func changeLastEntry(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	at := bytes.LastIndex(b, []byte(`"data":"`)) + 12
	if b[at] == 'A' {
		b[at] = 'B'
	} else {
		b[at] = 'A'
	}
	require.NoError(t, os.WriteFile(file, b, 0o644))
}
