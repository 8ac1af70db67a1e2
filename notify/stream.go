package notify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultStream is the stream every Docket entry is published to.
const DefaultStream = "DOCKET"

// SubjectPrefix starts every subject: docket.<entry type>.
const SubjectPrefix = "docket."

// Headers of each message besides Nats-Msg-Id.
const (
	HeaderIndex = "Docket-Index"
)

// DefaultDuplicates is the stream's duplicate window. It must outlast the
// relay's retry horizon (ack timeout plus the longest backoff, seconds),
// so that an entry re-sent after a missing ack is dropped by JetStream;
// longer outages are covered by the relay re-reading the stream's chain.
// Each id in the window costs server memory, so it is not made longer.
const DefaultDuplicates = 2 * time.Minute

// Subject is the subject an entry of this type is published to.
func Subject(entryType string) string { return SubjectPrefix + entryType }

// StreamOptions configure stream DOCKET.
type StreamOptions struct {
	Name string // default DefaultStream
	// SubjectPrefix defaults to SubjectPrefix; tests sharing a server use their own.
	SubjectPrefix string
	Replicas      int           // default 1; 3 or 5 in a cluster
	MaxAge        time.Duration // 0 keeps messages forever
	// Duplicates defaults to DefaultDuplicates, capped at MaxAge.
	Duplicates time.Duration
}

// EnsureStream creates stream DOCKET or updates it to opts, in file
// storage, with message deletes and purges denied. It works with one server and with a cluster (Replicas > 1).
func EnsureStream(ctx context.Context, js jetstream.JetStream, opts StreamOptions) (jetstream.Stream, error) {
	cfg := streamConfig(opts)
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("notify: set up stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

func streamConfig(opts StreamOptions) jetstream.StreamConfig {
	name := opts.Name
	if name == "" {
		name = DefaultStream
	}
	replicas := opts.Replicas
	if replicas < 1 {
		replicas = 1
	}
	dup := opts.Duplicates
	if dup <= 0 {
		dup = DefaultDuplicates
	}
	if opts.MaxAge > 0 && dup > opts.MaxAge {
		// The server refuses a duplicate window longer than the retention.
		dup = opts.MaxAge
	}
	return jetstream.StreamConfig{
		Name:        name,
		Description: "Docket audit log entries, one message per leaf, in index order",
		Subjects:    []string{prefixOr(opts.SubjectPrefix) + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxAge:      opts.MaxAge,
		Duplicates:  dup,
		Discard:     jetstream.DiscardOld,
		// The log is append-only, and so is its announcement: no message
		// is deleted and the stream is never purged. The server lets an
		// update turn these on but never off again.
		DenyDelete: true,
		DenyPurge:  true,
	}
}

func prefixOr(p string) string {
	if p == "" {
		return SubjectPrefix
	}
	return p
}

// normalizeSubject turns a --subject filter into a stream subject:
// "decision.reversed" and "docket.decision.reversed" name the same thing.
func normalizeSubject(prefix, s string) string {
	switch {
	case s == "" || s == ">":
		return prefix + ">"
	case strings.HasPrefix(s, prefix):
		return s
	}
	return prefix + s
}
