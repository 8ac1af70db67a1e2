package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/docket-dev/docket/notify"
)

const natsUserUsage = `Usage: docket nats-user add NAME | list [flags]

Manages the embedded NATS server's read-only consumer identities in the
data directory. add writes nats/users/NAME.nk (an nkey seed, mode 0600):
hand that file to the consumer, which connects with
'docket events --creds NAME.nk' or nats.NkeyOptionFromSeed. The server
loads the users when it starts: restart 'docket serve' to admit a new
one; delete the file and restart to revoke it. A consumer may look up
stream DOCKET, create durable or ordered consumers on it, fetch and
acknowledge, and nothing else. list prints each identity's public key.

Flags:
`

func cmdNATSUser(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("nats-user", e, natsUserUsage)
	dataDir := fs.String("data-dir", envOr(e.getenv, "DOCKET_DATA_DIR", "./data"), "the serve data directory (DOCKET_DATA_DIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch sub := fs.Arg(0); {
	case sub == "add" && fs.NArg() == 2:
		p, err := notify.AddConsumerUser(*dataDir, fs.Arg(1))
		if err != nil {
			return fmt.Errorf("nats-user: %w", err)
		}
		fmt.Fprintf(e.stdout, "wrote %s; restart docket serve to admit it\n", p)
		return nil
	case sub == "list" && fs.NArg() == 1:
		users, err := notify.ConsumerUsers(*dataDir)
		if err != nil {
			return fmt.Errorf("nats-user: %w", err)
		}
		for _, u := range users {
			fmt.Fprintf(e.stdout, "%s\t%s\t%s\n", u.Name, u.PublicKey, u.File)
		}
		return nil
	}
	fs.Usage()
	return fmt.Errorf("nats-user: want 'add NAME' or 'list', got %q", strings.Join(fs.Args(), " "))
}
