package casestore_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

// listFixture is a tenant with cases that differ in every sortable column.
func listFixture(t *testing.T, now *time.Time) (*fixture, []*casedesk.Case) {
	f := newFixture(t, casestoreClock(now))
	var cases []*casedesk.Case
	var accounts [2]int64
	var agents [2]int64
	update(t, f.db, func(tx casedesk.Tx) error {
		for i, name := range []string{"Zeta Corp", "alpha inc"} {
			a, err := tx.CreateAccount(ctx(), casedesk.NewAccount{TenantID: f.tenant.ID, Name: name})
			if err != nil {
				return err
			}
			u, err := tx.CreateUser(ctx(), casedesk.NewUser{TenantID: f.tenant.ID, Email: fmt.Sprintf("agent%d@acme.example", i),
				Name: []string{"Mia Agent", "bo Agent"}[i], RoleName: casedesk.RoleSupport})
			if err != nil {
				return err
			}
			accounts[i], agents[i] = a.ID, u.ID
		}
		return nil
	})
	subjects := []string{"banana", "Apple", "cherry", "apple", "date", "Elder", "fig", "grape", "Honeydew", "kiwi", "lemon", "mango"}
	for i, s := range subjects {
		*now = now.Add(time.Minute)
		update(t, f.db, func(tx casedesk.Tx) error {
			who, err := tx.UpsertContact(ctx(), f.tenant.ID, casedesk.Address{Email: fmt.Sprintf("%c-user@example.com", 'z'-i)})
			if err != nil {
				return err
			}
			c, err := tx.CreateCase(ctx(), casedesk.NewCase{TenantID: f.tenant.ID, Subject: s, RequesterID: who.ID,
				Priority: priorities[i%4], Status: []casedesk.Status{casedesk.StatusNew, casedesk.StatusOpen, casedesk.StatusPending}[i%3],
				AccountID: []int64{accounts[0], accounts[1], 0}[i%3], AssigneeID: []int64{agents[0], 0, agents[1], 0, 0}[i%5]})
			cases = append(cases, c)
			return err
		})
	}
	if cases[0].AccountName != "Zeta Corp" || cases[0].AssigneeName != "Mia Agent" {
		t.Fatalf("case lookups do not join account and assignee: %q %q", cases[0].AccountName, cases[0].AssigneeName)
	}
	return f, cases
}

func TestListCasesSortsAndPagesEveryColumn(t *testing.T) {
	now := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	f, all := listFixture(t, &now)
	keyOf := map[string]func(c *casedesk.Case) string{
		"number":        func(c *casedesk.Case) string { return fmt.Sprintf("%09d", c.Number) },
		"subject":       func(c *casedesk.Case) string { return strings.ToLower(c.Subject) },
		"status":        func(c *casedesk.Case) string { return fmt.Sprint(slices.Index(casedesk.Statuses, c.Status)) },
		"priority":      func(c *casedesk.Case) string { return fmt.Sprint(slices.Index(priorities, c.Priority)) },
		"category":      func(c *casedesk.Case) string { return c.Category },
		"requester":     func(c *casedesk.Case) string { return c.Requester.Email },
		"account":       func(c *casedesk.Case) string { return strings.ToLower(c.AccountName) },
		"assignee":      func(c *casedesk.Case) string { return strings.ToLower(c.AssigneeName) },
		"message_count": func(c *casedesk.Case) string { return fmt.Sprintf("%09d", c.MessageCount) },
		"created_at":    func(c *casedesk.Case) string { return c.CreatedAt.Format(time.RFC3339Nano) },
		"updated_at":    func(c *casedesk.Case) string { return c.UpdatedAt.Format(time.RFC3339Nano) },
	}
	for _, col := range casedesk.CaseSortColumns {
		for _, desc := range []bool{false, true} {
			sortArg := col
			if desc {
				sortArg = "-" + col
			}
			t.Run(sortArg, func(t *testing.T) {
				want := slices.Clone(all)
				sort.SliceStable(want, func(i, j int) bool {
					ki, kj := keyOf[col](want[i]), keyOf[col](want[j])
					if ki != kj {
						return (ki < kj) != desc
					}
					return (want[i].ID < want[j].ID) != desc
				})
				got := f.listAll(t, casedesk.CaseFilter{Sort: sortArg, Limit: 5})
				if fmt.Sprint(numbers(got)) != fmt.Sprint(numbers(want)) {
					t.Errorf("order = %v, want %v", numbers(got), numbers(want))
				}
			})
		}
	}
}

func TestListCasesCursorStableUnderInserts(t *testing.T) {
	now := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	f, all := listFixture(t, &now)
	var page *casedesk.CasePage
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		page, err = tx.ListCases(ctx(), f.tenant.ID, casedesk.CaseFilter{Sort: "-created_at", Limit: 4})
		return err
	})
	// New cases arrive between page requests; newest-first paging must
	// neither repeat nor skip the cases that existed.
	now = now.Add(time.Hour)
	f.newCase(t, "late arrival 1")
	f.newCase(t, "late arrival 2")
	seen := numbers(page.Cases)
	for page.NextCursor != "" {
		cursor := page.NextCursor
		update(t, f.db, func(tx casedesk.Tx) (err error) {
			page, err = tx.ListCases(ctx(), f.tenant.ID, casedesk.CaseFilter{Sort: "-created_at", Limit: 4, Cursor: cursor})
			return err
		})
		seen = append(seen, numbers(page.Cases)...)
	}
	want := numbers(all)
	slices.Reverse(want)
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("paged %v, want %v", seen, want)
	}
}

func TestListCasesFilters(t *testing.T) {
	now := time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)
	f, all := listFixture(t, &now)
	tests := []struct {
		name   string
		filter casedesk.CaseFilter
		want   func(c *casedesk.Case) bool
	}{
		{"status", casedesk.CaseFilter{Statuses: []casedesk.Status{casedesk.StatusOpen, casedesk.StatusPending}},
			func(c *casedesk.Case) bool {
				return c.Status == casedesk.StatusOpen || c.Status == casedesk.StatusPending
			}},
		{"priority", casedesk.CaseFilter{Priority: casedesk.PriorityUrgent},
			func(c *casedesk.Case) bool { return c.Priority == casedesk.PriorityUrgent }},
		{"requester", casedesk.CaseFilter{RequesterEmail: "Z-USER@example.com"},
			func(c *casedesk.Case) bool { return c.Requester.Email == "z-user@example.com" }},
		{"created range", casedesk.CaseFilter{CreatedFrom: all[2].CreatedAt, CreatedTo: all[5].CreatedAt},
			func(c *casedesk.Case) bool {
				return !c.CreatedAt.Before(all[2].CreatedAt) && c.CreatedAt.Before(all[5].CreatedAt)
			}},
		{"category", casedesk.CaseFilter{Category: casedesk.CategoryErrorReport},
			func(c *casedesk.Case) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.filter.Sort = "number"
			got := f.listAll(t, tt.filter)
			var want []*casedesk.Case
			for _, c := range all {
				if tt.want(c) {
					want = append(want, c)
				}
			}
			if fmt.Sprint(numbers(got)) != fmt.Sprint(numbers(want)) {
				t.Errorf("got %v, want %v", numbers(got), numbers(want))
			}
		})
	}
	bad := []casedesk.CaseFilter{
		{Sort: "secret"},
		{Statuses: []casedesk.Status{"archived"}},
		{Priority: "p0"},
		{Cursor: "not-a-cursor"},
		{Sort: "number", Cursor: "eyJzIjoiLWNyZWF0ZWRfYXQiLCJ2IjoieCIsImkiOjF9"}, // cursor of another sort
	}
	for _, filter := range bad {
		err := f.db.View(ctx(), func(tx casedesk.Tx) error {
			_, err := tx.ListCases(ctx(), f.tenant.ID, filter)
			return err
		})
		wantCode(t, err, casedesk.EINVALID)
	}
}

func (f *fixture) listAll(t *testing.T, filter casedesk.CaseFilter) []*casedesk.Case {
	t.Helper()
	var out []*casedesk.Case
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		var page *casedesk.CasePage
		update(t, f.db, func(tx casedesk.Tx) (err error) {
			page, err = tx.ListCases(ctx(), f.tenant.ID, filter)
			return err
		})
		out = append(out, page.Cases...)
		if page.NextCursor == "" {
			return out
		}
		filter.Cursor = page.NextCursor
	}
}

var priorities = []casedesk.Priority{casedesk.PriorityLow, casedesk.PriorityNormal, casedesk.PriorityHigh, casedesk.PriorityUrgent}

func numbers(cs []*casedesk.Case) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = c.Number
	}
	return out
}
