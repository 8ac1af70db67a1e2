package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/docket-dev/docket/migrations"
)

// parseArgs parses flags wherever they stand among the positional
// arguments, as Go's own tools do: `docket migrate up --database-url X`
// and `docket migrate --database-url X up` mean the same. It returns the
// positional arguments in order; --help anywhere is flag.ErrHelp.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseSub parses a command with subcommands: the first positional
// argument must be one of subs.
func parseSub(fs *flag.FlagSet, cmd string, args []string, subs ...string) (string, []string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", nil, err
	}
	if len(pos) == 0 || !slices.Contains(subs, pos[0]) {
		fs.Usage()
		got := "nothing"
		if len(pos) > 0 {
			got = fmt.Sprintf("%q", pos[0])
		}
		return "", nil, fmt.Errorf("%s: want %s, got %s", cmd, strings.Join(subs, " or "), got)
	}
	return pos[0], pos[1:], nil
}

// onlySub parses a command whose one subcommand takes no arguments.
func onlySub(fs *flag.FlagSet, cmd string, args []string, sub string) (string, error) {
	s, rest, err := parseSub(fs, cmd, args, sub)
	if err == nil && len(rest) > 0 {
		fs.Usage()
		err = fmt.Errorf("%s %s: unexpected argument %q", cmd, sub, rest[0])
	}
	return s, err
}

// noArgs parses a command that takes flags only.
func noArgs(fs *flag.FlagSet, cmd string, args []string) error {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fs.Usage()
		return fmt.Errorf("%s: unexpected argument %q (it takes flags only)", cmd, pos[0])
	}
	return nil
}

// openMigrated opens the database of a command that works on Docket's
// records but must not create them: only serve and migrate create and
// migrate a database, so a mistyped DATABASE_URL fails here, naming it,
// instead of printing an empty result from a new database.
func openMigrated(ctx context.Context, dsn string) (*sqlx.DB, error) {
	db, err := openExisting(ctx, dsn)
	if err != nil {
		return nil, err
	}
	n, err := migrations.Pending(ctx, db.DB)
	if err != nil {
		db.Close()
		return nil, err
	}
	if n > 0 {
		db.Close()
		return nil, fmt.Errorf("database %q lacks %d migrations; run 'docket migrate up' (or 'docket serve') first", databaseName(dsn), n)
	}
	return db, nil
}

// openExisting opens a database that must exist already.
func openExisting(ctx context.Context, dsn string) (*sqlx.DB, error) {
	db, err := openDB(ctx, dsn)
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "3D000" { // invalid_catalog_name
		return nil, fmt.Errorf("database %q does not exist; run 'docket migrate up' (or 'docket serve') first", databaseName(dsn))
	}
	return db, err
}

// databaseName names the database of a URL or key=value DSN, for messages.
func databaseName(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		return strings.TrimPrefix(u.Path, "/")
	}
	for _, kv := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(kv, "dbname="); ok {
			return v
		}
	}
	return dsn
}
