package crashtest

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/docket-dev/docket/internal/childproc"
)

// Build compiles cmd/docket into dir and returns the binary's path. module
// is the directory of the module's go.mod.
func Build(ctx context.Context, moduleDir, dir string) (string, error) {
	bin := dir + "/docket"
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/docket")
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("crashtest: go build: %w: %s", err, out)
	}
	return bin, nil
}

// Proc is one `docket serve` child process that can be killed and started
// again on the same address, data directory and log file.
type Proc struct {
	Name string
	URL  string
	bin  string
	env  []string
	log  string

	mu     sync.Mutex
	run    *childproc.Process
	starts int
}

// NewProc describes a serve process; Start runs it. env is the child's
// whole environment.
func NewProc(name, bin, addr, logFile string, env []string) *Proc {
	return &Proc{Name: name, URL: "http://" + addr, bin: bin, env: env, log: logFile}
}

// Start runs the process; its output is appended to the log file.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil {
		return fmt.Errorf("crashtest: %s already running", p.Name)
	}
	p.starts++
	cmd := exec.Command(p.bin, "serve")
	cmd.Env = p.env
	run, err := childproc.Start(cmd, p.log, fmt.Sprintf("=== crashtest: start %d of %s", p.starts, p.Name))
	if err != nil {
		return fmt.Errorf("crashtest: %s: %w", p.Name, err)
	}
	p.run = run
	return nil
}

// Running says whether the process was started and not yet killed or stopped.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run != nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() error { return p.signal(syscall.SIGKILL, 0) }

// Stop sends SIGTERM and waits up to grace, then kills.
func (p *Proc) Stop(grace time.Duration) error { return p.signal(syscall.SIGTERM, grace) }

func (p *Proc) signal(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	run := p.run
	p.run = nil
	p.mu.Unlock()
	if run == nil {
		return nil
	}
	if err := run.Signal(sig, grace); err != nil {
		return fmt.Errorf("crashtest: %s: %w", p.Name, err)
	}
	return nil
}

// Ready says whether /readyz answers 200.
func (p *Proc) Ready(ctx context.Context, hc *http.Client) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
