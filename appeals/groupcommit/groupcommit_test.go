package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queued is how many calls wait, not yet taken into a batch.
func (b *Batcher[Q, R]) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// waitQueued waits until n calls are queued.
func waitQueued[Q, R any](t *testing.T, b *Batcher[Q, R], n int) {
	t.Helper()
	require.Eventually(t, func() bool { return b.queued() == n }, 10*time.Second, time.Millisecond,
		"%d calls queued", n)
}

// echo answers each request with its text, and an error for multiples of 7.
func echo(reqs []int) []Result[string] {
	out := make([]Result[string], len(reqs))
	for i, r := range reqs {
		if r%7 == 0 {
			out[i].Err = fmt.Errorf("no %d", r)
		} else {
			out[i].Val = fmt.Sprint(r)
		}
	}
	return out
}

// recv waits for v on ch, failing after a while rather than hanging.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
		panic("unreachable")
	}
}

type answer struct {
	val string
	err error
}

// TestCallsArrivingDuringABatchShareTheNext holds the first batch until
// every other call has queued: they then go in batches of exactly
// MaxBatch, one batch at a time, and each call gets its own answer (and
// its own error: per-call errors stay per call).
func TestCallsArrivingDuringABatchShareTheNext(t *testing.T) {
	t.Parallel()
	const calls, maxBatch = 41, 5
	release := make(chan struct{})
	var running, batches atomic.Int64
	var mu sync.Mutex
	var sizes []int
	b := New(Options{MaxBatch: maxBatch}, func(_ context.Context, reqs []int) ([]Result[string], error) {
		assert.Equal(t, int64(1), running.Add(1), "one batch at a time")
		defer running.Add(-1)
		if batches.Add(1) == 1 {
			<-release
		}
		mu.Lock()
		sizes = append(sizes, len(reqs))
		mu.Unlock()
		return echo(reqs), nil
	}, nil)
	var wg sync.WaitGroup
	do := func(i int) {
		defer wg.Done()
		v, err := b.Do(context.Background(), i)
		if i%7 == 0 {
			assert.EqualError(t, err, fmt.Sprintf("no %d", i))
			return
		}
		assert.NoError(t, err)
		assert.Equal(t, fmt.Sprint(i), v)
	}
	wg.Add(1)
	go do(1)
	require.Eventually(t, func() bool { return batches.Load() == 1 }, 10*time.Second, time.Millisecond)
	for i := 2; i <= calls; i++ {
		wg.Add(1)
		go do(i)
	}
	waitQueued(t, b, calls-1)
	close(release)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int{1, 5, 5, 5, 5, 5, 5, 5, 5}, sizes)
	require.Less(t, batches.Load(), int64(calls))
	require.Zero(t, b.queued())
}

// TestMaxWaitWaitsForAFullBatch: with a long MaxWait, a batch starts when
// it is full, so 8 calls are two batches of 4.
func TestMaxWaitWaitsForAFullBatch(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var sizes []int
	b := New(Options{MaxBatch: 4, MaxWait: time.Hour}, func(_ context.Context, reqs []int) ([]Result[string], error) {
		mu.Lock()
		sizes = append(sizes, len(reqs))
		mu.Unlock()
		return echo(reqs), nil
	}, nil)
	var wg sync.WaitGroup
	for i := 1; i <= 8; i++ {
		r := 7*i + 1 // never a multiple of 7
		wg.Go(func() {
			v, err := b.Do(context.Background(), r)
			if assert.NoError(t, err) {
				assert.Equal(t, fmt.Sprint(r), v)
			}
		})
	}
	wg.Wait()
	require.Equal(t, []int{4, 4}, sizes)
}

// TestMaxWaitBoundsTheWait: a call alone waits MaxWait for company, then
// runs by itself.
func TestMaxWaitBoundsTheWait(t *testing.T) {
	t.Parallel()
	const wait = 20 * time.Millisecond
	b := New(Options{MaxBatch: 4, MaxWait: wait}, func(_ context.Context, reqs []int) ([]Result[string], error) {
		return echo(reqs), nil
	}, nil)
	start := time.Now()
	v, err := b.Do(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, "1", v)
	require.GreaterOrEqual(t, time.Since(start), wait)
}

// TestAWaiterWhoseContextEndsReturnsAtOnce: while a batch is blocked, a
// call taken into it and a call queued behind it are cancelled: both
// return context.Canceled before the batch ends, the batch goes on for
// its other call, and the queued call is dropped, never run.
func TestAWaiterWhoseContextEndsReturnsAtOnce(t *testing.T) {
	t.Parallel()
	started, release := make(chan []int, 2), make(chan struct{})
	b := New(Options{MaxBatch: 2, MaxWait: time.Hour}, func(_ context.Context, reqs []int) ([]Result[string], error) {
		started <- reqs
		<-release
		return echo(reqs), nil
	}, nil)
	lead, taken, queued := make(chan answer, 1), make(chan answer, 1), make(chan answer, 1)
	do := func(ctx context.Context, i int, to chan<- answer) {
		v, err := b.Do(ctx, i)
		to <- answer{v, err}
	}
	takenCtx, cancelTaken := context.WithCancel(context.Background())
	defer cancelTaken()
	queuedCtx, cancelQueued := context.WithCancel(context.Background())
	defer cancelQueued()
	go do(context.Background(), 1, lead)
	waitQueued(t, b, 1)
	go do(takenCtx, 2, taken)
	require.ElementsMatch(t, []int{1, 2}, recv(t, started, "batch"))
	go do(queuedCtx, 3, queued)
	waitQueued(t, b, 1)

	cancelTaken()
	require.ErrorIs(t, recv(t, taken, "answer for the taken call").err, context.Canceled)
	cancelQueued()
	require.ErrorIs(t, recv(t, queued, "answer for the queued call").err, context.Canceled)
	require.Zero(t, b.queued(), "the queued call left the queue")
	require.Empty(t, lead, "the batch is still blocked")

	close(release)
	got := recv(t, lead, "answer for the batch's other call")
	require.NoError(t, got.err)
	require.Equal(t, "1", got.val)
	require.Empty(t, started, "the cancelled call never ran")
}

// TestACallWhoseContextEndedNeverRuns: a call cancelled before Do, or
// while queued and before its batch started, is not run.
func TestACallWhoseContextEndedNeverRuns(t *testing.T) {
	t.Parallel()
	var ran atomic.Int64
	b := New(Options{}, func(_ context.Context, reqs []int) ([]Result[string], error) {
		ran.Add(int64(len(reqs)))
		return echo(reqs), nil
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.Do(ctx, 1)
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, ran.Load())

	// Queued, and cancelled as the batch is cut: take skips it.
	ctx, cancel = context.WithCancel(context.Background())
	c := &call[int, string]{ctx: ctx, req: 2, done: make(chan struct{})}
	live := &call[int, string]{ctx: context.Background(), req: 3, done: make(chan struct{})}
	b.queue = []*call[int, string]{c, live}
	cancel()
	batch := b.take()
	require.Equal(t, []*call[int, string]{live}, batch)
	<-c.done
	require.ErrorIs(t, c.out.Err, context.Canceled)
}

type ctxKey struct{}

// TestABatchEndsAtItsEarliestDeadline: a batch's context has the earliest
// deadline of its calls, no caller's values, and is not cancelled when a
// caller's context is.
func TestABatchEndsAtItsEarliestDeadline(t *testing.T) {
	t.Parallel()
	type seen struct {
		deadline time.Time
		ok       bool
		value    any
		err      error
	}
	started, release, done := make(chan struct{}), make(chan struct{}), make(chan seen, 1)
	b := New(Options{MaxBatch: 3, MaxWait: time.Hour}, func(ctx context.Context, reqs []int) ([]Result[string], error) {
		var s seen
		s.deadline, s.ok = ctx.Deadline()
		s.value = ctx.Value(ctxKey{})
		close(started)
		<-release
		s.err = ctx.Err()
		done <- s
		return echo(reqs), nil
	}, nil)
	now := time.Now()
	late, cancelLate := context.WithDeadline(context.WithValue(context.Background(), ctxKey{}, "secret"), now.Add(time.Hour))
	defer cancelLate()
	early, cancelEarly := context.WithDeadline(context.Background(), now.Add(30*time.Minute))
	defer cancelEarly()
	answers := make(chan answer, 3)
	for i, ctx := range []context.Context{late, early, context.Background()} {
		go func() {
			v, err := b.Do(ctx, i+1)
			answers <- answer{v, err}
		}()
	}
	recv(t, started, "batch start")
	cancelLate()
	require.ErrorIs(t, recv(t, answers, "the cancelled call").err, context.Canceled)
	close(release)
	s := recv(t, done, "batch end")
	require.True(t, s.ok)
	require.Equal(t, now.Add(30*time.Minute), s.deadline)
	require.Nil(t, s.value, "a batch carries no caller's values")
	require.NoError(t, s.err, "a caller's cancellation does not end the batch")
	for range 2 {
		require.NoError(t, recv(t, answers, "answer").err)
	}
}

// TestAPanicInABatchHangsNoOne: each call of a batch that panics gets an
// error, and the next batch runs.
func TestAPanicInABatchHangsNoOne(t *testing.T) {
	t.Parallel()
	b := New(Options{MaxBatch: 3, MaxWait: time.Hour}, func(_ context.Context, reqs []int) ([]Result[string], error) {
		if reqs[0] < 0 {
			panic("boom")
		}
		return echo(reqs), nil
	}, nil)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			_, err := b.Do(context.Background(), -1-i)
			assert.ErrorIs(t, err, ErrPanicked)
			assert.ErrorContains(t, err, "boom")
		})
	}
	wg.Wait()
	b = New(Options{}, b.run, nil)
	v, err := b.Do(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, "1", v)
}

// TestAFailedBatchAnswersEachCallAlone: when a batch of several fails as a
// whole, each of its calls is answered alone, with its own ctx, so that
// the one whose fault it was fails by itself; a call the run sends back
// (ErrAlone) is answered alone too; a batch of one that fails is that
// call's error.
func TestAFailedBatchAnswersEachCallAlone(t *testing.T) {
	t.Parallel()
	const bad = 3
	batch := func(_ context.Context, reqs []int) ([]Result[string], error) {
		for _, r := range reqs {
			if r == bad {
				return nil, errors.New("bad batch")
			}
		}
		out := echo(reqs)
		for i, r := range reqs {
			if r == 5 {
				out[i].Err = fmt.Errorf("busy: %w", ErrAlone)
			}
		}
		return out, nil
	}
	var mu sync.Mutex
	var alone []int
	b := New(Options{MaxBatch: 3, MaxWait: time.Hour}, batch, func(ctx context.Context, r int) (string, error) {
		assert.Equal(t, r, ctx.Value(ctxKey{}), "its own ctx")
		mu.Lock()
		alone = append(alone, r)
		mu.Unlock()
		if r == bad {
			return "", errors.New("bad call")
		}
		return "alone " + fmt.Sprint(r), nil
	})
	got := make([]answer, 7)
	var wg sync.WaitGroup
	for i := 1; i <= 6; i++ { // 1 2 3 fail as a batch; 4 5 6 do not
		wg.Go(func() {
			v, err := b.Do(context.WithValue(context.Background(), ctxKey{}, i), i)
			got[i] = answer{v, err}
		})
		if i == 3 {
			wg.Wait()
		}
	}
	wg.Wait()
	require.Equal(t, answer{"alone 1", nil}, got[1])
	require.Equal(t, answer{"alone 2", nil}, got[2])
	require.EqualError(t, got[3].err, "bad call")
	require.Equal(t, answer{"4", nil}, got[4])
	require.Equal(t, answer{"alone 5", nil}, got[5])
	require.Equal(t, answer{"6", nil}, got[6])
	require.ElementsMatch(t, []int{1, 2, 3, 5}, alone)

	one := New(Options{}, batch, func(context.Context, int) (string, error) {
		t.Error("a failed batch of one is not run again")
		return "", nil
	})
	_, err := one.Do(context.Background(), bad)
	require.EqualError(t, err, "bad batch")
}

// TestWithoutAnAloneFuncACallGoesInABatchOfItsOwn: with no AloneFunc, a
// call to be answered alone is run by itself, still one run at a time.
func TestWithoutAnAloneFuncACallGoesInABatchOfItsOwn(t *testing.T) {
	t.Parallel()
	var running atomic.Int64
	var mu sync.Mutex
	var sizes []int
	b := New(Options{MaxBatch: 4, MaxWait: time.Hour}, func(_ context.Context, reqs []int) ([]Result[string], error) {
		assert.Equal(t, int64(1), running.Add(1), "one batch at a time")
		defer running.Add(-1)
		mu.Lock()
		sizes = append(sizes, len(reqs))
		mu.Unlock()
		if len(reqs) > 1 {
			return nil, errors.New("too many")
		}
		if reqs[0] == 4 {
			return []Result[string]{{Err: ErrAlone}}, nil
		}
		return echo(reqs), nil
	}, nil)
	got := make([]answer, 5)
	var wg sync.WaitGroup
	for i := 1; i <= 4; i++ {
		wg.Go(func() {
			v, err := b.Do(context.Background(), i)
			got[i] = answer{v, err}
		})
	}
	wg.Wait()
	for i := 1; i <= 3; i++ {
		require.Equal(t, answer{fmt.Sprint(i), nil}, got[i])
	}
	require.ErrorIs(t, got[4].err, ErrAlone, "told to go alone while alone: an error, not a loop")
	require.Equal(t, []int{4, 1, 1, 1, 1}, sizes)
}
