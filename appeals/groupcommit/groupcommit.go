package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// DefaultMaxBatch is Options.MaxBatch when it is zero.
const DefaultMaxBatch = 64

// Options bound a Batcher's batches.
type Options struct {
	// MaxBatch is the most calls one run answers. Zero means
	// DefaultMaxBatch.
	MaxBatch int
	// MaxWait is the longest a call waits for others to join its batch
	// before the batch starts, beyond the wait for the batch in flight.
	// Zero means no extra wait: a call that finds no batch in flight
	// starts one at once, alone or with whoever queued meanwhile.
	MaxWait time.Duration
}

// Result is one call's answer.
type Result[R any] struct {
	Val R
	Err error
}

// RunFunc answers a batch: one Result per request, in order. A non-nil
// error means the batch as a whole failed, and none of its work may have
// taken effect; see Batcher for what its calls are then told.
type RunFunc[Q, R any] func(ctx context.Context, reqs []Q) ([]Result[R], error)

// AloneFunc answers one call by itself, outside any batch, with its
// caller's ctx.
type AloneFunc[Q, R any] func(ctx context.Context, req Q) (R, error)

// ErrAlone, as (or wrapped in) a call's Result.Err, tells the Batcher to
// answer that call alone instead (see AloneFunc).
var ErrAlone = errors.New("groupcommit: answer this call alone")

// ErrPanicked is wrapped in each call's error when the run of its batch
// panicked.
var ErrPanicked = errors.New("groupcommit: batch panicked")

// Batcher runs concurrent calls together, in batches; see the package
// documentation. Its zero value is not usable; call New.
type Batcher[Q, R any] struct {
	max   int
	wait  time.Duration
	run   RunFunc[Q, R]
	alone AloneFunc[Q, R]

	mu sync.Mutex
	// queue holds the calls not yet taken into a batch, oldest first.
	queue []*call[Q, R]
	// busy is whether a batch goroutine runs; it takes the queue's calls
	// until none is left.
	busy bool
	// full is signalled when the queue reaches max while busy, to end
	// a batch's MaxWait early.
	full chan struct{}
}

type call[Q, R any] struct {
	ctx context.Context
	req Q
	at  time.Time // when it queued; only kept with MaxWait
	// solo is a call to be answered alone: its batch holds it only.
	solo bool
	// out and done are written under the Batcher's mu; done is closed
	// once out is final.
	out  Result[R]
	done chan struct{}
}

// New returns a Batcher that answers batches with run and, when run says
// so or a batch fails, single calls with alone. A nil alone answers a call
// alone with run, in a batch of its own (so still one run at a time).
func New[Q, R any](opts Options, run RunFunc[Q, R], alone AloneFunc[Q, R]) *Batcher[Q, R] {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	b := &Batcher[Q, R]{max: opts.MaxBatch, wait: opts.MaxWait, run: run, alone: alone,
		full: make(chan struct{}, 1)}
	if b.alone == nil {
		b.alone = b.doSolo
	}
	return b
}

// Do answers req, in a batch with whatever calls are queued when the
// batch starts.
//
// Do returns when the answer is in or ctx ends, whichever is first. When
// ctx ends first, Do returns ctx.Err() at once. If the call was still
// queued, it is dropped and never runs. If its batch had already started,
// the batch goes on for the other calls and this call's answer is
// discarded: its work may still take effect (a write may commit) although
// its caller was told ctx.Err(). A call whose ctx has ended by the time
// its batch starts is dropped, not run.
//
// When its batch fails as a whole (run returns an error), a call that was
// alone in it gets that error; each call of a larger batch is answered
// alone, so that one call's fault never fails another. A call whose
// Result.Err is ErrAlone is answered alone too. A panic in run is every
// call's error (ErrPanicked), never a hang.
func (b *Batcher[Q, R]) Do(ctx context.Context, req Q) (R, error) {
	return b.do(ctx, req, false)
}

// doSolo is the default AloneFunc: req in a batch of its own.
func (b *Batcher[Q, R]) doSolo(ctx context.Context, req Q) (R, error) {
	return b.do(ctx, req, true)
}

func (b *Batcher[Q, R]) do(ctx context.Context, req Q, solo bool) (R, error) {
	var zero R
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	c := &call[Q, R]{ctx: ctx, req: req, solo: solo, done: make(chan struct{})}
	if b.wait > 0 {
		c.at = time.Now()
	}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	start := !b.busy
	b.busy = true
	if len(b.queue) >= b.max {
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
	b.mu.Unlock()
	if start {
		go b.loop()
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		if !b.abandon(c) {
			return zero, ctx.Err()
		}
		// Answered meanwhile: the answer is the truth, so give it.
	}
	if errors.Is(c.out.Err, ErrAlone) {
		if solo {
			return zero, fmt.Errorf("groupcommit: a call answered alone was told to go alone: %w", c.out.Err)
		}
		return b.alone(ctx, req)
	}
	return c.out.Val, c.out.Err
}

// abandon drops c from the queue if it is still there. It reports whether
// c was answered already.
func (b *Batcher[Q, R]) abandon(c *call[Q, R]) (answered bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-c.done:
		return true
	default:
	}
	for i, q := range b.queue {
		if q == c {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			break
		}
	}
	return false
}

// loop runs batches, one at a time, until the queue is empty. A Batcher
// has at most one loop, so run is never called concurrently.
func (b *Batcher[Q, R]) loop() {
	for {
		b.gather()
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.busy = false
			b.mu.Unlock()
			return
		}
		batch := b.take()
		b.mu.Unlock()
		if len(batch) > 0 {
			b.answer(batch)
		}
	}
}

// gather lets calls join the next batch. With no MaxWait, it yields once:
// the callers just answered by the batch before, and about to queue again,
// are runnable, and on two cores that made batches larger and
// BenchmarkClaimAndResolve faster (ratio to plain UPDATEs, median of five
// alternating runs: 0.74 with the yield, 0.71 without); alone, it costs
// nothing. With MaxWait,
// it waits until the batch is full or its oldest call has waited MaxWait,
// unless that call is to go alone.
func (b *Batcher[Q, R]) gather() {
	if b.wait <= 0 {
		runtime.Gosched()
		return
	}
	select {
	case <-b.full: // a stale signal; the length is checked below
	default:
	}
	b.mu.Lock()
	// A solo call is a batch by itself: nothing to wait for.
	if len(b.queue) == 0 || len(b.queue) >= b.max || b.queue[0].solo {
		b.mu.Unlock()
		return
	}
	left := time.Until(b.queue[0].at.Add(b.wait))
	b.mu.Unlock()
	if left <= 0 {
		return
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.full:
	}
}

// take cuts the next batch from the queue, under mu: up to max calls whose
// ctx is live, in queue order, or one solo call. A call whose ctx has
// ended is answered with its error and dropped.
func (b *Batcher[Q, R]) take() []*call[Q, R] {
	var batch []*call[Q, R]
	n := 0
	for _, c := range b.queue {
		if len(batch) == b.max || len(batch) > 0 && (batch[0].solo || c.solo) {
			break
		}
		n++
		if err := c.ctx.Err(); err != nil {
			c.out.Err = err
			close(c.done)
			continue
		}
		batch = append(batch, c)
	}
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil // let the backing array go
	}
	return batch
}

// answer runs batch and hands each call its result.
func (b *Batcher[Q, R]) answer(batch []*call[Q, R]) {
	reqs := make([]Q, len(batch))
	for i, c := range batch {
		reqs[i] = c.req
	}
	ctx, cancel := batchContext(batch)
	outs := b.runSafe(ctx, reqs)
	cancel()
	b.mu.Lock()
	for i, c := range batch {
		c.out = outs[i]
		close(c.done)
	}
	b.mu.Unlock()
}

// batchContext is the context a batch runs with. The batch belongs to all
// of its calls, so it carries none of their values and no caller's
// cancellation ends it; but it ends at the earliest of their deadlines, so
// that no call waits on the batch past its own.
func batchContext[Q, R any](batch []*call[Q, R]) (context.Context, context.CancelFunc) {
	var earliest time.Time
	for _, c := range batch {
		if d, ok := c.ctx.Deadline(); ok && (earliest.IsZero() || d.Before(earliest)) {
			earliest = d
		}
	}
	if earliest.IsZero() {
		return context.WithCancel(context.Background())
	}
	return context.WithDeadline(context.Background(), earliest)
}

// runSafe runs a batch and turns what went wrong into its calls' results:
// a panic into each call's error, a failed batch into each call's error
// when alone and ErrAlone otherwise, and a wrong number of results into
// each call's error.
func (b *Batcher[Q, R]) runSafe(ctx context.Context, reqs []Q) (outs []Result[R]) {
	fail := func(err error) []Result[R] {
		outs := make([]Result[R], len(reqs))
		for i := range outs {
			outs[i].Err = err
		}
		return outs
	}
	defer func() {
		if p := recover(); p != nil {
			outs = fail(fmt.Errorf("%w: %v", ErrPanicked, p))
		}
	}()
	outs, err := b.run(ctx, reqs)
	switch {
	case err != nil && len(reqs) == 1:
		return fail(err)
	case err != nil:
		return fail(fmt.Errorf("%w: batch failed: %w", ErrAlone, err))
	case len(outs) != len(reqs):
		return fail(fmt.Errorf("groupcommit: batch of %d answered %d", len(reqs), len(outs)))
	}
	return outs
}
