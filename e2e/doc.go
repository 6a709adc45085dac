// Package e2e holds the end-to-end tests of casedesk: the built binary run
// against a real Dovecot IMAP server, a recording SMTP server and a
// throwaway PostgreSQL database, all on loopback.
//
// Everything is in _test.go files; this file only makes the package exist
// for go vet and go doc. The tests need Debian's dovecot-imapd and, as root,
// the system user casedesk-test: "bash .ci/run" sets both up.
package e2e
