package notify_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"github.com/stretchr/testify/require"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/docket-dev/docket/internal/pgtest"
	"github.com/docket-dev/docket/notify"
)

// 10,000 entries written while a consumer reads: every index once, in
// order per subject (and, stronger, the stream holds exactly n messages).
func TestRelayDeliversEveryEntryOnceInOrder(t *testing.T) {
	t.Parallel()
	const n = 10_000
	db := pgtest.New(t)
	srv := runNATS(t, -1, t.TempDir())
	js := connect(t, srv.ClientURL())
	ensureStream(t, js, notify.DefaultStream, "")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitInt := integrate(ctx, t, db)
	reg := prometheus.NewRegistry()
	relay := newRelay(t, db, js, "", "", func(o *notify.Options) { o.Registry = reg; o.Window = 256 })
	stopRelay := runRelay(t, relay)
	rec := newReceived()
	waitCons := consume(ctx, t, js, notify.DefaultStream, "", rec)

	require.NoError(t, writeEntries(ctx, db, n, 4, 50))
	eventually(t, "all entries consumed", hangGuard, func() bool { return rec.distinct() >= n })
	eventually(t, "relay caught up", hangGuard, func() bool {
		s := relay.Status()
		return s.NextIndex == n && s.Head == n
	})
	st := relay.Status()
	if !st.Leader || st.LagEntries != 0 || st.LagSeconds != 0 || st.Published != n {
		t.Errorf("status after catching up: %+v", st)
	}
	if got := counterValue(t, reg, "docket_notify_published_total"); got != n {
		t.Errorf("docket_notify_published_total = %v, want %d", got, n)
	}
	if c, err := testutil.GatherAndCount(reg, "docket_notify_commit_to_ack_seconds", "docket_notify_lag_entries", "docket_notify_lag_seconds"); err != nil || c != 3 {
		t.Errorf("metrics: %d, %v", c, err)
	}
	stopRelay()
	cancel()
	waitCons()
	waitInt()
	rec.check(t, n)
	if got := streamMsgs(t, js, notify.DefaultStream); got != n {
		t.Errorf("stream holds %d messages, want %d", got, n)
	}

	// --from-index maps to the right place in the stream.
	t.Run("FromIndex", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var got []int64
		err := notify.Consume(ctx, js, notify.ConsumeOptions{FromIndex: n - 5}, func(ev notify.Event) error {
			got = append(got, ev.Index)
			if len(got) == 5 {
				cancel()
			}
			return nil
		})
		require.NoError(t, err)
		if len(got) != 5 || got[0] != n-5 || got[4] != n-1 {
			t.Errorf("from index %d got %v", n-5, got)
		}
		s, _ := js.Stream(context.Background(), notify.DefaultStream)
		seq, err := notify.StartSequence(context.Background(), s, 1234)
		if err != nil || seq != 1235 {
			t.Errorf("StartSequence(1234) = %d, %v; want 1235", seq, err)
		}
	})
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	require.Failf(t, "metric not registered", "metric %s", name)
	return 0
}

// The relay killed mid-stream and restarted, while a second one competes
// for the lock: the consumer sees no gap and no duplicate.
func TestRelayKilledAndCompeting(t *testing.T) {
	t.Parallel()
	const n = 4000
	db := pgtest.New(t)
	srv := runNATS(t, -1, t.TempDir())
	js := connect(t, srv.ClientURL())
	ensureStream(t, js, notify.DefaultStream, "")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitInt := integrate(ctx, t, db)
	rec := newReceived()
	waitCons := consume(ctx, t, js, notify.DefaultStream, "", rec)
	// Small windows so that kills land mid-stream with acks outstanding.
	small := func(o *notify.Options) { o.Window = 64 }

	a := newRelay(t, db, js, "", "", small)
	b := newRelay(t, db, js, "", "", small)
	stopA := runRelay(t, a)
	stopB := runRelay(t, b)

	writeDone := make(chan error, 1)
	go func() { writeDone <- writeEntries(ctx, db, n, 4, 20) }()

	// Kill whichever relay leads, several times, and start a fresh one in
	// its place, or cut its database session; the other must take over
	// from the cursor.
	for kill := 0; kill < 4; kill++ {
		target := int64(n * (kill + 1) / 5)
		eventually(t, "progress before a kill", hangGuard, func() bool {
			return a.Status().NextIndex >= target || b.Status().NextIndex >= target
		})
		switch {
		case kill == 2:
			// Postgres ends the leader's session: its lock goes with it,
			// while its process (and NATS connection) lives on.
			var n int
			if err := db.Get(&n, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
				WHERE locktype = 'advisory' AND granted AND objsubid = 1
				AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
				AND ((classid::bigint << 32) | objid::bigint) = hashtextextended('docket.notify/DOCKET', 0)`); err != nil || n != 1 {
				require.Failf(t, "terminate the relay's session", "%d sessions, %v", n, err)
			}
		case a.Status().Leader:
			stopA()
			a = newRelay(t, db, js, "", "", small)
			stopA = runRelay(t, a)
		case b.Status().Leader:
			stopB()
			b = newRelay(t, db, js, "", "", small)
			stopB = runRelay(t, b)
		}
	}
	require.NoError(t, <-writeDone)
	eventually(t, "all entries consumed", hangGuard, func() bool { return rec.distinct() >= n })
	if a.Status().Leader && b.Status().Leader {
		t.Error("two relays lead at once")
	}
	stopA()
	stopB()
	cancel()
	waitCons()
	waitInt()
	rec.check(t, n)
	if got := streamMsgs(t, js, notify.DefaultStream); got != n {
		t.Errorf("stream holds %d messages, want %d", got, n)
	}
}

// A relay that was killed after JetStream stored a window but before its
// cursor moved, and comes back after the duplicate window has passed,
// must not publish that window again: it reads where the chain ends.
func TestRelayResumesFromStreamBeyondDuplicateWindow(t *testing.T) {
	t.Parallel()
	const n = 300
	db := pgtest.New(t)
	srv := runNATS(t, -1, t.TempDir())
	js := connect(t, srv.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := notify.EnsureStream(ctx, js, notify.StreamOptions{Duplicates: 100 * time.Millisecond})
	require.NoError(t, err)
	waitInt := integrate(ctx, t, db)
	require.NoError(t, writeEntries(ctx, db, n, 1, 50))
	eventually(t, "integrated", hangGuard, func() bool { return leafCount(t, db) == n })
	r := newRelay(t, db, js, "", "", nil)
	stop := runRelay(t, r)
	eventually(t, "published", hangGuard, func() bool { return r.Status().NextIndex == n })
	stop()
	// Forget the acks, as if the process died before saving its cursor.
	_, err = db.Exec(`UPDATE notify_cursor SET next_index = 100`)
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond) // let the duplicate window pass
	r2 := newRelay(t, db, js, "", "", nil)
	stop2 := runRelay(t, r2)
	eventually(t, "cursor restored", hangGuard, func() bool { return r2.Status().NextIndex == n })
	stop2()
	cancel()
	waitInt()
	if got := streamMsgs(t, js, notify.DefaultStream); got != n {
		t.Errorf("stream holds %d messages, want %d", got, n)
	}
	if st := r2.Status(); st.Published != 0 {
		t.Errorf("restarted relay published %d messages again", st.Published)
	}
}

// NATS stopped during a burst of writes and started again on the same
// port and store: writes go on meanwhile, and every entry arrives once.
func TestRelaySurvivesNATSRestart(t *testing.T) {
	t.Parallel()
	const n = 3000
	db := pgtest.New(t)
	dir := t.TempDir()
	srv := runNATS(t, -1, dir)
	port := srv.Addr().(*net.TCPAddr).Port
	url := srv.ClientURL()
	js := connect(t, url)
	ensureStream(t, js, notify.DefaultStream, "")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitInt := integrate(ctx, t, db)
	relay := newRelay(t, db, js, "", "", func(o *notify.Options) { o.Window = 128 })
	stopRelay := runRelay(t, relay)

	require.NoError(t, writeEntries(ctx, db, n/3, 2, 25))
	eventually(t, "first third published", hangGuard, func() bool { return relay.Status().NextIndex >= n/6 })
	srv.Shutdown()
	srv.WaitForShutdown()

	// Writes succeed with NATS down.
	require.NoError(t, writeEntries(ctx, db, n/3, 2, 25), "writes while NATS is down")
	eventually(t, "integrated while NATS is down", hangGuard, func() bool { return leafCount(t, db) == 2*n/3 })
	eventually(t, "relay reports the outage", hangGuard, func() bool {
		s := relay.Status()
		return s.Errors > 0 && s.LagEntries > 0
	})

	srv = runNATS(t, port, dir)
	require.NoError(t, writeEntries(ctx, db, n-2*(n/3), 2, 25))
	eventually(t, "relay caught up after NATS came back", hangGuard, func() bool {
		s := relay.Status()
		return s.NextIndex == n && s.LagEntries == 0
	})
	stopRelay()
	cancel()
	waitInt()

	readBack(t, connect(t, srv.ClientURL()), n, hangGuard)
}

// The machine's own NATS server, with a stream and subjects of this
// test's own so as not to meet anyone else's.
func TestRelayAgainstMachineNATS(t *testing.T) {
	t.Parallel()
	const url = "nats://127.0.0.1:4222"
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	require.NoError(t, err, "the machine's NATS server at %s is unreachable; scripts/services-up starts it", url)
	nc.Close()
	const n = 1000
	var b [4]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	stream, prefix := "DOCKET_TEST_"+strings.ToUpper(suffix), "dockettest"+suffix+"."

	db := pgtest.New(t)
	js := connect(t, url)
	ensureStream(t, js, stream, prefix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, stream)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitInt := integrate(ctx, t, db)
	relay := newRelay(t, db, js, stream, prefix, nil)
	stopRelay := runRelay(t, relay)
	rec := newReceived()
	waitCons := consume(ctx, t, js, stream, prefix, rec)
	require.NoError(t, writeEntries(ctx, db, n, 2, 20))
	eventually(t, "all entries consumed", hangGuard, func() bool { return rec.distinct() >= n })
	stopRelay()
	cancel()
	waitCons()
	waitInt()
	rec.check(t, n)
	if got := streamMsgs(t, js, stream); got != n {
		t.Errorf("stream holds %d messages, want %d", got, n)
	}
}

func TestEmbeddedServer(t *testing.T) {
	t.Parallel()
	url, dataDir := embedded(t)
	js, _ := asUser(t, url, notify.PublisherSeedFile(dataDir))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := notify.EnsureStream(ctx, js, notify.StreamOptions{})
	require.NoError(t, err)
	// Running set-up again updates in place.
	s, err := notify.EnsureStream(ctx, js, notify.StreamOptions{MaxAge: time.Hour})
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	if cfg.Storage != jetstream.FileStorage || cfg.MaxAge != time.Hour || cfg.Duplicates != notify.DefaultDuplicates || cfg.Subjects[0] != "docket.>" {
		t.Errorf("stream config: %+v", cfg)
	}
	ack, err := js.Publish(ctx, notify.Subject("decision.recorded"), []byte(`{}`))
	require.NoError(t, err, "publish")
	require.Equal(t, notify.DefaultStream, ack.Stream)
}

// With Setup, the elected relay creates the stream, and when the stream
// is deleted it creates it again and publishes the whole log into it.
func TestRelaySetsUpAndRecreatesStream(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	srv := runNATS(t, -1, t.TempDir())
	js := connect(t, srv.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitInt := integrate(ctx, t, db)
	relay := newRelay(t, db, js, "", "", func(o *notify.Options) { o.Setup = &notify.StreamOptions{MaxAge: time.Hour} })
	stop := runRelay(t, relay)
	require.NoError(t, writeEntries(ctx, db, 100, 1, 10))
	eventually(t, "published", hangGuard, func() bool { return relay.Status().NextIndex == 100 })
	require.NoError(t, js.DeleteStream(ctx, notify.DefaultStream))
	require.NoError(t, writeEntries(ctx, db, 50, 1, 10))
	eventually(t, "stream recreated and refilled", hangGuard, func() bool {
		s, err := js.Stream(ctx, notify.DefaultStream)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 150 && relay.Status().NextIndex == 150
	})
	stop()
	cancel()
	waitInt()
	rec := newReceived()
	cctx, ccancel := context.WithCancel(context.Background())
	wait := consume(cctx, t, js, notify.DefaultStream, "", rec)
	eventually(t, "all consumed", hangGuard, func() bool { return rec.distinct() >= 150 })
	ccancel()
	wait()
	rec.check(t, 150)
}

// A durable consumer starts at --from-index, filters by subject, and
// resumes after what it acknowledged.
func TestConsumeDurableResumes(t *testing.T) {
	t.Parallel()
	const n = 40
	db := pgtest.New(t)
	srv := runNATS(t, -1, t.TempDir())
	js := connect(t, srv.ClientURL())
	ensureStream(t, js, notify.DefaultStream, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitInt := integrate(ctx, t, db)
	relay := newRelay(t, db, js, "", "", nil)
	stop := runRelay(t, relay)
	require.NoError(t, writeEntries(ctx, db, n, 1, 5))
	eventually(t, "published", hangGuard, func() bool { return relay.Status().NextIndex == n })
	stop()
	cancel()
	waitInt()

	errStop := errors.New("stop")
	read := func(from int64, max int) []int64 {
		var got []int64
		cctx, ccancel := context.WithTimeout(context.Background(), hangGuard)
		defer ccancel()
		err := notify.Consume(cctx, js, notify.ConsumeOptions{Subject: "decision.recorded", Durable: "ops", FromIndex: from},
			func(ev notify.Event) error {
				if len(got) == max {
					return errStop // not acknowledged: the next run starts here
				}
				if ev.Type != "decision.recorded" {
					t.Errorf("subject filter let %s through", ev.Subject)
				}
				got = append(got, ev.Index)
				return nil
			})
		require.ErrorIs(t, err, errStop, "consume")
		return got
	}
	// writeEntries with one writer rotates the types: every 4th is decision.recorded.
	first := read(10, 3)
	require.Equal(t, []int64{12, 16, 20}, first, "first run")
	second := read(0, 2) // the durable keeps its place; from-index no longer applies
	require.Equal(t, []int64{24, 28}, second, "second run")
}
