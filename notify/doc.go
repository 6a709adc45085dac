// Package notify sends casedesk's outbound mail: acknowledgements, relayed
// agent replies, reminders, notices and invoices.
//
// This part of it is the sending half. Build turns an already-rendered
// Outgoing message into a MIME message with every header threading and loop
// prevention rely on, and a Sender delivers built messages through one SMTP
// server (go-mail), reusing one connection across a batch and saying for
// each failure whether it is temporary (retry later) or permanent.
package notify
