package casestore

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/casedesk/casedesk"
)

// errUnavailable is the client-safe face of a database that cannot be
// reached; the cause stays in the chain for logs.
var errUnavailable = &casedesk.Error{Code: casedesk.EUNAVAILABLE, Message: "the database is unavailable"}

// unavailable marks err as EUNAVAILABLE when it says that the database
// could not be reached or went away, rather than that it refused the
// request: callers retry those later instead of giving up on the input.
func unavailable(err error) error {
	if err == nil || !connectionLost(err) {
		return err
	}
	if casedesk.ErrorCode(err) == casedesk.EUNAVAILABLE {
		return err
	}
	return fmt.Errorf("%w: %w", errUnavailable, err)
}

func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now
			pgErr.Code == "53300": // too_many_connections
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed")
}
