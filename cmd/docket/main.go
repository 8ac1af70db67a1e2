// Command docket runs the Docket service and its operator tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	if code := exitCode(err); code != 0 {
		fmt.Fprintln(os.Stderr, "docket:", err)
		os.Exit(code)
	}
}

// exitCode is the process's status for run's result: asking for help is
// success, as for Go's own tools.
func exitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 1
}

// env is what a command may touch of the process: tests pass their own.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `docket: the system of record for ad-policy enforcement

Usage: docket <command> [flags]

Commands:
  serve      run the HTTP API, the audit log integrator and the NATS relay
  migrate    apply (up) or list (status) database migrations
  token      create, revoke or list API tokens
  keys       generate a checkpoint signing key pair
  verify     verify the audit log (database, remote, or bundle)
  log        open a new log as the successor of one whose key was compromised
  events     print audit entries from NATS as they arrive
  nats-user  mint or list read-only consumer credentials of the embedded NATS
  export     export audit entries (JSON lines, CSV) or a verifiable bundle
  report     print the transparency figures on decisions and appeals
  bench      drive a running service with load and report throughput and lag
  version    print the version

Run 'docket <command> --help' for a command's flags.
`

// commands runs each subcommand with the arguments after its name.
var commands = map[string]func(ctx context.Context, e *env, args []string) error{
	"serve":     cmdServe,
	"migrate":   cmdMigrate,
	"token":     cmdToken,
	"bench":     cmdBench,
	"events":    cmdEvents,
	"nats-user": cmdNATSUser,
	"export":    cmdExport,
	"report":    cmdReport,
	"keys":      cmdKeys,
	"verify":    cmdVerify,
	"log":       cmdLog,
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[1], args[2:]
	if c, ok := commands[cmd]; ok {
		return c(ctx, e, rest)
	}
	switch cmd {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "docket", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
