package crashtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
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
	cmd    *exec.Cmd
	exited chan struct{}
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
	if p.cmd != nil {
		return fmt.Errorf("crashtest: %s already running", p.Name)
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("crashtest: log file: %w", err)
	}
	p.starts++
	fmt.Fprintf(f, "=== crashtest: start %d of %s\n", p.starts, p.Name)
	cmd := exec.Command(p.bin, "serve")
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("crashtest: start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
	return nil
}

// Running says whether the process was started and not yet killed or stopped.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() error { return p.signal(syscall.SIGKILL, 0) }

// Stop sends SIGTERM and waits up to grace, then kills.
func (p *Proc) Stop(grace time.Duration) error { return p.signal(syscall.SIGTERM, grace) }

func (p *Proc) signal(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("crashtest: signal %s: %w", p.Name, err)
	}
	if sig == syscall.SIGKILL {
		<-exited
		return nil
	}
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("crashtest: %s did not stop within %s of %s", p.Name, grace, sig)
	}
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
