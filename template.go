package casedesk

import "time"

// TemplateOverride is a tenant's replacement for one mail template in one
// language. The store keeps it as given; package templates checks that it
// parses and renders before it is saved (templates.Save).
type TemplateOverride struct {
	TenantID int64
	// Name is the template, which is the outbox kind it renders ("ack", ...).
	Name string
	// Lang is a language tag such as "en", "de" or "de-AT".
	Lang string
	// Subject is the subject template; empty keeps the default subject.
	Subject string
	// Text is the plain-text body template.
	Text string
	// HTML is the HTML body template.
	HTML      string
	UpdatedAt time.Time
}
