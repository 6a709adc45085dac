package e2e

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// pollInterval is how often the harness looks again at something it waits
// for: short, because every wait is on loopback.
const pollInterval = 10 * time.Millisecond

// errPollTimeout is wrapped by poll's error when the deadline passed.
var errPollTimeout = errors.New("timed out")

// poll calls check every pollInterval until it returns nil, or until
// timeout has passed; then it returns check's last error, wrapped with
// errPollTimeout. check runs at least once.
func poll(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %v: %w", errPollTimeout, timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// kernel hands out ephemeral ports in turn, so another process taking it
// before the caller binds it is unlikely; callers that can retry on
// "address already in use" do.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	return port
}

// child is a process a test started. One goroutine waits for it, so any
// number of callers can learn when it exits and how.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait has returned
	err  error         // cmd.Wait's result, set before done is closed
}

// startChild starts cmd in a process group of its own (so that stopping it
// also reaches the processes it forks), which the kernel sends deathSig if
// the test binary dies first, and begins waiting for it.
func startChild(cmd *exec.Cmd, deathSig syscall.Signal) (*child, error) {
	// Pdeathsig fires when the thread that forked exits; the Go runtime
	// only ends threads of goroutines that locked one, which nothing here
	// does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// exited reports whether the process has exited (and been waited for).
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// waitTimeout waits up to timeout for the process to exit and reports
// whether it did.
func (c *child) waitTimeout(timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-c.done:
		return true
	case <-timer.C:
		return false
	}
}

// signalGroup sends sig to the process's whole group. It is a no-op once
// the process has been waited for, when its id may belong to another.
func (c *child) signalGroup(sig syscall.Signal) {
	if c.exited() {
		return
	}
	// ESRCH (already gone) is the only likely error and means done.
	_ = syscall.Kill(-c.cmd.Process.Pid, sig)
}

// stop sends SIGTERM to the group, and SIGKILL if the process has not
// exited after grace. It returns the process's exit error and whether it
// had to be killed. Signalling the whole group stops Dovecot in a few
// milliseconds; its master alone takes a second to stop its children.
func (c *child) stop(grace time.Duration) (killed bool, err error) {
	c.signalGroup(syscall.SIGTERM)
	if !c.waitTimeout(grace) {
		killed = true
		c.kill()
	}
	return killed, c.err
}

// kill sends SIGKILL to the group and waits for the process.
func (c *child) kill() {
	c.signalGroup(syscall.SIGKILL)
	<-c.done
}
