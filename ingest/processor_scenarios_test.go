package ingest

import (
	"slices"
	"strings"
	"testing"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/threading"
)

// The scenarios of threading's TestDecide, end to end: real mail through
// the StoreProcessor into PostgreSQL. Each starts from a fresh tenant in
// which Cara (Customer Inc, customer.example) opened case #1 with Dan in
// Cc; the agent is alex@acme.example.

const (
	origID  = "CAF+orig@mail.gmail.com"
	eveAddr = "Eve <eve@customer.example>"
	danAddr = "Dan <dan@customer.example>"
)

// ourAck is the Message-ID of our acknowledgement on a case.
func ourAck(e *procEnv, c *casedesk.Case) string {
	return e.tokens.MessageID(c.Number, 1, "acme.example")
}

func reply(id, from, subject, inReplyTo string, refs ...string) email {
	return email{ID: id, From: from, To: supAddr, Subject: subject, InReplyTo: inReplyTo, References: brackets(refs...),
		Body: "Thanks, but it is still broken.\r\n\r\n> earlier text"}
}

func one(m email) [][]byte { return [][]byte{m.raw()} }

// Agent mail and automatic mail.
func agentMail(id, subject, first string, inReplyTo string) email {
	m := email{ID: id, From: "Alex Agent <alex@acme.example>", To: supAddr, Subject: subject, InReplyTo: inReplyTo,
		Body: first + "\r\nHello Cara,\r\n\r\nplease switch it off and on again.\r\n\r\nAlex"}
	if inReplyTo != "" {
		m.References = brackets(inReplyTo)
	}
	return m
}

func oooReply(id, subject, inReplyTo string) email {
	return email{ID: id, From: caraAddr, To: supAddr, Subject: subject, InReplyTo: inReplyTo,
		Headers: []string{"Auto-Submitted: auto-replied", "X-Auto-Response-Suppress: All"},
		Body:    "I am out of the office until Monday."}
}

func errorReport(id string) email {
	return email{ID: id, From: "reports@app.customer.example", To: supAddr, Subject: "Error report: NullPointerException",
		Headers: []string{"X-Casedesk-Report: error"},
		Body:    "Product: Billing\r\nTenant: customer\r\nError-Id: E42\r\nMessage: NullPointerException in InvoiceRenderer\r\nStack: at InvoiceRenderer.render(InvoiceRenderer.java:42)"}
}

func TestProcessorScenarios(t *testing.T) {
	statusPath := map[casedesk.Status][]casedesk.Status{
		casedesk.StatusOpen:    {casedesk.StatusOpen},
		casedesk.StatusPending: {casedesk.StatusPending},
		casedesk.StatusSolved:  {casedesk.StatusSolved},
		casedesk.StatusClosed:  {casedesk.StatusSolved, casedesk.StatusClosed},
	}
	// onCase delivers mail to the opened case, first moving it to status.
	onCase := func(status casedesk.Status, mails func(e *procEnv, c *casedesk.Case) []email) func(e *procEnv, c *casedesk.Case) [][]byte {
		return func(e *procEnv, c *casedesk.Case) [][]byte {
			if status != casedesk.StatusNew {
				e.setStatus(c, statusPath[status]...)
			}
			var out [][]byte
			for _, m := range mails(e, c) {
				out = append(out, m.raw())
			}
			return out
		}
	}
	// Expectations.
	sameCase := func(id string, status casedesk.Status, participant ...string) func(*testing.T, *procEnv, *casedesk.Case) {
		return func(t *testing.T, e *procEnv, c *casedesk.Case) {
			wantOn(t, e, id, c)
			wantStatus(t, e, c, status)
			p := participants(t, e, c)
			for _, want := range participant {
				if !slices.Contains(p, want) {
					t.Errorf("participants %v lack %s", p, want)
				}
			}
		}
	}
	newCase := func(id string, acks, followUps int, to string) func(*testing.T, *procEnv, *casedesk.Case) {
		return func(t *testing.T, e *procEnv, c *casedesk.Case) {
			nc := wantNewCase(t, e, id, c)
			if nc.FollowUpOf != 0 {
				t.Errorf("case #%d follows up %d, want a plain new case", nc.Number, nc.FollowUpOf)
			}
			if got := len(messages(t, e, c)); got != 1 {
				t.Errorf("the original case has %d messages, want it untouched (1)", got)
			}
			if to == "cara@customer.example" {
				acks++ // the opening's own
			}
			wantAcks(t, e, to, acks, followUps)
		}
	}
	followUp := func(id string, followUps int) func(*testing.T, *procEnv, *casedesk.Case) {
		return func(t *testing.T, e *procEnv, c *casedesk.Case) {
			nc := wantNewCase(t, e, id, c)
			if nc.FollowUpOf != c.ID {
				t.Errorf("case #%d follows up %d, want %d", nc.Number, nc.FollowUpOf, c.ID)
			}
			if !slices.Contains(events(t, e, nc), casedesk.EventFollowUp) {
				t.Error("no follow_up event on the new case")
			}
			wantStatus(t, e, c, casedesk.StatusClosed)
			wantAcks(t, e, "cara@customer.example", 1, followUps)
		}
	}
	notStored := func(id string) func(*testing.T, *procEnv, *casedesk.Case) {
		return func(t *testing.T, e *procEnv, c *casedesk.Case) {
			if got := e.caseOf(id); got != nil {
				t.Errorf("%s stored on case #%d, want nothing stored", id, got.Number)
			}
			if n := e.caseCount(); n != 1 {
				t.Errorf("%d cases, want only the opened one", n)
			}
		}
	}
	agentOn := func(id string, status casedesk.Status, relays int, dir casedesk.Direction) func(*testing.T, *procEnv, *casedesk.Case) {
		return func(t *testing.T, e *procEnv, c *casedesk.Case) {
			wantOn(t, e, id, c)
			wantStatus(t, e, c, status)
			if got := e.outbox(casedesk.OutboxRelay, "cara@customer.example"); got != relays {
				t.Errorf("%d relays to Cara, want %d", got, relays)
			}
			msgs := messages(t, e, c)
			last := msgs[len(msgs)-1]
			if last.AuthorKind != casedesk.AuthorAgent || last.Direction != dir || last.UserID == 0 {
				t.Errorf("agent message stored as %s/%s user %d, want agent/%s with the user", last.AuthorKind, last.Direction, last.UserID, dir)
			}
		}
	}
	noAck := func(check func(*testing.T, *procEnv, *casedesk.Case)) func(*testing.T, *procEnv, *casedesk.Case) {
		return func(t *testing.T, e *procEnv, c *casedesk.Case) {
			check(t, e, c)
			wantAcks(t, e, "cara@customer.example", 1, 0)
		}
	}
	open, pending, solved, closed, fresh := casedesk.StatusOpen, casedesk.StatusPending, casedesk.StatusSolved, casedesk.StatusClosed, casedesk.StatusNew
	gmail := func(id, subject string) func(e *procEnv, c *casedesk.Case) []email {
		return func(e *procEnv, c *casedesk.Case) []email {
			return []email{reply(id, caraAddr, subject, ourAck(e, c), origID, ourAck(e, c))}
		}
	}

	tests := []scenario{
		// New conversations.
		{"new mail opens a case with an ack", nil, func(t *testing.T, e *procEnv, c *casedesk.Case) {
			if c.Number != 1 || c.Status != fresh {
				t.Errorf("opened #%d %s", c.Number, c.Status)
			}
			wantAcks(t, e, "cara@customer.example", 1, 0)
		}},
		{"new mail with colleagues in Cc makes them participants", nil, sameCase(origID, fresh, "cara@customer.example", "dan@customer.example")},
		{"our plus-address in To is not a participant", func(e *procEnv, c *casedesk.Case) [][]byte {
			m := email{ID: "plus@customer.example", From: "Bob <bob@other.example>", Subject: "Hi",
				To: supAddr + ", " + e.tokens.ReplyAddress("support@acme.example", 99)}
			return one(m)
		}, func(t *testing.T, e *procEnv, c *casedesk.Case) {
			nc := wantNewCase(t, e, "plus@customer.example", c)
			if p := participants(t, e, nc); len(p) != 1 || p[0] != "bob@other.example" {
				t.Errorf("participants = %v, want only Bob", p)
			}
		}},
		{"ack limit reached: case, no ack", func(e *procEnv, c *casedesk.Case) [][]byte {
			var out [][]byte
			for _, id := range []string{"a1@c", "a2@c", "a3@c", "a4@c", "a5@c"} {
				out = append(out, email{ID: id, From: caraAddr, To: supAddr, Subject: "Another " + id}.raw())
			}
			return out
		}, func(t *testing.T, e *procEnv, c *casedesk.Case) {
			if n := e.caseCount(); n != 6 {
				t.Errorf("%d cases, want 6", n)
			}
			wantAcks(t, e, "cara@customer.example", 5, 0)
		}},
		{"bulk newsletter: case, no ack", func(e *procEnv, c *casedesk.Case) [][]byte {
			return one(email{ID: "news@vendor.example", From: "News <news@vendor.example>", To: supAddr, Subject: "Our November news",
				Headers: []string{"List-Id: <news.vendor.example>", "Precedence: bulk"}})
		}, newCase("news@vendor.example", 0, 0, "news@vendor.example")},
		{"auto-reply with no case: case, no ack", func(e *procEnv, c *casedesk.Case) [][]byte {
			return one(email{ID: "ooo@other.example", From: "Bob <bob@other.example>", To: supAddr, Subject: "Out of office",
				Headers: []string{"Auto-Submitted: auto-replied"}})
		}, newCase("ooo@other.example", 0, 0, "bob@other.example")},

		// Rule 1.
		{"same message delivered twice", func(e *procEnv, c *casedesk.Case) [][]byte { return one(opening()) },
			func(t *testing.T, e *procEnv, c *casedesk.Case) {
				if n := e.caseCount(); n != 1 {
					t.Errorf("%d cases, want 1", n)
				}
				if n := len(messages(t, e, c)); n != 1 {
					t.Errorf("%d messages, want 1", n)
				}
				wantAcks(t, e, "cara@customer.example", 1, 0)
			}},

		// Loops and bounces.
		{"mail from our own support address", func(e *procEnv, c *casedesk.Case) [][]byte {
			return one(email{ID: "loop@acme.example", From: supAddr, To: supAddr, Subject: "Re: [Case #1] Printer on fire"})
		}, notStored("loop@acme.example")},
		{"bounce of our ack", func(e *procEnv, c *casedesk.Case) [][]byte {
			return [][]byte{bounceOf(ourAck(e, c), "cara@customer.example")}
		}, func(t *testing.T, e *procEnv, c *casedesk.Case) {
			if n := e.caseCount(); n != 1 {
				t.Errorf("%d cases, want 1: a bounce never opens one", n)
			}
			if !slices.Contains(events(t, e, c), casedesk.EventBounce) {
				t.Errorf("events %v lack a bounce", events(t, e, c))
			}
			var contact *casedesk.Contact
			e.view(func(tx casedesk.Tx) (err error) {
				contact, err = tx.FindContactByEmail(t.Context(), e.tenant.ID, "cara@customer.example")
				return err
			})
			if contact.BouncingSince.IsZero() {
				t.Error("Cara's address not marked bouncing")
			}
			wantStatus(t, e, c, fresh)
		}},
		{"bounce of mail we never sent", func(e *procEnv, c *casedesk.Case) [][]byte {
			return [][]byte{bounceOf("someone-else@other.example", "x@customer.example")}
		}, notStored("dsn-someone-else@other.example@mx.customer.example")},

		// Rule 2.
		{"Gmail reply to our ack, full References", onCase(open, gmail("r1@mail.gmail.com", "Re: [Case #1] Printer on fire")), sameCase("r1@mail.gmail.com", open)},
		{"Outlook reply, In-Reply-To only, AW:", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			m := reply("AM0PR@outlook.com", caraAddr, "AW: [Case #1] Printer on fire", ourAck(e, c))
			m.Headers = []string{"Thread-Index: AQHZ1234567890", "Thread-Topic: [Case #1] Printer on fire"}
			return []email{m}
		}), sameCase("AM0PR@outlook.com", open)},
		{"Outlook reply RE: on a pending case reopens it", onCase(pending, func(e *procEnv, c *casedesk.Case) []email {
			return []email{reply("re@outlook.com", caraAddr, "RE: [Case #1] Printer on fire", ourAck(e, c))}
		}), sameCase("re@outlook.com", open)},
		{"reply on a solved case reopens it", onCase(solved, gmail("r2@mail.gmail.com", "Re: Printer")), sameCase("r2@mail.gmail.com", open)},
		{"reply on a new case leaves it new", onCase(fresh, gmail("r3@mail.gmail.com", "Re: Printer")), sameCase("r3@mail.gmail.com", fresh)},
		{"reply with an entirely new subject keeps the case", onCase(open, gmail("r4@mail.gmail.com", "Invoice question")), sameCase("r4@mail.gmail.com", open)},
		{"reply to a closed case starts a follow-up", onCase(closed, gmail("r5@mail.gmail.com", "Re: [Case #1] Printer on fire")), followUp("r5@mail.gmail.com", 1)},
		{"reply-all from a CC'd colleague joins the case", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			m := reply("eve1@customer.example", eveAddr, "Re: Printer on fire", ourAck(e, c), origID, ourAck(e, c))
			m.Cc = caraAddr + ", " + danAddr
			return []email{m}
		}), sameCase("eve1@customer.example", open, "eve@customer.example")},
		{"reply from someone BCC'd on our mail", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{reply("boss@customer.example", "Boss <boss@customer.example>", "Re: Printer", ourAck(e, c))}
		}), sameCase("boss@customer.example", open, "boss@customer.example")},
		{"reply adding a new Cc", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			m := reply("cc@mail.gmail.com", caraAddr, "Re: Printer", ourAck(e, c))
			m.Cc = "IT <it@customer.example>"
			return []email{m}
		}), sameCase("cc@mail.gmail.com", open, "it@customer.example")},
		{"participants compared case-insensitively", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{reply("dan2@customer.example", "DAN <DAN@Customer.Example>", "Re: Printer", ourAck(e, c))}
		}), func(t *testing.T, e *procEnv, c *casedesk.Case) {
			wantOn(t, e, "dan2@customer.example", c)
			if p := participants(t, e, c); len(p) != 2 {
				t.Errorf("participants = %v, want Cara and Dan once each", p)
			}
		}},
		{"forged token: nothing found, new case", func(e *procEnv, c *casedesk.Case) [][]byte {
			return one(reply("forged@evil.example", "Mallory <mallory@evil.example>", "Re: [Case #1] x", "c1.m1.aaaaaaaa@acme.example"))
		}, newCase("forged@evil.example", 1, 0, "mallory@evil.example")},
		{"token of another tenant: nothing found, new case", func(e *procEnv, c *casedesk.Case) [][]byte {
			other := threading.NewTokens(e.tenant.ID+1000, []byte("another tenant's secret"))
			return one(reply("other@mail.gmail.com", caraAddr, "Re: Printer", other.MessageID(1, 1, "acme.example")))
		}, newCase("other@mail.gmail.com", 1, 0, "cara@customer.example")},

		// Rule 3.
		{"Apple Mail reply keeping only the customer's own original id", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{reply("apple@icloud.com", caraAddr, "Re: Printer on fire", "", origID)}
		}), sameCase("apple@icloud.com", open)},
		{"reply to an agent's relayed mail on a pending case", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{agentMail("agent1@acme.example", "Re: [Case #1] Printer", "", ourAck(e, c)),
				reply("after-agent@mail.gmail.com", caraAddr, "Re: Printer", "agent1@acme.example")}
		}), sameCase("after-agent@mail.gmail.com", open)},
		{"reference wins over a subject tag", func(e *procEnv, c *casedesk.Case) [][]byte {
			second := email{ID: "second@customer.example", From: caraAddr, To: supAddr, Subject: "Scanner jammed"}
			return [][]byte{second.raw(), reply("mixed@mail.gmail.com", caraAddr, "Re: [Case #2] Printer", "", origID).raw()}
		}, sameCase("mixed@mail.gmail.com", fresh)},
		{"referenced closed case starts a follow-up", onCase(closed, func(e *procEnv, c *casedesk.Case) []email {
			return []email{reply("late@icloud.com", caraAddr, "Re: Printer on fire", "", origID)}
		}), followUp("late@icloud.com", 1)},

		// Rule 4.
		{"reply to our Reply-To plus-address, references dropped", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			m := email{ID: "plus1@mail.example", From: caraAddr, To: e.tokens.ReplyAddress("support@acme.example", c.Number), Subject: "Printer"}
			return []email{m}
		}), sameCase("plus1@mail.example", open)},
		{"address token on a closed case: follow-up", onCase(closed, func(e *procEnv, c *casedesk.Case) []email {
			return []email{{ID: "plus2@mail.example", From: caraAddr, To: e.tokens.ReplyAddress("support@acme.example", c.Number), Subject: "Printer"}}
		}), followUp("plus2@mail.example", 1)},

		// Rule 5.
		{"tag from the requester, no references", onCase(pending, func(e *procEnv, c *casedesk.Case) []email {
			return []email{{ID: "tag1@mail.example", From: caraAddr, To: supAddr, Subject: "[Case #1] still broken"}}
		}), sameCase("tag1@mail.example", open)},
		{"tag from a participant", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{{ID: "tag2@mail.example", From: danAddr, To: supAddr, Subject: "Re: [Case #1] x"}}
		}), sameCase("tag2@mail.example", open)},
		{"tag in lower case with extra spaces from a colleague in the account's domain", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{{ID: "tag3@mail.example", From: eveAddr, To: supAddr, Subject: "[case  # 1] x"}}
		}), sameCase("tag3@mail.example", open, "eve@customer.example")},
		{"tag in capitals without a space", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{{ID: "tag4@mail.example", From: caraAddr, To: supAddr, Subject: "RE: [CASE#1] x"}}
		}), sameCase("tag4@mail.example", open)},
		{"a stranger using someone else's tag gets a new case", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{{ID: "stranger@evil.example", From: "Mallory <mallory@evil.example>", To: supAddr, Subject: "[Case #1] let me in"}}
		}), newCase("stranger@evil.example", 1, 0, "mallory@evil.example")},
		{"a look-alike domain is a stranger", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{{ID: "lookalike@x.example", From: "cara@customer.example.evil.example", To: supAddr, Subject: "[Case #1] x"}}
		}), newCase("lookalike@x.example", 1, 0, "cara@customer.example.evil.example")},
		{"reply with the tag removed and no references", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{{ID: "untagged@mail.gmail.com", From: caraAddr, To: supAddr, Subject: "Printer on fire"}}
		}), newCase("untagged@mail.gmail.com", 1, 0, "cara@customer.example")},

		// Forwards.
		{"Fwd: of an old message to support", onCase(solved, func(e *procEnv, c *casedesk.Case) []email {
			return []email{reply("fwd@mail.gmail.com", caraAddr, "Fwd: Printer on fire", "", origID, ourAck(e, c))}
		}), newCase("fwd@mail.gmail.com", 1, 0, "cara@customer.example")},
		{"WG: from a German client", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{{ID: "wg@customer.example", From: danAddr, To: supAddr, Subject: "WG: [Case #1] Drucker"}}
		}), newCase("wg@customer.example", 1, 0, "dan@customer.example")},

		// Automatic mail.
		{"out-of-office reply to our ack", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{oooReply("ooo1@customer.example", "Automatic reply: [Case #1] Printer", ourAck(e, c))}
		}), noAck(sameCase("ooo1@customer.example", open))},
		{"out-of-office on a pending case does not reopen", onCase(pending, func(e *procEnv, c *casedesk.Case) []email {
			return []email{oooReply("ooo2@customer.example", "Out of Office: Re: Printer", ourAck(e, c))}
		}), noAck(sameCase("ooo2@customer.example", pending))},
		{"auto-reply on a closed case starts a quiet follow-up", onCase(closed, func(e *procEnv, c *casedesk.Case) []email {
			return []email{oooReply("ooo3@customer.example", "Abwesenheitsnotiz", ourAck(e, c))}
		}), followUp("ooo3@customer.example", 0)},
		{"bulk reply on a solved case does not reopen", onCase(solved, func(e *procEnv, c *casedesk.Case) []email {
			m := reply("bulk1@customer.example", caraAddr, "Re: Printer", ourAck(e, c))
			m.Headers = []string{"Precedence: bulk"}
			return []email{m}
		}), sameCase("bulk1@customer.example", solved)},

		// Agents.
		{"agent reply is relayed and sets pending", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{agentMail("ag1@acme.example", "Re: [Case #1] Printer", "", ourAck(e, c))}
		}), agentOn("ag1@acme.example", pending, 1, casedesk.Inbound)},
		{"agent #note is internal", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{agentMail("ag2@acme.example", "Re: Printer", "#note", ourAck(e, c))}
		}), agentOn("ag2@acme.example", open, 0, casedesk.Note)},
		{"agent #NOTE in capitals", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{agentMail("ag3@acme.example", "Re: Printer", "#NOTE", ourAck(e, c))}
		}), agentOn("ag3@acme.example", open, 0, casedesk.Note)},
		{"agent #solved", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{agentMail("ag4@acme.example", "Re: Printer", "#solved", ourAck(e, c))}
		}), agentOn("ag4@acme.example", solved, 1, casedesk.Inbound)},
		{"agent #pending", onCase(fresh, func(e *procEnv, c *casedesk.Case) []email {
			return []email{agentMail("ag5@acme.example", "Re: Printer", "#pending", ourAck(e, c))}
		}), agentOn("ag5@acme.example", pending, 1, casedesk.Inbound)},
		{"agent reply on a closed case is relayed, the case stays closed", onCase(closed, func(e *procEnv, c *casedesk.Case) []email {
			return []email{agentMail("ag6@acme.example", "Re: Printer", "", ourAck(e, c))}
		}), agentOn("ag6@acme.example", closed, 1, casedesk.Inbound)},
		{"agent writing from a plus-address, in capitals, is still an agent", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			m := agentMail("ag9@acme.example", "Re: Printer", "", ourAck(e, c))
			m.From = "Alex <ALEX+support@Acme.Example>"
			return []email{m}
		}), agentOn("ag9@acme.example", pending, 1, casedesk.Inbound)},
		{"agent may use a subject tag", onCase(open, func(e *procEnv, c *casedesk.Case) []email {
			return []email{agentMail("ag7@acme.example", "[Case #1] update", "", "")}
		}), agentOn("ag7@acme.example", pending, 1, casedesk.Inbound)},
		{"agent mail on no case opens one, no ack", func(e *procEnv, c *casedesk.Case) [][]byte {
			return one(agentMail("ag8@acme.example", "Printer fleet review", "", ""))
		}, newCase("ag8@acme.example", 0, 0, "alex@acme.example")},

		// Error reports.
		{"first error report opens a high-priority error case", func(e *procEnv, c *casedesk.Case) [][]byte {
			return one(errorReport("err1@app.customer.example"))
		}, func(t *testing.T, e *procEnv, c *casedesk.Case) {
			ec := wantNewCase(t, e, "err1@app.customer.example", c)
			if ec.Category != casedesk.CategoryErrorReport || ec.Priority != casedesk.PriorityHigh || ec.ErrorFingerprint == "" {
				t.Errorf("error case: category %s priority %s fingerprint %q", ec.Category, ec.Priority, ec.ErrorFingerprint)
			}
			if !strings.Contains(string(ec.Fields), "InvoiceRenderer") {
				t.Errorf("fields %s lack the report", ec.Fields)
			}
		}},
		{"two error reports with one fingerprint", func(e *procEnv, c *casedesk.Case) [][]byte {
			return [][]byte{errorReport("err2@app.customer.example").raw(), errorReport("err3@app.customer.example").raw()}
		}, func(t *testing.T, e *procEnv, c *casedesk.Case) {
			ec := wantNewCase(t, e, "err2@app.customer.example", c)
			wantOn(t, e, "err3@app.customer.example", ec)
			if got := e.caseOf("err3@app.customer.example"); got.Occurrences != 2 {
				t.Errorf("occurrences = %d, want 2", got.Occurrences)
			}
		}},
		{"a later report in another batch counts on the open case", func(e *procEnv, c *casedesk.Case) [][]byte {
			e.mustDeliver(errorReport("err4@app.customer.example").raw())
			return one(errorReport("err5@app.customer.example"))
		}, func(t *testing.T, e *procEnv, c *casedesk.Case) {
			ec := wantOn(t, e, "err4@app.customer.example", nil)
			wantOn(t, e, "err5@app.customer.example", ec)
			if got := e.caseOf("err5@app.customer.example"); got.Occurrences != 2 {
				t.Errorf("occurrences = %d, want 2", got.Occurrences)
			}
		}},
		{"fingerprint case solved: a new error case", func(e *procEnv, c *casedesk.Case) [][]byte {
			e.mustDeliver(errorReport("err6@app.customer.example").raw())
			e.setStatus(e.caseOf("err6@app.customer.example"), casedesk.StatusSolved)
			return one(errorReport("err7@app.customer.example"))
		}, func(t *testing.T, e *procEnv, c *casedesk.Case) {
			first := wantOn(t, e, "err6@app.customer.example", nil)
			wantNewCase(t, e, "err7@app.customer.example", first)
		}},
	}
	if len(tests) < 50 {
		t.Fatalf("%d scenarios, want at least 50", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newProcEnv(t)
			e.mustDeliver(opening().raw())
			c := wantOn(t, e, origID, nil)
			if tt.before != nil {
				e.mustDeliver(tt.before(e, c)...)
			}
			tt.check(t, e, c)
		})
	}
}
