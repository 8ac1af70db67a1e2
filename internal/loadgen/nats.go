package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsWatcher notes when each decision.recorded notification arrives.
type natsWatcher struct {
	nc   *nats.Conn
	cctx jetstream.ConsumeContext

	mu   sync.Mutex
	seen map[string]notification
}

// notification is when a decision's entry arrived and the leaf index its
// Docket-Index header gave (-1 when absent).
type notification struct {
	at    time.Time
	index int64
}

func newNATSWatcher(servers string, allowRemote bool, auth ...nats.Option) (*natsWatcher, error) {
	if err := checkNATSURLs(servers, allowRemote); err != nil {
		return nil, err
	}
	// Discovered cluster peers could be other hosts: stay on the URL given.
	nc, err := nats.Connect(servers, append([]nats.Option{nats.Name("docket-bench"), nats.Timeout(3 * time.Second),
		nats.IgnoreDiscoveredServers(), nats.NoReconnect()}, auth...)...)
	if err != nil {
		return nil, fmt.Errorf("nats connect: %w", err)
	}
	w := &natsWatcher{nc: nc, seen: map[string]notification{}}
	if w.cctx, err = w.consume(); err != nil {
		nc.Close()
		return nil, err
	}
	return w, nil
}

// checkNATSURLs refuses, unless allowRemote, any server in the
// comma-separated list that is not on a loopback host.
func checkNATSURLs(servers string, allowRemote bool) error {
	for _, s := range strings.Split(servers, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.Hostname() == "" {
			return fmt.Errorf("nats url %q: not a URL", s)
		}
		if !allowRemote && !IsLoopback(u.Hostname()) {
			return fmt.Errorf("nats url %q: host is not a loopback address", s)
		}
	}
	return nil
}

// consume starts an ordered consumer of the new decision.recorded
// notifications on stream DOCKET. An ordered consumer needs only
// read-only credentials, and the server removes it once the bench is
// gone.
func (w *natsWatcher) consume() (jetstream.ConsumeContext, error) {
	js, err := jetstream.New(w.nc)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, "DOCKET")
	if err != nil {
		return nil, fmt.Errorf("nats stream DOCKET: %w", err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"docket.decision.recorded"}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("nats consumer: %w", err)
	}
	cctx, err := cons.Consume(w.note)
	if err != nil {
		return nil, fmt.Errorf("nats consume: %w", err)
	}
	return cctx, nil
}

// note records when the first notification of a decision arrived, and
// its leaf index.
func (w *natsWatcher) note(m jetstream.Msg) {
	at := time.Now()
	var e struct {
		Subject struct {
			ID string `json:"id"`
		} `json:"subject"`
	}
	if json.Unmarshal(m.Data(), &e) != nil || e.Subject.ID == "" {
		return
	}
	idx, err := strconv.ParseInt(m.Headers().Get("Docket-Index"), 10, 64)
	if err != nil {
		idx = -1
	}
	w.mu.Lock()
	if _, ok := w.seen[e.Subject.ID]; !ok {
		w.seen[e.Subject.ID] = notification{at: at, index: idx}
	}
	w.mu.Unlock()
}

func (w *natsWatcher) close() { w.nc.Close() }

// lag waits up to limit for every acknowledged decision's notification and
// returns the lags and how many never arrived; it also fills in the leaf
// index of each write it saw, for the exact integration lag.
func (w *natsWatcher) lag(ctx context.Context, acks []write, limit time.Duration) ([]time.Duration, int) {
	end := time.Now().Add(limit)
	for time.Now().Before(end) && ctx.Err() == nil {
		w.mu.Lock()
		n := len(w.seen)
		w.mu.Unlock()
		if n >= len(acks) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.cctx.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	var lats []time.Duration
	missing := 0
	for i, a := range acks {
		n, ok := w.seen[a.decisionID]
		if !ok {
			missing++
			continue
		}
		acks[i].index = n.index
		lats = append(lats, max(0, n.at.Sub(a.ack)))
	}
	return lats, missing
}
