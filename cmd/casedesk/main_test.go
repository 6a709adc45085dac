package main

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/casedesk/casedesk/casestore/casestoretest"
)

func TestMain(m *testing.M) { casestoretest.Main(m) }

// testMain returns a Main whose output goes to the returned buffers.
func testMain(t *testing.T, cfg Config) (m *Main, stdout, stderr *bytes.Buffer) {
	t.Helper()
	stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
	m = &Main{Config: cfg, Stdout: stdout, Stderr: stderr}
	t.Cleanup(m.Close)
	return m, stdout, stderr
}

// withDefaults fills in the settings LoadConfig defaults when unset.
func withDefaults(c Config) Config {
	if c.HTTPAddr == "" {
		c.HTTPAddr = defaultHTTPAddr
	}
	if c.PollInterval == 0 {
		c.PollInterval = defaultPollInterval
	}
	if c.Tenant == "" {
		c.Tenant = defaultTenant
	}
	if c.SMTPConnections == 0 {
		c.SMTPConnections = defaultSMTPWorkers
	}
	return c
}

func TestLoadConfig(t *testing.T) {
	const url = "postgres://casedesk@db.example:5432/casedesk"
	tests := []struct {
		name    string
		env     map[string]string
		command string
		want    Config
		wantErr string
	}{
		{
			name:    "defaults",
			env:     map[string]string{envDatabaseURL: url},
			command: "migrate",
			want:    Config{DatabaseURL: url, LogLevel: slog.LevelInfo},
		},
		{
			name:    "missing database url",
			env:     map[string]string{},
			command: "migrate",
			wantErr: "CASEDESK_DATABASE_URL is not set",
		},
		{
			name:    "blank database url",
			env:     map[string]string{envDatabaseURL: "  "},
			command: "migrate",
			wantErr: "CASEDESK_DATABASE_URL is not set",
		},
		{
			name:    "version needs no database",
			env:     map[string]string{},
			command: "version",
			want:    Config{LogLevel: slog.LevelInfo},
		},
		{
			name:    "debug",
			env:     map[string]string{envDatabaseURL: url, envLogLevel: "debug"},
			command: "migrate",
			want:    Config{DatabaseURL: url, LogLevel: slog.LevelDebug},
		},
		{
			name:    "warn, upper case",
			env:     map[string]string{envDatabaseURL: url, envLogLevel: "WARN"},
			command: "migrate",
			want:    Config{DatabaseURL: url, LogLevel: slog.LevelWarn},
		},
		{
			name:    "error",
			env:     map[string]string{envLogLevel: "error"},
			command: "version",
			want:    Config{LogLevel: slog.LevelError},
		},
		{
			name:    "bad log level",
			env:     map[string]string{envDatabaseURL: url, envLogLevel: "verbose"},
			command: "migrate",
			wantErr: "CASEDESK_LOG_LEVEL",
		},
		{
			name:    "bad log level without database",
			env:     map[string]string{envLogLevel: "warning"},
			command: "version",
			wantErr: "CASEDESK_LOG_LEVEL",
		},
		{
			name: "serve with everything",
			env: map[string]string{envDatabaseURL: url, envHTTPAddr: "0.0.0.0:9000",
				envIMAPURL: "imaps://support:pw@imap.example/INBOX, imaps://billing:pw@imap.example/INBOX",
				envSMTPURL: "smtps://u:p@smtp.example", envSupportAddress: "support@acme.example",
				envPollInterval: "1m", envSMTPWorkers: "4", envTenant: "acme", envTenantName: "Acme",
				envAdminEmail: "root@acme.example", envDisable: "jobs, indexer",
				envBootstrapKey: "cdk_1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
			command: "serve",
			want: Config{DatabaseURL: url, LogLevel: slog.LevelInfo, HTTPAddr: "0.0.0.0:9000",
				IMAPURLs: []string{"imaps://support:pw@imap.example/INBOX", "imaps://billing:pw@imap.example/INBOX"},
				SMTPURL:  "smtps://u:p@smtp.example", SMTPConnections: 4, SupportAddress: "support@acme.example",
				PollInterval: time.Minute, BootstrapAdminKey: "cdk_1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
				Tenant: "acme", TenantName: "Acme", AdminEmail: "root@acme.example", Disabled: []string{"jobs", "indexer"}},
		},
		{
			name:    "serve needs a database",
			env:     map[string]string{},
			command: "serve",
			wantErr: "CASEDESK_DATABASE_URL is not set",
		},
		{
			name:    "mailbox without support address",
			env:     map[string]string{envDatabaseURL: url, envIMAPURL: "imaps://support:pw@imap.example/INBOX"},
			command: "serve",
			wantErr: "CASEDESK_SUPPORT_ADDRESS is not",
		},
		{
			name:    "mailbox without support address, pollers off",
			env:     map[string]string{envDatabaseURL: url, envIMAPURL: "imaps://s:pw@imap.example/INBOX", envDisable: "pollers"},
			command: "serve",
			want: Config{DatabaseURL: url, LogLevel: slog.LevelInfo, IMAPURLs: []string{"imaps://s:pw@imap.example/INBOX"},
				Disabled: []string{"pollers"}},
		},
		{
			name:    "init needs a support address",
			env:     map[string]string{envDatabaseURL: url},
			command: "init",
			wantErr: "CASEDESK_SUPPORT_ADDRESS is not set",
		},
		{name: "unknown part", env: map[string]string{envDisable: "pollers,mail"}, command: "version", wantErr: `unknown part "mail"`},
		{name: "bad http addr", env: map[string]string{envHTTPAddr: "8080"}, command: "version", wantErr: "CASEDESK_HTTP_ADDR"},
		{name: "bad poll interval", env: map[string]string{envPollInterval: "5"}, command: "version", wantErr: "CASEDESK_POLL_INTERVAL"},
		{name: "poll interval too short", env: map[string]string{envPollInterval: "10ms"}, command: "version", wantErr: "at least 1s"},
		{name: "bad support address", env: map[string]string{envSupportAddress: "support"}, command: "version", wantErr: "not an email address"},
		{name: "bad smtp connections", env: map[string]string{envSMTPWorkers: "0"}, command: "version", wantErr: "CASEDESK_SMTP_CONNECTIONS"},
		{name: "bad bootstrap key", env: map[string]string{envBootstrapKey: "secret"}, command: "version", wantErr: "cdk_<tenant id>_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadConfig(func(k string) string { return tt.env[k] })
			if err == nil {
				err = got.Check(tt.command)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			want := withDefaults(tt.want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestRunMigrate(t *testing.T) {
	url := casestoretest.EmptyDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	m, stdout, _ := testMain(t, Config{DatabaseURL: url})
	if err := m.Run(ctx, []string{"migrate"}); err != nil {
		t.Fatalf("first migrate: %v", err)
	}
	first := stdout.String()
	if !strings.Contains(first, "applied 00001_schema.sql (") {
		t.Errorf("first migrate did not list 00001_schema.sql:\n%s", first)
	}
	if strings.Contains(first, "no pending") {
		t.Errorf("first migrate said nothing was pending:\n%s", first)
	}
	lines := strings.Split(strings.TrimSpace(first), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "schema at version ") {
		t.Errorf("first migrate ended with %q, want the schema version", last)
	}
	m.Close()

	m2, stdout2, _ := testMain(t, Config{DatabaseURL: url})
	if err := m2.Run(ctx, []string{"migrate"}); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if got, want := stdout2.String(), "no pending migrations; "+last+"\n"; got != want {
		t.Errorf("second migrate: got %q, want %q", got, want)
	}
}

func TestRunDatabaseErrors(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want string
	}{
		{
			name: "unreachable",
			url:  "postgres://postgres:s3cret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2",
			want: "casedesk: connect to database: ",
		},
		{
			name: "unreachable, several addresses",
			url:  "postgres://postgres:s3cret@localhost:1/x?sslmode=disable&connect_timeout=2",
			want: "casedesk: connect to database: ",
		},
		{
			name: "malformed",
			url:  "postgres://postgres:s3cret@127.0.0.1:99999/x",
			want: "casedesk: parse database url: ",
		},
		{
			name: "missing",
			url:  "",
			want: "casedesk: connect to database: CASEDESK_DATABASE_URL is not set",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			m, stdout, stderr := testMain(t, Config{DatabaseURL: tt.url})
			err := m.Run(ctx, []string{"migrate"})
			if err == nil {
				t.Fatal("migrate succeeded, want an error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is more than one line: %q", err)
			}
			if code := m.Report(err); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			out := stderr.String()
			if !strings.HasPrefix(out, tt.want) {
				t.Errorf("stderr %q, want it to start with %q", out, tt.want)
			}
			if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
				t.Errorf("stderr is not one line: %q", out)
			}
			if strings.Contains(out, "s3cret") {
				t.Errorf("stderr shows the password: %q", out)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "no command", args: nil, wantCode: 2, wantErr: "casedesk: no command given\n"},
		{name: "unknown command", args: []string{"serve-all"}, wantCode: 2, wantErr: "casedesk: unknown command \"serve-all\"\n"},
		{name: "extra argument", args: []string{"migrate", "now"}, wantCode: 2, wantErr: "casedesk: migrate takes no arguments\n"},
		{name: "help", args: []string{"help"}, wantCode: 0, wantOut: "Usage:"},
		{name: "-h", args: []string{"-h"}, wantCode: 0, wantOut: "Usage:"},
		{name: "command -h", args: []string{"migrate", "-h"}, wantCode: 0, wantOut: "Usage:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, stdout, stderr := testMain(t, Config{})
			code := m.Report(m.Run(context.Background(), tt.args))
			if code != tt.wantCode {
				t.Errorf("exit status %d, want %d", code, tt.wantCode)
			}
			if tt.wantErr != "" {
				if !strings.HasPrefix(stderr.String(), tt.wantErr) || !strings.Contains(stderr.String(), "Usage:") {
					t.Errorf("stderr %q, want %q and the usage", stderr, tt.wantErr)
				}
			}
			if tt.wantOut != "" && !strings.Contains(stdout.String(), tt.wantOut) {
				t.Errorf("stdout %q, want it to contain %q", stdout, tt.wantOut)
			}
		})
	}
}

func TestRunVersion(t *testing.T) {
	m, stdout, stderr := testMain(t, Config{})
	if err := m.Run(context.Background(), []string{"version"}); err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	for _, want := range []string{"casedesk " + version + "\n", runtime.Version()} {
		if !strings.Contains(out, want) {
			t.Errorf("version output %q lacks %q", out, want)
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr %q, want nothing", stderr)
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "one line", in: "connect: refused", want: "connect: refused"},
		{name: "continued after colon", in: "failed:\n\ta: refused\n\tb: refused", want: "failed: a: refused; b: refused"},
		{name: "blank lines", in: "a\n\n b \n", want: "a; b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := oneLine(stringError(tt.in)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

type stringError string

func (e stringError) Error() string { return string(e) }
