package main

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/casedesk/casedesk"
)

// Environment variables read by casedesk. The names are part of the user
// interface (see DESIGN.md, "What a user touches"): keep them stable.
const (
	envConfigFile     = "CASEDESK_CONFIG_FILE"
	envDatabaseURL    = "CASEDESK_DATABASE_URL"
	envLogLevel       = "CASEDESK_LOG_LEVEL"
	envHTTPAddr       = "CASEDESK_HTTP_ADDR"
	envIMAPURL        = "CASEDESK_IMAP_URL"
	envSMTPURL        = "CASEDESK_SMTP_URL"
	envSupportAddress = "CASEDESK_SUPPORT_ADDRESS"
	envPollInterval   = "CASEDESK_POLL_INTERVAL"
	envBootstrapKey   = "CASEDESK_BOOTSTRAP_ADMIN_KEY"
	envTenant         = "CASEDESK_TENANT"
	envTenantName     = "CASEDESK_TENANT_NAME"
	envAdminEmail     = "CASEDESK_ADMIN_EMAIL"
	envDisable        = "CASEDESK_DISABLE"
	envSMTPWorkers    = "CASEDESK_SMTP_CONNECTIONS"
	envSandboxSMTPURL = "CASEDESK_SANDBOX_SMTP_URL"
)

// The parts of "casedesk serve"; CASEDESK_DISABLE names those a replica
// leaves to others.
const (
	partPollers = "pollers"
	partNotify  = "notify"
	partJobs    = "jobs"
	partAPI     = "api"
	partIndexer = "indexer"
)

var parts = []string{partPollers, partNotify, partJobs, partAPI, partIndexer}

// Config is the configuration of one casedesk process, read from the
// environment and, under it, an optional file.
type Config struct {
	// DatabaseURL is the PostgreSQL connection URL. It may hold a password:
	// never print or log it.
	DatabaseURL string
	// LogLevel is the least severe level that is logged.
	LogLevel slog.Level
	// HTTPAddr is where the admin API, /healthz, /readyz and /metrics
	// listen.
	HTTPAddr string
	// IMAPURLs are the mailboxes to poll, each an imaps:// or imap:// URL
	// with its password: never print or log them. They are checked when
	// serve starts, so that a bad one is reported without stopping the
	// others.
	IMAPURLs []string
	// SMTPURL is the server outbound mail goes through; empty keeps mail
	// queued. It may hold a password.
	SMTPURL string
	// SMTPConnections is how many outbox workers send in parallel, each
	// over its own connection.
	SMTPConnections int
	// SandboxSMTPURL is the server sandboxes' mail goes through; empty:
	// their mail goes nowhere.
	SandboxSMTPURL string
	// SupportAddress is the default tenant's support address.
	SupportAddress string
	// PollInterval is the wait between checks of a server without IDLE.
	PollInterval time.Duration
	// BootstrapAdminKey, when set, is an admin API key that init and serve
	// make sure exists. A secret.
	BootstrapAdminKey string
	// Tenant and TenantName are the default tenant's slug and name;
	// AdminEmail is the address of the admin user init creates.
	Tenant     string
	TenantName string
	AdminEmail string
	// Disabled are the parts of serve this process does not run.
	Disabled []string
}

// Config defaults.
const (
	defaultHTTPAddr     = "127.0.0.1:8080"
	defaultPollInterval = 30 * time.Second
	defaultTenant       = "default"
	defaultSMTPWorkers  = 8
)

// LoadConfig reads the configuration through getenv (os.Getenv in main)
// and rejects values it cannot use. Whether a setting is required depends
// on the command; Check tells.
func LoadConfig(getenv func(string) string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	cfg := Config{
		DatabaseURL:       get(envDatabaseURL),
		HTTPAddr:          get(envHTTPAddr),
		IMAPURLs:          strings.Fields(strings.ReplaceAll(get(envIMAPURL), ",", " ")),
		SMTPURL:           get(envSMTPURL),
		SandboxSMTPURL:    get(envSandboxSMTPURL),
		SupportAddress:    get(envSupportAddress),
		BootstrapAdminKey: get(envBootstrapKey),
		Tenant:            get(envTenant),
		TenantName:        get(envTenantName),
		AdminEmail:        get(envAdminEmail),
		PollInterval:      defaultPollInterval,
		SMTPConnections:   defaultSMTPWorkers,
	}
	if len(cfg.IMAPURLs) == 0 {
		cfg.IMAPURLs = nil
	}
	var err error
	if cfg.LogLevel, err = parseLogLevel(getenv(envLogLevel)); err != nil {
		return Config{}, err
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = defaultHTTPAddr
	} else if _, _, err := net.SplitHostPort(cfg.HTTPAddr); err != nil {
		return Config{}, fmt.Errorf("%s=%q: want host:port, such as 127.0.0.1:8080", envHTTPAddr, cfg.HTTPAddr)
	}
	if v := get(envPollInterval); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return Config{}, fmt.Errorf("%s=%q: want a duration of at least 1s, such as 30s", envPollInterval, v)
		}
		cfg.PollInterval = d
	}
	if v := get(envSMTPWorkers); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return Config{}, fmt.Errorf("%s=%q: want a number from 1 to 64", envSMTPWorkers, v)
		}
		cfg.SMTPConnections = n
	}
	if cfg.Tenant == "" {
		cfg.Tenant = defaultTenant
	}
	if cfg.SupportAddress != "" && !casedesk.ValidEmail(cfg.SupportAddress) {
		return Config{}, fmt.Errorf("%s=%q: not an email address", envSupportAddress, cfg.SupportAddress)
	}
	if cfg.AdminEmail != "" && !casedesk.ValidEmail(cfg.AdminEmail) {
		return Config{}, fmt.Errorf("%s=%q: not an email address", envAdminEmail, cfg.AdminEmail)
	}
	if cfg.BootstrapAdminKey != "" {
		if _, _, err := casedesk.ParseAPIKey(cfg.BootstrapAdminKey); err != nil {
			return Config{}, fmt.Errorf("%s is not an API key of the form cdk_<tenant id>_<43 characters of base64url>", envBootstrapKey)
		}
	}
	for _, p := range strings.FieldsFunc(strings.ToLower(get(envDisable)), func(r rune) bool { return r == ',' || r == ' ' }) {
		if !slices.Contains(parts, p) {
			return Config{}, fmt.Errorf("%s: unknown part %q; the parts are %s", envDisable, p, strings.Join(parts, ", "))
		}
		cfg.Disabled = append(cfg.Disabled, p)
	}
	return cfg, nil
}

// Enabled reports whether serve runs the part.
func (c Config) Enabled(part string) bool { return !slices.Contains(c.Disabled, part) }

// Check returns an error naming the first setting that command needs and
// the configuration lacks.
func (c Config) Check(command string) error {
	switch command {
	case "migrate", "serve", "init", "run-job":
		if c.DatabaseURL == "" {
			return fmt.Errorf("connect to database: %s is not set; %s needs a PostgreSQL URL such as postgres://user@host:5432/casedesk", envDatabaseURL, command)
		}
	}
	switch command {
	case "serve":
		if len(c.IMAPURLs) > 0 && c.Enabled(partPollers) && c.SupportAddress == "" {
			return fmt.Errorf("%s is set but %s is not: mail read from the mailbox needs the address customers write to", envIMAPURL, envSupportAddress)
		}
	case "init":
		if c.SupportAddress == "" {
			return fmt.Errorf("%s is not set; init creates the default tenant with it", envSupportAddress)
		}
	}
	return nil
}

// fileEnv reads a configuration file of KEY=VALUE lines (blank lines and
// lines starting with # are skipped; a value may be in double quotes) and
// returns a getenv that prefers the environment and falls back to the
// file. An empty path means no file.
func fileEnv(path string, getenv func(string) string) (func(string) string, error) {
	if path == "" {
		return getenv, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envConfigFile, err)
	}
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(strings.TrimPrefix(k, "export ")), strings.TrimSpace(v)
		if !ok || !strings.HasPrefix(k, "CASEDESK_") {
			return nil, fmt.Errorf("%s line %d: want CASEDESK_NAME=value", path, n)
		}
		if uq, err := strconv.Unquote(v); err == nil && strings.HasPrefix(v, `"`) {
			v = uq
		}
		vals[k] = v
	}
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return vals[k]
	}, nil
}

// parseLogLevel maps the accepted level names to slog levels; empty means
// info.
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%s=%q: want debug, info, warn or error", envLogLevel, s)
}
