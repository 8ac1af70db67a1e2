package appeals_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

var cli = docket.Actor{Role: docket.RoleSystem, Name: "cli/test"}

func advertiserToken(name, advertiser string) appeals.TokenInput {
	return appeals.TokenInput{Name: name, Role: docket.RoleAdvertiser, AdvertiserID: advertiser}
}

// A NAME is bound for good by its first token: to one advertiser, or to
// staff. Every token that disagrees is refused with a message naming the
// binding; tokens that agree are fine (a second device, a rotation).
func TestTokenNameBoundToOneTenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := f.ctx

	_, _, err := f.store.CreateToken(ctx, cli, advertiserToken("acme", "advertiser-a"))
	require.NoError(t, err)
	_, _, err = f.store.CreateToken(ctx, cli, advertiserToken("acme", "advertiser-a"))
	require.NoError(t, err, "another token of the same NAME for the same advertiser")

	_, _, err = f.store.CreateToken(ctx, cli, advertiserToken("acme", "advertiser-b"))
	require.Equal(t, docket.Conflict, docket.ErrorCode(err), "%v", err)
	require.ErrorContains(t, err, `"acme" is bound to advertiser "advertiser-a"`)

	// An advertiser's NAME never becomes staff: one person would be the
	// tenant and a reviewer of its appeals.
	_, _, err = f.store.CreateToken(ctx, cli, appeals.TokenInput{Name: "acme", Role: docket.RoleReviewer})
	require.Equal(t, docket.Conflict, docket.ErrorCode(err), "%v", err)

	// Nor does a staff NAME become an advertiser; staff roles share a NAME.
	_, _, err = f.store.CreateToken(ctx, cli, appeals.TokenInput{Name: "rita", Role: docket.RoleReviewer})
	require.NoError(t, err)
	_, _, err = f.store.CreateToken(ctx, cli, appeals.TokenInput{Name: "rita", Role: docket.RoleSeniorReviewer})
	require.NoError(t, err)
	_, _, err = f.store.CreateToken(ctx, cli, advertiserToken("rita", "advertiser-a"))
	require.Equal(t, docket.Conflict, docket.ErrorCode(err), "%v", err)
	require.ErrorContains(t, err, `"rita" is bound to staff`)

	// For good: revoking every token of the NAME keeps the binding.
	_, err = f.store.RevokeTokens(ctx, cli, "acme", "")
	require.NoError(t, err)
	_, _, err = f.store.CreateToken(ctx, cli, advertiserToken("acme", "advertiser-b"))
	require.Equal(t, docket.Conflict, docket.ErrorCode(err), "%v", err)

	var tenants []string
	require.NoError(t, f.db.Select(&tenants, `SELECT DISTINCT coalesce(advertiser_id, '') FROM tokens WHERE name = 'acme'`))
	require.Equal(t, []string{"advertiser-a"}, tenants)
}

// Concurrent creations of one NAME for different advertisers: the
// database lets exactly one win.
func TestTokenNameConcurrentBindingsOneWins(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const n = 8
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _, errs[i] = f.store.CreateToken(f.ctx, cli, advertiserToken("acme", fmt.Sprintf("advertiser-%d", i)))
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		require.Equal(t, docket.Conflict, docket.ErrorCode(err), "%v", err)
	}
	require.Equal(t, 1, won, "errors: %v", errs)
	var tenants []string
	require.NoError(t, f.db.Select(&tenants, `SELECT DISTINCT advertiser_id FROM tokens WHERE name = 'acme'`))
	require.Len(t, tenants, 1)
}

// The binding holds in the database whatever writes the token, and a token
// that disagrees with it anyway (one made before names were bound, which
// the migration keeps as history) no longer authenticates.
func TestTokenDisagreeingWithItsBindingIsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, _, err := f.store.CreateToken(f.ctx, cli, advertiserToken("acme", "advertiser-a"))
	require.NoError(t, err)

	insert := `INSERT INTO tokens (id, name, role, advertiser_id, hash, created_at, created_by)
		VALUES ($1, 'acme', 'advertiser', 'advertiser-b', sha256($2::bytea), now(), 'legacy')`
	_, err = f.db.Exec(insert, "legacy-1", "dkt_legacy")
	require.ErrorContains(t, err, "tokens_name_binding", "the foreign key refuses a token against its NAME's binding")

	// Replica mode skips foreign-key triggers: the state a database from
	// before the binding was left in.
	tx, err := f.db.Beginx()
	require.NoError(t, err)
	_, err = tx.Exec(`SET LOCAL session_replication_role = replica`)
	require.NoError(t, err)
	_, err = tx.Exec(insert, "legacy-1", "dkt_legacy")
	require.NoError(t, err)
	require.NoError(t, tx.Commit())

	_, err = f.store.Authenticate(f.ctx, "dkt_legacy")
	require.Equal(t, docket.Unauthorized, docket.ErrorCode(err), "%v", err)
}

// An Idempotency-Key is scoped by actor and tenant: the same actor string
// in another tenant (which bound names make impossible through tokens, and
// which this test builds by hand) gets a fresh request, never the first
// tenant's stored reply.
func TestIdempotencyKeyScopedByTenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d := f.decision(appeals.ActionAdRemoval)
	a := f.file(d)

	tenantA := docket.Actor{Role: docket.RoleAdvertiser, Name: "owner", AdvertiserID: d.AdvertiserID}
	tenantB := docket.Actor{Role: docket.RoleAdvertiser, Name: "owner", AdvertiserID: "globex"}
	key := func(by docket.Actor) *appeals.Idempotency {
		return &appeals.Idempotency{Actor: by.String(), Tenant: by.AdvertiserID, Key: "k-1", RequestHash: []byte("same request"),
			Reply: func(v any) (int, map[string]string, []byte, error) {
				b, err := json.Marshal(v)
				return 200, nil, b, err
			}}
	}
	_, err := f.store.Withdraw(f.ctx, tenantA, a.ID, appeals.Idempotent(key(tenantA)))
	require.NoError(t, err)

	_, err = f.store.Withdraw(f.ctx, tenantB, a.ID, appeals.Idempotent(key(tenantB)))
	var replay *appeals.Replay
	require.NotErrorAs(t, err, &replay, "tenant B was handed tenant A's reply")
	require.Equal(t, docket.NotFound, docket.ErrorCode(err), "%v", err)

	_, err = f.store.Withdraw(f.ctx, tenantA, a.ID, appeals.Idempotent(key(tenantA)))
	require.ErrorAs(t, err, &replay, "tenant A's own retry replays")
	require.Contains(t, string(replay.Body), a.ID)
}

// TestTokenRoleRefusalListsTheRoles: a bad role is told the roles a token
// may hold, as docket.Roles lists them.
func TestTokenRoleRefusalListsTheRoles(t *testing.T) {
	t.Parallel()
	err := appeals.TokenInput{Name: "x", Role: "root"}.Validate()
	require.Equal(t, docket.Invalid, docket.ErrorCode(err))
	require.ErrorContains(t, err, "role: must be one of admin, enforcer, reviewer, senior_reviewer, advertiser, auditor")
	require.NoError(t, appeals.TokenInput{Name: "x", Role: docket.RoleAuditor}.Validate())
}
