package casestore_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

// inUpdateAndView runs fn once in an Update and once in a View, as subtests:
// the lookups must work in both.
func inUpdateAndView(t *testing.T, db casedesk.Store, fn func(t *testing.T, tx casedesk.Tx)) {
	t.Helper()
	runners := []struct {
		name string
		run  func(fn func(casedesk.Tx) error) error
	}{
		{"Update", func(fn func(casedesk.Tx) error) error { return db.Update(ctx(), fn) }},
		{"View", func(fn func(casedesk.Tx) error) error { return db.View(ctx(), fn) }},
	}
	for _, r := range runners {
		t.Run(r.name, func(t *testing.T) {
			err := r.run(func(tx casedesk.Tx) error {
				fn(t, tx)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// createCase creates a case from n, with the fixture's tenant and requester
// filled in when unset.
func (f *fixture) createCase(t testing.TB, n casedesk.NewCase) *casedesk.Case {
	t.Helper()
	if n.TenantID == 0 {
		n.TenantID = f.tenant.ID
	}
	if n.RequesterID == 0 {
		n.RequesterID = f.requester.ID
	}
	var c *casedesk.Case
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		c, err = tx.CreateCase(ctx(), n)
		return err
	})
	return c
}

// setStatus moves a case through the statuses in order.
func (f *fixture) setStatus(t testing.TB, c *casedesk.Case, to ...casedesk.Status) {
	t.Helper()
	update(t, f.db, func(tx casedesk.Tx) error {
		for _, s := range to {
			if _, err := tx.ChangeStatus(ctx(), f.tenant.ID, c.ID, s, casedesk.SystemActor); err != nil {
				return err
			}
		}
		return nil
	})
}

func caseIDs(cs []*casedesk.Case) []int64 {
	ids := make([]int64, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

func sortedIDs(ids ...int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	if out == nil {
		out = []int64{}
	}
	return out
}

// sameAsFindCase checks that each case is filled exactly as FindCase fills it.
func sameAsFindCase(t *testing.T, tx casedesk.Tx, cs []*casedesk.Case) {
	t.Helper()
	for _, got := range cs {
		want, err := tx.FindCase(ctx(), got.TenantID, got.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("case %d:\n got %+v\nwant %+v", got.ID, got, want)
		}
	}
}

func TestFindCasesByNumbersAndIDs(t *testing.T) {
	fa, fb := newFixture(t), newFixture(t)
	var acct *casedesk.Account
	update(t, fa.db, func(tx casedesk.Tx) (err error) {
		acct, err = tx.CreateAccount(ctx(), casedesk.NewAccount{TenantID: fa.tenant.ID, Name: "Customer Inc"})
		return err
	})
	a1 := fa.createCase(t, casedesk.NewCase{Subject: "one", AccountID: acct.ID})
	a2 := fa.createCase(t, casedesk.NewCase{Subject: "two", ErrorFingerprint: "fp-" + randHex(4)})
	a3 := fa.createCase(t, casedesk.NewCase{Subject: "three", Status: casedesk.StatusPending})
	fa.setStatus(t, a3, casedesk.StatusSolved)
	// Tenant B has more cases than A, so one of its numbers is unknown to A.
	var bs []*casedesk.Case
	for i := range 4 {
		bs = append(bs, fb.createCase(t, casedesk.NewCase{Subject: fmt.Sprint("b", i)}))
	}
	bOnly := bs[3]
	const unknown = 1 << 40

	tests := []struct {
		name    string
		numbers []int64
		ids     []int64
		want    []int64 // case IDs of tenant A
	}{
		{"nil", nil, nil, nil},
		{"empty", []int64{}, []int64{}, nil},
		{"one", []int64{a2.Number}, []int64{a2.ID}, []int64{a2.ID}},
		{"all", []int64{a1.Number, a2.Number, a3.Number}, []int64{a3.ID, a1.ID, a2.ID}, []int64{a1.ID, a2.ID, a3.ID}},
		{"unknown", []int64{unknown, -1, 0}, []int64{unknown, -1, 0}, nil},
		{"mixed", []int64{unknown, a3.Number, a1.Number}, []int64{a1.ID, unknown, a3.ID}, []int64{a1.ID, a3.ID}},
		{"repeated", []int64{a1.Number, a1.Number}, []int64{a1.ID, a1.ID}, []int64{a1.ID}},
		{"other tenant", []int64{bOnly.Number}, caseIDs(bs), nil},
	}
	inUpdateAndView(t, fa.db, func(t *testing.T, tx casedesk.Tx) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				byNumber, err := tx.FindCasesByNumbers(ctx(), fa.tenant.ID, tt.numbers)
				if err != nil {
					t.Fatal(err)
				}
				byID, err := tx.FindCasesByIDs(ctx(), fa.tenant.ID, tt.ids)
				if err != nil {
					t.Fatal(err)
				}
				want := sortedIDs(tt.want...)
				if got := caseIDs(byNumber); !slices.Equal(got, want) {
					t.Errorf("FindCasesByNumbers(%v) = %v, want %v", tt.numbers, got, want)
				}
				if got := caseIDs(byID); !slices.Equal(got, want) {
					t.Errorf("FindCasesByIDs(%v) = %v, want %v", tt.ids, got, want)
				}
				sameAsFindCase(t, tx, byNumber)
				sameAsFindCase(t, tx, byID)
			})
		}
	})

	// B's own lookups find B's cases: the "other tenant" rows above are
	// empty because of the tenant, not because the keys are wrong.
	inUpdateAndView(t, fb.db, func(t *testing.T, tx casedesk.Tx) {
		byNumber, err := tx.FindCasesByNumbers(ctx(), fb.tenant.ID, []int64{bOnly.Number})
		if err != nil || len(byNumber) != 1 || byNumber[0].ID != bOnly.ID {
			t.Fatalf("B by number: %v, %v", caseIDs(byNumber), err)
		}
		byID, err := tx.FindCasesByIDs(ctx(), fb.tenant.ID, caseIDs(bs))
		if err != nil || len(byID) != len(bs) {
			t.Fatalf("B by ID: %v, %v", caseIDs(byID), err)
		}
	})
}

func TestParticipantEmails(t *testing.T) {
	fa, fb := newFixture(t), newFixture(t)
	var acct *casedesk.Account
	var dan, eve *casedesk.Contact
	update(t, fa.db, func(tx casedesk.Tx) (err error) {
		acct, err = tx.CreateAccount(ctx(), casedesk.NewAccount{TenantID: fa.tenant.ID, Name: "Customer Inc",
			Domains: []string{"Customer.EXAMPLE", "eu.customer.example"}})
		if err != nil {
			return err
		}
		if dan, err = tx.UpsertContact(ctx(), fa.tenant.ID, casedesk.Address{Email: "Dan.Smith@Customer.Example"}); err != nil {
			return err
		}
		eve, err = tx.UpsertContact(ctx(), fa.tenant.ID, casedesk.Address{Email: "eve@partner.example"})
		return err
	})
	withAccount := fa.createCase(t, casedesk.NewCase{Subject: "with account", AccountID: acct.ID})
	update(t, fa.db, func(tx casedesk.Tx) error {
		return tx.AddParticipants(ctx(), fa.tenant.ID, withAccount.ID, dan.ID, eve.ID)
	})
	plain := fa.createCase(t, casedesk.NewCase{Subject: "requester only"})
	byDan := fa.createCase(t, casedesk.NewCase{Subject: "by Dan", RequesterID: dan.ID})
	// A requester counts even without its participant row.
	if err := rawExec(t, `DELETE FROM case_participants WHERE tenant_id = $1 AND case_id = $2`,
		fa.tenant.ID, byDan.ID); err != nil {
		t.Fatal(err)
	}
	other := fb.createCase(t, casedesk.NewCase{Subject: "tenant B"})

	cara := "cara@customer.example"
	tests := []struct {
		name string
		ids  []int64
		want map[int64]casedesk.CaseParties
	}{
		{"nil", nil, map[int64]casedesk.CaseParties{}},
		{"empty", []int64{}, map[int64]casedesk.CaseParties{}},
		{"participants and account", []int64{withAccount.ID}, map[int64]casedesk.CaseParties{
			withAccount.ID: {
				Emails:         []string{cara, "dan.smith@customer.example", "eve@partner.example"},
				AccountDomains: []string{"customer.example", "eu.customer.example"},
			},
		}},
		{"several, unknown and other tenant left out", []int64{plain.ID, 1 << 40, withAccount.ID, other.ID, byDan.ID, plain.ID},
			map[int64]casedesk.CaseParties{
				plain.ID: {Emails: []string{cara}, AccountDomains: []string{}},
				withAccount.ID: {
					Emails:         []string{cara, "dan.smith@customer.example", "eve@partner.example"},
					AccountDomains: []string{"customer.example", "eu.customer.example"},
				},
				// Dan's contact joined the account by domain, and the
				// case took the requester's account.
				byDan.ID: {Emails: []string{"dan.smith@customer.example"}, AccountDomains: []string{"customer.example", "eu.customer.example"}},
			}},
		{"only another tenant's case", []int64{other.ID}, map[int64]casedesk.CaseParties{}},
	}
	inUpdateAndView(t, fa.db, func(t *testing.T, tx casedesk.Tx) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := tx.ParticipantEmails(ctx(), fa.tenant.ID, tt.ids)
				if err != nil {
					t.Fatal(err)
				}
				if got == nil {
					t.Fatal("nil map, want an empty one")
				}
				for id, p := range got {
					slices.Sort(p.Emails)
					slices.Sort(p.AccountDomains)
					got[id] = p
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("ParticipantEmails(%v)\n got %+v\nwant %+v", tt.ids, got, tt.want)
				}
			})
		}
	})

	// B sees its own case, so A's empty answer above is the tenant filter.
	inUpdateAndView(t, fb.db, func(t *testing.T, tx casedesk.Tx) {
		got, err := tx.ParticipantEmails(ctx(), fb.tenant.ID, []int64{other.ID})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{cara}; len(got) != 1 || !slices.Equal(got[other.ID].Emails, want) {
			t.Fatalf("B's own case: %+v, want emails %v", got, want)
		}
	})
}

func TestFindErrorCase(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := casestoreClock(&now)
	fa, fb := newFixture(t, clock), newFixture(t, clock)
	fp := "TypeError: x is undefined @ app.js:" + randHex(4)
	at := func(d time.Duration) { now = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).Add(d) }

	at(1 * time.Minute)
	oldest := fa.createCase(t, casedesk.NewCase{Subject: "oldest", ErrorFingerprint: fp, Status: casedesk.StatusPending})
	at(2 * time.Minute)
	newer := fa.createCase(t, casedesk.NewCase{Subject: "newer", ErrorFingerprint: fp})
	at(3 * time.Minute)
	solved := fa.createCase(t, casedesk.NewCase{Subject: "solved", ErrorFingerprint: fp})
	fa.setStatus(t, solved, casedesk.StatusSolved)
	at(4 * time.Minute)
	closed := fa.createCase(t, casedesk.NewCase{Subject: "closed", ErrorFingerprint: fp})
	fa.setStatus(t, closed, casedesk.StatusSolved, casedesk.StatusClosed)
	at(5 * time.Minute)
	fa.createCase(t, casedesk.NewCase{Subject: "another error", ErrorFingerprint: fp + "-other"})
	fa.createCase(t, casedesk.NewCase{Subject: "no error"})
	otherTenant := fb.createCase(t, casedesk.NewCase{Subject: "tenant B", ErrorFingerprint: fp})

	find := func(t *testing.T, tx casedesk.Tx, tenantID int64, fp string) (int64, error) {
		t.Helper()
		c, err := tx.FindErrorCase(ctx(), tenantID, fp)
		if err != nil {
			return 0, err
		}
		sameAsFindCase(t, tx, []*casedesk.Case{c})
		return c.ID, nil
	}
	check := func(t *testing.T, want int64) {
		t.Helper()
		inUpdateAndView(t, fa.db, func(t *testing.T, tx casedesk.Tx) {
			tests := []struct {
				name     string
				tenantID int64
				fp       string
				want     int64 // 0: ENOTFOUND
			}{
				{"fingerprint", fa.tenant.ID, fp, want},
				{"unknown fingerprint", fa.tenant.ID, "never seen " + randHex(4), 0},
				{"empty fingerprint", fa.tenant.ID, "", 0},
				{"prefix of the fingerprint", fa.tenant.ID, fp[:10], 0},
				{"other tenant's own", fb.tenant.ID, fp, otherTenant.ID},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, err := find(t, tx, tt.tenantID, tt.fp)
					if tt.want == 0 {
						wantCode(t, err, casedesk.ENOTFOUND)
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if got != tt.want {
						t.Errorf("FindErrorCase = case %d, want %d", got, tt.want)
					}
				})
			}
		})
	}

	t.Run("newest unsolved", func(t *testing.T) { check(t, newer.ID) })
	fa.setStatus(t, newer, casedesk.StatusSolved)
	t.Run("next newest after solving", func(t *testing.T) { check(t, oldest.ID) })
	fa.setStatus(t, oldest, casedesk.StatusSolved)
	t.Run("all solved", func(t *testing.T) { check(t, 0) })
	// Reopening brings a case back.
	fa.setStatus(t, solved, casedesk.StatusOpen)
	t.Run("reopened", func(t *testing.T) { check(t, solved.ID) })
}

func TestAddOccurrence(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	fa, fb := newFixture(t, casestoreClock(&now)), newFixture(t)
	kase := fa.createCase(t, casedesk.NewCase{Subject: "crash", ErrorFingerprint: "fp-" + randHex(4)})
	other := fb.createCase(t, casedesk.NewCase{Subject: "tenant B", ErrorFingerprint: "fp-" + randHex(4)})
	if kase.Occurrences != 1 {
		t.Fatalf("new case has %d occurrences, want 1", kase.Occurrences)
	}
	by := casedesk.Actor{Kind: casedesk.AuthorCustomer, ContactID: fa.requester.ID}

	for want := 2; want <= 3; want++ {
		now = now.Add(time.Minute)
		var got *casedesk.Case
		update(t, fa.db, func(tx casedesk.Tx) (err error) {
			if err := tx.AddOccurrence(ctx(), fa.tenant.ID, kase.ID, by); err != nil {
				return err
			}
			got, err = tx.FindCase(ctx(), fa.tenant.ID, kase.ID)
			return err
		})
		if got.Occurrences != want {
			t.Errorf("occurrences = %d, want %d", got.Occurrences, want)
		}
		if !got.UpdatedAt.Equal(now) {
			t.Errorf("updated_at = %v, want %v", got.UpdatedAt, now)
		}
	}

	var events []*casedesk.Event
	update(t, fa.db, func(tx casedesk.Tx) (err error) {
		events, err = tx.ListEvents(ctx(), fa.tenant.ID, kase.ID)
		return err
	})
	var counts []int
	for _, e := range events {
		if e.Kind != casedesk.EventOccurrence {
			continue
		}
		if e.Actor != by {
			t.Errorf("event actor = %+v, want %+v", e.Actor, by)
		}
		var data struct{ Occurrences int }
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatal(err)
		}
		counts = append(counts, data.Occurrences)
	}
	if want := []int{2, 3}; !slices.Equal(counts, want) {
		t.Errorf("occurrence events carry counts %v, want %v", counts, want)
	}

	tests := []struct {
		name     string
		tenantID int64
		caseID   int64
	}{
		{"unknown case", fa.tenant.ID, 1 << 40},
		{"other tenant's case", fa.tenant.ID, other.ID},
		{"unknown tenant", 1 << 40, kase.ID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fa.db.Update(ctx(), func(tx casedesk.Tx) error {
				return tx.AddOccurrence(ctx(), tt.tenantID, tt.caseID, casedesk.SystemActor)
			})
			wantCode(t, err, casedesk.ENOTFOUND)
		})
	}
	// Tenant B's case was not touched.
	update(t, fb.db, func(tx casedesk.Tx) error {
		c, err := tx.FindCase(ctx(), fb.tenant.ID, other.ID)
		if err == nil && c.Occurrences != 1 {
			err = fmt.Errorf("tenant B's case has %d occurrences, want 1", c.Occurrences)
		}
		return err
	})

	t.Run("refused in View", func(t *testing.T) {
		err := fa.db.View(ctx(), func(tx casedesk.Tx) error {
			return tx.AddOccurrence(ctx(), fa.tenant.ID, kase.ID, casedesk.SystemActor)
		})
		if err == nil {
			t.Fatal("AddOccurrence in a View succeeded")
		}
	})
}
