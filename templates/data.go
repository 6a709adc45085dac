package templates

import (
	"fmt"
	htmltemplate "html/template"
	"reflect"
	"time"

	"github.com/casedesk/casedesk"
)

// Case is the part of a template's data that describes the case and who
// it is for. Subject is the case's subject as the customer wrote it; the
// templates escape it where needed.
type Case struct {
	CaseNumber     int64
	Subject        string
	RequesterName  string // may be empty
	TenantName     string
	SupportAddress string
}

// AckData is the data of "ack", the acknowledgement of a new case.
type AckData struct {
	Case
}

// FollowUpAckData is the data of "followup_ack", the acknowledgement of a
// case opened by a reply to a closed one.
type FollowUpAckData struct {
	Case
	PreviousCaseNumber int64 // the closed case the new one refers to
}

// RelayData is the data of "relay", an agent's reply passed on to the
// customer.
type RelayData struct {
	Case
	AgentName string // the agent's display name; may be empty
	Text      string // the agent's reply, plain text
	// HTML is the agent's reply as HTML, already sanitised, for the HTML
	// part; empty when the agent wrote text only.
	HTML htmltemplate.HTML
}

// ReminderData is the data of "reminder", sent while a case waits on the
// customer.
type ReminderData struct {
	Case
	SolveInDays int // days until the case is marked solved without an answer
}

// SolvedNoticeData is the data of "solved_notice", sent when a case that
// waited on the customer is marked solved.
type SolvedNoticeData struct {
	Case
	ReopenDays int // days during which a reply reopens the case
}

// InvoiceData is the data of "invoice", the mail that carries an invoice
// PDF to an account's billing contact.
type InvoiceData struct {
	InvoiceNumber  string
	AccountName    string
	RecipientName  string // the billing contact; may be empty
	TenantName     string
	SupportAddress string
	PeriodStart    time.Time
	PeriodEnd      time.Time
	DueDate        time.Time
	AmountMinor    int64  // in minor units of Currency
	Currency       string // ISO 4217
	// Overdue makes the mail a reminder: the due date has passed and the
	// invoice is not paid.
	Overdue bool
}

// Days returns d in whole days, rounded up, for the day counts in the data
// (ReminderData.SolveInDays, SolvedNoticeData.ReopenDays); never negative.
func Days(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + 24*time.Hour - 1) / (24 * time.Hour))
}

// spec ties a template name to the type of its data and its sample data.
type spec struct {
	name   casedesk.OutboxKind
	typ    reflect.Type
	sample func() any
}

// specs lists the templates in the order Names returns them.
var specs = []spec{
	{casedesk.OutboxAck, reflect.TypeFor[AckData](), func() any { return AckData{sampleCase()} }},
	{casedesk.OutboxFollowUpAck, reflect.TypeFor[FollowUpAckData](), func() any {
		return FollowUpAckData{Case: sampleCase(), PreviousCaseNumber: 4711}
	}},
	{casedesk.OutboxRelay, reflect.TypeFor[RelayData](), func() any {
		return RelayData{Case: sampleCase(), AgentName: "Alex Agent",
			Text: "Thanks for the log file.\nPlease restart the print spooler & try again: <it works> \"now\".",
			HTML: "<p>Thanks for the log file.</p><p>Please restart the print spooler &amp; try again: <b>now</b>.</p>"}
	}},
	{casedesk.OutboxReminder, reflect.TypeFor[ReminderData](), func() any { return ReminderData{Case: sampleCase(), SolveInDays: 4} }},
	{casedesk.OutboxSolved, reflect.TypeFor[SolvedNoticeData](), func() any { return SolvedNoticeData{Case: sampleCase(), ReopenDays: 14} }},
	{casedesk.OutboxInvoice, reflect.TypeFor[InvoiceData](), func() any {
		return InvoiceData{InvoiceNumber: "INV-2031-0042", AccountName: "Customer <b>&\"Co\"", RecipientName: "Bea Billing",
			TenantName: "Acme Support", SupportAddress: "support@acme.example",
			PeriodStart: time.Date(2031, 2, 1, 0, 0, 0, 0, time.UTC), PeriodEnd: time.Date(2031, 2, 28, 0, 0, 0, 0, time.UTC),
			DueDate: time.Date(2031, 3, 15, 0, 0, 0, 0, time.UTC), AmountMinor: 123456, Currency: "EUR", Overdue: true}
	}},
}

// sampleCase has every field set; its subject holds HTML so that a
// preview shows, and tests check, that the HTML body escapes it.
func sampleCase() Case {
	return Case{CaseNumber: 1234, Subject: `Printer shows <b>&"ERR 42"`, RequesterName: "Cara Customer",
		TenantName: "Acme Support", SupportAddress: "support@acme.example"}
}

// accepts checks that data is of the template's data type or a non-nil
// pointer to it.
func (sp spec) accepts(data any) error {
	t := reflect.TypeOf(data)
	if t == sp.typ || t != nil && t.Kind() == reflect.Pointer && t.Elem() == sp.typ && !reflect.ValueOf(data).IsNil() {
		return nil
	}
	return fmt.Errorf("template %q takes %s data, not %T", sp.name, sp.typ, data)
}

func specOf(name casedesk.OutboxKind) (spec, bool) {
	for _, s := range specs {
		if s.name == name {
			return s, true
		}
	}
	return spec{}, false
}

// Names returns the names of the templates, one per outbox kind.
func Names() []casedesk.OutboxKind {
	out := make([]casedesk.OutboxKind, len(specs))
	for i, s := range specs {
		out[i] = s.name
	}
	return out
}

// Sample returns sample data for the named template, every field set, as
// a value of the template's data type; nil for an unknown name.
func Sample(name casedesk.OutboxKind) any {
	s, ok := specOf(name)
	if !ok {
		return nil
	}
	return s.sample()
}
