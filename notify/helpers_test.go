package notify_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"github.com/stretchr/testify/require"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/natstest"
	"github.com/docket-dev/docket/notify"
)

const testOrigin = "test.docket/audit"

var entryTypes = []string{"decision.recorded", "appeal.filed", "decision.reversed", "notice.delivered"}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// runNATS starts an in-process server with JetStream storing in dir.
func runNATS(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	return natstest.Run(t, &server.Options{Port: port, StoreDir: dir})
}

// connect returns a JetStream context whose connection never gives up
// reconnecting, as a production relay's would.
func connect(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.RetryOnFailedConnect(true))
	require.NoError(t, err, "connect %s", url)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second))
	require.NoError(t, err)
	return js
}

func ensureStream(t testing.TB, js jetstream.JetStream, name, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := notify.EnsureStream(ctx, js, notify.StreamOptions{Name: name, SubjectPrefix: prefix})
	require.NoError(t, err)
}

// writeEntries appends n entries in transactions of batch entries each,
// from `writers` goroutines, as the appeals store would.
func writeEntries(ctx context.Context, db *sqlx.DB, n, writers, batch int) error {
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	per := n / writers
	for w := range writers {
		count := per
		if w == writers-1 {
			count = n - per*(writers-1)
		}
		wg.Go(func() {
			for done := 0; done < count; {
				k := min(batch, count-done)
				if err := appendTx(ctx, db, w, done, k); err != nil {
					errs <- err
					return
				}
				done += k
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func appendTx(ctx context.Context, db *sqlx.DB, writer, start, k int) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for i := range k {
		n := start + i
		e := audit.Entry{
			Type:    entryTypes[(writer+n)%len(entryTypes)],
			Time:    time.Now(),
			Actor:   "enforcer:test",
			Subject: audit.Subject{Kind: "decision", ID: fmt.Sprintf("w%d-%d", writer, n)},
		}
		if _, err := audit.Append(ctx, tx, e); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// integrate runs the real audit integrator until ctx ends.
func integrate(ctx context.Context, t testing.TB, db *sqlx.DB) (wait func()) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "test.docket")
	require.NoError(t, err)
	signer, err := note.NewSigner(skey)
	require.NoError(t, err)
	lg, err := audit.NewLog(db, signer, vkey, testOrigin, audit.Options{PollInterval: 5 * time.Millisecond, Logger: testLogger(t)})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := lg.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("integrator: %v", err)
		}
	}()
	return func() { <-done }
}

func leafCount(t testing.TB, db *sqlx.DB) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM audit_leaves`))
	return n
}

// received is what a consumer saw.
type received struct {
	mu      sync.Mutex
	count   map[int64]int
	lastPer map[string]int64
	order   []string // violations
	total   int
	maxSeq  uint64 // the highest stream sequence delivered
}

func newReceived() *received {
	return &received{count: map[int64]int{}, lastPer: map[string]int64{}}
}

func (r *received) add(ev notify.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count[ev.Index]++
	r.total++
	r.maxSeq = max(r.maxSeq, ev.StreamSeq)
	if last, ok := r.lastPer[ev.Subject]; ok && ev.Index <= last {
		r.order = append(r.order, fmt.Sprintf("%s: index %d after %d", ev.Subject, ev.Index, last))
	}
	r.lastPer[ev.Subject] = ev.Index
}

func (r *received) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.count)
}

// check asserts every index 0..n-1 was seen once, in order per subject.
func (r *received) check(t testing.TB, n int64) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var missing, dup []int64
	for i := range n {
		switch c := r.count[i]; {
		case c == 0:
			missing = append(missing, i)
		case c > 1:
			dup = append(dup, i)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d indices never received, first %v", len(missing), missing[:min(10, len(missing))])
	}
	if len(dup) > 0 {
		t.Errorf("%d indices received more than once, first %v", len(dup), dup[:min(10, len(dup))])
	}
	if int64(r.total) != n {
		t.Errorf("received %d messages, want %d", r.total, n)
	}
	if len(r.order) > 0 {
		t.Errorf("%d out-of-order deliveries, first %v", len(r.order), r.order[:min(5, len(r.order))])
	}
}

// consume reads from the start of the stream into rec until ctx ends.
func consume(ctx context.Context, t testing.TB, js jetstream.JetStream, stream, prefix string, rec *received) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := notify.Consume(ctx, js, notify.ConsumeOptions{Stream: stream, SubjectPrefix: prefix, FromIndex: 0}, func(ev notify.Event) error {
			rec.add(ev)
			return nil
		})
		if err != nil {
			t.Errorf("consume: %v", err)
		}
	}()
	return func() { <-done }
}

// hangGuard bounds every wait; generous, because a loaded CI machine is
// slow, and a wait that passes it means something is stuck.
const hangGuard = 2 * time.Minute

// eventually polls cond until it holds or the deadline passes; the
// deadline is a hang guard, not a performance assertion.
func eventually(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, d, 20*time.Millisecond, "gave up waiting: %s", what)
}

// streamState reads the stream's state: Msgs counts what it stores (a
// duplicate that slipped past JetStream shows here even if a consumer
// missed it), LastSeq is its last message's sequence.
func streamState(t testing.TB, js jetstream.JetStream, name string) jetstream.StreamState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	return info.State
}

func streamMsgs(t testing.TB, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	return streamState(t, js, name).Msgs
}

func newRelay(t testing.TB, db *sqlx.DB, js jetstream.JetStream, stream, prefix string, tweak func(*notify.Options)) *notify.Relay {
	t.Helper()
	o := notify.Options{
		Origin: testOrigin, Stream: stream, SubjectPrefix: prefix,
		PollInterval: 5 * time.Millisecond, ElectionInterval: 50 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, AckTimeout: 2 * time.Second,
		Logger: testLogger(t),
	}
	if tweak != nil {
		tweak(&o)
	}
	r, err := notify.NewRelay(db, js, o)
	require.NoError(t, err)
	return r
}

// runRelay runs r until the returned stop is called.
func runRelay(t testing.TB, r *notify.Relay) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			t.Errorf("relay: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// readBack reads the whole stream with a fresh consumer and checks that it
// holds exactly indices 0..n-1, each once and in order per subject.
func readBack(t *testing.T, js jetstream.JetStream, n int64, guard time.Duration) {
	t.Helper()
	rec := newReceived()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := consume(ctx, t, js, notify.DefaultStream, "", rec)
	// The consumer delivers in stream order, so once it has delivered
	// the stream's last message it has delivered every duplicate too.
	last := streamState(t, js, notify.DefaultStream).LastSeq
	eventually(t, "all entries consumed", guard, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.maxSeq >= last
	})
	cancel()
	wait()
	rec.check(t, n)
	if got := streamMsgs(t, js, notify.DefaultStream); got != uint64(n) {
		t.Errorf("stream holds %d messages, want %d", got, n)
	}
}
