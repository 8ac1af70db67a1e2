package notify

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/docket-dev/docket/audit"
)

// Header names set on every message.
const (
	headerMsgID         = jetstream.MsgIDHeader
	headerExpectLastID  = jetstream.ExpectedLastMsgIDHeader
	headerExpectLastSeq = jetstream.ExpectedLastSeqHeader
)

// Options tune a Relay. Only Origin is required.
type Options struct {
	// Origin is the log's origin (DOCKET_LOG_ORIGIN); message ids are <origin>/<index>.
	Origin string
	// Stream defaults to DefaultStream; it also names the cursor row and the lock.
	Stream string
	// SubjectPrefix defaults to SubjectPrefix ("docket.").
	SubjectPrefix string
	// Window is how many publishes may await their acks at once (default 1000).
	Window int
	// PollInterval is how often a caught-up relay looks for new leaves (default 20ms).
	PollInterval time.Duration
	// AckTimeout bounds the wait for a window's acks (default 5s).
	AckTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed window while
	// NATS is unreachable (defaults 100ms and 5s). AckTimeout+MaxBackoff is
	// the retry horizon the stream's duplicate window must cover.
	MinBackoff, MaxBackoff time.Duration
	// CursorInterval is the longest the saved cursor trails the acks
	// (default 100ms).
	CursorInterval time.Duration
	// ElectionInterval is how often a standby tries to become the relay (default 1s).
	ElectionInterval time.Duration
	// Setup, when set, has the elected relay create or update the stream
	// (Name and SubjectPrefix are taken from these options), and create
	// it again should it go missing; nil leaves the stream to the caller.
	Setup *StreamOptions
	// Registry receives the relay's metrics; nil registers none.
	Registry *prometheus.Registry
	Logger   *slog.Logger
}

func (o *Options) defaults() {
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	o.SubjectPrefix = prefixOr(o.SubjectPrefix)
	if o.Window <= 0 {
		o.Window = 1000
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 20 * time.Millisecond
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 5 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	if o.CursorInterval <= 0 {
		o.CursorInterval = 100 * time.Millisecond
	}
	if o.ElectionInterval <= 0 {
		o.ElectionInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Status is what the relay of this process knows, for /readyz. A standby
// (Leader false) reports the active relay's progress as read from Postgres.
type Status struct {
	Leader bool `json:"leader"`
	// NextIndex is the first index JetStream has not acknowledged.
	NextIndex int64 `json:"next_index"`
	// Head is the number of integrated leaves last seen.
	Head int64 `json:"head"`
	// LagEntries is Head - NextIndex.
	LagEntries int64 `json:"lag_entries"`
	// LagSeconds is how long ago the oldest unacknowledged entry was
	// staged; 0 when caught up.
	LagSeconds float64 `json:"lag_seconds"`
	// Published and Errors count acknowledged messages and failed windows
	// of this process.
	Published  uint64    `json:"published"`
	Errors     uint64    `json:"errors"`
	LastAck    time.Time `json:"last_ack,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	ObservedAt time.Time `json:"observed_at,omitzero"`
	// NATSConnected is this process's connection state.
	NATSConnected bool `json:"nats_connected"`
	// Foreign counts messages in the stream that this relay did not
	// publish (found behind it, or holding an entry's id with other
	// bytes); LastForeign is the latest. Only a NATS that lets others
	// publish to docket.> has any. The relay goes on past them.
	Foreign     uint64          `json:"foreign_messages,omitempty"`
	LastForeign *ForeignMessage `json:"last_foreign,omitempty"`
}

// ForeignMessage is a message in the stream that is not a genuine entry:
// its Nats-Msg-Id is not <origin>/<index> of a leaf with these exact bytes.
type ForeignMessage struct {
	StreamSeq uint64    `json:"stream_seq"`
	MsgID     string    `json:"msg_id"`
	Subject   string    `json:"subject"`
	Reason    string    `json:"reason"`
	SeenAt    time.Time `json:"seen_at"`
}

// Relay publishes integrated audit leaves to JetStream. See the package doc.
type Relay struct {
	db   *sqlx.DB
	js   jetstream.JetStream
	opts Options
	log  *slog.Logger
	m    *metrics

	mu           sync.Mutex
	st           Status
	pendingSince time.Time // staging time of the leaf at NextIndex, zero when caught up

	// Of the leading goroutine only:
	// salts maps an index whose plain id a foreign message took to that
	// message's stream sequence; the entry goes out as <origin>/<index>#<seq>.
	salts map[int64]uint64
	// repairFrom, when >= 0, is an index an impostor took while a window
	// was in flight: reconcile resumes there however far the stream got.
	repairFrom int64
	// foreignSeen keeps each foreign message from being counted twice.
	foreignSeen map[uint64]bool
}

// NewRelay makes a relay; Run starts it. Its metrics go to opts.Registry.
func NewRelay(db *sqlx.DB, js jetstream.JetStream, opts Options) (*Relay, error) {
	if opts.Origin == "" {
		return nil, errors.New("notify: relay needs the log origin")
	}
	opts.defaults()
	r := &Relay{db: db, js: js, opts: opts, log: opts.Logger.With(slog.String("component", "notify"), slog.String("stream", opts.Stream)),
		salts: map[int64]uint64{}, repairFrom: -1, foreignSeen: map[uint64]bool{}}
	m, err := newMetrics(opts.Registry, r.Status)
	if err != nil {
		return nil, err
	}
	r.m = m
	return r, nil
}

// Status reports lag and progress; it never blocks on I/O.
func (r *Relay) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.st
	s.NATSConnected = r.js.Conn().IsConnected()
	s.LagEntries = max(0, s.Head-s.NextIndex)
	if s.LagEntries > 0 && !r.pendingSince.IsZero() {
		s.LagSeconds = max(0, time.Since(r.pendingSince).Seconds())
	}
	return s
}

func (r *Relay) update(f func(*Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.st)
	r.st.ObservedAt = time.Now()
}

func (r *Relay) fail(err error) {
	r.m.errors.Inc()
	r.update(func(s *Status) { s.Errors++; s.LastError = err.Error() })
}

// Run campaigns for the relay's advisory lock and, while holding it,
// publishes. It returns nil when ctx ends.
func (r *Relay) Run(ctx context.Context) error {
	bo := r.newBackoff()
	for {
		led, err := r.term(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := r.opts.ElectionInterval
		switch {
		case err != nil:
			r.log.Warn("notify relay stopped leading", slog.Any("err", err))
			r.fail(err)
			wait = bo.next()
		case led:
			bo.reset()
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// backoff doubles the wait after each failure, from MinBackoff up to
// MaxBackoff, and starts again from MinBackoff after a success.
type backoff struct{ cur, lo, hi time.Duration }

func (r *Relay) newBackoff() *backoff {
	return &backoff{cur: r.opts.MinBackoff, lo: r.opts.MinBackoff, hi: r.opts.MaxBackoff}
}

// next returns the wait due now and doubles the one after.
func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(2*b.cur, b.hi)
	return d
}

// reset reports whether there had been failures, and forgets them.
func (b *backoff) reset() bool {
	raised := b.cur != b.lo
	b.cur = b.lo
	return raised
}

// lockSQL elects one relay per stream; keying on the stream keeps relays
// of different streams (tests) from excluding each other.
const lockSQL = `SELECT pg_try_advisory_lock(hashtextextended('docket.notify/' || $1, 0))`

// term holds one dedicated connection: the advisory lock is a property of
// that session, so Postgres frees it when this process or its connection
// dies, and every write of the leader goes through the same session.
func (r *Relay) term(ctx context.Context) (led bool, err error) {
	conn, err := r.db.Connx(ctx)
	if err != nil {
		return false, fmt.Errorf("notify: connect: %w", err)
	}
	var got bool
	if err := conn.QueryRowxContext(ctx, lockSQL, r.opts.Stream).Scan(&got); err != nil {
		conn.Close()
		return false, fmt.Errorf("notify: try lock: %w", err)
	}
	if !got {
		r.observe(ctx, conn)
		conn.Close()
		return false, nil
	}
	defer func() {
		// Stepped down before the lock goes, so that a successor's
		// "elected" never precedes it: the crash harness checks from
		// these two lines (and the leader gauge) that terms never overlap.
		r.update(func(s *Status) { s.Leader = false })
		r.m.leader.Set(0)
		r.log.Info("notify relay stepped down")
		// Never hand a connection holding the lock back to the pool:
		// discarding it ends the session and so releases the lock.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
	}()
	// The cursor is a hint, not the truth: after a crash the relay re-reads
	// where the stream's chain ends. So its updates need not wait for the
	// WAL flush, which would otherwise add a disk sync to every window.
	if _, err := conn.ExecContext(ctx, `SET synchronous_commit = off`); err != nil {
		return true, fmt.Errorf("%w: %w", errDatabase, err)
	}
	r.update(func(s *Status) { s.Leader = true })
	r.m.leader.Set(1)
	r.log.Info("notify relay elected")
	return true, r.lead(ctx, conn)
}

// observe refreshes a standby's view of the active relay's progress.
func (r *Relay) observe(ctx context.Context, q sqlx.QueryerContext) {
	var next int64
	if err := sqlx.GetContext(ctx, q, &next, `SELECT coalesce((SELECT next_index FROM notify_cursor WHERE stream = $1), 0)`, r.opts.Stream); err != nil {
		return
	}
	r.refresh(ctx, q, next)
}

// refresh reads how far the log is ahead of next, for Status, when the
// relay cannot learn it from its own reads (a standby, or NATS down).
func (r *Relay) refresh(ctx context.Context, q sqlx.QueryerContext, next int64) {
	head, err := audit.LeafCount(ctx, q)
	if err != nil {
		return
	}
	var since time.Time
	if head > next {
		ls, err := audit.Leaves(ctx, q, next, 1)
		if err != nil {
			return
		}
		if len(ls) == 1 {
			since = ls[0].CreatedAt
		}
	}
	r.mu.Lock()
	r.st.NextIndex, r.st.Head, r.pendingSince, r.st.ObservedAt = next, head, since, time.Now()
	r.mu.Unlock()
}

// leader is what a leading relay knows of where it is.
type leader struct {
	conn    *sqlx.Conn
	next    int64     // the first index JetStream has not acknowledged
	saved   int64     // the cursor as last saved
	savedAt time.Time // when it was
	prev    tail      // what the stream holds last
	synced  bool      // whether prev and next come from the stream
	ensured bool      // whether the stream has been set up
	bo      *backoff
}

// lead publishes until ctx ends or Postgres fails; NATS failures are
// retried here, with backoff, without giving up the lock. Each turn:
// learn from the stream where to go on (after a start or a failure),
// read a window of leaves, publish it, save the cursor when due.
func (r *Relay) lead(ctx context.Context, conn *sqlx.Conn) error {
	next, err := r.loadCursor(ctx, conn)
	if err != nil {
		return err
	}
	r.update(func(s *Status) { s.NextIndex = next })
	ld := &leader{conn: conn, next: next, saved: next, savedAt: time.Now(), ensured: r.opts.Setup == nil, bo: r.newBackoff()}
	defer func() {
		if ld.saved != ld.next {
			_ = r.saveCursor(ctx, conn, ld.next)
		}
	}()
	for ctx.Err() == nil {
		if !ld.synced {
			if err := r.resync(ctx, ld); err != nil {
				if errors.Is(err, errDatabase) {
					return err
				}
				r.retry(ctx, ld, err, "notify: cannot publish, retrying")
				continue
			}
		}
		leaves, err := audit.Leaves(ctx, conn, ld.next, r.opts.Window)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("notify: %w", err)
		}
		r.noteRead(ctx, conn, ld.next, leaves)
		perr := r.publishWindow(ctx, ld, leaves)
		if errors.Is(perr, errResend) {
			continue
		}
		if err := r.saveCursorIfDue(ctx, ld, perr != nil || len(leaves) == 0); err != nil {
			return err
		}
		r.pace(ctx, ld, len(leaves), perr)
	}
	return nil
}

// pace ends a turn of lead: wait when the log has no more to publish,
// back off after a failed window, else go on at once.
func (r *Relay) pace(ctx context.Context, ld *leader, read int, perr error) {
	switch {
	case read == 0:
		sleep(ctx, r.opts.PollInterval)
	case perr != nil:
		if ctx.Err() != nil {
			return
		}
		// Futures of this window may never resolve; drop them so they
		// do not fill the client's pending limit. Whatever of the window
		// did reach the stream is found by resync.
		r.js.CleanupPublisher()
		r.retry(ctx, ld, perr, "notify: publish failed, restarting from the cursor")
	default:
		if ld.bo.reset() {
			r.update(func(s *Status) { s.LastError = "" })
			r.log.Info("notify: publishing again", slog.Int64("next_index", ld.next))
		}
		if read < r.opts.Window {
			sleep(ctx, r.opts.PollInterval)
		}
	}
}

// resync learns from the stream where to go on, and saves that cursor.
func (r *Relay) resync(ctx context.Context, ld *leader) error {
	n, p, err := r.reconcile(ctx, ld.conn, ld.next, &ld.ensured)
	if err != nil {
		return err
	}
	if n != ld.next {
		if err := r.saveCursor(ctx, ld.conn, n); err != nil {
			return err
		}
		ld.next, ld.saved, ld.savedAt = n, n, time.Now()
		r.update(func(s *Status) { s.NextIndex = n })
	}
	ld.prev, ld.synced = p, true
	return nil
}

// retry reports a NATS failure and waits out the backoff; the next turn
// resyncs with the stream.
func (r *Relay) retry(ctx context.Context, ld *leader, err error, msg string) {
	r.fail(err)
	wait := ld.bo.next()
	r.log.Warn(msg, slog.Int64("next_index", ld.next), slog.Any("err", err), slog.Duration("backoff", wait))
	ld.synced = false
	r.refresh(ctx, ld.conn, ld.next)
	sleep(ctx, wait)
}

// errResend says a window must go again at once (an impostor took an id).
var errResend = errors.New("notify: resend the window")

// publishWindow publishes leaves and moves ld past what JetStream acked.
func (r *Relay) publishWindow(ctx context.Context, ld *leader, leaves []audit.Leaf) error {
	if len(leaves) == 0 {
		return nil
	}
	acked, lastSeq, err := r.publish(ctx, leaves, ld.prev)
	if acked > 0 {
		ld.next += int64(acked)
		ld.prev = tail{id: r.msgID(ld.next - 1), seq: lastSeq, replicated: ld.prev.replicated}
		r.forgetSalts(ld.next)
	}
	var imp *impostorError
	if errors.As(err, &imp) {
		// The rest of the window may already sit behind the impostor:
		// send it all again, in order, under ids that cannot collide,
		// from the index it took.
		for i := imp.index; i <= leaves[len(leaves)-1].Index; i++ {
			r.salts[i] = imp.seq
		}
		r.repairFrom = imp.index
		r.js.CleanupPublisher()
		ld.synced = false
		return errResend
	}
	return err
}

// saveCursorIfDue saves the cursor at most every CursorInterval rather
// than per window (under load a write per window costs more than the
// publish, and a stale cursor only means resync skips ahead), and at once
// when idle or failing.
func (r *Relay) saveCursorIfDue(ctx context.Context, ld *leader, now bool) error {
	if ld.saved == ld.next || !(now || time.Since(ld.savedAt) >= r.opts.CursorInterval) {
		return nil
	}
	if err := r.saveCursor(ctx, ld.conn, ld.next); err != nil {
		return err
	}
	ld.saved, ld.savedAt = ld.next, time.Now()
	return nil
}

// noteRead keeps the lag figures current from what the relay just read.
func (r *Relay) noteRead(ctx context.Context, q sqlx.QueryerContext, next int64, leaves []audit.Leaf) {
	head := next + int64(len(leaves))
	if len(leaves) == r.opts.Window {
		if h, err := audit.LeafCount(ctx, q); err == nil {
			head = h
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Head = max(head, r.st.Head)
	r.pendingSince = time.Time{}
	if len(leaves) > 0 {
		r.pendingSince = leaves[0].CreatedAt
	}
	r.st.ObservedAt = time.Now()
}

// msgID is <origin>/<index>, or <origin>/<index>#<seq> when a foreign
// message at stream sequence seq holds the plain id (see the package doc).
func (r *Relay) msgID(index int64) string {
	id := r.opts.Origin + "/" + strconv.FormatInt(index, 10)
	if seq, ok := r.salts[index]; ok {
		id += "#" + strconv.FormatUint(seq, 10)
	}
	return id
}

// forgetSalts drops the salts of indices below next: those entries are in.
func (r *Relay) forgetSalts(next int64) {
	for k := range r.salts {
		if k < next {
			delete(r.salts, k)
		}
	}
}

// tail is the stream's last message as the relay knows it: its
// Nats-Msg-Id (empty when unknown) and sequence (0: the stream is empty),
// and whether the stream is replicated (a cluster), where messages
// expect the sequence rather than the id.
type tail struct {
	id         string
	seq        uint64
	replicated bool
}

// publish sends a window in index order and waits for the acks in order.
// It returns how many leaves from the start were acknowledged, and the
// stream sequence of the last of them. Each message expects its
// predecessor to be the stream's last, so when one is lost the rest of
// the window fails instead of leaving a gap: on one server by id
// (Nats-Expected-Last-Msg-Id), on a replicated stream by sequence
// (Nats-Expected-Last-Sequence; the window lands in consecutive
// sequences after prev). A clustered stream's leader checks the sequence
// before it proposes a message, but the id only when each replica
// applies it, and there a mismatch (the rest of a window whose head was
// lost with the old leader, replayed on the old leader's return) is a
// critical write error that stops that replica, or the stream
// (nats-server 2.15). One server checks the sequence before duplicates,
// which would hide an impostor from checkDuplicate; and the sequence
// alone lets the rest of a window land after a foreign message that took
// a lost one's sequence, which only a NATS letting others publish to
// docket.> allows.
func (r *Relay) publish(ctx context.Context, leaves []audit.Leaf, prev tail) (int, uint64, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(leaves))
	var sendErr error
	for _, l := range leaves {
		id := r.msgID(l.Index)
		h := nats.Header{
			headerMsgID: []string{id},
			HeaderIndex: []string{strconv.FormatInt(l.Index, 10)},
		}
		switch {
		case prev.replicated:
			h[headerExpectLastSeq] = []string{strconv.FormatUint(prev.seq+uint64(len(futures)), 10)}
		case prev.id != "":
			h[headerExpectLastID] = []string{prev.id}
		}
		f, err := r.js.PublishMsgAsync(&nats.Msg{Subject: r.opts.SubjectPrefix + l.Type, Data: l.Data, Header: h})
		if err != nil {
			sendErr = fmt.Errorf("notify: publish index %d: %w", l.Index, err)
			break
		}
		futures = append(futures, f)
		prev.id = id
	}
	timer := time.NewTimer(r.opts.AckTimeout)
	defer timer.Stop()
	var stream jetstream.Stream // looked up at the first duplicate
	lastSeq := prev.seq
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				// A re-send of ours, or a foreign message that took the id?
				if err := r.checkDuplicate(ctx, &stream, leaves[i], f.Msg(), ack.Sequence); err != nil {
					return i, lastSeq, err
				}
				r.m.duplicates.Inc()
			}
			lastSeq = ack.Sequence
			now := time.Now()
			r.m.published.Inc()
			r.m.commitToAck.Observe(now.Sub(leaves[i].CreatedAt).Seconds())
			r.update(func(s *Status) {
				s.Published++
				s.LastAck = now
				s.NextIndex = leaves[i].Index + 1
			})
		case err := <-f.Err():
			return i, lastSeq, fmt.Errorf("notify: ack for index %d: %w", leaves[i].Index, err)
		case <-timer.C:
			return i, lastSeq, fmt.Errorf("notify: no ack for index %d within %s", leaves[i].Index, r.opts.AckTimeout)
		case <-ctx.Done():
			return i, lastSeq, ctx.Err()
		}
	}
	return len(futures), lastSeq, sendErr
}

// impostorError is a duplicate ack for a message the stream holds with
// other bytes: a foreign message took the entry's id.
type impostorError struct {
	index int64
	seq   uint64
}

func (e *impostorError) Error() string {
	return fmt.Sprintf("notify: a foreign message at stream sequence %d holds the id of index %d", e.seq, e.index)
}

// checkDuplicate reads what JetStream holds under a duplicate's id. The
// same subject and bytes are our own earlier send; anything else is an
// impostor, reported and answered with an *impostorError.
func (r *Relay) checkDuplicate(ctx context.Context, stream *jetstream.Stream, l audit.Leaf, sent *nats.Msg, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.AckTimeout)
	defer cancel()
	if *stream == nil {
		s, err := r.js.Stream(ctx, r.opts.Stream)
		if err != nil {
			return fmt.Errorf("notify: check duplicate of index %d: %w", l.Index, err)
		}
		*stream = s
	}
	m, err := (*stream).GetMsg(ctx, seq)
	if err != nil {
		return fmt.Errorf("notify: check duplicate of index %d at sequence %d: %w", l.Index, seq, err)
	}
	if m.Subject == sent.Subject && string(m.Data) == string(l.Data) && m.Header.Get(HeaderIndex) == strconv.FormatInt(l.Index, 10) {
		return nil
	}
	r.noteForeign(m, fmt.Sprintf("holds the id of index %d with other content", l.Index))
	return &impostorError{index: l.Index, seq: seq}
}

// noteForeign reports a foreign message once: log, metric and Status.
func (r *Relay) noteForeign(m *jetstream.RawStreamMsg, reason string) {
	if r.foreignSeen[m.Sequence] {
		return
	}
	if len(r.foreignSeen) >= 100_000 {
		clear(r.foreignSeen) // bounded memory; at worst one is counted twice
	}
	r.foreignSeen[m.Sequence] = true
	id := m.Header.Get(headerMsgID)
	r.m.foreign.Inc()
	r.log.Warn("notify: stream holds a message this relay did not publish; delivering the log past it",
		slog.Uint64("stream_seq", m.Sequence), slog.String("msg_id", id), slog.String("subject", m.Subject), slog.String("reason", reason))
	r.update(func(s *Status) {
		s.Foreign++
		s.LastForeign = &ForeignMessage{StreamSeq: m.Sequence, MsgID: id, Subject: m.Subject, Reason: reason, SeenAt: time.Now()}
	})
}

// errDatabase marks failures of the relay's own session: they end its term.
var errDatabase = errors.New("notify: database")

// reconcile learns from the stream where to go on after a failure or an
// election. Because every message expected its predecessor, the stream
// holds a gapless run of indices ending in its last message; that message
// tells how far the previous attempt got, however long ago it was sent.
func (r *Relay) reconcile(ctx context.Context, conn *sqlx.Conn, next int64, ensured *bool) (int64, tail, error) {
	if !r.js.Conn().IsConnected() {
		// Requests would wait in the reconnect buffer; fail fast so that
		// the outage shows in the errors and the backoff applies.
		return next, tail{}, fmt.Errorf("notify: NATS is %s", r.js.Conn().Status())
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.AckTimeout)
	defer cancel()
	stream, info, err := r.streamState(ctx, ensured)
	if err != nil {
		return next, tail{}, err
	}
	replicated := info.Config.Replicas > 1
	if info.State.LastSeq == 0 {
		if next > 0 {
			// A new stream (recreated, or another NATS): every entry must
			// still reach it.
			r.log.Warn("notify: stream is empty, publishing the log from index 0", slog.Int64("cursor", next))
		}
		return 0, tail{replicated: replicated}, nil
	}
	last, err := stream.GetMsg(ctx, info.State.LastSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// Retention removed it; the cursor is all there is to go on, and
		// the duplicate window the only guard for the next message.
		return next, tail{}, nil
	}
	if err != nil {
		return next, tail{}, fmt.Errorf("notify: read stream's last message: %w", err)
	}
	lastID := last.Header.Get(headerMsgID)
	k, why, err := r.genuine(ctx, conn, last)
	if err != nil {
		return next, tail{}, err
	}
	if why != "" {
		// The tail is not ours. Go on after the newest genuine entry
		// behind it, and expect the stream's actual last message, so that
		// the chain goes on past the foreign messages.
		k, err = r.pastForeign(ctx, conn, stream, info.State, last, why, next)
		if err != nil {
			return next, tail{}, err
		}
	}
	n := k + 1
	switch {
	case k+1 > next:
		r.log.Info("notify: stream is ahead of the cursor; skipping what it already holds", slog.Int64("cursor", next), slog.Int64("next_index", k+1))
	case k+1 < next:
		r.log.Warn("notify: stream is behind the cursor; publishing the missing entries again", slog.Int64("cursor", next), slog.Int64("next_index", k+1))
	}
	if r.repairFrom >= 0 {
		// An impostor took an index while its window was in flight: what
		// followed it goes out again, in order, under salted ids.
		n = min(n, r.repairFrom)
		r.repairFrom = -1
	}
	return n, tail{id: lastID, seq: info.State.LastSeq, replicated: replicated}, nil
}

// streamState sets the stream up when it has not been yet (or has gone),
// and reads its state, in one request once it is set up.
func (r *Relay) streamState(ctx context.Context, ensured *bool) (jetstream.Stream, *jetstream.StreamInfo, error) {
	if !*ensured {
		so := *r.opts.Setup
		so.Name, so.SubjectPrefix = r.opts.Stream, r.opts.SubjectPrefix
		if _, err := EnsureStream(ctx, r.js, so); err != nil {
			return nil, nil, err
		}
		*ensured = true
	}
	stream, err := r.js.Stream(ctx, r.opts.Stream)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) && r.opts.Setup != nil {
			*ensured = false
		}
		return nil, nil, fmt.Errorf("notify: stream %s: %w", r.opts.Stream, err)
	}
	// Looking the stream up read its state already: no second request.
	return stream, stream.CachedInfo(), nil
}

// foreignScan bounds how far reconcile looks behind a foreign tail for
// the newest genuine entry.
func (r *Relay) foreignScan() uint64 { return uint64(max(1000, 2*r.opts.Window)) }

// pastForeign walks back from a foreign last message to the newest
// genuine entry and returns its index (next-1, the cursor, when there is
// none within the scan). Every foreign message on the way is reported,
// and one holding the plain id of an index not yet delivered gets that
// index's salt, so JetStream's duplicate window cannot swallow the entry.
func (r *Relay) pastForeign(ctx context.Context, conn *sqlx.Conn, stream jetstream.Stream, st jetstream.StreamState, last *jetstream.RawStreamMsg, why string, next int64) (int64, error) {
	type foreign struct {
		m   *jetstream.RawStreamMsg
		why string
	}
	found := []foreign{{last, why}}
	k := next - 1
	for seq, n := last.Sequence-1, uint64(1); seq >= st.FirstSeq && seq > 0 && n < r.foreignScan(); seq, n = seq-1, n+1 {
		m, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("notify: read stream message %d: %w", seq, err)
		}
		g, why, err := r.genuine(ctx, conn, m)
		if err != nil {
			return 0, err
		}
		if why == "" {
			k = g
			break
		}
		found = append(found, foreign{m, why})
	}
	for i := len(found) - 1; i >= 0; i-- {
		f := found[i]
		r.noteForeign(f.m, f.why)
		if idx, ok := r.parseID(f.m.Header.Get(headerMsgID)); ok && idx > k {
			r.salts[idx] = f.m.Sequence
		}
	}
	return k, nil
}

// genuine tells whether m is an entry of this log as the relay publishes
// it: id <origin>/<k>[#<seq>], header Docket-Index k, subject
// docket.<type>, and the bytes of leaf k. why says what fails; a database
// failure is an error.
func (r *Relay) genuine(ctx context.Context, conn *sqlx.Conn, m *jetstream.RawStreamMsg) (int64, string, error) {
	id := m.Header.Get(headerMsgID)
	k, ok := r.parseID(id)
	if !ok {
		return 0, "its id is not " + r.opts.Origin + "/<index>", nil
	}
	if m.Header.Get(HeaderIndex) != strconv.FormatInt(k, 10) {
		return k, "its Docket-Index header does not match its id", nil
	}
	ls, err := audit.Leaves(ctx, conn, k, 1)
	if err != nil {
		return 0, "", fmt.Errorf("%w: %w", errDatabase, err)
	}
	switch {
	case len(ls) == 0 || ls[0].Index != k:
		return k, fmt.Sprintf("the log has no index %d", k), nil
	case string(ls[0].Data) != string(m.Data) || m.Subject != r.opts.SubjectPrefix+ls[0].Type:
		return k, fmt.Sprintf("its content is not the log's index %d", k), nil
	}
	return k, "", nil
}

// parseID reads <origin>/<index> and <origin>/<index>#<seq>.
func (r *Relay) parseID(id string) (int64, bool) {
	rest, ok := strings.CutPrefix(id, r.opts.Origin+"/")
	if !ok {
		return 0, false
	}
	return ParseIndexID(rest)
}

// ParseIndexID reads what follows "<origin>/" in a message id: <index>,
// or <index>#<seq> for an entry the relay sent again under a salted id
// because a foreign message at stream sequence seq held the plain one.
func ParseIndexID(s string) (int64, bool) {
	idx, salt, salted := strings.Cut(s, "#")
	if salted {
		if _, err := strconv.ParseUint(salt, 10, 64); err != nil {
			return 0, false
		}
	}
	k, err := strconv.ParseInt(idx, 10, 64)
	return k, err == nil && k >= 0 && strconv.FormatInt(k, 10) == idx
}

func (r *Relay) loadCursor(ctx context.Context, conn *sqlx.Conn) (int64, error) {
	var next int64
	err := conn.QueryRowxContext(ctx, `
		INSERT INTO notify_cursor (stream, next_index) VALUES ($1, 0)
		ON CONFLICT (stream) DO UPDATE SET stream = excluded.stream
		RETURNING next_index`, r.opts.Stream).Scan(&next)
	if err != nil {
		return 0, fmt.Errorf("%w: load cursor: %w", errDatabase, err)
	}
	return next, nil
}

func (r *Relay) saveCursor(ctx context.Context, conn *sqlx.Conn, next int64) error {
	// Acks already received should not be thrown away by a shutdown.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := conn.ExecContext(ctx, `UPDATE notify_cursor SET next_index = $2, updated_at = now() WHERE stream = $1`, r.opts.Stream, next)
	if err != nil {
		return fmt.Errorf("%w: save cursor: %w", errDatabase, err)
	}
	return nil
}

// sleep waits d or until ctx ends, reporting whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
