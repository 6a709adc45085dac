package ingest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

// mergedEnv is a tenant in which Cara opened case #1 (Dan in copy) and Bob
// case #2, and #1 was then merged into #2.
func mergedEnv(t *testing.T) (e *procEnv, a, b *casedesk.Case) {
	t.Helper()
	e = newProcEnv(t)
	e.mustDeliver(opening().raw())
	e.mustDeliver(email{ID: "bob1@other.example", From: "Bob <bob@other.example>", To: supAddr, Subject: "Smoke in the office"}.raw())
	a, b = e.caseOf(origID), e.caseOf("bob1@other.example")
	if a == nil || b == nil || a.Number != 1 || b.Number != 2 {
		t.Fatalf("cases %+v %+v", a, b)
	}
	err := e.db.Update(context.Background(), func(tx casedesk.Tx) error {
		_, err := tx.MergeCase(context.Background(), e.tenant.ID, a.ID, b.ID, casedesk.Actor{Kind: casedesk.AuthorAgent})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return e, a, b
}

func TestMergedCaseMailLandsInTarget(t *testing.T) {
	tests := []struct {
		name string
		mail func(e *procEnv, a *casedesk.Case) email
	}{
		{"subject tag", func(e *procEnv, a *casedesk.Case) email {
			return email{ID: "tag@customer.example", From: caraAddr, To: supAddr, Subject: "Re: [Case #1] Printer on fire"}
		}},
		{"token in In-Reply-To", func(e *procEnv, a *casedesk.Case) email {
			return reply("token@customer.example", caraAddr, "Re: we received your request", ourAck(e, a), ourAck(e, a))
		}},
		{"token address", func(e *procEnv, a *casedesk.Case) email {
			return email{ID: "plus@customer.example", From: caraAddr, To: e.tokens.ReplyAddress("support@acme.example", a.Number),
				Subject: "Printer"}
		}},
		{"original Message-ID in References", func(e *procEnv, a *casedesk.Case) email {
			return reply("ref@customer.example", danAddr, "Re: Printer on fire", origID, origID)
		}},
		{"subject tag from a participant of the merged case", func(e *procEnv, a *casedesk.Case) email {
			// Dan was only on #1; he is on #2 now.
			return email{ID: "dan@customer.example", From: danAddr, To: supAddr, Subject: "Re: [Case #1] Printer on fire"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, a, b := mergedEnv(t)
			m := tt.mail(e, a)
			e.mustDeliver(m.raw())
			wantOn(t, e, m.ID, b)
			if n := e.caseCount(); n != 2 {
				t.Errorf("%d cases, want 2: the reply opened a case", n)
			}
			wantStatus(t, e, a, casedesk.StatusClosed)
			if got := messages(t, e, b); len(got) != 3 || got[2].MessageID != m.ID {
				t.Errorf("messages of #2: %d, last %q", len(got), got[len(got)-1].MessageID)
			}
		})
	}
}

func TestMergedCaseMailInOneBatch(t *testing.T) {
	e, a, b := mergedEnv(t)
	tag := email{ID: "tag@customer.example", From: caraAddr, To: supAddr, Subject: "Re: [Case #1] Printer on fire"}
	token := reply("token@customer.example", caraAddr, "Re: Printer on fire", ourAck(e, a), ourAck(e, a))
	e.mustDeliver(tag.raw(), token.raw())
	wantOn(t, e, tag.ID, b)
	wantOn(t, e, token.ID, b)
	var c *casedesk.Case
	e.view(func(tx casedesk.Tx) (err error) {
		c, err = tx.FindCase(context.Background(), e.tenant.ID, b.ID)
		return err
	})
	if c.MessageCount != 4 {
		t.Errorf("#2 has %d messages, want 4", c.MessageCount)
	}
}

func TestMergedCaseStrangerTagStillRefused(t *testing.T) {
	// A tag alone must not let a stranger into a case, merged or not.
	e, _, b := mergedEnv(t)
	m := email{ID: "eve@elsewhere.example", From: "Eve <eve@elsewhere.example>", To: supAddr, Subject: "Re: [Case #1] Printer on fire"}
	e.mustDeliver(m.raw())
	if got := wantNewCase(t, e, m.ID, b); got.Number != 3 {
		t.Errorf("stranger's mail landed on #%d", got.Number)
	}
}

// setMergedInto writes merged_into directly: MergeCase keeps chains one
// step long, so chains and loops only exist in data written otherwise.
func setMergedInto(t *testing.T, tenantID int64, pairs ...[2]int64) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), casestoretest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, p := range pairs {
		_, err := conn.Exec(context.Background(), `UPDATE cases SET merged_into = $3 WHERE tenant_id = $1 AND id = $2`,
			tenantID, p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestMergedCaseChainsAndLoops(t *testing.T) {
	e, a, b := mergedEnv(t)
	e.mustDeliver(email{ID: "cy1@third.example", From: "Cy <cy@third.example>", To: supAddr, Subject: "Third"}.raw())
	c := e.caseOf("cy1@third.example")
	// #1 -> #2 -> #3: mail for #1 follows the chain.
	setMergedInto(t, e.tenant.ID, [2]int64{b.ID, c.ID})
	m := reply("chain@customer.example", caraAddr, "Re: Printer on fire", ourAck(e, a), ourAck(e, a))
	e.mustDeliver(m.raw())
	wantOn(t, e, m.ID, c)

	// A loop (#2 -> #3 -> #2) ends after a bounded number of steps, on a
	// case of the loop; the mail is stored, not lost.
	setMergedInto(t, e.tenant.ID, [2]int64{c.ID, b.ID})
	loop := reply("loop@customer.example", caraAddr, "Re: Printer on fire", ourAck(e, a), ourAck(e, a))
	e.mustDeliver(loop.raw())
	if got := e.caseOf(loop.ID); got == nil || got.ID != b.ID && got.ID != c.ID {
		t.Fatalf("mail for a case in a merge loop landed on %+v, want #2 or #3", got)
	}
}
