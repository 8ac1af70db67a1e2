package appeals_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

// A session stands for its token's actor until it idles out, reaches its
// absolute expiry, is signed out, or its token is revoked.
func TestSessionLifetimes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, secret, err := f.store.CreateToken(f.ctx, cli, advertiserToken("acme-owner", "acme"))
	require.NoError(t, err)
	lim := appeals.SessionLimits{Idle: 10 * time.Minute, Absolute: time.Hour}

	_, err = f.store.StartSession(f.ctx, "dkt_unknown", lim)
	require.Equal(t, docket.Unauthorized, docket.ErrorCode(err))

	ns, err := f.store.StartSession(f.ctx, secret, lim)
	require.NoError(t, err)
	require.Equal(t, docket.Actor{Role: docket.RoleAdvertiser, Name: "acme-owner", AdvertiserID: "acme"}, ns.Actor)
	require.NotEmpty(t, ns.CSRF)
	require.NotEqual(t, ns.ID, ns.CSRF)

	// Used every 9 minutes it stays alive past the idle time...
	for range 6 {
		f.clk.Add(9 * time.Minute)
		s, err := f.store.LookupSession(f.ctx, ns.ID)
		require.NoError(t, err)
		require.Equal(t, ns.CSRF, s.CSRF)
	}
	// ...but not past the absolute expiry.
	f.clk.Add(7 * time.Minute)
	_, err = f.store.LookupSession(f.ctx, ns.ID)
	require.Equal(t, docket.Unauthorized, docket.ErrorCode(err))

	// Idle for longer than the idle time: ended.
	idle, err := f.store.StartSession(f.ctx, secret, lim)
	require.NoError(t, err)
	f.clk.Add(10 * time.Minute)
	_, err = f.store.LookupSession(f.ctx, idle.ID)
	require.Equal(t, docket.Unauthorized, docket.ErrorCode(err))

	// Signed out: ended.
	out, err := f.store.StartSession(f.ctx, secret, lim)
	require.NoError(t, err)
	require.NoError(t, f.store.EndSession(f.ctx, out.ID))
	_, err = f.store.LookupSession(f.ctx, out.ID)
	require.Equal(t, docket.Unauthorized, docket.ErrorCode(err))

	// The token revoked: every session of it ends at once.
	a, err := f.store.StartSession(f.ctx, secret, lim)
	require.NoError(t, err)
	b, err := f.store.StartSession(f.ctx, secret, lim)
	require.NoError(t, err)
	_, err = f.store.LookupSession(f.ctx, a.ID)
	require.NoError(t, err)
	_, err = f.store.RevokeTokens(f.ctx, cli, "acme-owner", "")
	require.NoError(t, err)
	for _, id := range []string{a.ID, b.ID} {
		_, err = f.store.LookupSession(f.ctx, id)
		require.Equal(t, docket.Unauthorized, docket.ErrorCode(err))
	}
	_, err = f.store.StartSession(f.ctx, secret, lim)
	require.Equal(t, docket.Unauthorized, docket.ErrorCode(err))

	// Ids that are not sessions are refused, not errors.
	for _, id := range []string{"", "x", string(make([]byte, 500))} {
		_, err = f.store.LookupSession(f.ctx, id)
		require.Equal(t, docket.Unauthorized, docket.ErrorCode(err))
	}
}
