package notify_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/natstest"
	"github.com/docket-dev/docket/notify"
)

// embedded runs the embedded server on a free loopback port with a fresh
// data directory; it returns its URL and the data directory.
func embedded(t *testing.T) (url, dataDir string) {
	t.Helper()
	dataDir = t.TempDir()
	srv, url, err := notify.StartEmbedded(dataDir, "127.0.0.1:0", testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return url, dataDir
}

// asUser connects with an nkey seed file; the server's asynchronous
// errors (permission violations) go to the returned channel.
func asUser(t *testing.T, url, seedFile string) (jetstream.JetStream, <-chan error) {
	t.Helper()
	o, err := nats.NkeyOptionFromSeed(seedFile)
	require.NoError(t, err)
	return natstest.Connect(t, url, o)
}

func shortCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// publishEntries publishes n well-formed entries as the relay would.
func publishEntries(t *testing.T, js jetstream.JetStream, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		_, err := js.PublishMsg(shortCtx(t), &nats.Msg{Subject: notify.Subject("decision.recorded"), Data: []byte(`{"i":` + strconv.Itoa(i) + `}`),
			Header: nats.Header{jetstream.MsgIDHeader: {testOrigin + "/" + strconv.Itoa(i)}, notify.HeaderIndex: {strconv.Itoa(i)}}})
		require.NoError(t, err)
	}
}

// The embedded server generates credentials once, mode 0600, keeps them
// across restarts, and refuses clients without a known key.
func TestEmbeddedServerRequiresCredentials(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	srv, url, err := notify.StartEmbedded(dataDir, "127.0.0.1:0", testLogger(t))
	require.NoError(t, err)
	keys := map[string][]byte{}
	for _, p := range []string{notify.PublisherSeedFile(dataDir), notify.ReaderSeedFile(dataDir)} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), p)
		keys[p], err = os.ReadFile(p)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(string(keys[p]), "SU"), "%s is not a user seed", p)
	}

	_, err = nats.Connect(url, nats.Timeout(2*time.Second))
	require.ErrorIs(t, err, nats.ErrAuthorization, "anonymous client admitted")
	stranger, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, _ := stranger.Seed()
	strangerFile := t.TempDir() + "/stranger.nk"
	require.NoError(t, os.WriteFile(strangerFile, seed, 0o600))
	o, err := nats.NkeyOptionFromSeed(strangerFile)
	require.NoError(t, err)
	_, err = nats.Connect(url, o, nats.Timeout(2*time.Second))
	require.ErrorIs(t, err, nats.ErrAuthorization, "unknown key admitted")
	srv.Shutdown()
	srv.WaitForShutdown()

	// A restart reuses the same keys; the listen address defaults to loopback.
	srv, url, err = notify.StartEmbedded(dataDir, ":0", testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	require.Contains(t, url, "127.0.0.1:")
	for p, k := range keys {
		again, err := os.ReadFile(p)
		require.NoError(t, err)
		require.Equal(t, k, again, "%s regenerated", p)
	}
	js, _ := asUser(t, url, notify.PublisherSeedFile(dataDir))
	_, err = notify.EnsureStream(shortCtx(t), js, notify.StreamOptions{})
	require.NoError(t, err)
}

// Docket's own identity publishes and sets up the stream, but can neither
// delete nor purge it nor delete a message from it.
func TestEmbeddedPublisherCannotDeleteOrPurge(t *testing.T) {
	t.Parallel()
	url, dataDir := embedded(t)
	js, errs := asUser(t, url, notify.PublisherSeedFile(dataDir))
	_, err := notify.EnsureStream(shortCtx(t), js, notify.StreamOptions{})
	require.NoError(t, err)
	publishEntries(t, js, 0, 3)
	stream, err := js.Stream(shortCtx(t), notify.DefaultStream)
	require.NoError(t, err)
	_, err = stream.GetMsg(shortCtx(t), 1)
	require.NoError(t, err, "the relay reads messages back")

	require.Error(t, js.DeleteStream(shortCtx(t), notify.DefaultStream))
	natstest.AwaitViolation(t, errs, "$JS.API.STREAM.DELETE.DOCKET")
	require.Error(t, stream.Purge(shortCtx(t)))
	natstest.AwaitViolation(t, errs, "$JS.API.STREAM.PURGE.DOCKET")
	require.Error(t, stream.DeleteMsg(shortCtx(t), 2))
	natstest.AwaitViolation(t, errs, "$JS.API.STREAM.MSG.DELETE.DOCKET")
	require.Equal(t, uint64(3), streamMsgs(t, js, notify.DefaultStream))
}

// The reader may look up the stream, create a durable consumer, fetch and
// acknowledge; it may not publish entries or change the stream.
func TestEmbeddedReaderIsReadOnly(t *testing.T) {
	t.Parallel()
	url, dataDir := embedded(t)
	pub, _ := asUser(t, url, notify.PublisherSeedFile(dataDir))
	_, err := notify.EnsureStream(shortCtx(t), pub, notify.StreamOptions{})
	require.NoError(t, err)
	publishEntries(t, pub, 0, 5)

	js, errs := asUser(t, url, notify.ReaderSeedFile(dataDir))
	readerCanConsume(t, js, 5)

	stream, err := js.Stream(shortCtx(t), notify.DefaultStream)
	require.NoError(t, err)
	readerIsRefused(t, js, stream, errs)
	require.Equal(t, uint64(5), streamMsgs(t, pub, notify.DefaultStream))
}

// readerCanConsume reads the n entries in the stream with a durable
// consumer from index 2 (acknowledged, so a second run resumes after them)
// and with an ordered one.
func readerCanConsume(t *testing.T, js jetstream.JetStream, n int64) {
	t.Helper()
	errStop := errors.New("stop")
	// more: the stream holds more than want, and the one after is left
	// unacknowledged; else the read ends after want.
	read := func(durable string, from, want int64, more bool) []int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var got []int64
		err := notify.Consume(ctx, js, notify.ConsumeOptions{Durable: durable, FromIndex: from}, func(ev notify.Event) error {
			if int64(len(got)) == want {
				return errStop // not acknowledged: a durable's next run starts here
			}
			got = append(got, ev.Index)
			if !more && int64(len(got)) == want {
				cancel()
			}
			return nil
		})
		if more {
			require.ErrorIs(t, err, errStop)
		} else {
			require.NoError(t, err)
		}
		return got
	}
	require.Equal(t, []int64{2, 3}, read("ops", 2, 2, true))
	require.Equal(t, []int64{4}, read("ops", 0, 1, false), "the durable consumer resumes after what it acknowledged")
	require.Len(t, read("", 0, n, false), int(n))
}

// readerIsRefused tries every write a consumer must not make.
func readerIsRefused(t *testing.T, js jetstream.JetStream, stream jetstream.Stream, errs <-chan error) {
	t.Helper()
	before := stream.CachedInfo().Config
	// A core publish and a JetStream one to docket.>.
	require.NoError(t, js.Conn().Publish(notify.Subject("decision.recorded"), []byte(`{}`)))
	natstest.AwaitViolation(t, errs, "docket.decision.recorded")
	_, err := js.PublishMsg(shortCtx(t), &nats.Msg{Subject: notify.Subject("x"), Data: []byte(`{}`),
		Header: nats.Header{jetstream.MsgIDHeader: {testOrigin + "/999999"}, notify.HeaderIndex: {"999999"}}})
	require.Error(t, err)
	natstest.AwaitViolation(t, errs, "docket.x")

	upd := before
	upd.Subjects = append(upd.Subjects, "other.>")
	upd.Description = "changed by a reader"
	_, err = js.UpdateStream(shortCtx(t), upd)
	require.Error(t, err)
	natstest.AwaitViolation(t, errs, "$JS.API.STREAM.UPDATE."+before.Name)
	require.Error(t, js.DeleteStream(shortCtx(t), before.Name))
	natstest.AwaitViolation(t, errs, "$JS.API.STREAM.DELETE."+before.Name)
	require.Error(t, stream.Purge(shortCtx(t)))
	natstest.AwaitViolation(t, errs, "$JS.API.STREAM.PURGE."+before.Name)
	require.Error(t, stream.DeleteMsg(shortCtx(t), 1))
	natstest.AwaitViolation(t, errs, "$JS.API.STREAM.MSG.DELETE."+before.Name)
	_, err = js.CreateStream(shortCtx(t), jetstream.StreamConfig{Name: "SHADOW", Subjects: []string{"docket.shadow.>"}})
	require.Error(t, err)
	natstest.AwaitViolation(t, errs, "$JS.API.STREAM.CREATE.SHADOW")

	info, err := stream.Info(shortCtx(t))
	require.NoError(t, err)
	require.Equal(t, before.Subjects, info.Config.Subjects)
	require.Equal(t, before.Description, info.Config.Description)
}

// Minted consumers get the reader's permissions once the server restarts.
func TestMintedConsumerUser(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	srv, _, err := notify.StartEmbedded(dataDir, "127.0.0.1:0", testLogger(t))
	require.NoError(t, err)
	srv.Shutdown()
	srv.WaitForShutdown()
	p, err := notify.AddConsumerUser(dataDir, "mailer")
	require.NoError(t, err)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, err = notify.AddConsumerUser(dataDir, "mailer")
	require.Error(t, err, "an existing user is not overwritten")
	_, err = notify.AddConsumerUser(dataDir, "../escape")
	require.Error(t, err)
	users, err := notify.ConsumerUsers(dataDir)
	require.NoError(t, err)
	require.Len(t, users, 2)
	require.Equal(t, "mailer", users[1].Name)

	srv, url, err := notify.StartEmbedded(dataDir, "127.0.0.1:0", testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	pub, _ := asUser(t, url, notify.PublisherSeedFile(dataDir))
	_, err = notify.EnsureStream(shortCtx(t), pub, notify.StreamOptions{})
	require.NoError(t, err)
	publishEntries(t, pub, 0, 5)
	js, errs := asUser(t, url, p)
	readerCanConsume(t, js, 5)
	require.NoError(t, js.Conn().Publish(notify.Subject("decision.recorded"), []byte(`{}`)))
	natstest.AwaitViolation(t, errs, "docket.decision.recorded")
}

// Stream DOCKET itself refuses purges and message deletes, whoever asks,
// also when it existed before without those settings.
func TestStreamDeniesDeleteAndPurge(t *testing.T) {
	t.Parallel()
	srv := runNATS(t, -1, t.TempDir())
	js := connect(t, srv.ClientURL())
	ctx := shortCtx(t)
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: notify.DefaultStream, Subjects: []string{"docket.>"}, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	s, err := notify.EnsureStream(ctx, js, notify.StreamOptions{})
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	require.True(t, cfg.DenyDelete && cfg.DenyPurge, "%+v", cfg)
	publishEntries(t, js, 0, 3)
	require.ErrorContains(t, s.Purge(ctx), "not permitted")
	require.ErrorContains(t, s.DeleteMsg(ctx, 2), "not permitted")
	require.Equal(t, uint64(3), streamMsgs(t, js, notify.DefaultStream))
}
