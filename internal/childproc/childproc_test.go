package childproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func start(t *testing.T, log, banner, script string) *Process {
	t.Helper()
	p, err := Start(exec.Command("sh", "-c", script), log, banner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Signal(syscall.SIGKILL, 0) })
	return p
}

// TestLogAppends: each run appends its banner and output to the log.
func TestLogAppends(t *testing.T) {
	log := filepath.Join(t.TempDir(), "x.log")
	for _, banner := range []string{"=== one", "", "=== three"} {
		p := start(t, log, banner, "echo out; echo err >&2")
		<-p.Exited()
		if st := p.State(); st == nil || !st.Success() {
			t.Fatalf("state %v, want a success", st)
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Count(string(b), "out\n"), 3; got != want {
		t.Fatalf("log has %d runs' output, want %d:\n%s", got, want, b)
	}
	if !strings.HasPrefix(string(b), "=== one\n") || !strings.Contains(string(b), "=== three\n") || strings.Count(string(b), "===") != 2 {
		t.Fatalf("log's banners:\n%s", b)
	}
}

// TestSignal: SIGTERM ends a process that heeds it within grace; one that
// ignores it is killed after grace and the error says so; SIGKILL waits
// as long as it takes.
func TestSignal(t *testing.T) {
	log := filepath.Join(t.TempDir(), "x.log")
	heeds := start(t, log, "", "exec sleep 30")
	if heeds.State() != nil {
		t.Fatal("state of a running process is not nil")
	}
	if err := heeds.Signal(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if st := heeds.State(); st == nil || st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("state %v, want ended by SIGTERM", st)
	}

	// The shell traps SIGTERM and stays up; it says when it has.
	ignores := start(t, log, "", "trap '' TERM; echo trapped; while :; do sleep 0.05; done")
	for deadline := time.Now().Add(10 * time.Second); ; {
		if b, _ := os.ReadFile(log); strings.Contains(string(b), "trapped") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the shell never trapped SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	const grace = 200 * time.Millisecond
	began := time.Now()
	err := ignores.Signal(syscall.SIGTERM, grace)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("SIGTERM ignored: %v, want an error saying it was killed", err)
	}
	if since := time.Since(began); since < grace {
		t.Fatalf("killed %s after SIGTERM, before the grace %s", since, grace)
	}
	if st := ignores.State(); st == nil || st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("state %v, want ended by SIGKILL", st)
	}

	killed := start(t, log, "", "trap '' TERM; exec sleep 30")
	if err := killed.Signal(syscall.SIGKILL, 0); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	if killed.State() == nil {
		t.Fatal("SIGKILL returned before the process was gone")
	}
	// Signalling a process that is gone is no error.
	if err := killed.Signal(syscall.SIGTERM, time.Second); err != nil {
		t.Fatalf("SIGTERM after the end: %v", err)
	}
}

// TestStartFails: a program that cannot start is an error, and so is a
// log that cannot be opened.
func TestStartFails(t *testing.T) {
	dir := t.TempDir()
	if _, err := Start(exec.Command(filepath.Join(dir, "none")), filepath.Join(dir, "x.log"), ""); err == nil {
		t.Fatal("start of a missing program: no error")
	}
	if _, err := Start(exec.Command("true"), filepath.Join(dir, "no", "x.log"), ""); err == nil {
		t.Fatal("a log in a missing directory: no error")
	}
}
