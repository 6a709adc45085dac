package casedesk

// CaseParties are the people a case concerns, for threading decisions.
type CaseParties struct {
	// Emails of the participants, requester included, lower-cased.
	Emails []string
	// AccountDomains are the email domains of the case's account, lower-cased.
	AccountDomains []string
}

// StatusChange moves a case from one status to another (see
// CaseOps.ChangeStatuses).
type StatusChange struct {
	CaseID   int64
	From, To Status
	By       Actor
}

// CaseParticipant puts a contact on a case.
type CaseParticipant struct {
	CaseID, ContactID int64
}
