package casestore

import (
	"context"

	"github.com/casedesk/casedesk"
)

// Placeholders until the case and contact ops are written; this file is
// deleted then.

func (t *tx) SetPriority(ctx context.Context, tenantID, caseID int64, p casedesk.Priority, by casedesk.Actor) (*casedesk.Case, error) {
	return nil, casedesk.Errorf(casedesk.EINTERNAL, "not implemented")
}
func (t *tx) AssignCase(ctx context.Context, tenantID, caseID, userID int64, by casedesk.Actor) (*casedesk.Case, error) {
	return nil, casedesk.Errorf(casedesk.EINTERNAL, "not implemented")
}
func (t *tx) MergeCase(ctx context.Context, tenantID, fromID, intoID int64, by casedesk.Actor) (*casedesk.Case, error) {
	return nil, casedesk.Errorf(casedesk.EINTERNAL, "not implemented")
}
func (t *tx) CreateContact(ctx context.Context, n casedesk.NewContact) (*casedesk.Contact, error) {
	return nil, casedesk.Errorf(casedesk.EINTERNAL, "not implemented")
}
func (t *tx) UpdateContact(ctx context.Context, tenantID, id int64, u casedesk.ContactUpdate) (*casedesk.Contact, error) {
	return nil, casedesk.Errorf(casedesk.EINTERNAL, "not implemented")
}
func (t *tx) ListContacts(ctx context.Context, tenantID int64, f casedesk.ContactFilter) (*casedesk.ContactPage, error) {
	return nil, casedesk.Errorf(casedesk.EINTERNAL, "not implemented")
}
func (t *tx) UpdateAccount(ctx context.Context, tenantID, id int64, u casedesk.AccountUpdate) (*casedesk.Account, error) {
	return nil, casedesk.Errorf(casedesk.EINTERNAL, "not implemented")
}
func (t *tx) ListAccounts(ctx context.Context, tenantID int64, f casedesk.AccountFilter) (*casedesk.AccountPage, error) {
	return nil, casedesk.Errorf(casedesk.EINTERNAL, "not implemented")
}
