package main

import (
	"fmt"
	"log/slog"
	"strings"
)

// Environment variables read by casedesk. The names are part of the user
// interface (see DESIGN.md, "What a user touches"): keep them stable.
const (
	envDatabaseURL = "CASEDESK_DATABASE_URL"
	envLogLevel    = "CASEDESK_LOG_LEVEL"
)

// Config is the configuration of one casedesk process, read from the
// environment.
type Config struct {
	// DatabaseURL is the PostgreSQL connection URL. It may hold a password:
	// never print or log it.
	DatabaseURL string
	// LogLevel is the least severe level that is logged.
	LogLevel slog.Level
}

// LoadConfig reads the configuration through getenv (os.Getenv in main) and
// rejects values it cannot use. Whether a setting is required depends on
// the command; Check tells.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{DatabaseURL: strings.TrimSpace(getenv(envDatabaseURL))}
	level, err := parseLogLevel(getenv(envLogLevel))
	if err != nil {
		return Config{}, err
	}
	cfg.LogLevel = level
	return cfg, nil
}

// Check returns an error naming the first setting that command needs and
// the configuration lacks.
func (c Config) Check(command string) error {
	switch command {
	case "migrate":
		if c.DatabaseURL == "" {
			return fmt.Errorf("connect to database: %s is not set; %s needs a PostgreSQL URL such as postgres://user@host:5432/casedesk", envDatabaseURL, command)
		}
	}
	return nil
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
