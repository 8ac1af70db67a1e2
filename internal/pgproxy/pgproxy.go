// Package pgproxy is a TCP proxy for tests that cut the database off: it
// forwards 127.0.0.1:0 to a Postgres address and can refuse (a dead
// server), black-hole (a hung server or dropped packets), cut a client
// off as a network partition does (Vanish) and heal.
package pgproxy

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Mode is what the proxy does with connections.
type Mode int

const (
	// Forward passes bytes both ways.
	Forward Mode = iota
	// Refuse closes the listener, so that new connections are refused
	// (ECONNREFUSED), and resets the existing ones: a dead server.
	Refuse
	// Hang accepts connections but forwards nothing either way: the bytes
	// are dropped, so a connection that was hung stays dead after Heal. A
	// side's close still reaches the other, which frees the server session
	// (and any advisory lock it holds).
	Hang
)

// Proxy forwards to one upstream address.
type Proxy struct {
	addr     string
	upstream string
	ln       net.Listener // nil while refusing

	mu     sync.Mutex
	mode   Mode
	closed bool
	links  map[*link]struct{}
	wg     sync.WaitGroup
}

type link struct {
	client, server net.Conn
	hung           bool // dropped bytes: never forwards again
	// cut: partitioned (Vanish), so that neither side's close reaches
	// the other; each side ends on its own.
	cut bool
	// standIn: accepted while hanging, the link never reached the server.
	standIn bool
}

// New starts a proxy to upstream until the test ends.
func New(tb testing.TB, upstream string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("pgproxy: %v", err)
	}
	p := &Proxy{addr: ln.Addr().String(), ln: ln, upstream: upstream, links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept(ln)
	tb.Cleanup(p.Close)
	return p
}

// Addr is the address to connect to instead of upstream.
func (p *Proxy) Addr() string { return p.addr }

// Set switches the mode: Refuse resets every open connection and every
// new one; Hang drops every byte of open and new connections; Forward
// heals for new connections (hung ones stay dead).
// Leaving Refuse listens again on the same address; it returns that
// error, if any.
func (p *Proxy) Set(m Mode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	return p.set(m)
}

// set is Set with p.mu held and p open.
func (p *Proxy) set(m Mode) error {
	p.mode = m
	switch {
	case m == Refuse && p.ln != nil:
		_ = p.ln.Close()
		p.ln = nil
	case m != Refuse && p.ln == nil:
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return err
		}
		p.ln = ln
		p.wg.Add(1)
		go p.accept(ln)
	}
	for l := range p.links {
		switch m {
		case Refuse:
			reset(l.client)
			_ = l.server.Close()
		case Hang:
			l.hung = true
		}
	}
	return nil
}

// Vanish cuts the client off from the server as a network partition or a
// host that vanished does: from now no byte of an open connection passes
// either way, and neither side's close reaches the other (the client's
// FIN or RST is lost as well). After keepalive, which stands for Postgres's
// TCP keepalive (tcp_keepalives_*) giving up on the silent peer, the
// server side of each of those connections is closed: Postgres ends its
// session, rolling back its transaction and freeing any advisory lock on
// it, while the client side stays open and silent, for the client's host
// learns nothing. keepalive <= 0: never (a server with no keepalive), until
// Close or Refuse. New connections hang as in Hang, and Set(Forward) heals
// for new ones only, as after Hang. Leaving Refuse listens again, as Set
// does; it returns that error, if any.
func (p *Proxy) Vanish(keepalive time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if err := p.set(Hang); err != nil { // every link hung
		return err
	}
	var cut []*link
	for l := range p.links {
		if !l.standIn {
			l.cut = true
			cut = append(cut, l)
		}
	}
	if keepalive > 0 && len(cut) > 0 {
		time.AfterFunc(keepalive, func() {
			for _, l := range cut {
				_ = l.server.Close()
			}
		})
	}
	return nil
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for l := range p.links {
		_ = l.client.Close()
		_ = l.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST, as a dead host's kernel answers
	}
	_ = c.Close()
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		p.mu.Unlock()
		if mode == Refuse {
			reset(c)
			continue
		}
		p.wg.Add(1)
		go p.serve(c, mode)
	}
}

func (p *Proxy) serve(c net.Conn, mode Mode) {
	defer p.wg.Done()
	l := &link{client: c, hung: mode == Hang, standIn: mode != Forward}
	var s net.Conn
	if mode == Forward {
		var err error
		if s, err = net.Dial("tcp", p.upstream); err != nil {
			reset(c)
			return
		}
	} else {
		// A hung link never reaches the server; a stand-in keeps the code
		// below uniform.
		a, b := net.Pipe()
		s = a
		defer b.Close()
	}
	l.server = s
	p.mu.Lock()
	if p.mode == Refuse {
		p.mu.Unlock()
		reset(c)
		_ = s.Close()
		return
	}
	// The mode may have changed while the server was dialed: a link that
	// Set(Hang) or Vanish did not see must not forward either.
	l.hung = l.hung || p.mode == Hang
	p.links[l] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
		_ = c.Close()
		_ = s.Close()
	}()
	done := make(chan struct{}, 2)
	go func() { p.pipe(l, s, c); done <- struct{}{} }()
	go func() { p.pipe(l, c, s); done <- struct{}{} }()
	<-done // one side closed: close both, unless partitioned
	p.mu.Lock()
	cut := l.cut
	p.mu.Unlock()
	if cut {
		<-done // the other side ends on its own
	}
}

// pipe copies src to dst while the link is not hung; a hung link reads
// and drops, so that a close is still seen.
func (p *Proxy) pipe(l *link, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			hung := l.hung
			p.mu.Unlock()
			if !hung {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return // EOF or a reset: the link is over
		}
	}
}
