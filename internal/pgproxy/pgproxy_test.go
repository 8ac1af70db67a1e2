package pgproxy

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// pair is a connection through the proxy and the upstream's end of it.
func pair(t *testing.T, p *Proxy, up net.Listener) (client, server net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if server, err = up.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	// A byte through: the proxy registers a link only after dialing the
	// server, so the accept alone does not say a mode change will reach it.
	if _, err := client.Write([]byte("p")); err != nil {
		t.Fatal(err)
	}
	if err := readWithin(server, 5*time.Second); err != nil {
		t.Fatalf("pair: forwarding: %v", err)
	}
	return client, server
}

// readWithin reads one byte from c within d: the error says whether
// nothing came (os.ErrDeadlineExceeded) or the peer closed (any other).
func readWithin(c net.Conn, d time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	_, err := c.Read(b[:])
	return err
}

// TestVanish: after Vanish nothing passes and neither side's close reaches
// the other, until the keepalive closes the server side only.
func TestVanish(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	p := New(t, up.Addr().String())
	quiet, quietServer := pair(t, p, up) // the client that stays
	gone, goneServer := pair(t, p, up)   // the client that closes while cut
	if _, err := quiet.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := readWithin(quietServer, time.Second); err != nil {
		t.Fatalf("forwarding: %v", err)
	}

	const keepalive = 300 * time.Millisecond
	cut := time.Now()
	if err := p.Vanish(keepalive); err != nil {
		t.Fatal(err)
	}
	if _, err := quiet.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := quietServer.Write([]byte("c")); err != nil {
		t.Fatal(err)
	}
	gone.Close()
	if err := readWithin(quietServer, keepalive/3); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("server side while cut: %v, want nothing", err)
	}
	if err := readWithin(goneServer, keepalive/3); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("server side of a client that closed while cut: %v, want nothing", err)
	}
	if err := readWithin(quiet, keepalive/3); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client side while cut: %v, want nothing", err)
	}
	// The keepalive: the server sides end, the client's learns nothing.
	for _, s := range []net.Conn{quietServer, goneServer} {
		if err := readWithin(s, 2*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("server side after the keepalive: %v, want it closed", err)
		}
	}
	if since := time.Since(cut); since < keepalive {
		t.Fatalf("server side closed %s after the cut, before the keepalive %s", since, keepalive)
	}
	if err := readWithin(quiet, keepalive); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client side after the keepalive: %v, want nothing", err)
	}

	// A new connection hangs; once healed, a new one forwards again.
	hung, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	if err := readWithin(hung, 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("new connection while cut: %v, want nothing", err)
	}
	if err := p.Set(Forward); err != nil {
		t.Fatal(err)
	}
	healed, healedServer := pair(t, p, up)
	if _, err := healedServer.Write([]byte("d")); err != nil {
		t.Fatal(err)
	}
	if err := readWithin(healed, time.Second); err != nil {
		t.Fatalf("after the heal: %v", err)
	}
}

// TestVanishWithoutKeepalive: with no keepalive the server side of a cut
// connection stays open; Vanish after Refuse listens again, and new
// connections hang rather than being refused.
func TestVanishWithoutKeepalive(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	p := New(t, up.Addr().String())
	client, server := pair(t, p, up)
	if err := p.Vanish(0); err != nil {
		t.Fatal(err)
	}
	client.Close()
	if err := readWithin(server, 500*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("server side with no keepalive: %v, want it open and silent", err)
	}

	if err := p.Set(Refuse); err != nil {
		t.Fatal(err)
	}
	if err := readWithin(server, time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("server side after Refuse: %v, want it closed", err)
	}
	if err := p.Vanish(0); err != nil {
		t.Fatal(err)
	}
	hung, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("Vanish after Refuse does not listen: %v", err)
	}
	defer hung.Close()
	if err := readWithin(hung, 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("new connection after Refuse then Vanish: %v, want it to hang", err)
	}
}
