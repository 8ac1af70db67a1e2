package notify

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Files of the embedded server's credentials, under <data-dir>/nats. Each
// is an nkey user seed (SU...), mode 0600: whoever can read it is that
// user. `docket serve` generates the first two on its first start.
const (
	// PublisherSeedName is Docket's own identity: the only one that may
	// publish to docket.> and manage stream DOCKET.
	PublisherSeedName = "docket.nk"
	// ReaderSeedName is the read-only consumer identity `docket events`
	// uses by default.
	ReaderSeedName = "reader.nk"
	// UsersDirName holds further consumer identities (`docket nats-user
	// add NAME` writes NAME.nk); every one gets the reader's permissions.
	UsersDirName = "users"
)

// NATSDir is where the embedded server keeps its store and credentials.
func NATSDir(dataDir string) string { return filepath.Join(dataDir, "nats") }

// PublisherSeedFile is the path of Docket's own seed in dataDir.
func PublisherSeedFile(dataDir string) string {
	return filepath.Join(NATSDir(dataDir), PublisherSeedName)
}

// ReaderSeedFile is the path of the default consumer seed in dataDir.
func ReaderSeedFile(dataDir string) string {
	return filepath.Join(NATSDir(dataDir), ReaderSeedName)
}

// UsersDir is where minted consumer seeds live.
func UsersDir(dataDir string) string { return filepath.Join(NATSDir(dataDir), UsersDirName) }

// PublisherPermissions is what Docket's own identity may do: publish
// entries and use the JetStream API, except delete or purge the stream or
// delete a message from it (the stream also denies the last two itself).
func PublisherPermissions(stream, prefix string) *server.Permissions {
	if stream == "" {
		stream = DefaultStream
	}
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{prefixOr(prefix) + ">", "$JS.API.>"},
			Deny: []string{
				"$JS.API.STREAM.DELETE." + stream,
				"$JS.API.STREAM.PURGE." + stream,
				"$JS.API.STREAM.MSG.DELETE." + stream,
			},
		},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// ReaderPermissions is what a consumer may do, and nothing else: look up
// the stream, read a message by sequence (to find --from-index), create
// and look up consumers on it, fetch and acknowledge. It may not publish
// to docket.>, nor update, delete or purge the stream, nor delete a
// message, nor delete a consumer.
func ReaderPermissions(stream, prefix string) *server.Permissions {
	if stream == "" {
		stream = DefaultStream
	}
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{
				"$JS.API.INFO",
				"$JS.API.STREAM.INFO." + stream,
				"$JS.API.STREAM.MSG.GET." + stream,
				"$JS.API.CONSUMER.CREATE." + stream,
				"$JS.API.CONSUMER.CREATE." + stream + ".>",
				"$JS.API.CONSUMER.DURABLE.CREATE." + stream + ".>",
				"$JS.API.CONSUMER.INFO." + stream + ".>",
				"$JS.API.CONSUMER.MSG.NEXT." + stream + ".>",
				"$JS.ACK." + stream + ".>",
			},
			// Redundant with the allow list; kept so that widening it by
			// mistake still leaves the log's stream untouchable.
			Deny: []string{
				prefixOr(prefix) + ">",
				"$JS.API.STREAM.UPDATE.>",
				"$JS.API.STREAM.DELETE.>",
				"$JS.API.STREAM.PURGE.>",
				"$JS.API.STREAM.MSG.DELETE.>",
			},
		},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// EnsureCredentials generates the publisher and reader seeds in dataDir
// unless they exist, and returns the seed files' paths.
func EnsureCredentials(dataDir string) (publisher, reader string, err error) {
	publisher, reader = PublisherSeedFile(dataDir), ReaderSeedFile(dataDir)
	for _, p := range []string{publisher, reader} {
		if _, err := ensureSeed(p); err != nil {
			return "", "", err
		}
	}
	return publisher, reader, nil
}

var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// AddConsumerUser mints a read-only identity NAME in dataDir's users
// directory and returns its seed file. It refuses a NAME that exists.
// The embedded server loads users when it starts.
func AddConsumerUser(dataDir, name string) (string, error) {
	if !userName.MatchString(name) || name == "docket" || name == "reader" {
		return "", fmt.Errorf("notify: user name %q: want letters, digits, - and _ (at most 64), not docket or reader", name)
	}
	p := filepath.Join(UsersDir(dataDir), name+".nk")
	if _, err := os.Stat(p); err == nil {
		return "", fmt.Errorf("notify: user %s exists (%s)", name, p)
	}
	created, err := ensureSeed(p)
	if err != nil {
		return "", err
	}
	if !created {
		return "", fmt.Errorf("notify: user %s exists (%s)", name, p)
	}
	return p, nil
}

// ConsumerUser is one minted consumer identity.
type ConsumerUser struct {
	Name      string
	PublicKey string // U...
	File      string
}

// ConsumerUsers lists the reader and the minted consumer identities.
func ConsumerUsers(dataDir string) ([]ConsumerUser, error) {
	var out []ConsumerUser
	add := func(name, p string) error {
		pub, err := seedPublicKey(p)
		if err != nil {
			return err
		}
		out = append(out, ConsumerUser{Name: name, PublicKey: pub, File: p})
		return nil
	}
	if _, err := os.Stat(ReaderSeedFile(dataDir)); err == nil {
		if err := add("reader", ReaderSeedFile(dataDir)); err != nil {
			return nil, err
		}
	}
	ents, err := os.ReadDir(UsersDir(dataDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("notify: users: %w", err)
	}
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".nk"); ok && !e.IsDir() && userName.MatchString(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if err := add(n, filepath.Join(UsersDir(dataDir), n+".nk")); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// embeddedUsers is the server's user list: the publisher, the reader and
// every minted consumer. Anonymous clients are not among them.
func embeddedUsers(dataDir string) ([]*server.NkeyUser, error) {
	pub, err := seedPublicKey(PublisherSeedFile(dataDir))
	if err != nil {
		return nil, err
	}
	users := []*server.NkeyUser{{Nkey: pub, Permissions: PublisherPermissions("", "")}}
	readers, err := ConsumerUsers(dataDir)
	if err != nil {
		return nil, err
	}
	for _, r := range readers {
		users = append(users, &server.NkeyUser{Nkey: r.PublicKey, Permissions: ReaderPermissions("", "")})
	}
	return users, nil
}

// ensureSeed writes a new user seed to p unless p exists, atomically
// (a temporary file renamed into place) and with mode 0600.
func ensureSeed(p string) (created bool, err error) {
	if _, err := os.Stat(p); err == nil {
		if _, err := seedPublicKey(p); err != nil {
			return false, err
		}
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return false, fmt.Errorf("notify: credentials directory: %w", err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return false, fmt.Errorf("notify: new nkey: %w", err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return false, fmt.Errorf("notify: new nkey: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return false, fmt.Errorf("notify: write %s: %w", p, err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600; chmod anyway against an odd umask.
	werr := errors.Join(tmp.Chmod(0o600), writeAll(tmp, append(seed, '\n')), tmp.Sync(), tmp.Close())
	if werr != nil {
		return false, fmt.Errorf("notify: write %s: %w", p, werr)
	}
	// Link, unlike rename, fails when p appeared meanwhile: a concurrent
	// start keeps the seed it found.
	if err := os.Link(tmp.Name(), p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("notify: write %s: %w", p, err)
	}
	return true, nil
}

func writeAll(f *os.File, b []byte) error {
	_, err := f.Write(b)
	return err
}

func seedPublicKey(p string) (string, error) {
	raw, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("notify: read seed: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(raw)
	if err != nil {
		return "", fmt.Errorf("notify: seed %s: %w", p, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("notify: seed %s: %w", p, err)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("notify: seed %s is not a user seed", p)
	}
	return pub, nil
}
