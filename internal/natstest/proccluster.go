package natstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/childproc"
)

// RunProcCluster starts n JetStream servers as nats-server child
// processes, otherwise as RunCluster does: named n1..nn, routed to each
// other, each with its own ports, store directory and log file, and a
// monitoring port the waits read /jsz from. Its nodes can be killed
// (Node.Kill, SIGKILL) as well as shut down (SIGTERM); either way they
// restart as themselves. They are killed when the test ends.
//
// The binary is built once per call from the nats-server module this
// module requires, so it is the version go.mod pins, never whatever
// nats-server the machine has; the go command's build cache makes that a
// link. The test's working directory must be inside this module (a
// test's is its package's directory).
func RunProcCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	bin, err := buildServer(t.TempDir())
	require.NoError(t, err)
	specs := layout(t, n)
	confDir := t.TempDir()
	nodes := make([]*Node, n)
	for i, sp := range specs {
		conf := filepath.Join(confDir, sp.name+".conf")
		require.NoError(t, os.WriteFile(conf, []byte(serverConfig(sp)), 0o600))
		nodes[i] = newNode(t, sp, &proc{bin: bin, conf: conf, logFile: sp.logFile,
			monitor: fmt.Sprintf("http://127.0.0.1:%d", sp.httpPort), hc: &http.Client{Timeout: 2 * time.Second}})
	}
	return startCluster(t, nodes, true)
}

// buildServer compiles the nats-server of the module graph into dir and
// returns the binary's path.
func buildServer(dir string) (string, error) {
	bin := filepath.Join(dir, "nats-server")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("natstest: go build nats-server: %w: %s", err, out)
	}
	return bin, nil
}

// serverConfig is the node's configuration file: what RunCluster sets as
// options, and the monitoring port.
func serverConfig(sp nodeSpec) string {
	routes := make([]string, len(sp.routes))
	for i, r := range sp.routes {
		routes[i] = fmt.Sprintf("%q", r.String())
	}
	return fmt.Sprintf(`server_name: %q
host: "127.0.0.1"
port: %d
http: "127.0.0.1:%d"
log_file: %q
jetstream {
  store_dir: %q
}
cluster {
  name: %q
  listen: "127.0.0.1:%d"
  routes: [%s]
}
`, sp.name, sp.clientPort, sp.httpPort, sp.logFile, sp.storeDir, ClusterName, sp.routePort, strings.Join(routes, ", "))
}

// stopGrace is how long a SIGTERMed server may take to shut down: it
// steps down from what it leads and flushes first.
const stopGrace = 30 * time.Second

// proc runs a node's server as a child process.
type proc struct {
	bin, conf, logFile string
	// monitor is the base URL of the server's monitoring port.
	monitor string
	hc      *http.Client
	run     *childproc.Process
}

// start runs the server, its output appended to its log file (beside the
// server's own lines: a panic or a configuration error shows there), and
// waits until its monitoring port reports it up with JetStream enabled.
func (p *proc) start() error {
	run, err := childproc.Start(exec.Command(p.bin, "-c", p.conf), p.logFile, "")
	if err != nil {
		return err
	}
	p.run = run
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if p.healthy() {
			return nil
		}
		select {
		case <-run.Exited():
			p.run = nil
			return fmt.Errorf("nats-server exited at start: %s", run.State())
		case <-tick.C:
		}
	}
	_ = p.stop(true)
	return errors.New("not ready within 10s")
}

// healthy says whether /healthz answers 200 for the server alone: it
// takes connections and JetStream is enabled, whatever its cluster.
func (p *proc) healthy() bool {
	resp, err := p.hc.Get(p.monitor + "/healthz?js-enabled-only=true")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop sends SIGKILL, or SIGTERM and SIGKILL after stopGrace, and waits
// for the process to be gone.
func (p *proc) stop(kill bool) error {
	run := p.run
	p.run = nil
	if run == nil {
		return nil
	}
	if kill {
		return run.Signal(syscall.SIGKILL, 0)
	}
	return run.Signal(syscall.SIGTERM, stopGrace)
}

// jsz reads the server's /jsz for the global account's streams.
func (p *proc) jsz() (*server.JSInfo, error) {
	resp, err := p.hc.Get(p.monitor + "/jsz?acc=" + server.DEFAULT_GLOBAL_ACCOUNT + "&streams=true")
	if err != nil {
		return nil, fmt.Errorf("jsz: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jsz: status %d", resp.StatusCode)
	}
	var jsi server.JSInfo
	if err := json.NewDecoder(resp.Body).Decode(&jsi); err != nil {
		return nil, fmt.Errorf("jsz: %w", err)
	}
	return &jsi, nil
}
