package notify

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartEmbedded runs a NATS server with JetStream in this process, storing
// under dataDir/nats, so that one `docket serve` is the whole system. addr
// is host:port; port 0 picks a free port, an empty host is 127.0.0.1. It
// admits only the nkey users of dataDir (see EnsureCredentials, generated
// here on the first start): Docket's own identity, which alone may publish
// to docket.>, and read-only consumers; no anonymous client. Stop it with
// Shutdown and WaitForShutdown.
func StartEmbedded(dataDir, addr string, logger *slog.Logger) (*server.Server, string, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", fmt.Errorf("notify: embedded nats address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, "", fmt.Errorf("notify: embedded nats port %q: %w", portStr, err)
	}
	if port == 0 {
		// nats-server reads 0 as "the default port 4222"; -1 is "any free port".
		port = server.RANDOM_PORT
	}
	if host == "" {
		// Loopback unless the operator names another address.
		host = "127.0.0.1"
	}
	if port > 0 {
		// A taken port would otherwise surface only as "did not start"
		// after the server's own 30 s wait, with the cause in its log.
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return nil, "", fmt.Errorf("notify: embedded NATS cannot listen on %s: %w; set DOCKET_EMBEDDED_NATS_ADDR to a free address (port 0: any), or DOCKET_NATS_URL to use another server", net.JoinHostPort(host, strconv.Itoa(port)), err)
		}
		ln.Close()
	}
	if _, _, err := EnsureCredentials(dataDir); err != nil {
		return nil, "", err
	}
	users, err := embeddedUsers(dataDir)
	if err != nil {
		return nil, "", err
	}
	opts := &server.Options{
		ServerName: "docket-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, "nats"),
		// The process owns signal handling; the server must not exit on SIGTERM itself.
		NoSigs: true,
		Nkeys:  users,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, "", fmt.Errorf("notify: embedded nats: %w", err)
	}
	if logger != nil {
		s.SetLoggerV2(slogAdapter{logger.With(slog.String("component", "nats"))}, false, false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, "", fmt.Errorf("notify: embedded nats on %s did not start", addr)
	}
	return s, s.ClientURL(), nil
}

// slogAdapter routes the server's printf-style log to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Info(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
