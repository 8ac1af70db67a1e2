package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	natssrv "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/natstest"
	"github.com/docket-dev/docket/internal/pgtest"
	"github.com/docket-dev/docket/notify"
)

const natsConfFile = "testdata/nats-server.conf"

// externalNATS runs nats-server from the configuration file that
// docs/operations.md shows, with the two passwords defined, on a free
// loopback port.
func externalNATS(t *testing.T) (url, docketPW, readerPW string) {
	t.Helper()
	raw, err := os.ReadFile(natsConfFile)
	require.NoError(t, err)
	docketPW, readerPW = "pw-docket-"+t.Name(), "pw-reader-"+t.Name()
	conf := filepath.Join(t.TempDir(), "nats.conf")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, "DOCKET_NATS_PASSWORD: %q\nDOCKET_READER_PASSWORD: %q\n%s", docketPW, readerPW, raw), 0o600))
	opts, err := natssrv.ProcessConfigFile(conf)
	require.NoError(t, err)
	opts.Host, opts.Port, opts.StoreDir, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, t.TempDir(), true, true
	s := natstest.Run(t, opts)
	return s.ClientURL(), docketPW, readerPW
}

// The configuration docs/operations.md shows ("External NATS") is the
// tested one, and its permissions are the embedded server's.
func TestNATSConfigIsDocumentedAndMatchesEmbedded(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(natsConfFile)
	require.NoError(t, err)
	page, err := os.ReadFile("../../docs/operations.md")
	require.NoError(t, err)
	require.True(t, strings.Contains(string(page), string(raw)), "docs/operations.md must show %s verbatim", natsConfFile)

	conf := filepath.Join(t.TempDir(), "nats.conf")
	require.NoError(t, os.WriteFile(conf, append([]byte("DOCKET_NATS_PASSWORD: a\nDOCKET_READER_PASSWORD: b\n"), raw...), 0o600))
	opts, err := natssrv.ProcessConfigFile(conf)
	require.NoError(t, err)
	perms := map[string]*natssrv.Permissions{}
	for _, u := range opts.Users {
		perms[u.Username] = u.Permissions
	}
	require.Equal(t, notify.PublisherPermissions("", ""), perms["docket"])
	require.Equal(t, notify.ReaderPermissions("", ""), perms["reader"])
}

// `docket serve`'s connect code against an external NATS with accounts
// and permissions: the relay publishes as user docket; the reader reads
// and acknowledges but can change nothing; anonymous clients are refused.
func TestExternalNATSWithPermissions(t *testing.T) {
	t.Parallel()
	url, docketPW, readerPW := externalNATS(t)
	db := pgtest.New(t)
	cfg := config{DataDir: t.TempDir(), NATSURL: url, NATSUser: "docket", NATSPassword: docketPW,
		LogOrigin: "test.local/audit", StreamReplicas: 1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	relay, stop, err := startNotify(ctx, cfg, db, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	defer stop()
	const n = 12
	for i := range n {
		tx := db.MustBegin()
		_, err := audit.Append(ctx, tx, audit.Entry{Type: "decision.recorded", Time: time.Now(), Actor: "enforcer:t",
			Subject: audit.Subject{Kind: "decision", ID: fmt.Sprint(i)}})
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
	}
	_, integrated, err := startAuditLog(ctx, config{DataDir: cfg.DataDir, LogOrigin: cfg.LogOrigin}, db, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer func() { cancel(); <-integrated }()
	require.Eventually(t, func() bool { return relay.Status().NextIndex == n }, 30*time.Second, 10*time.Millisecond, "%+v", relay.Status())
	require.NotContains(t, logs.String(), docketPW, "the password reached the log")

	_, err = nats.Connect(url, nats.Timeout(2*time.Second))
	require.ErrorIs(t, err, nats.ErrAuthorization, "anonymous client admitted")
	_, err = nats.Connect(url, nats.UserInfo("reader", "wrong"), nats.Timeout(2*time.Second))
	require.ErrorIs(t, err, nats.ErrAuthorization)

	// The publisher cannot delete the stream.
	pub, pubErrs := natstest.Connect(t, url, nats.UserInfo("docket", docketPW))
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
	require.Error(t, pub.DeleteStream(dctx, notify.DefaultStream))
	dcancel()
	natstest.AwaitViolation(t, pubErrs, "$JS.API.STREAM.DELETE.DOCKET")

	// The reader: durable consumer, fetch, ack.
	js, errs := natstest.Connect(t, url, nats.UserInfo("reader", readerPW))
	errStop := errors.New("stop")
	var got []int64
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	err = notify.Consume(cctx, js, notify.ConsumeOptions{Durable: "ops", FromIndex: 5}, func(ev notify.Event) error {
		if len(got) == 3 {
			return errStop
		}
		got = append(got, ev.Index)
		return nil
	})
	require.ErrorIs(t, err, errStop)
	require.Equal(t, []int64{5, 6, 7}, got)
	cons, err := js.Consumer(cctx, notify.DefaultStream, "ops")
	require.NoError(t, err)
	info, err := cons.Info(cctx)
	require.NoError(t, err)
	require.Equal(t, uint64(8), info.AckFloor.Stream, "acknowledged through index 7")

	// ...and nothing else.
	require.NoError(t, js.Conn().Publish("docket.decision.recorded", []byte(`{}`)))
	natstest.AwaitViolation(t, errs, "docket.decision.recorded")
	stream, err := js.Stream(cctx, notify.DefaultStream)
	require.NoError(t, err)
	for _, c := range []struct {
		subject string
		call    func(context.Context) error
	}{
		{"$JS.API.STREAM.UPDATE.DOCKET", func(ctx context.Context) error {
			c := stream.CachedInfo().Config
			c.Description = "reader was here"
			_, err := js.UpdateStream(ctx, c)
			return err
		}},
		{"$JS.API.STREAM.DELETE.DOCKET", func(ctx context.Context) error { return js.DeleteStream(ctx, notify.DefaultStream) }},
		{"$JS.API.STREAM.PURGE.DOCKET", func(ctx context.Context) error { return stream.Purge(ctx) }},
		{"$JS.API.STREAM.MSG.DELETE.DOCKET", func(ctx context.Context) error { return stream.DeleteMsg(ctx, 1) }},
	} {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		require.Error(t, c.call(rctx), c.subject)
		rcancel()
		natstest.AwaitViolation(t, errs, c.subject)
	}
	si, err := stream.Info(cctx)
	require.NoError(t, err)
	require.Equal(t, uint64(n), si.State.Msgs)
	require.NotEqual(t, "reader was here", si.Config.Description)
	require.True(t, si.Config.DenyDelete && si.Config.DenyPurge)
}

// At most one kind of NATS credentials; secrets never in --help.
func TestNATSCredentialSettings(t *testing.T) {
	t.Parallel()
	parse := func(vars map[string]string, args ...string) (config, string, error) {
		var usage strings.Builder
		e := &env{getenv: func(k string) string { return vars[k] }, stderr: &usage}
		fs := newFlagSet("serve", e, "")
		var c config
		require.NoError(t, c.bind(fs, e))
		if err := fs.Parse(args); err != nil {
			return c, usage.String(), err
		}
		fs.Usage()
		_, err := c.natsAuth()
		return c, usage.String(), err
	}
	_, _, err := parse(map[string]string{"DOCKET_NATS_URL": "nats://h:4222", "DOCKET_NATS_USER": "u", "DOCKET_NATS_TOKEN": "tok"})
	require.ErrorContains(t, err, "not several")
	_, _, err = parse(map[string]string{"DOCKET_NATS_URL": "nats://h:4222", "DOCKET_NATS_USER": "u"})
	require.ErrorContains(t, err, "go together")
	_, _, err = parse(map[string]string{"DOCKET_NATS_TOKEN": "tok"})
	require.ErrorContains(t, err, "external NATS")
	_, _, err = parse(map[string]string{"DOCKET_NATS_URL": "nats://h:4222", "DOCKET_NATS_NKEY": "/nonexistent"})
	require.Error(t, err)
	c, usage, err := parse(map[string]string{"DOCKET_NATS_URL": "nats://h:4222", "DOCKET_NATS_USER": "u", "DOCKET_NATS_PASSWORD": "s3cret-pw"})
	require.NoError(t, err)
	require.Equal(t, "s3cret-pw", c.NATSPassword)
	require.NotContains(t, usage, "s3cret-pw")
	c, usage, err = parse(map[string]string{"DOCKET_NATS_URL": "nats://h:4222", "DOCKET_NATS_TOKEN": "tok-env"}, "--nats-token", "tok-flag")
	require.NoError(t, err)
	require.Equal(t, "tok-flag", c.NATSToken)
	require.NotContains(t, usage, "tok-")
	require.Equal(t, "nats://redacted@h:4222", redactURL("nats://u:pw@h:4222"))
}

// `docket nats-user add` mints a read-only identity the embedded server
// admits after a restart; list shows it; a second add of NAME is refused.
func TestNATSUserCommand(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	getenv := func(k string) string { return map[string]string{"DOCKET_DATA_DIR": dataDir}[k] }
	runCmd := func(args ...string) (string, error) {
		var out strings.Builder
		err := run(context.Background(), append([]string{"docket"}, args...), getenv, strings.NewReader(""), &out, io.Discard)
		return out.String(), err
	}
	out, err := runCmd("nats-user", "add", "mailer")
	require.NoError(t, err)
	p := filepath.Join(dataDir, "nats", "users", "mailer.nk")
	require.Contains(t, out, p)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, err = runCmd("nats-user", "add", "mailer")
	require.ErrorContains(t, err, "exists")
	_, err = runCmd("nats-user", "add")
	require.Error(t, err)

	srv, url, err := notify.StartEmbedded(dataDir, "127.0.0.1:0", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	out, err = runCmd("nats-user", "list")
	require.NoError(t, err)
	require.Contains(t, out, "reader\tU")
	require.Contains(t, out, "mailer\tU")

	o, err := nats.NkeyOptionFromSeed(p)
	require.NoError(t, err)
	js, errs := natstest.Connect(t, url, o)
	require.NoError(t, js.Conn().Publish("docket.decision.recorded", []byte(`{}`)))
	natstest.AwaitViolation(t, errs, "docket.decision.recorded")
}

// --creds and DOCKET_NATS_CREDS take a .creds file (user JWT and seed) or
// a bare nkey seed file, and tell them apart by content.
func TestCredsFileKinds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	acct, err := nkeys.CreateAccount()
	require.NoError(t, err)
	user, err := nkeys.CreateUser()
	require.NoError(t, err)
	userPub, _ := user.PublicKey()
	userSeed, _ := user.Seed()
	token, err := jwt.NewUserClaims(userPub).Encode(acct)
	require.NoError(t, err)
	creds, err := jwt.FormatUserConfig(token, userSeed)
	require.NoError(t, err)
	credsFile, seedFile := filepath.Join(dir, "u.creds"), filepath.Join(dir, "u.nk")
	require.NoError(t, os.WriteFile(credsFile, creds, 0o600))
	require.NoError(t, os.WriteFile(seedFile, append(userSeed, '\n'), 0o600))

	apply := func(p string) nats.Options {
		o, err := credsFileOption(p)
		require.NoError(t, err)
		opts := nats.GetDefaultOptions()
		require.NoError(t, o(&opts))
		return opts
	}
	c := apply(credsFile)
	require.NotNil(t, c.UserJWT, "a .creds file authenticates with its JWT")
	require.Empty(t, c.Nkey)
	n := apply(seedFile)
	require.Equal(t, userPub, n.Nkey, "a seed file authenticates with its nkey")
	require.Nil(t, n.UserJWT)

	junk := filepath.Join(dir, "junk")
	require.NoError(t, os.WriteFile(junk, []byte("not a key"), 0o600))
	_, err = credsFileOption(junk)
	require.ErrorContains(t, err, "neither")
}
