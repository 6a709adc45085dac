// Package notify sends casedesk's outbound mail: acknowledgements, relayed
// agent replies, reminders, notices and invoices.
//
// A Worker drains the outbox: it claims due items, renders each with its
// tenant's templates (package templates), builds the MIME message (Build)
// with every header threading and loop prevention rely on, delivers it
// through a Sender (go-mail, one SMTP connection reused across a batch),
// and records the outcome: the sent message on its case, committed just
// before the end of its data so that a crash never sends it twice; a
// retry with backoff after a temporary failure; or a failed item and a
// case event after a permanent one.
package notify
