package main

import (
	"context"
	"errors"
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

func cmdToken(ctx context.Context, e *env, args []string) error {
	const usage = "Usage: docket token create|revoke|list\n\n  docket token create --role ROLE --name NAME [--advertiser ID]\n  docket token revoke [--role ROLE] NAME\n  docket token list\n\nFlags:\n"
	fs := newFlagSet("token", e, usage)
	dsn := databaseFlag(fs, e)
	role := fs.String("role", "", "admin, enforcer, reviewer, senior_reviewer, advertiser or auditor")
	name := fs.String("name", "", "the person or system the token is for; its first token binds it for good to one advertiser, or to staff")
	adv := fs.String("advertiser", "", "the advertiser id an advertiser token is bound to")
	sub, rest, err := parseSub(fs, "token", args, "create", "revoke", "list")
	if err != nil {
		return err
	}
	if max := map[string]int{"create": 0, "revoke": 1, "list": 0}[sub]; len(rest) > max {
		fs.Usage()
		return fmt.Errorf("token %s: unexpected argument %q", sub, rest[max])
	}
	db, err := openMigrated(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	defer db.Close()
	store := appeals.NewStore(db, appeals.Options{})
	switch sub {
	case "create":
		t, secret, err := store.CreateToken(ctx, cliActor(e), appeals.TokenInput{Name: *name, Role: docket.Role(*role), AdvertiserID: *adv})
		if err != nil {
			return fmt.Errorf("token create: %w", err)
		}
		fmt.Fprintf(e.stderr, "created %s token %s for %q (shown once; store it now)\n", t.Role, t.ID, t.Name)
		fmt.Fprintln(e.stdout, secret)
	case "revoke":
		target := ""
		if len(rest) > 0 {
			target = rest[0]
		}
		if target == "" {
			target = *name
		}
		if target == "" {
			return errors.New("token revoke: name the token holder")
		}
		n, err := store.RevokeTokens(ctx, cliActor(e), target, docket.Role(*role))
		if err != nil {
			return fmt.Errorf("token revoke: %w", err)
		}
		fmt.Fprintf(e.stdout, "revoked %d token(s) of %q\n", n, target)
	case "list":
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
	return nil
}
