package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

const (
	dovecotBin = "/usr/sbin/dovecot"
	ldaBin     = "/usr/lib/dovecot/dovecot-lda"
	// rootMailUser runs Dovecot's mail processes when the tests run as
	// root, which Dovecot refuses to use for them. .ci/run creates it.
	rootMailUser = "casedesk-test"
	// imapPassword is every user's password: the static passdb accepts any
	// user name with it.
	imapPassword = "secret"

	dovecotStartTimeout = 15 * time.Second
	dovecotStopTimeout  = 10 * time.Second
	ldaTimeout          = 30 * time.Second
)

// Dovecot is a real Dovecot IMAP server that one test started, listening on
// a loopback port of its own with plain-text login, its mail, state and log
// in a temporary directory. Every user name logs in with imapPassword and
// has a mailbox of its own. Dovecot lowercases user names, so "Bob" and
// "bob" are one user.
type Dovecot struct {
	dir  string // holds dovecot.conf, dovecot.log, run/, state/, mail/
	addr string // 127.0.0.1:port of the IMAP listener
	user mailUser
	proc *child
}

// mailUser is the system account Dovecot's mail processes run as.
type mailUser struct {
	name, group string
	uid, gid    int
}

// startDovecot starts a Dovecot for the test and stops it, removing its
// directory, when the test ends. It fails the test when Dovecot is not
// installed or does not answer within dovecotStartTimeout.
func startDovecot(t testing.TB) *Dovecot {
	t.Helper()
	if _, err := os.Stat(dovecotBin); err != nil {
		t.Fatalf("%s missing: install Debian's dovecot-imapd (bash .ci/run does): %v", dovecotBin, err)
	}
	u, err := lookupMailUser()
	if err != nil {
		t.Fatal(err)
	}
	dir := dovecotDir(t, u)
	// The port may be taken between freePort and Dovecot's bind: try again
	// with another.
	for attempt := 1; ; attempt++ {
		d := &Dovecot{dir: dir, addr: net.JoinHostPort("127.0.0.1", freePort(t)), user: u}
		err := d.start()
		if err == nil {
			t.Cleanup(func() { d.stop(t) })
			return d
		}
		if !strings.Contains(err.Error(), "Address already in use") || attempt == 3 {
			t.Fatalf("start dovecot: %v", err)
		}
	}
}

// lookupMailUser returns rootMailUser when the tests run as root, else the
// current user (Dovecot then runs everything as that user).
func lookupMailUser() (mailUser, error) {
	name := rootMailUser
	if os.Geteuid() != 0 {
		cur, err := user.Current()
		if err != nil {
			return mailUser{}, fmt.Errorf("current user: %w", err)
		}
		name = cur.Username
	}
	u, err := user.Lookup(name)
	if err != nil {
		return mailUser{}, fmt.Errorf("mail user %s: %w (bash .ci/run creates it: useradd --system --no-create-home --shell /usr/sbin/nologin %s)", name, err, name)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return mailUser{}, fmt.Errorf("group %s of %s: %w", u.Gid, name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return mailUser{}, fmt.Errorf("ids of %s: %w", name, err)
	}
	return mailUser{name: u.Username, group: g.Name, uid: uid, gid: gid}, nil
}

// dovecotDir creates Dovecot's directory, owned by the mail user, and
// removes it when the test ends. It is made directly in the temporary
// directory rather than with t.TempDir, whose per-test parent only its
// creator can enter: as root, the mail user must reach its maildirs.
func dovecotDir(t testing.TB, u mailUser) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "casedesk-dovecot-")
	if err != nil {
		t.Fatalf("dovecot dir: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove dovecot dir: %v", err)
		}
	})
	if os.Geteuid() != 0 {
		return dir
	}
	if err := os.Chown(dir, u.uid, u.gid); err != nil {
		t.Fatalf("dovecot dir: %v", err)
	}
	// The mail user must be able to enter every parent: check rather than
	// chmod directories the test does not own.
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("dovecot dir: %v", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			t.Fatalf("user %s cannot enter %s (mode %v), a parent of %s: set TMPDIR to a directory everyone can enter, such as /tmp", u.name, p, fi.Mode().Perm(), dir)
		}
		if p == filepath.Dir(p) {
			return dir
		}
	}
}

// start writes the configuration, starts Dovecot in the foreground and
// waits until it greets an IMAP client. On failure nothing is left running.
func (d *Dovecot) start() error {
	if err := d.writeConfig(); err != nil {
		return err
	}
	out, err := os.Create(d.path("stderr.log"))
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(dovecotBin, "-F", "-c", d.path("dovecot.conf"))
	cmd.Stdout, cmd.Stderr = out, out
	// If the test binary dies, SIGTERM lets the master stop its children;
	// SIGKILL would leave them running.
	if d.proc, err = startChild(cmd, syscall.SIGTERM); err != nil {
		return err
	}
	err = poll(dovecotStartTimeout, func() error {
		if d.proc.exited() {
			return nil // reported below
		}
		return imapGreeting(d.addr)
	})
	switch {
	case d.proc.exited():
		return fmt.Errorf("dovecot exited before answering (%v)\n%s", d.proc.err, d.diagnostics())
	case err != nil:
		d.proc.kill()
		return fmt.Errorf("dovecot on %s: %w\n%s", d.addr, err, d.diagnostics())
	}
	return nil
}

// imapGreeting connects to addr and reads the server's first line, which
// must be an untagged OK. Dovecot sends it only once its auth process is
// ready, so a greeting means logins will work.
func imapGreeting(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if !strings.HasPrefix(line, "* OK") {
		return fmt.Errorf("greeting %q", strings.TrimSpace(line))
	}
	return nil
}

// stop terminates Dovecot (SIGTERM, then SIGKILL after dovecotStopTimeout)
// and, if the test failed, logs the end of Dovecot's log. A Dovecot that
// exited by itself fails the test: the scenario ran against a dead server.
func (d *Dovecot) stop(t testing.TB) {
	if d.proc.exited() {
		t.Errorf("dovecot on %s exited during the test: %v", d.addr, d.proc.err)
	}
	if killed, _ := d.proc.stop(dovecotStopTimeout); killed {
		t.Logf("dovecot ignored SIGTERM for %v and was killed", dovecotStopTimeout)
	}
	if t.Failed() {
		t.Logf("dovecot on %s:\n%s", d.addr, d.diagnostics())
	}
}

// diagnostics is the end of Dovecot's log and whatever it printed.
func (d *Dovecot) diagnostics() string {
	var b strings.Builder
	b.WriteString("--- tail of dovecot.log\n")
	b.WriteString(tail(d.path("dovecot.log"), 30))
	b.WriteString("--- dovecot stdout/stderr\n")
	b.WriteString(tail(d.path("stderr.log"), 30))
	return b.String()
}

// tail returns the last n lines of the file at path, or why it cannot.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)\n", err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

func (d *Dovecot) path(name string) string { return filepath.Join(d.dir, name) }

// Addr returns the IMAP listener's address, 127.0.0.1:port.
func (d *Dovecot) Addr() string { return d.addr }

// URL returns the engine's mailbox URL for user's INBOX. It is plain
// imap://, which the engine allows without TLS to a loopback host.
func (d *Dovecot) URL(user string) string {
	u := url.URL{Scheme: "imap", User: url.UserPassword(user, imapPassword), Host: d.addr, Path: "/INBOX"}
	return u.String()
}

// Deliver puts raw into user's INBOX the way an MTA does, with
// dovecot-lda, and fails the test if it cannot. Like every t.Fatal, call it
// from the test's goroutine; other goroutines use DeliverErr.
func (d *Dovecot) Deliver(t testing.TB, user string, raw []byte) {
	t.Helper()
	if err := d.DeliverErr(user, raw); err != nil {
		t.Fatal(err)
	}
}

// DeliverErr is Deliver returning the error. It is safe for concurrent use:
// each call is its own dovecot-lda process, and Dovecot locks the maildir.
// The envelope sender is the From address, when there is one; dovecot-lda
// adds no header (no Return-Path) either way.
func (d *Dovecot) DeliverErr(user string, raw []byte) error {
	args := []string{"-c", d.path("dovecot.conf"), "-d", user}
	if from := fromAddress(raw); from != "" {
		args = append(args, "-f", from)
	}
	cmd := exec.Command(ldaBin, args...)
	cmd.Stdin = bytes.NewReader(raw)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Started like Dovecot so that a stuck delivery cannot outlive the test.
	proc, err := startChild(cmd, syscall.SIGKILL)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", user, err)
	}
	if !proc.waitTimeout(ldaTimeout) {
		proc.kill()
		return fmt.Errorf("deliver to %s: dovecot-lda still running after %v", user, ldaTimeout)
	}
	if proc.err != nil {
		return fmt.Errorf("deliver to %s: dovecot-lda: %w: %s", user, proc.err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// fromAddress returns the address in raw's From header, or "".
func fromAddress(raw []byte) string {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	addr, err := mail.ParseAddress(m.Header.Get("From"))
	if err != nil {
		return ""
	}
	return addr.Address
}

// writeConfig writes DIR/dovecot.conf for d.
func (d *Dovecot) writeConfig() error {
	_, port, _ := net.SplitHostPort(d.addr)
	f, err := os.Create(d.path("dovecot.conf"))
	if err != nil {
		return err
	}
	err = dovecotConf.Execute(f, map[string]any{
		"Dir": d.dir, "Port": port, "User": d.user.name, "Group": d.user.group,
		"UID": d.user.uid, "Password": imapPassword,
	})
	return errors.Join(err, f.Close())
}

// dovecotConf is a complete Dovecot 2.3 configuration (no include of
// /etc/dovecot), after E2E.md's: IMAP only, on one loopback port, no TLS,
// any user with the one password, everything under Dir and run as User.
var dovecotConf = template.Must(template.New("dovecot.conf").Parse(`# written by casedesk's e2e tests
base_dir = {{.Dir}}/run
state_dir = {{.Dir}}/state
log_path = {{.Dir}}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {{.User}}
default_internal_user = {{.User}}
default_internal_group = {{.Group}}
# sdbox, not the maildir of E2E.md: IMAP clients cannot tell, and maildir
# rereads its whole uidlist on every APPEND, so bulk delivery slowed from
# 1,850 to 320 messages/s between the 1,000th and the 10,000th message.
mail_location = sdbox:{{.Dir}}/mail/%u
mail_uid = {{.User}}
mail_gid = {{.Group}}
# Dovecot refuses mail uids below this; the mail user may be a low system uid.
first_valid_uid = {{.UID}}
# Test mail need not survive a power cut.
mail_fsync = never
# The engine, the harness and the test may all be logged in as one user.
mail_max_userip_connections = 1000
passdb {
  driver = static
  args = password={{.Password}}
}
userdb {
  driver = static
  args = uid={{.User}} gid={{.Group}} home={{.Dir}}/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = {{.Port}}
  }
  inet_listener imaps {
    port = 0
  }
  chroot =
}
service anvil {
  chroot =
}
`))
