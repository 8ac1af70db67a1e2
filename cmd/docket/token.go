package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"text/tabwriter"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

// cliActor is who the log records for operator commands: the OS user, so
// that a token created from a shell is attributable.
func cliActor(e *env) docket.Actor {
	name := e.getenv("USER")
	if u, err := user.Current(); name == "" && err == nil {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	host, _ := os.Hostname()
	return docket.Actor{Role: docket.RoleSystem, Name: "cli/" + name + "@" + host}
}

const tokenUsage = "Usage: docket token create|revoke|list\n\n  docket token create --role ROLE --name NAME [--advertiser ID]\n  docket token revoke [--role ROLE] NAME\n  docket token list\n\nFlags:\n"

func cmdToken(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("token", e, tokenUsage)
	o := tokenFlags(fs, e)
	sub, rest, err := parseSub(fs, "token", args, "create", "revoke", "list")
	if err != nil {
		return err
	}
	if max := map[string]int{"create": 0, "revoke": 1, "list": 0}[sub]; len(rest) > max {
		fs.Usage()
		return fmt.Errorf("token %s: unexpected argument %q", sub, rest[max])
	}
	db, err := openMigrated(ctx, o.dsn)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	defer db.Close()
	store := appeals.NewStore(db, appeals.Options{})
	switch sub {
	case "create":
		return tokenCreate(ctx, e, store, o)
	case "revoke":
		return tokenRevoke(ctx, e, store, o, rest)
	}
	return tokenList(ctx, e, store)
}

// tokenOptions is the flags of `docket token`.
type tokenOptions struct {
	dsn, role, name, advertiser string
}

func tokenFlags(fs *flag.FlagSet, e *env) *tokenOptions {
	o := &tokenOptions{}
	databaseVar(fs, &o.dsn, e)
	fs.StringVar(&o.role, "role", "", "admin, enforcer, reviewer, senior_reviewer, advertiser or auditor")
	fs.StringVar(&o.name, "name", "", "the person or system the token is for; its first token binds it for good to one advertiser, or to staff")
	fs.StringVar(&o.advertiser, "advertiser", "", "the advertiser id an advertiser token is bound to")
	return o
}

// tokenCreate prints the new token's secret alone on stdout, for a
// script to capture, and what it is on stderr.
func tokenCreate(ctx context.Context, e *env, store *appeals.Store, o *tokenOptions) error {
	t, secret, err := store.CreateToken(ctx, cliActor(e), appeals.TokenInput{Name: o.name, Role: docket.Role(o.role), AdvertiserID: o.advertiser})
	if err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	fmt.Fprintf(e.stderr, "created %s token %s for %q (shown once; store it now)\n", t.Role, t.ID, t.Name)
	fmt.Fprintln(e.stdout, secret)
	return nil
}

// tokenRevoke revokes the tokens of the holder named by the argument,
// else by --name; with --role only those of that role.
func tokenRevoke(ctx context.Context, e *env, store *appeals.Store, o *tokenOptions, args []string) error {
	target := o.name
	if len(args) > 0 && args[0] != "" {
		target = args[0]
	}
	if target == "" {
		return errors.New("token revoke: name the token holder")
	}
	n, err := store.RevokeTokens(ctx, cliActor(e), target, docket.Role(o.role))
	if err != nil {
		return fmt.Errorf("token revoke: %w", err)
	}
	fmt.Fprintf(e.stdout, "revoked %d token(s) of %q\n", n, target)
	return nil
}

// tokenList prints every token, revoked ones included, as a table.
func tokenList(ctx context.Context, e *env, store *appeals.Store) error {
	ts, err := store.ListTokens(ctx)
	if err != nil {
		return fmt.Errorf("token list: %w", err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tADVERTISER\tCREATED\tREVOKED")
	for _, t := range ts {
		adv, rev := "-", "-"
		if t.AdvertiserID != nil {
			adv = *t.AdvertiserID
		}
		if t.RevokedAt != nil {
			rev = t.RevokedAt.Format("2006-01-02T15:04:05Z")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, adv, t.CreatedAt.Format("2006-01-02T15:04:05Z"), rev)
	}
	return tw.Flush()
}
