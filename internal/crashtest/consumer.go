package crashtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/docket-dev/docket/notify"
)

// errStopped is what the consumer's callback returns when asked to stop:
// notify.Consume then hands the message back (nak) rather than ack it, so
// stopping never loses or repeats an entry.
var errStopped = errors.New("crashtest: consumer stopped")

// Consumer is a durable consumer (notify.Consume with Durable) that records
// every index it is handed, and that can be stopped and started again
// during the run; the server keeps its position in between.
type Consumer struct {
	js      jetstream.JetStream
	durable string

	mu       sync.Mutex
	got      []int64
	stopping atomic.Bool
	cancel   context.CancelFunc
	done     chan error
	Restarts int
}

// NewConsumer returns a consumer of durable name durable; Start runs it.
func NewConsumer(js jetstream.JetStream, durable string) *Consumer {
	return &Consumer{js: js, durable: durable}
}

// Start runs the consumer until Stop.
func (c *Consumer) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	c.stopping.Store(false)
	c.cancel, c.done = cancel, done
	go func() {
		done <- notify.Consume(ctx, c.js, notify.ConsumeOptions{Durable: c.durable, FromIndex: 0}, func(ev notify.Event) error {
			if c.stopping.Load() {
				return errStopped
			}
			c.mu.Lock()
			c.got = append(c.got, ev.Index)
			c.mu.Unlock()
			return nil
		})
	}()
}

// Stop stops the consumer: at the next message if one comes within a
// second, else by cancelling the wait for one (no message is then in hand).
func (c *Consumer) Stop() error {
	c.mu.Lock()
	cancel, done := c.cancel, c.done
	c.cancel, c.done = nil, nil
	c.mu.Unlock()
	if done == nil {
		return nil
	}
	defer cancel()
	c.stopping.Store(true)
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Second):
		cancel()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			return errors.New("crashtest: consumer did not stop")
		}
	}
	if err != nil && !errors.Is(err, errStopped) {
		return fmt.Errorf("crashtest: consumer: %w", err)
	}
	return nil
}

// Restart stops and starts the consumer again.
func (c *Consumer) Restart() error {
	if err := c.Stop(); err != nil {
		return err
	}
	c.Restarts++
	c.Start()
	return nil
}

// Got returns the indices received so far, in order of receipt.
func (c *Consumer) Got() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int64(nil), c.got...)
}

// ReadStream reads stream DOCKET from its start with an ordered consumer
// until it has n entries or limit passes, and returns the indices in
// stream order.
func ReadStream(ctx context.Context, js jetstream.JetStream, n int64, limit time.Duration) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var got []int64
	err := notify.Consume(ctx, js, notify.ConsumeOptions{FromIndex: 0}, func(ev notify.Event) error {
		got = append(got, ev.Index)
		if int64(len(got)) >= n {
			cancel()
		}
		return nil
	})
	return got, err
}
