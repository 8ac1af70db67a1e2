package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/docket-dev/docket/notify"
)

const eventsUsage = `Usage: docket events [flags]

Prints audit entries from stream DOCKET as they arrive, one per line:
"<index> <subject> <entry>", or with --json a JSON object
{"index", "subject", "stream_seq", "entry"}.

Without --from-index only entries published from now on are printed.
--from-index N starts at audit index N (found in the stream by the
Docket-Index header). --durable NAME keeps the position on the server
across runs; an existing durable consumer resumes where it stopped and
ignores --from-index and --subject. Without --durable the consumer is
ordered and ephemeral.

Credentials: --creds FILE is a .creds file (user JWT and seed) or an
nkey seed file. Against the embedded server (no DOCKET_NATS_URL) and
without --creds, the data directory's read-only nats/reader.nk is used;
'docket nats-user add NAME' mints more such identities.

Flags:
`

func cmdEvents(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("events", e, eventsUsage)
	o := eventsFlags(fs, e)
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The data directory's reader identity is the embedded server's only.
	auth, err := readerAuth(o.creds, o.dataDir, e.getenv("DOCKET_NATS_URL") == "")
	if err != nil {
		return fmt.Errorf("events: --creds: %w", err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("events: unexpected arguments %q", strings.Join(fs.Args(), " "))
	}
	logger, err := newLogger(e.stderr, "warn", "text")
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	nc, err := nats.Connect(o.url, append([]nats.Option{nats.Name("docket events"), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { logger.Warn("NATS disconnected", slog.Any("err", err)) })}, auth...)...)
	if err != nil {
		return fmt.Errorf("events: connect to %s: %w", redactURL(o.url), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	return notify.Consume(ctx, js, notify.ConsumeOptions{
		Stream: o.stream, Subject: o.subject, FromIndex: o.from, Durable: o.durable,
		OnSkip: func(sk notify.Skipped) {
			logger.Warn("skipping a message that is not a Docket entry (someone else published to docket.>)",
				slog.Uint64("stream_seq", sk.StreamSeq), slog.String("subject", sk.Subject), slog.String("msg_id", sk.MsgID), slog.String("reason", sk.Reason))
		},
	}, printEvent(e.stdout, o.asJSON))
}

// eventsOptions is the flags of `docket events`.
type eventsOptions struct {
	url, stream, subject, durable, creds, dataDir string
	from                                          int64
	asJSON                                        bool
}

func eventsFlags(fs *flag.FlagSet, e *env) *eventsOptions {
	o := &eventsOptions{}
	defURL := e.getenv("DOCKET_NATS_URL")
	if defURL == "" {
		// `docket serve` runs the embedded server there by default.
		defURL = "nats://" + clientAddr(envOr(e.getenv, "DOCKET_EMBEDDED_NATS_ADDR", "127.0.0.1:4223"))
	}
	fs.StringVar(&o.url, "nats-url", defURL, "NATS server or cluster (DOCKET_NATS_URL; else the embedded server's DOCKET_EMBEDDED_NATS_ADDR)")
	fs.StringVar(&o.stream, "stream", notify.DefaultStream, "stream name")
	fs.StringVar(&o.subject, "subject", "", `only this subject, e.g. "decision.reversed" or "docket.decision.*"`)
	fs.Int64Var(&o.from, "from-index", -1, "first audit index to print; negative: only new entries")
	fs.BoolVar(&o.asJSON, "json", false, "print one JSON object per line")
	fs.StringVar(&o.durable, "durable", "", "durable consumer name, to resume across runs")
	fs.StringVar(&o.creds, "creds", e.getenv("DOCKET_EVENTS_CREDS"), "credentials: a .creds file or an nkey seed file (DOCKET_EVENTS_CREDS); default: the data directory's nats/reader.nk for the embedded server")
	fs.StringVar(&o.dataDir, "data-dir", envOr(e.getenv, "DOCKET_DATA_DIR", "./data"), "the serve data directory, for the embedded server's reader credentials (DOCKET_DATA_DIR)")
	return o
}

// printEvent writes each event as a line "<index> <subject> <entry>", or
// as a JSON object; an entry that is not JSON goes in as a string.
func printEvent(w io.Writer, asJSON bool) func(notify.Event) error {
	enc := json.NewEncoder(w)
	return func(ev notify.Event) error {
		if asJSON {
			entry := json.RawMessage(ev.Data)
			if !json.Valid(ev.Data) {
				entry, _ = json.Marshal(string(ev.Data))
			}
			return enc.Encode(struct {
				Index     int64           `json:"index"`
				Subject   string          `json:"subject"`
				StreamSeq uint64          `json:"stream_seq"`
				Entry     json.RawMessage `json:"entry"`
			}{ev.Index, ev.Subject, ev.StreamSeq, entry})
		}
		_, err := fmt.Fprintf(w, "%d %s %s\n", ev.Index, ev.Subject, ev.Data)
		return err
	}
}

// clientAddr turns a listen address into one a client can dial.
func clientAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
