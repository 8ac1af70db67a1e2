// Package childproc runs a program as a child process whose output is
// appended to a log file, and takes it down with a signal, waiting until
// it is gone: the crash harness's `docket serve` processes and natstest's
// nats-server nodes, which tests kill and start again on the same log.
package childproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is one run of a program.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs cmd with its stdout and stderr appended to logFile, after
// the line banner when it is not empty (so that a log of several runs
// shows where each began).
func Start(cmd *exec.Cmd, logFile, banner string) (*Process, error) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("childproc: log file: %w", err)
	}
	if banner != "" {
		if _, err := io.WriteString(f, banner+"\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("childproc: log file: %w", err)
		}
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("childproc: start %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed once the process is gone.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// State is how the process ended; nil while it runs.
func (p *Process) State() *os.ProcessState {
	select {
	case <-p.exited:
		return p.cmd.ProcessState
	default:
		return nil
	}
}

// Signal sends sig and waits for the process to be gone: as long as it
// takes after SIGKILL, else up to grace, after which it is killed and
// the error says so.
func (p *Process) Signal(sig syscall.Signal, grace time.Duration) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("childproc: signal %s: %w", sig, err)
	}
	if sig == syscall.SIGKILL {
		<-p.exited
		return nil
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("childproc: did not stop within %s of %s; killed", grace, sig)
	}
}
