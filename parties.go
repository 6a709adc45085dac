package casedesk

// CaseParties are the people a case concerns, for threading decisions.
type CaseParties struct {
	// Emails of the participants, requester included, lower-cased.
	Emails []string
	// AccountDomains are the email domains of the case's account, lower-cased.
	AccountDomains []string
}
