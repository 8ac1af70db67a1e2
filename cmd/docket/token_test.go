package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/pgtest"
)

// `docket token create` refuses a NAME bound to another advertiser, or to
// staff, with an error (main exits 1 on it) naming the existing binding.
func TestTokenCreateRefusesANameBoundElsewhere(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": pgtest.NewURL(t)}
	_, _, err := runCLI(vars, "migrate", "up")
	require.NoError(t, err)
	out, _, err := runCLI(vars, "token", "create", "--role", "advertiser", "--name", "acme", "--advertiser", "advertiser-a")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(strings.TrimSpace(out), "dkt_"), out)

	out, _, err = runCLI(vars, "token", "create", "--role", "advertiser", "--name", "acme", "--advertiser", "advertiser-b")
	require.Error(t, err)
	require.Contains(t, err.Error(), `the name "acme" is bound to advertiser "advertiser-a"`)
	require.Empty(t, out, "no token is printed")

	_, _, err = runCLI(vars, "token", "create", "--role", "senior_reviewer", "--name", "acme")
	require.ErrorContains(t, err, `the name "acme" is bound to advertiser "advertiser-a"`)

	_, _, err = runCLI(vars, "token", "create", "--role", "enforcer", "--name", "pipeline")
	require.NoError(t, err)
	_, _, err = runCLI(vars, "token", "create", "--role", "advertiser", "--name", "pipeline", "--advertiser", "advertiser-a")
	require.ErrorContains(t, err, `the name "pipeline" is bound to staff`)

	// Concurrent commands for one new NAME and different advertisers: one wins.
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = runCLI(vars, "token", "create", "--role", "advertiser", "--name", "globex", "--advertiser", fmt.Sprintf("tenant-%d", i))
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else {
			require.ErrorContains(t, err, `the name "globex" is bound to advertiser "tenant-`)
		}
	}
	require.Equal(t, 1, won, "%v", errs)

	db, err := sqlx.Open("postgres", vars["DATABASE_URL"])
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	var tokens int
	require.NoError(t, db.Get(&tokens, `SELECT count(*) FROM tokens`))
	require.Equal(t, 3, tokens, "acme, pipeline and one globex")
}

// `docket token revoke` revokes the holder named by its argument, else by
// --name, and with --role only that role's tokens; with neither name it
// refuses.
func TestTokenRevokeNamesTheHolder(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": pgtest.NewURL(t)}
	_, _, err := runCLI(vars, "migrate", "up")
	require.NoError(t, err)
	for _, args := range [][]string{{"--role", "reviewer", "--name", "ann"}, {"--role", "auditor", "--name", "ann"}, {"--role", "reviewer", "--name", "bob"}} {
		_, _, err := runCLI(vars, append([]string{"token", "create"}, args...)...)
		require.NoError(t, err)
	}

	_, _, err = runCLI(vars, "token", "revoke")
	require.EqualError(t, err, "token revoke: name the token holder")
	out, _, err := runCLI(vars, "token", "revoke", "--role", "auditor", "ann")
	require.NoError(t, err)
	require.Equal(t, "revoked 1 token(s) of \"ann\"\n", out, "only the auditor token")
	out, _, err = runCLI(vars, "token", "revoke", "--name", "ann")
	require.NoError(t, err)
	require.Equal(t, "revoked 1 token(s) of \"ann\"\n", out, "--name when no argument")
	out, _, err = runCLI(vars, "token", "revoke", "--name", "ann", "bob")
	require.NoError(t, err)
	require.Equal(t, "revoked 1 token(s) of \"bob\"\n", out, "the argument wins over --name")
}
