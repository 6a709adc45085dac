package casestore_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
)

// eventLog returns a case's events as "kind data" strings, oldest first.
func (f *fixture) eventLog(t *testing.T, caseID int64) []string {
	t.Helper()
	var out []string
	update(t, f.db, func(tx casedesk.Tx) error {
		es, err := tx.ListEvents(ctx(), f.tenant.ID, caseID)
		for _, e := range es {
			var data map[string]any
			if err := json.Unmarshal(e.Data, &data); err != nil {
				return err
			}
			delete(data, "number") // of created events; the case is known
			delete(data, "status")
			b, _ := json.Marshal(data)
			out = append(out, e.Kind+" "+string(b))
		}
		return err
	})
	return out
}

// tryUpdate runs fn in a transaction and returns its error.
func (f *fixture) tryUpdate(fn func(tx casedesk.Tx) error) error {
	return f.db.Update(ctx(), fn)
}

var agentActor = casedesk.Actor{Kind: casedesk.AuthorAgent, UserID: 7}

func TestSetPriority(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	other := newFixture(t)
	c := f.newCase(t, "Printer on fire")
	now = now.Add(time.Hour)

	var got *casedesk.Case
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		got, err = tx.SetPriority(ctx(), f.tenant.ID, c.ID, casedesk.PriorityUrgent, agentActor)
		return err
	})
	if got.Priority != casedesk.PriorityUrgent || !got.UpdatedAt.Equal(now) || got.Requester.Email != "cara@customer.example" {
		t.Errorf("case = %s updated %v requester %+v", got.Priority, got.UpdatedAt, got.Requester)
	}
	// The same priority again changes nothing and writes no event.
	now = now.Add(time.Hour)
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		got, err = tx.SetPriority(ctx(), f.tenant.ID, c.ID, casedesk.PriorityUrgent, agentActor)
		return err
	})
	if !got.UpdatedAt.Equal(now.Add(-time.Hour)) {
		t.Errorf("a no-op moved updated_at to %v", got.UpdatedAt)
	}
	want := []string{`created {}`, `priority_changed {"from":"normal","to":"urgent"}`}
	if got := f.eventLog(t, c.ID); !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}

	wantCode(t, f.tryUpdate(func(tx casedesk.Tx) error {
		_, err := tx.SetPriority(ctx(), f.tenant.ID, c.ID, "p0", agentActor)
		return err
	}), casedesk.EINVALID)
	wantCode(t, f.tryUpdate(func(tx casedesk.Tx) error {
		_, err := tx.SetPriority(ctx(), f.tenant.ID, c.ID+1_000_000, casedesk.PriorityLow, agentActor)
		return err
	}), casedesk.ENOTFOUND)
	// Another tenant's case is not found, and stays as it was.
	wantCode(t, other.tryUpdate(func(tx casedesk.Tx) error {
		_, err := tx.SetPriority(ctx(), other.tenant.ID, c.ID, casedesk.PriorityLow, agentActor)
		return err
	}), casedesk.ENOTFOUND)
	if got := f.find(t, c.ID); got.Priority != casedesk.PriorityUrgent {
		t.Errorf("priority = %s after another tenant's attempt", got.Priority)
	}
}

// usersWithRoles creates users of the fixture's tenant by role name and returns
// their IDs in order.
func (f *fixture) usersWithRoles(t *testing.T, roles ...string) []int64 {
	t.Helper()
	var ids []int64
	update(t, f.db, func(tx casedesk.Tx) error {
		for _, role := range roles {
			u, err := tx.CreateUser(ctx(), casedesk.NewUser{TenantID: f.tenant.ID, Email: role + "-" + randHex(3) + "@acme.example",
				Name: strings.ToUpper(role[:1]) + role[1:] + " User", RoleName: role})
			if err != nil {
				return err
			}
			ids = append(ids, u.ID)
		}
		return nil
	})
	return ids
}

func TestAssignCase(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	ids := f.usersWithRoles(t, casedesk.RoleSupport, casedesk.RoleAdmin, casedesk.RoleFinance, casedesk.RoleSupport)
	support, admin, finance, inactive := ids[0], ids[1], ids[2], ids[3]
	if err := rawExec(t, `UPDATE users SET active = false WHERE id = $1`, inactive); err != nil {
		t.Fatal(err)
	}
	foreignAgent := other.usersWithRoles(t, casedesk.RoleSupport)[0]
	c := f.newCase(t, "Printer on fire")

	assign := func(fx *fixture, caseID, userID int64) (*casedesk.Case, error) {
		var got *casedesk.Case
		err := fx.tryUpdate(func(tx casedesk.Tx) (err error) {
			got, err = tx.AssignCase(ctx(), fx.tenant.ID, caseID, userID, agentActor)
			return err
		})
		return got, err
	}
	steps := []struct {
		userID       int64
		wantAssignee int64
		wantName     string
	}{
		{support, support, "Support User"},
		{support, support, "Support User"}, // no-op
		{admin, admin, "Admin User"},
		{0, 0, ""},
		{0, 0, ""}, // no-op
	}
	for i, s := range steps {
		got, err := assign(f, c.ID, s.userID)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got.AssigneeID != s.wantAssignee || got.AssigneeName != s.wantName {
			t.Errorf("step %d: assignee %d %q, want %d %q", i, got.AssigneeID, got.AssigneeName, s.wantAssignee, s.wantName)
		}
	}
	want := []string{`created {}`,
		fmt.Sprintf(`assigned {"from":0,"to":%d}`, support),
		fmt.Sprintf(`assigned {"from":%d,"to":%d}`, support, admin),
		fmt.Sprintf(`assigned {"from":%d,"to":0}`, admin)}
	if got := f.eventLog(t, c.ID); !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}

	tests := []struct {
		name     string
		fx       *fixture
		caseID   int64
		userID   int64
		code     string
		contains string
	}{
		{"finance is no agent", f, c.ID, finance, casedesk.EINVALID, "may not reply"},
		{"inactive agent", f, c.ID, inactive, casedesk.EINVALID, "not active"},
		{"agent of another tenant", f, c.ID, foreignAgent, casedesk.EINVALID, "no such agent"},
		{"unknown user", f, c.ID, foreignAgent + 1_000_000, casedesk.EINVALID, "no such agent"},
		{"negative user", f, c.ID, -1, casedesk.EINVALID, "no such agent"},
		{"unknown case", f, c.ID + 1_000_000, support, casedesk.ENOTFOUND, "not found"},
		{"case of another tenant", other, c.ID, foreignAgent, casedesk.ENOTFOUND, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := assign(tt.fx, tt.caseID, tt.userID)
			wantCode(t, err, tt.code)
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not say %q", err, tt.contains)
			}
		})
	}
	if got := f.find(t, c.ID); got.AssigneeID != 0 {
		t.Errorf("assignee = %d after refused assignments", got.AssigneeID)
	}
}

// mergeFixture is a tenant with case a (Cara, Dan in copy, two messages,
// one with an attachment) and case b (Bob, Cara in copy, one message).
type mergeFixture struct {
	*fixture
	a, b     *casedesk.Case
	dan, bob *casedesk.Contact
	msgs     map[string]*casedesk.Message // by Message-ID
}

func newMergeFixture(t *testing.T, now *time.Time) *mergeFixture {
	t.Helper()
	m := &mergeFixture{fixture: newFixture(t, casestoreClock(now)), msgs: map[string]*casedesk.Message{}}
	update(t, m.db, func(tx casedesk.Tx) (err error) {
		cs, err := tx.UpsertContacts(ctx(), m.tenant.ID, []casedesk.Address{
			{Name: "Dan", Email: "dan@customer.example"}, {Name: "Bob", Email: "bob@other.example"}})
		if err != nil {
			return err
		}
		m.dan, m.bob = cs[0], cs[1]
		if m.a, err = tx.CreateCase(ctx(), casedesk.NewCase{TenantID: m.tenant.ID, Subject: "Printer on fire",
			RequesterID: m.requester.ID}); err != nil {
			return err
		}
		if m.b, err = tx.CreateCase(ctx(), casedesk.NewCase{TenantID: m.tenant.ID, Subject: "Smoke in the office",
			RequesterID: m.bob.ID}); err != nil {
			return err
		}
		if err := tx.AddParticipants(ctx(), m.tenant.ID, m.a.ID, m.dan.ID); err != nil {
			return err
		}
		return tx.AddParticipants(ctx(), m.tenant.ID, m.b.ID, m.requester.ID)
	})
	for _, s := range []struct {
		c  *casedesk.Case
		id string
	}{{m.a, "a1@customer.example"}, {m.b, "b1@other.example"}, {m.a, "a2@customer.example"}} {
		*now = now.Add(time.Minute)
		update(t, m.db, func(tx casedesk.Tx) error {
			n := m.inbound(s.c.ID, s.id)
			if s.id == "a2@customer.example" {
				n.Attachments = []casedesk.NewAttachment{{Name: "smoke.txt", Content: []byte("a photo of the smoke")}}
			}
			msg, _, err := tx.AppendMessage(ctx(), n)
			m.msgs[s.id] = msg
			return err
		})
	}
	return m
}

func (m *mergeFixture) merge(fromID, intoID int64) (*casedesk.Case, error) {
	var into *casedesk.Case
	err := m.tryUpdate(func(tx casedesk.Tx) (err error) {
		into, err = tx.MergeCase(ctx(), m.tenant.ID, fromID, intoID, agentActor)
		return err
	})
	return into, err
}

func (m *mergeFixture) messageIDs(t *testing.T, caseID int64) []string {
	t.Helper()
	var out []string
	update(t, m.db, func(tx casedesk.Tx) error {
		msgs, err := tx.ListMessages(ctx(), m.tenant.ID, caseID)
		for _, msg := range msgs {
			out = append(out, msg.MessageID)
		}
		return err
	})
	return out
}

func (m *mergeFixture) participantEmails(t *testing.T, caseID int64) []string {
	t.Helper()
	var out []string
	update(t, m.db, func(tx casedesk.Tx) error {
		ps, err := tx.ListParticipants(ctx(), m.tenant.ID, caseID)
		for _, p := range ps {
			out = append(out, p.Email)
		}
		return err
	})
	slices.Sort(out)
	return out
}

func TestMergeCase(t *testing.T) {
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	m := newMergeFixture(t, &now)
	now = now.Add(time.Hour)
	into, err := m.merge(m.a.ID, m.b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if into.ID != m.b.ID || into.MessageCount != 3 || !into.UpdatedAt.Equal(now) || into.Status != casedesk.StatusNew {
		t.Errorf("into = #%d, %d messages, updated %v, %s", into.Number, into.MessageCount, into.UpdatedAt, into.Status)
	}
	from := m.find(t, m.a.ID)
	if from.MergedInto != m.b.ID || from.Status != casedesk.StatusClosed || !from.ClosedAt.Equal(now) || from.MessageCount != 0 {
		t.Errorf("from: merged into %d, %s, closed %v, %d messages", from.MergedInto, from.Status, from.ClosedAt, from.MessageCount)
	}
	// Messages keep their IDs and order; the attachment and raw bytes go
	// with them.
	if got, want := m.messageIDs(t, m.b.ID), []string{"a1@customer.example", "b1@other.example", "a2@customer.example"}; !slices.Equal(got, want) {
		t.Errorf("messages of into = %v, want %v", got, want)
	}
	if got := m.messageIDs(t, m.a.ID); len(got) != 0 {
		t.Errorf("messages left on from: %v", got)
	}
	update(t, m.db, func(tx casedesk.Tx) error {
		refs, err := tx.FindMessagesByMessageIDs(ctx(), m.tenant.ID, []string{"a2@customer.example"})
		if err != nil || len(refs) != 1 || refs[0].CaseID != m.b.ID {
			return fmt.Errorf("lookup of a moved message: %+v, %v", refs, err)
		}
		msgs, err := tx.FindMessagesByIDs(ctx(), m.tenant.ID, []int64{m.msgs["a2@customer.example"].ID})
		if err != nil || len(msgs) != 1 || len(msgs[0].Attachments) != 1 || msgs[0].CaseID != m.b.ID {
			return fmt.Errorf("moved message: %+v, %v", msgs, err)
		}
		content, err := tx.AttachmentContent(ctx(), m.tenant.ID, msgs[0].Attachments[0].SHA256)
		if err != nil || string(content) != "a photo of the smoke" {
			return fmt.Errorf("attachment content %q, %v", content, err)
		}
		_, err = tx.RawMessage(ctx(), m.tenant.ID, msgs[0].ID)
		return err
	})
	// Cara was on both cases: once on into.
	if got, want := m.participantEmails(t, m.b.ID), []string{"bob@other.example", "cara@customer.example", "dan@customer.example"}; !slices.Equal(got, want) {
		t.Errorf("participants of into = %v, want %v", got, want)
	}
	if got := m.participantEmails(t, m.a.ID); len(got) != 0 {
		t.Errorf("participants left on from: %v", got)
	}
	merged := fmt.Sprintf(`merged {"from":%d,"into":%d,"messages":2}`, m.a.Number, m.b.Number)
	if got, want := m.eventLog(t, m.a.ID), []string{`created {}`, merged, `status_changed {"from":"new","to":"closed"}`}; !slices.Equal(got, want) {
		t.Errorf("events of from = %q, want %q", got, want)
	}
	if got, want := m.eventLog(t, m.b.ID), []string{`created {}`, merged}; !slices.Equal(got, want) {
		t.Errorf("events of into = %q, want %q", got, want)
	}

	// Errors, and none of them changes anything.
	c := m.newCase(t, "third")
	other := newFixture(t)
	foreign := other.newCase(t, "another tenant's")
	tests := []struct {
		name         string
		from, into   int64
		code, saying string
	}{
		{"into itself", c.ID, c.ID, casedesk.EINVALID, "itself"},
		{"from merged already", m.a.ID, c.ID, casedesk.EINVALID, "merged already"},
		{"into a merged case", c.ID, m.a.ID, casedesk.EINVALID, "merged into another"},
		{"unknown from", c.ID + 1_000_000, c.ID, casedesk.ENOTFOUND, "not found"},
		{"unknown into", c.ID, c.ID + 1_000_000, casedesk.ENOTFOUND, "not found"},
		{"from of another tenant", foreign.ID, c.ID, casedesk.ENOTFOUND, "not found"},
		{"into of another tenant", c.ID, foreign.ID, casedesk.ENOTFOUND, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.merge(tt.from, tt.into)
			wantCode(t, err, tt.code)
			if !strings.Contains(err.Error(), tt.saying) {
				t.Errorf("error %q does not say %q", err, tt.saying)
			}
		})
	}
	if got := m.find(t, c.ID); got.MergedInto != 0 || got.Status != casedesk.StatusNew {
		t.Errorf("a refused merge changed case #%d: merged into %d, %s", got.Number, got.MergedInto, got.Status)
	}
	update(t, other.db, func(tx casedesk.Tx) error {
		got, err := tx.FindCase(ctx(), other.tenant.ID, foreign.ID)
		if err == nil && (got.MergedInto != 0 || got.Status != casedesk.StatusNew) {
			err = fmt.Errorf("another tenant's case changed: merged into %d, %s", got.MergedInto, got.Status)
		}
		return err
	})
}

func TestMergeCaseChainsStayOneStep(t *testing.T) {
	now := time.Date(2026, 4, 2, 9, 0, 0, 0, time.UTC)
	m := newMergeFixture(t, &now)
	x := m.newCase(t, "an earlier duplicate")
	m.setStatus(t, x, casedesk.StatusSolved, casedesk.StatusClosed)
	closedAt := m.find(t, x.ID).ClosedAt
	now = now.Add(time.Hour)
	if _, err := m.merge(x.ID, m.a.ID); err != nil {
		t.Fatal(err)
	}
	// A closed case keeps its closing time and gets no status event.
	if got := m.find(t, x.ID); !got.ClosedAt.Equal(closedAt) || got.MergedInto != m.a.ID {
		t.Errorf("closed case merged: closed at %v (was %v), merged into %d", got.ClosedAt, closedAt, got.MergedInto)
	}
	if ev := m.eventLog(t, x.ID); slices.ContainsFunc(ev, func(e string) bool { return strings.HasPrefix(e, "status_changed {\"from\":\"closed\"") }) {
		t.Errorf("events = %q", ev)
	}
	if _, err := m.merge(m.a.ID, m.b.ID); err != nil {
		t.Fatal(err)
	}
	if got := m.find(t, x.ID); got.MergedInto != m.b.ID {
		t.Errorf("case merged into a merged case points at %d, want %d (where its mail is)", got.MergedInto, m.b.ID)
	}
}

func TestMergeCaseBothWaysConcurrently(t *testing.T) {
	// A into B and B into A at once: the second to get the locks sees the
	// first's merge and is refused, whatever the order.
	for i := range 5 {
		now := time.Date(2026, 4, 3, 9, i, 0, 0, time.UTC)
		m := newMergeFixture(t, &now)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for j, pair := range [][2]int64{{m.a.ID, m.b.ID}, {m.b.ID, m.a.ID}} {
			wg.Go(func() {
				<-start
				_, errs[j] = m.merge(pair[0], pair[1])
			})
		}
		close(start)
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("errors = %v, want exactly one merge refused", errs)
		}
		for _, err := range errs {
			if err != nil {
				wantCode(t, err, casedesk.EINVALID)
			}
		}
		a, b := m.find(t, m.a.ID), m.find(t, m.b.ID)
		if (a.MergedInto == b.ID) == (b.MergedInto == a.ID) || a.MessageCount+b.MessageCount != 3 {
			t.Fatalf("a merged into %d, b into %d, %d+%d messages", a.MergedInto, b.MergedInto, a.MessageCount, b.MessageCount)
		}
	}
}

// searchFixture is a tenant whose cases differ in subject, mail text,
// requester and account.
type searchFixture struct {
	*fixture
	cases map[string]*casedesk.Case // by subject
}

// searchCase creates a case from requester with one inbound message of body
// text, in the account of the requester.
func (s *searchFixture) searchCase(t *testing.T, subject, body string, requester casedesk.Address) *casedesk.Case {
	t.Helper()
	var c *casedesk.Case
	update(t, s.db, func(tx casedesk.Tx) error {
		who, err := tx.UpsertContact(ctx(), s.tenant.ID, requester)
		if err != nil {
			return err
		}
		if c, err = tx.CreateCase(ctx(), casedesk.NewCase{TenantID: s.tenant.ID, Subject: subject, RequesterID: who.ID}); err != nil {
			return err
		}
		n := s.inbound(c.ID, randHex(8)+"@mail.example")
		n.Subject, n.Text, n.ContactID = "Re: "+subject, body, who.ID
		_, _, err = tx.AppendMessage(ctx(), n)
		return err
	})
	s.cases[subject] = c
	return c
}

func newSearchFixture(t *testing.T) *searchFixture {
	s := &searchFixture{fixture: newFixture(t), cases: map[string]*casedesk.Case{}}
	update(t, s.db, func(tx casedesk.Tx) error {
		for _, a := range []casedesk.NewAccount{
			{TenantID: s.tenant.ID, Name: "Zeta Builders Ltd", Domains: []string{"builders.example"}},
			{TenantID: s.tenant.ID, Name: "100% Organic_Foods", Domains: []string{"organic.example"}},
		} {
			if _, err := tx.CreateAccount(ctx(), a); err != nil {
				return err
			}
		}
		return nil
	})
	bob := casedesk.Address{Name: "Bob the Builder", Email: "bob@builders.example"}
	olga := casedesk.Address{Name: "Olga Grün", Email: "olga_k@organic.example"}
	cara := casedesk.Address{Name: "Cara Customer", Email: "cara@customer.example"}
	s.searchCase(t, "Printer on fire", "The toner smells of burnt almonds.\n\nBob", bob)
	s.searchCase(t, "Invoice question", "Please resend invoice INV-2291, the VAT rate is wrong.", olga)
	s.searchCase(t, "Almond milk order", "Where is my delivery?", olga)
	s.searchCase(t, "Password reset", "I cannot log in since Tuesday.", cara)
	return s
}

func (s *searchFixture) subjects(t *testing.T, filter casedesk.CaseFilter) []string {
	t.Helper()
	indexSearch(t, s.db)
	return s.subjectsNow(t, filter)
}

// subjectsNow lists without indexing queued mail first.
func (s *searchFixture) subjectsNow(t *testing.T, filter casedesk.CaseFilter) []string {
	t.Helper()
	filter.Sort = "number"
	var out []string
	for _, c := range s.listAll(t, filter) {
		out = append(out, c.Subject)
	}
	return out
}

func TestListCasesSearch(t *testing.T) {
	s := newSearchFixture(t)
	other := &searchFixture{fixture: newFixture(t), cases: map[string]*casedesk.Case{}}
	other.searchCase(t, "Almonds everywhere", "burnt almonds and toner and an invoice", casedesk.Address{Name: "Bob the Builder", Email: "bob@builders.example"})

	tests := []struct {
		name   string
		filter casedesk.CaseFilter
		want   []string
	}{
		{"word of a message body", casedesk.CaseFilter{Q: "toner"}, []string{"Printer on fire"}},
		{"case-insensitive, several words", casedesk.CaseFilter{Q: "BURNT Toner"}, []string{"Printer on fire"}},
		{"words are not stemmed", casedesk.CaseFilter{Q: "almond"}, []string{"Almond milk order"}},
		{"subject word", casedesk.CaseFilter{Q: "password"}, []string{"Password reset"}},
		{"or", casedesk.CaseFilter{Q: "toner or invoice"}, []string{"Printer on fire", "Invoice question"}},
		{"phrase", casedesk.CaseFilter{Q: `"burnt almonds"`}, []string{"Printer on fire"}},
		{"phrase in the wrong order", casedesk.CaseFilter{Q: `"almonds burnt"`}, nil},
		{"exclusion", casedesk.CaseFilter{Q: "toner -almonds"}, nil},
		{"subject or mail", casedesk.CaseFilter{Q: "invoice -vat"}, []string{"Invoice question"}},
		{"unbalanced quote", casedesk.CaseFilter{Q: `"toner`}, []string{"Printer on fire"}},
		{"punctuation only", casedesk.CaseFilter{Q: "!!! ???"}, nil},
		{"blank is no filter", casedesk.CaseFilter{Q: "  "}, []string{"Printer on fire", "Invoice question", "Almond milk order", "Password reset"}},
		{"with another filter", casedesk.CaseFilter{Q: "toner or invoice", Requester: "olga"}, []string{"Invoice question"}},
		{"requester name", casedesk.CaseFilter{Requester: "BUILDER"}, []string{"Printer on fire"}},
		{"requester email", casedesk.CaseFilter{Requester: "CUSTOMER.EX"}, []string{"Password reset"}},
		{"requester non-ASCII", casedesk.CaseFilter{Requester: "grün"}, []string{"Invoice question", "Almond milk order"}},
		{"requester underscore is literal", casedesk.CaseFilter{Requester: "olg_"}, nil},
		{"requester underscore", casedesk.CaseFilter{Requester: "olga_k"}, []string{"Invoice question", "Almond milk order"}},
		{"account", casedesk.CaseFilter{Account: "zeta"}, []string{"Printer on fire"}},
		{"account percent is literal", casedesk.CaseFilter{Account: "100%"}, []string{"Invoice question", "Almond milk order"}},
		{"account percent alone", casedesk.CaseFilter{Account: "%"}, []string{"Invoice question", "Almond milk order"}},
		{"account underscore is literal", casedesk.CaseFilter{Account: "organi_"}, nil},
		{"account none", casedesk.CaseFilter{Account: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.subjects(t, tt.filter); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// The other tenant finds its own case with the same words, and only it.
	if got := other.subjects(t, casedesk.CaseFilter{Q: "almonds toner invoice", Requester: "bob", Account: ""}); !slices.Equal(got, []string{"Almonds everywhere"}) {
		t.Errorf("other tenant found %q", got)
	}
}

func TestListCasesSearchFollowsMerge(t *testing.T) {
	s := newSearchFixture(t)
	if _, err := (&mergeFixture{fixture: s.fixture}).merge(s.cases["Printer on fire"].ID, s.cases["Password reset"].ID); err != nil {
		t.Fatal(err)
	}
	// The merged case keeps its subject; its mail is on the other case now.
	if got, want := s.subjects(t, casedesk.CaseFilter{Q: "toner"}), []string{"Password reset"}; !slices.Equal(got, want) {
		t.Errorf("body search after merge = %q, want %q", got, want)
	}
	if got, want := s.subjects(t, casedesk.CaseFilter{Q: "printer"}), []string{"Printer on fire", "Password reset"}; !slices.Equal(got, want) {
		t.Errorf("subject search after merge = %q, want %q", got, want)
	}
}

func TestSearchLongMessage(t *testing.T) {
	// A tsvector holds at most 1 MB: the index reads only the start of a
	// message, so long mail is still stored, and found by its beginning.
	s := &searchFixture{fixture: newFixture(t), cases: map[string]*casedesk.Case{}}
	var body strings.Builder
	body.WriteString("zanzibar ")
	for i := 0; body.Len() < 3<<20; i++ {
		fmt.Fprintf(&body, "w%x%s ", i, randHex(4))
	}
	body.WriteString("lastword")
	s.searchCase(t, "A very long log", body.String(), casedesk.Address{Email: "logs@customer.example"})
	if got := s.subjects(t, casedesk.CaseFilter{Q: "zanzibar"}); !slices.Equal(got, []string{"A very long log"}) {
		t.Errorf("first word: %q", got)
	}
	if got := s.subjects(t, casedesk.CaseFilter{Q: "lastword"}); len(got) != 0 {
		t.Errorf("a word 3 MB into the text was found: %q", got)
	}
}

func TestListCasesSearchPagesWhileCasesArrive(t *testing.T) {
	now := time.Date(2026, 8, 1, 8, 0, 0, 0, time.UTC)
	s := &searchFixture{fixture: newFixture(t, casestoreClock(&now)), cases: map[string]*casedesk.Case{}}
	update(t, s.db, func(tx casedesk.Tx) error {
		_, err := tx.CreateAccount(ctx(), casedesk.NewAccount{TenantID: s.tenant.ID, Name: "Needle Works", Domains: []string{"needle.example"}})
		return err
	})
	match := casedesk.Address{Name: "Nina Needle", Email: "nina@needle.example"}
	miss := casedesk.Address{Name: "Harry Hay", Email: "harry@hay.example"}
	var want []int64
	for i := range 23 {
		now = now.Add(time.Minute)
		// Every third case matches on everything; the others on all but one filter.
		switch i % 3 {
		case 0:
			want = append(want, s.searchCase(t, fmt.Sprintf("case %d", i), "a needle in the haystack", match).ID)
		case 1:
			s.searchCase(t, fmt.Sprintf("case %d", i), "only hay here", match)
		case 2:
			s.searchCase(t, fmt.Sprintf("case %d", i), "a needle in the haystack", miss)
		}
	}
	indexSearch(t, s.db)
	filter := casedesk.CaseFilter{Q: "needle haystack", Requester: "nina", Account: "needle works", Limit: 2}
	for _, sort := range []string{"-created_at", "number", "-subject", "requester"} {
		t.Run(sort, func(t *testing.T) {
			filter := filter
			filter.Sort = sort
			seen := map[int64]int{}
			for pages := 0; ; pages++ {
				if pages > 50 {
					t.Fatal("pagination does not end")
				}
				var page *casedesk.CasePage
				update(t, s.db, func(tx casedesk.Tx) (err error) {
					page, err = tx.ListCases(ctx(), s.tenant.ID, filter)
					return err
				})
				for _, c := range page.Cases {
					seen[c.ID]++
				}
				// New cases, matching and not, arrive between pages.
				now = now.Add(time.Minute)
				s.searchCase(t, "late "+randHex(2), "needle haystack", match)
				s.searchCase(t, "late "+randHex(2), "needle haystack", miss)
				indexSearch(t, s.db)
				if page.NextCursor == "" {
					break
				}
				filter.Cursor = page.NextCursor
			}
			for _, id := range want {
				if seen[id] != 1 {
					t.Errorf("case %d seen %d times, want once", id, seen[id])
				}
			}
			for id, n := range seen {
				c := s.find(t, id)
				if n != 1 || c.Requester.Email != "nina@needle.example" || strings.HasPrefix(c.Subject, "case ") && !slices.Contains(want, id) {
					t.Errorf("case %d %q of %s seen %d times", id, c.Subject, c.Requester.Email, n)
				}
			}
		})
	}
}

// indexSearch runs the search indexer until the queue is empty.
func indexSearch(t *testing.T, db *casestore.DB) int {
	t.Helper()
	n, err := db.IndexSearch(ctx())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSearchFindsMailOnceIndexed(t *testing.T) {
	s := newSearchFixture(t)
	indexSearch(t, s.db)
	c := s.cases["Password reset"]
	var ids []int64
	update(t, s.db, func(tx casedesk.Tx) error {
		for _, body := range []string{"quokka one", "quokka two", "quokka three"} {
			n := s.inbound(c.ID, randHex(8)+"@mail.example")
			n.Text = body
			m, _, err := tx.AppendMessage(ctx(), n)
			if err != nil {
				return err
			}
			ids = append(ids, m.ID)
		}
		return nil
	})
	// Ingest queues the text; search does not see it yet.
	if got := s.subjectsNow(t, casedesk.CaseFilter{Q: "quokka"}); len(got) != 0 {
		t.Fatalf("unindexed mail found: %q", got)
	}
	// Two indexers at once take different messages: while the first holds
	// the oldest in its open transaction, the second takes the rest.
	update(t, s.db, func(tx casedesk.Tx) error {
		n, err := tx.IndexMessageText(ctx(), 1)
		if err != nil || n != 1 {
			return fmt.Errorf("first indexer took %d: %v", n, err)
		}
		var other int
		err = s.db.Update(ctx(), func(tx casedesk.Tx) (err error) {
			other, err = tx.IndexMessageText(ctx(), 10)
			return err
		})
		if err != nil || other < 2 {
			return fmt.Errorf("second indexer took %d: %v", other, err)
		}
		return nil
	})
	if got := s.subjectsNow(t, casedesk.CaseFilter{Q: "quokka"}); !slices.Equal(got, []string{"Password reset"}) {
		t.Errorf("indexed mail: %q", got)
	}
	for i, body := range []string{"one", "two", "three"} {
		if got := s.subjectsNow(t, casedesk.CaseFilter{Q: "quokka " + body}); len(got) != 1 {
			t.Errorf("message %d (%d) not indexed: %q", i, ids[i], got)
		}
	}
	if n := indexSearch(t, s.db); n != 0 {
		t.Errorf("indexed %d messages twice", n)
	}
	update(t, s.db, func(tx casedesk.Tx) error {
		if _, err := tx.IndexMessageText(ctx(), 0); casedesk.ErrorCode(err) != casedesk.EINVALID {
			t.Errorf("limit 0: %v", err)
		}
		return nil
	})
}

func TestSearchWithoutNotes(t *testing.T) {
	s := newSearchFixture(t)
	c := s.cases["Password reset"]
	update(t, s.db, func(tx casedesk.Tx) error {
		n := s.inbound(c.ID, randHex(8)+"@mail.example")
		n.Direction, n.AuthorKind, n.ContactID, n.Class = casedesk.Note, casedesk.AuthorAgent, 0, "note"
		n.Text = "customer is on the watchlist"
		_, _, err := tx.AppendMessage(ctx(), n)
		return err
	})
	if got := s.subjects(t, casedesk.CaseFilter{Q: "watchlist"}); !slices.Equal(got, []string{"Password reset"}) {
		t.Errorf("staff search: %q", got)
	}
	if got := s.subjects(t, casedesk.CaseFilter{Q: "watchlist", WithoutNotes: true}); len(got) != 0 {
		t.Errorf("a note was found by a search without notes: %q", got)
	}
	if got := s.subjects(t, casedesk.CaseFilter{Q: "tuesday", WithoutNotes: true}); !slices.Equal(got, []string{"Password reset"}) {
		t.Errorf("mail search without notes: %q", got)
	}
}

// TestSearchSkipsSystemMail checks that the mail casedesk writes itself
// (an acknowledgement here) is not indexed, while an agent's reply is:
// the template's words are in every case.
func TestSearchSkipsSystemMail(t *testing.T) {
	s := newSearchFixture(t)
	c := s.cases["Password reset"]
	update(t, s.db, func(tx casedesk.Tx) error {
		for _, author := range []casedesk.AuthorKind{casedesk.AuthorSystem, casedesk.AuthorAgent} {
			n := s.inbound(c.ID, randHex(8)+"@mail.example")
			n.Direction, n.AuthorKind, n.ContactID, n.Class = casedesk.Outbound, author, 0, "ack"
			n.Text = "we received your request (" + string(author) + " wombat)"
			if author == casedesk.AuthorAgent {
				n.Class = "reply"
			}
			if _, _, err := tx.AppendMessage(ctx(), n); err != nil {
				return err
			}
		}
		return nil
	})
	if got := s.subjects(t, casedesk.CaseFilter{Q: "agent wombat"}); !slices.Equal(got, []string{"Password reset"}) {
		t.Errorf("an agent's reply was not indexed: %q", got)
	}
	if got := s.subjects(t, casedesk.CaseFilter{Q: "system wombat"}); len(got) != 0 {
		t.Errorf("an acknowledgement was indexed: %q", got)
	}
}

func TestSearchTooBroad(t *testing.T) {
	s := &searchFixture{fixture: newFixture(t, casestore.WithSearchTimeout(time.Nanosecond)), cases: map[string]*casedesk.Case{}}
	s.searchCase(t, "Printer on fire", "toner", casedesk.Address{Email: "bob@builders.example"})
	err := s.db.View(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.ListCases(ctx(), s.tenant.ID, casedesk.CaseFilter{Q: "toner"})
		return err
	})
	if casedesk.ErrorCode(err) != casedesk.EINVALID || !strings.Contains(casedesk.ErrorMessage(err), "matches too much") {
		t.Errorf("search past the timeout: %v", err)
	}
	// Listing without a query is not bounded.
	if got := s.subjects(t, casedesk.CaseFilter{}); len(got) != 1 {
		t.Errorf("listing: %q", got)
	}
}

// TestMergeWhileMailArrives: mail appended to a case while the case is
// being merged ends up on the case it was merged into, whichever of the
// two transactions takes the case's row first, and the message counts
// follow it.
func TestMergeWhileMailArrives(t *testing.T) {
	for _, mergeFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("merge first %v", mergeFirst), func(t *testing.T) {
			now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
			m := newMergeFixture(t, &now)
			release := make(chan struct{})
			holding := make(chan struct{})
			first := func(tx casedesk.Tx) error {
				var err error
				if mergeFirst {
					_, err = tx.MergeCase(ctx(), m.tenant.ID, m.a.ID, m.b.ID, agentActor)
				} else {
					_, _, err = tx.AppendMessage(ctx(), m.inbound(m.a.ID, "late@customer.example"))
				}
				close(holding)
				<-release
				return err
			}
			second := func(tx casedesk.Tx) error {
				if mergeFirst {
					_, _, err := tx.AppendMessage(ctx(), m.inbound(m.a.ID, "late@customer.example"))
					return err
				}
				_, err := tx.MergeCase(ctx(), m.tenant.ID, m.a.ID, m.b.ID, agentActor)
				return err
			}
			errs := make(chan error, 2)
			go func() { errs <- m.db.Update(ctx(), first) }()
			<-holding
			go func() { errs <- m.db.Update(ctx(), second) }()
			waitForLockWait(t)
			close(release)
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if got := m.messageIDs(t, m.a.ID); len(got) != 0 {
				t.Errorf("merged case keeps %q", got)
			}
			got := m.messageIDs(t, m.b.ID)
			if !slices.Contains(got, "late@customer.example") || len(got) != 4 {
				t.Errorf("target case has %q, want all 4 messages", got)
			}
			a, b := m.find(t, m.a.ID), m.find(t, m.b.ID)
			if a.MessageCount != 0 || b.MessageCount != 4 || a.MergedInto != m.b.ID {
				t.Errorf("counts after the merge: merged %d (into %d), target %d", a.MessageCount, a.MergedInto, b.MessageCount)
			}
		})
	}
}
