package e2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/casedesk/casedesk/casestore/casestoretest"
)

const (
	// engineStopTimeout is how long a SIGTERMed engine may take to shut
	// down before the test fails.
	engineStopTimeout = 30 * time.Second
	// commandTimeout bounds one runCommand.
	commandTimeout = 2 * time.Minute
	// logTailLines is how much of the engine's log a failed test shows.
	logTailLines = 100
)

// casedeskBin is the casedesk binary TestMain built for this run.
var casedeskBin string

// TestMain builds the casedesk binary once for every test, runs them and
// removes it.
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "casedesk-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	casedeskBin = filepath.Join(dir, "casedesk")
	if err := buildCasedesk(casedeskBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// buildCasedesk builds ./cmd/casedesk to out with the go command on PATH,
// where go test puts its own toolchain first.
func buildCasedesk(out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("find the go command: %w", err)
	}
	cmd := exec.Command(goBin, "build", "-o", out, "github.com/casedesk/casedesk/cmd/casedesk")
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build casedesk: %w\n%s", err, output)
	}
	return nil
}

// newDatabase creates an empty database for the test on the test server
// (CASEDESK_TEST_DATABASE_URL, else local PostgreSQL) and drops it, with
// any connection still open, when the test ends.
func newDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url, drop, err := casestoretest.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	return url
}

// commandEnv is the environment of a casedesk process: PATH and HOME from
// the test's, then env in key order, and nothing else, so no setting of the
// developer's leaks in.
func commandEnv(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// runCommand runs casedesk once with args and env (see commandEnv), for
// commands that finish: migrate, version, run-job. It returns what the
// command printed on stdout; the error includes its stderr.
func runCommand(t testing.TB, env map[string]string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, casedeskBin, args...)
	cmd.Env = commandEnv(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("casedesk %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.String(), nil
}

// Engine is a casedesk process a test started, its stdout and stderr in a
// log file.
type Engine struct {
	proc    *child
	logPath string
}

// startEngine starts casedesk with args (default: serve) and env (see
// commandEnv). When the test ends, a still running engine is killed, and a
// failed test shows the end of its log.
func startEngine(t testing.TB, env map[string]string, args ...string) *Engine {
	t.Helper()
	if len(args) == 0 {
		args = []string{"serve"}
	}
	return startProcess(t, casedeskBin, env, args...)
}

// startProcess is startEngine for any program: the harness's own tests
// run one that casedesk does not have yet, a long-running one.
func startProcess(t testing.TB, bin string, env map[string]string, args ...string) *Engine {
	t.Helper()
	e := &Engine{logPath: filepath.Join(t.TempDir(), "engine.log")}
	logFile, err := os.Create(e.logPath)
	if err != nil {
		t.Fatalf("engine log: %v", err)
	}
	defer logFile.Close() // the child writes through its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Env = commandEnv(env)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	name := filepath.Base(bin) + " " + strings.Join(args, " ")
	if e.proc, err = startChild(cmd, syscall.SIGKILL); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	// Registered after t.TempDir's removal, so it runs before it.
	t.Cleanup(func() {
		if !e.proc.exited() {
			e.proc.kill()
		}
		if t.Failed() {
			t.Logf("%s, last %d lines of its log:\n%s", name, logTailLines, tail(e.logPath, logTailLines))
		}
	})
	return e
}

// Stop sends SIGTERM and waits for the engine to exit, failing the test
// (and killing it) after engineStopTimeout. It returns the exit error: nil
// when the engine exited with status 0.
func (e *Engine) Stop(t testing.TB) error {
	t.Helper()
	killed, err := e.proc.stop(engineStopTimeout)
	if killed {
		t.Fatalf("casedesk still running %v after SIGTERM; killed", engineStopTimeout)
	}
	return err
}

// Kill sends SIGKILL, as a crash or the OOM killer would, and waits for
// the engine to exit.
func (e *Engine) Kill(t testing.TB) {
	t.Helper()
	e.proc.kill()
}

// Wait waits for the engine to exit by itself and returns the exit error.
func (e *Engine) Wait() error {
	<-e.proc.done
	return e.proc.err
}

// Done is closed when the engine has exited.
func (e *Engine) Done() <-chan struct{} { return e.proc.done }

// Pid returns the engine's process id.
func (e *Engine) Pid() int { return e.proc.cmd.Process.Pid }

// Log returns what the engine has printed so far.
func (e *Engine) Log() string {
	data, err := os.ReadFile(e.logPath)
	if err != nil {
		return fmt.Sprintf("(read engine log: %v)", err)
	}
	return string(data)
}

// PeakRSSKB returns the engine's peak resident set size in KiB: once it
// has exited, the kernel's figure from wait4 (rusage maxrss); while it
// runs, VmHWM from /proc. It returns 0 when neither can be read.
func (e *Engine) PeakRSSKB() int64 {
	if e.proc.exited() {
		if ru, ok := e.proc.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			return ru.Maxrss // KiB on Linux
		}
		return 0
	}
	kb, err := procStatusKB(e.Pid(), "VmHWM")
	if err != nil {
		return 0
	}
	return kb
}

// procStatusKB reads a "Field:   123 kB" line of /proc/PID/status.
func procStatusKB(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		num, _ := strings.CutSuffix(strings.TrimSpace(rest), " kB")
		return strconv.ParseInt(num, 10, 64)
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// waitHTTP polls url until it answers 200 OK, failing the test after
// timeout with the last answer or error.
func waitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	if err := pollHTTP(url, timeout); err != nil {
		t.Fatal(err)
	}
}

// pollHTTP is waitHTTP returning the error.
func pollHTTP(url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	err := poll(timeout, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
