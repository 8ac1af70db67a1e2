package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// observation is a checkpoint size and when the poller had it in hand.
type observation struct {
	at   time.Time
	size int64
}

type checkpointWatcher struct {
	hc       *http.Client
	url      string
	interval time.Duration

	mu  sync.Mutex
	obs []observation
}

func newCheckpointWatcher(hc *http.Client, base string, interval time.Duration) *checkpointWatcher {
	return &checkpointWatcher{hc: hc, url: base + "/v1/audit/checkpoint", interval: interval}
}

// ParseCheckpointSize reads the tree size, line 2 of a C2SP tlog-checkpoint.
// The signature is not checked: the bench measures timing, not trust.
func ParseCheckpointSize(note []byte) (int64, error) {
	lines := strings.SplitN(string(note), "\n", 4)
	if len(lines) < 3 {
		return 0, errors.New("checkpoint: fewer than three lines")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("checkpoint: bad size line %q", lines[1])
	}
	return n, nil
}

func (c *checkpointWatcher) fetch(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /v1/audit/checkpoint: status %d", resp.StatusCode)
	}
	return ParseCheckpointSize(body)
}

func (c *checkpointWatcher) add(size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.obs = append(c.obs, observation{at: time.Now(), size: size})
}

func (c *checkpointWatcher) observations() []observation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]observation(nil), c.obs...)
}

func (c *checkpointWatcher) last() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.obs) == 0 {
		return 0
	}
	return c.obs[len(c.obs)-1].size
}

// settle waits until the size has not moved for quiet, so that the bench's
// own set-up entries (tokens, policy) are integrated before S0 is taken.
func (c *checkpointWatcher) settle(ctx context.Context, quiet, limit time.Duration) (int64, error) {
	end := time.Now().Add(limit)
	var size int64 = -1
	var since time.Time
	var lastErr error
	for time.Now().Before(end) {
		n, err := c.fetch(ctx)
		switch {
		case err != nil:
			lastErr = err
		case n != size:
			size, since = n, time.Now()
		case time.Since(since) >= quiet:
			return size, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if size < 0 {
		return 0, fmt.Errorf("no checkpoint: %w", lastErr)
	}
	return 0, fmt.Errorf("checkpoint size still moving after %s", limit)
}

// poll records every fetch, changed or not: a write is covered by the first
// observation after its acknowledgement whose size suffices.
func (c *checkpointWatcher) poll(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		if n, err := c.fetch(ctx); err == nil {
			c.add(n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// waitFor waits until the polled size reaches want or limit passes, then
// one quiet second more to see whether it overshoots; it returns the size.
func (c *checkpointWatcher) waitFor(ctx context.Context, want int64, limit time.Duration) int64 {
	end := time.Now().Add(limit)
	for c.last() < want && time.Now().Before(end) && ctx.Err() == nil {
		time.Sleep(c.interval)
	}
	if c.last() >= want {
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return c.last()
}

// integrationLag pairs each write with the first observation, at or after
// its acknowledgement, whose size covers the entries acknowledged up to it.
func integrationLag(s0 int64, writes []write, obs []observation) (lats []time.Duration, uncovered int) {
	ws := append([]write(nil), writes...)
	sort.Slice(ws, func(i, j int) bool { return ws[i].ack.Before(ws[j].ack) })
	need, j := s0, 0
	for _, w := range ws {
		need += int64(w.entries)
		// Both the acknowledgement time and the size needed only grow, so
		// an observation that fails one write fails every later one.
		for j < len(obs) && (obs[j].at.Before(w.ack) || obs[j].size < need) {
			j++
		}
		if j == len(obs) {
			uncovered++
			continue
		}
		lats = append(lats, obs[j].at.Sub(w.ack))
	}
	return lats, uncovered
}

// exactLag is the integration lag of writes whose leaf index is known (from
// the notification's Docket-Index): from acknowledgement to the first
// observed checkpoint after it whose size exceeds the index. It checks the
// counting method where NATS is on.
func exactLag(writes []write, obs []observation) (lats []time.Duration, uncovered int) {
	for _, w := range writes {
		if w.index < 0 {
			continue
		}
		// Times and sizes both grow along obs, so the predicate is monotonic.
		j := sort.Search(len(obs), func(k int) bool { return !obs[k].at.Before(w.ack) && obs[k].size > w.index })
		if j == len(obs) {
			uncovered++
			continue
		}
		lats = append(lats, obs[j].at.Sub(w.ack))
	}
	return lats, uncovered
}
