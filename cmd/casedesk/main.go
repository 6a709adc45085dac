// Command casedesk runs the casedesk support case engine: see "casedesk help".
//
// This package only wires things together: configuration from the
// environment, the store, and one method per subcommand.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/casedesk/casedesk/casestore"
)

// version is the release version, set at build time with
// -ldflags "-X main.version=v1.2.3". It is the only package-level variable.
var version = "dev"

const usage = `casedesk is an email-driven support case engine.

Usage:

	casedesk <command> [arguments]

Commands:

	serve                       run the pollers, the outbox worker, the jobs and
	                            the admin API until SIGINT or SIGTERM
	migrate                     apply pending database migrations and exit
	init                        create the default tenant and an admin user if
	                            missing, and print a new admin API key
	run-job NAME [--now TIME]   run one scheduled job once (auto-resolve,
	                            outbox-sweep, deactivate-users, db-maintenance);
	                            TIME is RFC 3339 or an offset from now such as
	                            +96h
	version                     print version and build information
	help                        print this help

Environment (a file named by CASEDESK_CONFIG_FILE may set them too; the
environment wins):

	CASEDESK_DATABASE_URL         PostgreSQL URL (required)
	CASEDESK_HTTP_ADDR            admin API address (default 127.0.0.1:8080)
	CASEDESK_IMAP_URL             mailbox(es) to poll: imaps://user:pass@host/INBOX,
	                              several separated by commas
	CASEDESK_SMTP_URL             smtps://user:pass@host:465 or smtp://host:587
	CASEDESK_SUPPORT_ADDRESS      the default tenant's support address
	CASEDESK_POLL_INTERVAL        poll interval without IDLE (default 30s)
	CASEDESK_BOOTSTRAP_ADMIN_KEY  an admin API key init and serve make sure exists
	CASEDESK_TENANT               the default tenant's slug (default "default")
	CASEDESK_TENANT_NAME          its name (default: the support address's domain)
	CASEDESK_ADMIN_EMAIL          the admin user init creates (default admin@ the
	                              support domain)
	CASEDESK_DISABLE              parts serve leaves to other replicas: pollers,
	                              notify, jobs, api, indexer (comma separated)
	CASEDESK_SMTP_CONNECTIONS     outbox workers sending in parallel (default 8)
	CASEDESK_LOG_LEVEL            debug, info, warn or error (default info)
`

// usageError is a mistake in the command line; the process exits with 2.
type usageError string

func (e usageError) Error() string { return string(e) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal the default handling comes back, so a second
	// one ends the process at once, whatever shutdown is waiting for.
	context.AfterFunc(ctx, stop)
	m := NewMain()
	err := m.load(os.Getenv)
	if err == nil {
		err = m.Run(ctx, os.Args[1:])
	}
	m.Close()
	stop()
	os.Exit(m.Report(err))
}

// Main is the casedesk program: its configuration, where its output goes and
// the resources it opened.
type Main struct {
	Config Config
	// Stdout receives command output; Stderr receives logs, errors and
	// usage.
	Stdout io.Writer
	Stderr io.Writer

	logger *slog.Logger
	db     *casestore.DB
}

// NewMain returns a Main with the default configuration writing to the
// process's standard output and error.
func NewMain() *Main {
	return &Main{
		Config: Config{LogLevel: slog.LevelInfo},
		Stdout: os.Stdout,
		Stderr: os.Stderr,
	}
}

// load sets m.Config from the environment.
func (m *Main) load(getenv func(string) string) error {
	getenv, err := fileEnv(strings.TrimSpace(getenv(envConfigFile)), getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	m.Config = cfg
	return nil
}

// Run runs the command named by args[0] (without the program name) until it
// is done or ctx is cancelled.
func (m *Main) Run(ctx context.Context, args []string) error {
	m.logger = slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: m.Config.LogLevel}))
	if len(args) == 0 {
		return usageError("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(m.Stdout, usage)
		return nil
	case "migrate", "version", "serve", "init", "run-job":
	default:
		return usageError(fmt.Sprintf("unknown command %q", cmd))
	}
	if len(rest) > 0 && isHelp(rest[0]) {
		fmt.Fprint(m.Stdout, usage)
		return nil
	}
	var job jobArgs
	if cmd == "run-job" {
		var err error
		if job, err = parseJobArgs(rest, time.Now()); err != nil {
			return err
		}
	} else if len(rest) > 0 {
		return usageError(cmd + " takes no arguments")
	}
	if err := m.Config.Check(cmd); err != nil {
		return err
	}
	switch cmd {
	case "migrate":
		return m.migrate(ctx)
	case "serve":
		return m.serve(ctx)
	case "init":
		return m.init(ctx)
	case "run-job":
		return m.runJob(ctx, job)
	default:
		return m.version()
	}
}

// Close releases what Run opened. It is safe to call more than once.
func (m *Main) Close() {
	if m.db != nil {
		m.db.Close()
		m.db = nil
	}
}

// Report writes err to Stderr as one line (with the usage text for a
// command line error) and returns the exit status for it.
func (m *Main) Report(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(m.Stderr, "casedesk: %s\n\n%s", oneLine(err), usage)
		return 2
	default:
		fmt.Fprintf(m.Stderr, "casedesk: %s\n", oneLine(err))
		return 1
	}
}

// openDB opens the store once per Main; Close closes it.
func (m *Main) openDB(ctx context.Context) (*casestore.DB, error) {
	if m.db != nil {
		return m.db, nil
	}
	m.logger.Debug("opening database")
	// The URL is never part of an error or a log line: it may hold a
	// password, and casestore.Open already leaves it out of its errors.
	db, err := casestore.Open(ctx, m.Config.DatabaseURL)
	if err != nil {
		return nil, lineError{err}
	}
	m.db = db
	return db, nil
}

// migrate applies the pending migrations and says what it did.
func (m *Main) migrate(ctx context.Context) error {
	db, err := m.openDB(ctx)
	if err != nil {
		return err
	}
	applied, err := db.Migrate(ctx)
	for _, mig := range applied {
		m.logger.Debug("migration applied", "version", mig.Version, "name", mig.Name, "duration", mig.Duration)
		fmt.Fprintf(m.Stdout, "applied %s (%s)\n", mig.Name, mig.Duration)
	}
	if err != nil {
		return lineError{err}
	}
	current, _, err := db.SchemaVersion(ctx)
	if err != nil {
		return lineError{err}
	}
	if len(applied) == 0 {
		fmt.Fprintf(m.Stdout, "no pending migrations; schema at version %d\n", current)
		return nil
	}
	fmt.Fprintf(m.Stdout, "schema at version %d\n", current)
	return nil
}

// version prints the release version and what the Go toolchain recorded
// about the build.
func (m *Main) version() error {
	fmt.Fprintf(m.Stdout, "casedesk %s\n", version)
	fmt.Fprintf(m.Stdout, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	fmt.Fprintf(m.Stdout, "module: %s %s\n", info.Main.Path, info.Main.Version)
	settings := make(map[string]string)
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		fmt.Fprintf(m.Stdout, "revision: %s\n", rev)
	}
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(m.Stdout, "revision time: %s\n", t)
	}
	return nil
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// lineError keeps an error's chain but prints it on one line: the driver
// reports every address it tried on a line of its own.
type lineError struct{ err error }

func (e lineError) Error() string { return oneLine(e.err) }
func (e lineError) Unwrap() error { return e.err }

// oneLine joins the lines of err's text, so a failure is one line of output.
func oneLine(err error) string {
	var b strings.Builder
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(line)
	}
	return b.String()
}
