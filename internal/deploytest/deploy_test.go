package deploytest

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
)

const root = "../.."

var secrets = []string{"POSTGRES_PASSWORD=pg-secret", "DOCKET_NATS_PASSWORD=nats-secret", "DOCKET_READER_PASSWORD=reader-secret"}

func load(t *testing.T, env []string, files ...string) (*types.Project, error) {
	t.Helper()
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(root, f))
	}
	opts, err := cli.NewProjectOptions(paths, cli.WithEnv(env), cli.WithName("docket"), cli.WithWorkingDirectory(root))
	require.NoError(t, err)
	return opts.LoadProject(context.Background())
}

func env(svc types.ServiceConfig, k string) string {
	if v, ok := svc.Environment[k]; ok && v != nil {
		return *v
	}
	return ""
}

// TestComposeStartsSafely: the stack has its three services, publishes
// every port on loopback only, gives Postgres a password (no trust) that
// docket's URL uses, NATS its credentials, docket a data volume and a
// version, and refuses to start without the secrets.
func TestComposeStartsSafely(t *testing.T) {
	t.Parallel()
	_, err := load(t, nil, "docker-compose.yml")
	require.ErrorContains(t, err, "POSTGRES_PASSWORD", "starting without the passwords set is refused, naming them")

	p, err := load(t, append(slices.Clone(secrets), "DOCKET_VERSION=v1.2.3"), "docker-compose.yml")
	require.NoError(t, err)
	for _, name := range []string{"postgres", "nats", "docket"} {
		svc, err := p.GetService(name)
		require.NoError(t, err, name)
		require.NotEmpty(t, svc.Ports, name)
		for _, port := range svc.Ports {
			require.Equal(t, "127.0.0.1", port.HostIP, "%s publishes port %d beyond loopback", name, port.Target)
		}
	}
	pg, _ := p.GetService("postgres")
	require.Empty(t, env(pg, "POSTGRES_HOST_AUTH_METHOD"), "no trust authentication")
	require.Equal(t, "pg-secret", env(pg, "POSTGRES_PASSWORD"))

	d, _ := p.GetService("docket")
	require.Contains(t, env(d, "DATABASE_URL"), "postgres:pg-secret@postgres:5432/")
	require.Equal(t, "nats://nats:4222", env(d, "DOCKET_NATS_URL"))
	require.Equal(t, "docket", env(d, "DOCKET_NATS_USER"))
	require.Equal(t, "nats-secret", env(d, "DOCKET_NATS_PASSWORD"))
	require.Equal(t, "/data", env(d, "DOCKET_DATA_DIR"))
	require.True(t, slices.ContainsFunc(d.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeVolume && v.Target == "/data"
	}), "docket keeps its data directory in a named volume")
	require.NotNil(t, d.Build)
	require.Equal(t, "v1.2.3", *d.Build.Args["VERSION"], "the image is stamped with the version")

	n, _ := p.GetService("nats")
	var conf string
	for _, v := range n.Volumes {
		if v.Target == "/etc/nats/docket.conf" {
			conf = v.Source
		}
	}
	require.NotEmpty(t, conf, "NATS runs with Docket's config")
	b, err := os.ReadFile(conf)
	require.NoError(t, err)
	require.Contains(t, string(b), "password: $DOCKET_NATS_PASSWORD", "NATS admits only configured users")
	require.NotContains(t, string(b), "no_auth_user", "no anonymous user")
}

// TestComposeSignerKeyAsASecret: the override mounts the key as a secret
// and points DOCKET_SIGNER_KEY_FILE at it.
func TestComposeSignerKeyAsASecret(t *testing.T) {
	t.Parallel()
	p, err := load(t, secrets, "docker-compose.yml", "docker-compose.signer.yml")
	require.NoError(t, err)
	d, _ := p.GetService("docket")
	require.Equal(t, "/run/secrets/docket_signer_key", env(d, "DOCKET_SIGNER_KEY_FILE"))
	require.Len(t, d.Secrets, 1)
	require.Equal(t, "docket_signer_key", d.Secrets[0].Source)
	require.True(t, strings.HasSuffix(p.Secrets["docket_signer_key"].File, filepath.Join("secrets", "docket.key")))
}

// dockerfileLines reads the Dockerfile's instructions, joined across
// continuation lines, comments dropped.
func dockerfileLines(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	defer f.Close()
	var lines []string
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		lines = append(lines, cur+l)
		cur = ""
	}
	require.NoError(t, sc.Err())
	return lines
}

// TestDockerfileRunsAsNonrootWithAWritableVolume: the final stage runs as
// uid 65532, /data belongs to it before VOLUME declares it (so a new named
// volume is writable on first start, where the signer key and the pin go),
// and the binary is stamped with VERSION.
func TestDockerfileRunsAsNonrootWithAWritableVolume(t *testing.T) {
	t.Parallel()
	lines := dockerfileLines(t)
	last := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			last = i
		}
	}
	final := lines[last:]
	require.Contains(t, final[0], ":nonroot")
	at := func(prefix string) int {
		return slices.IndexFunc(final, func(l string) bool { return strings.HasPrefix(l, prefix) })
	}
	chown, volume, user := at("COPY --from=build --chown=65532:65532 /out/data /data"), at("VOLUME /data"), at("USER 65532")
	require.NotEqual(t, -1, chown, "/data is not made the nonroot user's")
	require.NotEqual(t, -1, volume)
	require.NotEqual(t, -1, user, "the final stage names its user")
	require.Less(t, chown, volume, "/data must be owned before VOLUME, or a new volume is root's")
	require.True(t, slices.ContainsFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, "RUN ") && strings.Contains(l, "-X main.version=${VERSION}")
	}), "the build stamps the version")
	require.Contains(t, lines, "ARG VERSION=dev")
}

// TestDockerignoreKeepsSecretsOut: keys, data, secrets and build output
// never enter the build context.
func TestDockerignoreKeepsSecretsOut(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	require.NoError(t, err)
	var rules []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			rules = append(rules, l)
		}
	}
	for _, want := range []string{"data/", "*.key", "secrets/", "bin/", ".git", "*.pin"} {
		require.Contains(t, rules, want)
	}
}
