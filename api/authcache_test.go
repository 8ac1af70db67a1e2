package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
)

func TestAuthCacheBoundsRevocationByTTL(t *testing.T) {
	t.Parallel()
	live := map[string]bool{"good": true}
	lookups := 0
	c := newAuthCache(time.Second, func(_ context.Context, secret string) (docket.Actor, error) {
		lookups++
		if !live[secret] {
			return docket.Actor{}, docket.Errorf(docket.Unauthorized, "revoked")
		}
		return docket.Actor{Role: docket.RoleAuditor, Name: "audrey"}, nil
	})
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	ctx := context.Background()

	_, err := c.authenticate(ctx, "good")
	require.NoError(t, err)
	_, err = c.authenticate(ctx, "good")
	require.NoError(t, err)
	require.Equal(t, 1, lookups, "the second request is served from the cache")

	live["good"] = false // revoked
	now = now.Add(999 * time.Millisecond)
	_, err = c.authenticate(ctx, "good")
	require.NoError(t, err, "within the TTL the cached actor still answers")
	now = now.Add(2 * time.Millisecond)
	_, err = c.authenticate(ctx, "good")
	require.Equal(t, docket.Unauthorized, docket.ErrorCode(err), "past the TTL the revocation holds")

	_, err = c.authenticate(ctx, "bad")
	require.Equal(t, docket.Unauthorized, docket.ErrorCode(err))
	_, err = c.authenticate(ctx, "bad")
	require.Equal(t, docket.Unauthorized, docket.ErrorCode(err), "a cached failure is still a failure")
	require.Equal(t, 3, lookups, "a bad token is looked up once per TTL")
	now = now.Add(1001 * time.Millisecond)
	_, err = c.authenticate(ctx, "bad")
	require.Error(t, err)
	require.Equal(t, 4, lookups, "past the TTL a bad token is looked up again")

	off := newAuthCache(-1, c.look)
	_, _ = off.authenticate(ctx, "good")
	_, _ = off.authenticate(ctx, "good")
	require.Equal(t, 6, lookups, "a negative TTL turns the cache off")
}

func TestAuthCacheNeverKeepsOutages(t *testing.T) {
	t.Parallel()
	down := true
	lookups := 0
	c := newAuthCache(time.Minute, func(_ context.Context, secret string) (docket.Actor, error) {
		lookups++
		if down {
			return docket.Actor{}, errors.New("connection refused")
		}
		return docket.Actor{Role: docket.RoleAuditor, Name: "audrey"}, nil
	})
	ctx := context.Background()
	_, err := c.authenticate(ctx, "good")
	require.Error(t, err)
	down = false
	a, err := c.authenticate(ctx, "good")
	require.NoError(t, err, "a look-up that failed for want of the database is not kept")
	require.Equal(t, "audrey", a.Name)
	require.Equal(t, 2, lookups)
}
