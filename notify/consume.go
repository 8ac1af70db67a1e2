package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Event is one audit entry as read from the stream.
type Event struct {
	Index     int64
	Subject   string
	Type      string // the entry type: Subject without "docket."
	MsgID     string
	Data      []byte // the entry's exact bytes
	StreamSeq uint64
	Published time.Time
}

// ConsumeOptions select what Consume reads.
type ConsumeOptions struct {
	Stream string // default DefaultStream
	// Subject filters: "decision.reversed" or "docket.decision.reversed";
	// empty reads everything.
	Subject string
	// SubjectPrefix defaults to SubjectPrefix ("docket.").
	SubjectPrefix string
	// FromIndex is the first audit index wanted; negative means only
	// entries published from now on. A durable consumer that already
	// exists keeps its own position and ignores it.
	FromIndex int64
	// Durable names a durable consumer whose position the server keeps
	// across runs (acknowledged explicitly); empty uses an ordered,
	// ephemeral consumer.
	Durable string
	// OnSkip, when set, hears of each message Consume passes over because
	// it is not a well-formed entry (see Skipped); only a NATS that lets
	// others publish to docket.> has such messages.
	OnSkip func(Skipped)
}

// Skipped is a message in the stream that is not a well-formed entry:
// no Docket-Index, or a Nats-Msg-Id that is not <origin>/<that index>.
// A well-formed message may still not be genuine: the entry for an index
// is the one whose bytes the log's inclusion proof covers.
type Skipped struct {
	StreamSeq uint64
	Subject   string
	MsgID     string
	Reason    string
}

// nakDelay is how long a durable consumer's refused entry waits before
// redelivery: long enough for the server to drop the stopped pull.
const nakDelay = 250 * time.Millisecond

// Consume calls fn for each entry, in stream order, until ctx ends (nil)
// or fn fails. A durable consumer acknowledges an entry after fn returns.
func Consume(ctx context.Context, js jetstream.JetStream, opts ConsumeOptions, fn func(Event) error) error {
	name := opts.Stream
	if name == "" {
		name = DefaultStream
	}
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("notify: stream %s: %w", name, err)
	}
	prefix := prefixOr(opts.SubjectPrefix)
	cons, err := openConsumer(ctx, stream, opts, normalizeSubject(prefix, opts.Subject))
	if err != nil {
		return fmt.Errorf("notify: consumer on %s: %w", name, err)
	}
	it, err := cons.Messages(jetstream.PullExpiry(5 * time.Second))
	if err != nil {
		return fmt.Errorf("notify: consume %s: %w", name, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	r := &reader{js: js, it: it, opts: opts, prefix: prefix, fn: fn}
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				// The pull request was lost with the server holding it:
				// in a cluster, the consumer's leader killed or cut off,
				// which sends no word of stepping down. The iterator
				// pulls again, from the new leader, at the next call.
				continue
			}
			return fmt.Errorf("notify: next message: %w", err)
		}
		if err := r.take(ctx, msg); err != nil {
			return err
		}
	}
}

// openConsumer makes the consumer Consume reads: the durable one of that
// name (created at the wanted start when it does not exist yet), or an
// ordered, ephemeral one.
func openConsumer(ctx context.Context, stream jetstream.Stream, opts ConsumeOptions, subject string) (jetstream.Consumer, error) {
	if opts.Durable != "" {
		// A durable consumer that exists keeps its own position: no
		// search for the start it would ignore.
		cons, err := stream.Consumer(ctx, opts.Durable)
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return cons, err
		}
	}
	policy, startSeq := jetstream.DeliverNewPolicy, uint64(0)
	if opts.FromIndex >= 0 {
		var err error
		if startSeq, err = StartSequence(ctx, stream, opts.FromIndex); err != nil {
			return nil, err
		}
		policy = jetstream.DeliverByStartSequencePolicy
	}
	if opts.Durable == "" {
		return stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{subject},
			DeliverPolicy:  policy,
			OptStartSeq:    startSeq,
		})
	}
	return stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       opts.Durable,
		Description:   "docket events",
		FilterSubject: subject,
		DeliverPolicy: policy,
		OptStartSeq:   startSeq,
		AckPolicy:     jetstream.AckExplicitPolicy,
		// One at a time keeps delivery in stream order across redeliveries.
		MaxAckPending: 1,
		// An entry handed out but never received (its pull request was
		// lost with the consumer's leader in a cluster) blocks the
		// consumer until the ack wait ends; a redelivery of one fn
		// already had is skipped.
		AckWait: durableAckWait,
	})
}

// reader hands Consume's messages to fn, one at a time.
type reader struct {
	js     jetstream.JetStream
	it     jetstream.MessagesContext
	opts   ConsumeOptions
	prefix string
	fn     func(Event) error
	// handled is the stream sequence of the last entry fn had.
	handled uint64
}

// take gives msg to fn unless it is to be passed over, and acknowledges
// it on a durable consumer; its error ends Consume.
func (r *reader) take(ctx context.Context, msg jetstream.Msg) error {
	durable := r.opts.Durable != ""
	ev, why := eventOf(msg, r.prefix)
	if why != "" && r.opts.OnSkip != nil {
		r.opts.OnSkip(Skipped{StreamSeq: ev.StreamSeq, Subject: ev.Subject, MsgID: ev.MsgID, Reason: why})
	}
	if why != "" || (r.opts.FromIndex >= 0 && ev.Index < r.opts.FromIndex) {
		// Not an entry, or before the wanted index: the start sequence
		// is a lower bound, the header decides.
		if durable {
			_ = msg.Ack()
		}
		return nil
	}
	if durable && r.handled > 0 && ev.StreamSeq != 0 && ev.StreamSeq <= r.handled {
		// A redelivery of an entry fn already had: in a cluster the
		// consumer's new leader may not know of an ack its old one took.
		// Acknowledge it again rather than hand it over twice.
		_ = ackHard(ctx, msg)
		return nil
	}
	if err := r.fn(ev); err != nil {
		if durable {
			// Hand it back now rather than after the ack wait, so the
			// next run starts with it at once. Stop pulling first, and
			// have it redelivered a moment later: else the server may
			// hand it straight to this run's pull request, which nobody
			// reads any more, and the next run waits out the ack wait.
			r.it.Stop()
			_ = msg.NakWithDelay(nakDelay)
			_ = r.js.Conn().Flush()
		}
		return err
	}
	if durable {
		r.handled = ev.StreamSeq
		if err := ackHard(ctx, msg); err != nil && ctx.Err() == nil {
			return fmt.Errorf("notify: ack index %d: %w", ev.Index, err)
		}
	}
	return nil
}

// durableAckWait is how long a durable consumer's server waits for an
// ack before handing the entry out again.
const durableAckWait = 5 * time.Second

// ackRetryFor bounds how long ackHard tries: longer than a JetStream
// cluster takes to elect the consumer's new leader after its old one's
// loss (seconds). Should the server hand the entry out again meanwhile,
// Consume skips the copy.
const ackRetryFor = 30 * time.Second

// ackHard acknowledges msg and waits for the server to confirm it,
// trying again while the consumer has no leader to take it (no
// responders, or a timeout, during an election in a cluster): an ack the
// server never took is an entry delivered twice. A second ack of an
// entry the server did take is harmless.
func ackHard(ctx context.Context, msg jetstream.Msg) error {
	deadline := time.Now().Add(ackRetryFor)
	wait := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := msg.DoubleAck(actx)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, time.Second)
	}
}

// eventOf reads an entry; why says what makes msg none.
func eventOf(msg jetstream.Msg, prefix string) (ev Event, why string) {
	h := msg.Headers()
	ev = Event{
		Subject: msg.Subject(),
		Type:    strings.TrimPrefix(msg.Subject(), prefix),
		MsgID:   h.Get(headerMsgID),
		Data:    msg.Data(),
	}
	if md, err := msg.Metadata(); err == nil {
		ev.StreamSeq, ev.Published = md.Sequence.Stream, md.Timestamp
	}
	idx, err := strconv.ParseInt(h.Get(HeaderIndex), 10, 64)
	if err != nil || idx < 0 {
		return ev, "no Docket-Index header"
	}
	ev.Index = idx
	slash := strings.LastIndexByte(ev.MsgID, '/')
	if k, ok := ParseIndexID(ev.MsgID[slash+1:]); slash <= 0 || !ok || k != idx {
		return ev, "Nats-Msg-Id is not <origin>/<Docket-Index>"
	}
	if !strings.HasPrefix(ev.Subject, prefix) || ev.Type == "" {
		return ev, "subject is not " + prefix + "<type>"
	}
	return ev, ""
}

// StartSequence maps an audit index to a stream sequence at or before the
// message carrying it. The relay stores indices as a gapless run in
// consecutive sequences, so the last message gives the offset; the guess
// is checked, and when it does not hold (foreign messages, retention) the
// first sequence is returned: consumers skip by the Docket-Index header,
// so starting early is only slower, never wrong.
func StartSequence(ctx context.Context, stream jetstream.Stream, index int64) (uint64, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("notify: stream info: %w", err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if last == 0 || info.State.Msgs == 0 {
		return max(first, last+1), nil
	}
	indexAt := func(seq uint64) (int64, bool) {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			return 0, false
		}
		k, err := strconv.ParseInt(m.Header.Get(HeaderIndex), 10, 64)
		return k, err == nil
	}
	k, ok := indexAt(last)
	if !ok {
		return first, nil
	}
	if index > k {
		return last + 1, nil
	}
	back := uint64(k - index)
	if back >= last-first+1 {
		return first, nil
	}
	guess := last - back
	if got, ok := indexAt(guess); ok && got == index {
		return guess, nil
	}
	return first, nil
}
