// Package pgdial opens Postgres through lib/pq with every connection's
// I/O bounded, so that a database that stops answering (packets dropped,
// a hung server) fails the work on it instead of blocking it forever.
//
// lib/pq answers a cancelled context by sending a cancel request on a new
// connection and then waiting, still blocked in a read, for the server to
// end the query. When the server is unreachable that read never returns:
// context deadlines alone do not bound a black hole. pgdial closes that
// gap twice:
//
//   - Each connection has its own dialer, so a second dial through it is
//     lib/pq's cancel request: from then the connection (already marked
//     bad by lib/pq, never reused) gets a deadline Grace away, and the
//     blocked read fails soon after the context ended.
//   - No read or write waits longer than Stall for progress, whatever
//     the context: the bound of background work, whose contexts have no
//     deadline. It must exceed the longest single statement.
package pgdial

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/lib/pq"
)

// Options bound the connections.
type Options struct {
	// ConnectTimeout bounds opening a connection, handshake included
	// (lib/pq's connect_timeout, whole seconds, at least 1). Zero: 5 s.
	ConnectTimeout time.Duration
	// Grace is how long after lib/pq sends a cancel request the blocked
	// connection is given up. Zero: 1 s.
	Grace time.Duration
	// Stall is the longest one read or write may wait. Zero: no bound.
	Stall time.Duration
}

// Open returns a pool on dsn whose connections are bounded by opts.
func Open(dsn string, opts Options) (*sql.DB, error) {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = time.Second
	}
	dsn = WithConnectTimeout(dsn, opts.ConnectTimeout)
	if _, err := pq.NewConnector(dsn); err != nil {
		return nil, fmt.Errorf("pgdial: %w", err)
	}
	return sql.OpenDB(&connector{dsn: dsn, opts: opts}), nil
}

// WithConnectTimeout sets connect_timeout in a URL DSN that has none.
func WithConnectTimeout(dsn string, d time.Duration) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn
	}
	q := u.Query()
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", strconv.Itoa(max(1, int((d+time.Second-1)/time.Second))))
		u.RawQuery = q.Encode()
	}
	return u.String()
}

type connector struct {
	dsn  string
	opts Options
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	pc, err := pq.NewConnector(c.dsn)
	if err != nil {
		return nil, fmt.Errorf("pgdial: %w", err)
	}
	pc.Dialer(&dialer{opts: c.opts})
	return pc.Connect(ctx)
}

func (c *connector) Driver() driver.Driver { return &pq.Driver{} }

// dialer dials one pq connection; every later dial is its cancel request.
type dialer struct {
	opts Options
	mu   sync.Mutex
	main *conn
}

func (d *dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

func (d *dialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.DialContext(ctx, network, address)
}

func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	main := d.main
	d.mu.Unlock()
	if main != nil {
		// lib/pq is cancelling a query of main: give it Grace to end.
		main.doom(time.Now().Add(d.opts.Grace))
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	w := &conn{Conn: c, stall: d.opts.Stall}
	if main == nil {
		d.mu.Lock()
		if d.main == nil {
			d.main = w
		}
		d.mu.Unlock()
	}
	return w, nil
}

// conn bounds each read and write by the earliest of lib/pq's own
// deadline, the doom set by a cancel, and Stall from now.
type conn struct {
	net.Conn
	stall time.Duration

	mu       sync.Mutex
	deadline time.Time // lib/pq's, zero when none
	doomed   time.Time
}

func (c *conn) doom(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.doomed = at
	_ = c.Conn.SetDeadline(at) // wakes a read already blocked
}

// bound is the deadline of the next read or write; c.mu is held, so a
// doom cannot be overwritten by a later bound.
func (c *conn) bound() time.Time {
	t := c.deadline
	if c.stall > 0 {
		if s := time.Now().Add(c.stall); t.IsZero() || s.Before(t) {
			t = s
		}
	}
	if !c.doomed.IsZero() && (t.IsZero() || c.doomed.Before(t)) {
		t = c.doomed
	}
	return t
}

func (c *conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	err := c.Conn.SetReadDeadline(c.bound())
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	err := c.Conn.SetWriteDeadline(c.bound())
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil // applied by the next Read or Write
}
