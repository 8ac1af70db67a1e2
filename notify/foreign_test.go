package notify_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/pgtest"
	"github.com/docket-dev/docket/notify"
)

// These tests play a NATS misconfigured before this change: anyone may
// publish to docket.> (an in-process server without authorization).

type foreignSetup struct {
	log *logBuffer
	db  *sqlx.DB
	js  jetstream.JetStream
	reg *prometheus.Registry
	ctx context.Context
}

func setupForeign(t *testing.T) *foreignSetup {
	t.Helper()
	db := pgtest.New(t)
	srv := runNATS(t, -1, t.TempDir())
	js := connect(t, srv.ClientURL())
	ensureStream(t, js, notify.DefaultStream, "")
	ctx, cancel := context.WithCancel(context.Background())
	wait := integrate(ctx, t, db)
	t.Cleanup(func() { cancel(); wait() })
	return &foreignSetup{log: &logBuffer{}, db: db, js: js, reg: prometheus.NewRegistry(), ctx: ctx}
}

// logBuffer collects a relay's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// relay runs a relay with its own registry until the test ends.
func (s *foreignSetup) relay(t *testing.T) (*notify.Relay, func()) {
	t.Helper()
	s.reg = prometheus.NewRegistry()
	r := newRelay(t, s.db, s.js, "", "", func(o *notify.Options) {
		o.Registry, o.Window = s.reg, 8
		o.Logger = slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	return r, runRelay(t, r)
}

// write appends n entries and waits until r has published up to total.
func (s *foreignSetup) write(t *testing.T, r *notify.Relay, n int, total int64) {
	t.Helper()
	require.NoError(t, writeEntries(s.ctx, s.db, n, 1, 3))
	require.Eventually(t, func() bool { return r.Status().NextIndex == total }, hangGuard, 10*time.Millisecond,
		"relay stalled: %+v", r.Status())
}

// inject publishes a foreign message straight into the stream.
func (s *foreignSetup) inject(t *testing.T, id, index, data string) {
	t.Helper()
	h := nats.Header{}
	if id != "" {
		h.Set(jetstream.MsgIDHeader, id)
	}
	if index != "" {
		h.Set(notify.HeaderIndex, index)
	}
	_, err := s.js.PublishMsg(shortCtx(t), &nats.Msg{Subject: notify.Subject("decision.recorded"), Header: h, Data: []byte(data)})
	require.NoError(t, err)
}

// stored is every message of the stream, in sequence order.
func (s *foreignSetup) stored(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	st, err := s.js.Stream(shortCtx(t), notify.DefaultStream)
	require.NoError(t, err)
	info, err := st.Info(shortCtx(t))
	require.NoError(t, err)
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(shortCtx(t), seq)
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

// requireGenuineRun checks that, from stream position `after` on, the
// genuine copies of indices from..to-1 appear, the last copy of each in
// index order, and that every one before `after` is the log's too.
func (s *foreignSetup) requireGenuineRun(t *testing.T, msgs []*jetstream.RawStreamMsg, after int, from, to int64) {
	t.Helper()
	leaves, err := audit.Leaves(context.Background(), s.db, 0, int(to))
	require.NoError(t, err)
	require.Len(t, leaves, int(to))
	lastPos := map[int64]int{}
	for pos, m := range msgs {
		k, err := strconv.ParseInt(m.Header.Get(notify.HeaderIndex), 10, 64)
		if err != nil || k >= to || string(m.Data) != string(leaves[k].Data) {
			continue // foreign
		}
		lastPos[k] = pos
	}
	prev := after
	for k := from; k < to; k++ {
		pos, ok := lastPos[k]
		require.True(t, ok, "index %d never reached the stream", k)
		require.Greater(t, pos, prev, "index %d is at stream position %d, before the previous entry or the foreign message (%d)", k, pos, prev)
		prev = pos
	}
}

// A foreign message with a high id (<origin>/999999) left at the tail
// before the relay starts does not stall it; it is reported.
func TestRelayGoesOnPastForeignHighID(t *testing.T) {
	t.Parallel()
	s := setupForeign(t)
	r, stop := s.relay(t)
	s.write(t, r, 10, 10)
	stop()
	s.inject(t, testOrigin+"/999999", "999999", `{"forged":true}`)

	r, _ = s.relay(t)
	s.write(t, r, 10, 20)
	st := r.Status()
	require.Equal(t, uint64(1), st.Foreign, "%+v", st)
	require.NotNil(t, st.LastForeign)
	require.Equal(t, testOrigin+"/999999", st.LastForeign.MsgID)
	require.Equal(t, uint64(11), st.LastForeign.StreamSeq)
	require.Equal(t, "docket.decision.recorded", st.LastForeign.Subject)
	require.Equal(t, 1.0, counterValue(t, s.reg, "docket_notify_foreign_messages_total"))
	require.Contains(t, s.log.String(), `level=WARN msg="notify: stream holds a message this relay did not publish; delivering the log past it" component=notify stream=DOCKET stream_seq=11 msg_id=test.docket/audit/999999 subject=docket.decision.recorded`)
	// /readyz shows the relay's Status as JSON.
	raw, err := json.Marshal(st)
	require.NoError(t, err)
	require.Contains(t, string(raw), `"foreign_messages":1,"last_foreign":{"stream_seq":11,"msg_id":"test.docket/audit/999999"`)

	msgs := s.stored(t)
	require.Len(t, msgs, 21)
	s.requireGenuineRun(t, msgs, 10, 10, 20)

	// And while it runs: another one, then more entries.
	s.inject(t, testOrigin+"/999998", "999998", `{"forged":true}`)
	s.write(t, r, 5, 25)
	require.Equal(t, uint64(2), r.Status().Foreign)
	msgs = s.stored(t)
	require.Len(t, msgs, 27)
	s.requireGenuineRun(t, msgs, 21, 20, 25)
}

// An impostor: a foreign message with the id of the next index and other
// bytes. JetStream's duplicate window would drop the real entry; the
// relay sends it under a salted id, after the impostor, in order.
func TestRelayGoesOnPastImpostor(t *testing.T) {
	t.Parallel()
	s := setupForeign(t)
	r, stop := s.relay(t)
	s.write(t, r, 10, 10)
	stop()
	s.inject(t, testOrigin+"/10", "10", `{"forged":true}`)

	r, _ = s.relay(t)
	s.write(t, r, 10, 20)
	msgs := s.stored(t)
	require.Len(t, msgs, 21)
	require.Equal(t, `{"forged":true}`, string(msgs[10].Data))
	s.requireGenuineRun(t, msgs, 10, 10, 20)
	require.Equal(t, testOrigin+"/10#11", msgs[11].Header.Get(jetstream.MsgIDHeader))
	require.Equal(t, uint64(1), r.Status().Foreign)

	// A consumer sees the impostor and then the genuine entry, both
	// well-formed: the log's inclusion proof tells them apart.
	var got []int64
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	require.NoError(t, notify.Consume(ctx, s.js, notify.ConsumeOptions{FromIndex: 0}, func(ev notify.Event) error {
		if got = append(got, ev.Index); len(got) == 21 {
			cancel()
		}
		return nil
	}))
	require.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, got)
}

// The same impostor arriving while the relay runs, caught up: the
// duplicate ack gives it away, and the entry goes out again after it.
func TestRelayGoesOnPastImpostorWhileRunning(t *testing.T) {
	t.Parallel()
	s := setupForeign(t)
	r, _ := s.relay(t)
	s.write(t, r, 10, 10)
	s.inject(t, testOrigin+"/10", "10", `{"forged":true}`)
	s.write(t, r, 10, 20)
	require.Eventually(t, func() bool { return r.Status().Foreign == 1 }, hangGuard, 10*time.Millisecond)
	msgs := s.stored(t)
	require.Equal(t, `{"forged":true}`, string(msgs[10].Data))
	s.requireGenuineRun(t, msgs, 10, 10, 20)
}

// Messages with no id, or an unrelated one, are no stall either; a
// consumer is told of the malformed one and skips it.
func TestRelayGoesOnPastUnrelatedMessages(t *testing.T) {
	t.Parallel()
	s := setupForeign(t)
	r, _ := s.relay(t)
	s.write(t, r, 5, 5)
	s.inject(t, "", "", `no id`)
	s.write(t, r, 5, 10)
	s.inject(t, "someone-else/1", "", `other id`)
	s.write(t, r, 5, 15)
	require.Equal(t, uint64(2), r.Status().Foreign)
	msgs := s.stored(t)
	require.Len(t, msgs, 17)
	s.requireGenuineRun(t, msgs, 5, 5, 10)
	s.requireGenuineRun(t, msgs, 11, 10, 15)

	var got []int64
	var skipped []notify.Skipped
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	require.NoError(t, notify.Consume(ctx, s.js, notify.ConsumeOptions{FromIndex: 0, OnSkip: func(sk notify.Skipped) { skipped = append(skipped, sk) }},
		func(ev notify.Event) error {
			if got = append(got, ev.Index); len(got) == 15 {
				cancel()
			}
			return nil
		}))
	require.Len(t, got, 15)
	for i, k := range got {
		require.Equal(t, int64(i), k)
	}
	require.Len(t, skipped, 2)
	require.Equal(t, uint64(6), skipped[0].StreamSeq)
	require.Equal(t, "someone-else/1", skipped[1].MsgID)
}
