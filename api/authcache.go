package api

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/docket-dev/docket"
)

// authCache keeps recent token look-ups for a short TTL, sparing every
// request a query. A revocation therefore takes effect within the TTL in
// every process (1 s by default; 0 turns the cache off). A token found
// unknown or revoked is kept too, so a client repeating a bad token costs
// one query per TTL: a secret cannot become valid after it has failed, since
// secrets are made by the server and shown only once they are stored.
// Other failures (the database down) are never kept.
type authCache struct {
	ttl  time.Duration
	now  func() time.Time
	look func(ctx context.Context, secret string) (docket.Actor, error)

	mu      sync.Mutex
	entries map[[32]byte]cachedActor
}

type cachedActor struct {
	actor   docket.Actor
	err     error // the Unauthorized answer of a bad token
	expires time.Time
}

func newAuthCache(ttl time.Duration, look func(context.Context, string) (docket.Actor, error)) *authCache {
	return &authCache{ttl: ttl, now: time.Now, look: look, entries: map[[32]byte]cachedActor{}}
}

func (c *authCache) authenticate(ctx context.Context, secret string) (docket.Actor, error) {
	if c.ttl <= 0 {
		return c.look(ctx, secret)
	}
	// Keyed by a hash so the map never holds a usable secret.
	key := sha256.Sum256([]byte(secret))
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.actor, e.err
	}
	a, err := c.look(ctx, secret)
	if err != nil && docket.ErrorCode(err) != docket.Unauthorized {
		return a, err
	}
	c.mu.Lock()
	if len(c.entries) > 10000 { // bounded: a flood of distinct tokens cannot grow it
		clear(c.entries)
	}
	c.entries[key] = cachedActor{actor: a, err: err, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return a, err
}
