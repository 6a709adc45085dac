package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// ackWithin is how soon the acknowledgement must be at the SMTP server
// after the customer's mail is in the mailbox.
const ackWithin = 5 * time.Second

// TestConversation follows one case through its life with real servers
// only: the customer's mail, its acknowledgement, the customer's reply,
// an agent's reply by email and one through the API, the reminder and the
// solved notice of the auto-resolve job, and the customer reopening it.
func TestConversation(t *testing.T) {
	st := newStack(t, nil)
	st.start()
	const alice = "alice@customer.test"

	// 1. A customer writes: the case exists and the acknowledgement with
	// its number is at the SMTP server within 5 seconds.
	delivered := time.Now()
	st.imap.Deliver(t, "support", rawMessage("Alice <"+alice+">", supportAddress, "Printer on fire", "It is still burning.", 1))
	acks := st.smtp.WaitFor(t, ackWithin, func(m []Received) bool { return len(to(m, alice)) == 1 })
	ack := to(acks, alice)[0]
	t.Logf("acknowledgement at the SMTP server %v after delivery", ack.Received.Sub(delivered).Round(time.Millisecond))
	if subj := ack.Header("Subject"); !strings.Contains(subj, "[Case #1]") {
		t.Errorf("acknowledgement subject %q lacks the case number", subj)
	}
	if got := ack.Header("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("acknowledgement Auto-Submitted %q, want auto-replied", got)
	}
	c := st.caseByNumber(1)
	if c.Subject != "Printer on fire" || c.Requester.Email != alice {
		t.Errorf("case 1 is %+v", c)
	}

	// 2. The customer answers the acknowledgement: same case, and no
	// second acknowledgement.
	st.imap.Deliver(t, "support", reply("Alice <"+alice+">", "", ack, "Now it smells of toner.", 2))
	st.waitCase(1, 10*time.Second, "the reply stored", func(c apiCase) bool { return c.MessageCount == 3 })
	if n := len(st.allCases()); n != 1 {
		t.Errorf("%d cases after the reply, want 1", n)
	}
	if q := st.metrics()[`casedesk_outbox_queued_total{kind="ack"}`]; q != 1 {
		t.Errorf("%v acknowledgements queued in all, want 1", q)
	}

	// 3. An agent answers by email, in the thread: relayed to the
	// customer from the support address, threaded, the case pending.
	if code := st.api("POST", "/v1/users", map[string]string{"email": "andy@acme.test", "name": "Andy Agent", "role": "support"}, nil); code != 201 {
		t.Fatalf("create agent: %d", code)
	}
	customerReply := st.imap.Messages(t, "support")[1]
	agentMail := reply("Andy Agent <andy@acme.test>", supportAddress, Received{Data: customerReply.Raw}, "#pending\n\nHave you tried turning it off and on again?", 3)
	st.imap.Deliver(t, "support", agentMail)
	msgs := st.smtp.WaitFor(t, 10*time.Second, func(m []Received) bool { return len(to(m, alice)) == 2 })
	relay := to(msgs, alice)[1]
	if text := relay.Text(t); !strings.Contains(text, "turning it off and on again") || strings.Contains(text, "#pending") {
		t.Errorf("relayed text %q: want the agent's words without the command", text)
	}
	if !strings.Contains(relay.Header("From"), supportAddress) || !strings.Contains(relay.Header("Subject"), "[Case #1]") {
		t.Errorf("relay From %q, Subject %q", relay.Header("From"), relay.Header("Subject"))
	}
	if refs := relay.Header("References"); !strings.Contains(refs, strings.Trim(customerReply.Header("Message-ID"), "<>")) {
		t.Errorf("relay References %q lack the customer's reply %s", refs, customerReply.Header("Message-ID"))
	}
	st.waitCase(1, 5*time.Second, "pending", func(c apiCase) bool { return c.Status == "pending" })

	// 4. A reply through the API is delivered.
	if code := st.api("POST", "/v1/cases/1/replies", map[string]string{"text": "Any news about the printer?"}, nil); code != 201 && code != 202 {
		t.Fatalf("API reply: %d", code)
	}
	msgs = st.smtp.WaitFor(t, 10*time.Second, func(m []Received) bool { return len(to(m, alice)) == 3 })
	if text := to(msgs, alice)[2].Text(t); !strings.Contains(text, "Any news about the printer?") {
		t.Errorf("API reply delivered as %q", text)
	}

	// 5. Auto-resolve: a reminder at +4 days, the solved notice at +8.
	out, err := runCommand(t, st.env, "run-job", "auto-resolve", "--now", "+96h")
	if err != nil || !strings.Contains(out, "reminders=1") {
		t.Fatalf("run-job at +4 days: %q, %v", out, err)
	}
	msgs = st.smtp.WaitFor(t, 10*time.Second, func(m []Received) bool { return len(to(m, alice)) == 4 })
	reminder := to(msgs, alice)[3]
	if reminder.Header("Auto-Submitted") != "auto-generated" || !strings.Contains(reminder.Header("Subject"), "[Case #1]") {
		t.Errorf("reminder: Auto-Submitted %q, Subject %q", reminder.Header("Auto-Submitted"), reminder.Header("Subject"))
	}
	if out, err := runCommand(t, st.env, "run-job", "auto-resolve", "--now", "+96h"); err != nil || !strings.Contains(out, "reminders=0") {
		t.Errorf("second run at +4 days: %q, %v; want nothing sent twice", out, err)
	}
	out, err = runCommand(t, st.env, "run-job", "auto-resolve", "--now", "+192h")
	if err != nil || !strings.Contains(out, "solved=1") {
		t.Fatalf("run-job at +8 days: %q, %v", out, err)
	}
	msgs = st.smtp.WaitFor(t, 10*time.Second, func(m []Received) bool { return len(to(m, alice)) == 5 })
	notice := to(msgs, alice)[4]
	if st.caseByNumber(1).Status != "solved" {
		t.Errorf("case 1 is %s after +8 days, want solved", st.caseByNumber(1).Status)
	}

	// 6. The customer answers the solved notice: the case opens again.
	st.imap.Deliver(t, "support", reply("Alice <"+alice+">", "", notice, "Sorry, it is burning again.", 4))
	st.waitCase(1, 10*time.Second, "reopened", func(c apiCase) bool { return c.Status == "open" })
	if n := len(st.allCases()); n != 1 {
		t.Errorf("%d cases at the end, want 1", n)
	}
}

// TestKillDuringIngest kills the engine with SIGKILL in the middle of
// 1,000 messages, starts it again, and counts: exactly 1,000 cases, and
// exactly one acknowledgement per customer at the SMTP server.
func TestKillDuringIngest(t *testing.T) {
	const n = 1000
	st := newStack(t, nil)
	raws := make([][]byte, n)
	for i := range raws {
		raws[i] = rawMessage(fmt.Sprintf("Customer %d <c%d@customer.test>", i, i), supportAddress,
			fmt.Sprintf("Question %d", i), "Hello, I have a question.", 1000+i)
	}
	st.imap.DeliverMany(t, "support", raws)

	st.start()
	var processed float64
	err := poll(30*time.Second, func() error {
		// Killed once mail is both being stored and acknowledged.
		processed = st.metrics()[`casedesk_messages_processed_total{mailbox="support@`+st.imap.Addr()+`/INBOX"}`]
		if processed > 0 && st.smtp.Count() > 0 {
			return nil
		}
		return fmt.Errorf("%v processed, %d acknowledged", processed, st.smtp.Count())
	})
	if err != nil {
		t.Fatal(err)
	}
	st.engine.Kill(t)
	acked := st.smtp.Count()
	t.Logf("killed after %v messages processed, %d acknowledgements sent", processed, acked)
	if processed >= n {
		t.Fatalf("all %d messages were processed before the kill; the test did not interrupt anything", n)
	}

	st.start()
	if _, err := st.smtp.waitFor(time.Minute, func(m []Received) bool { return len(m) >= n }); err != nil {
		got := map[string]bool{}
		for _, m := range st.smtp.Messages() {
			got[m.Rcpt[0]] = true
		}
		var missing []string
		for i := 0; i < n; i++ {
			if a := fmt.Sprintf("c%d@customer.test", i); !got[a] {
				missing = append(missing, a)
			}
		}
		t.Fatalf("%d acknowledgements after the restart; none for %v; %d cases", len(got), missing, len(st.allCases()))
	}
	// Everything sent is recorded once the outbox is empty: nothing more
	// can come after that.
	if err := poll(time.Minute, func() error {
		m := st.metrics()
		if p, s := m[`casedesk_outbox_depth{state="pending"}`], m[`casedesk_outbox_depth{state="sending"}`]; p+s > 0 {
			return fmt.Errorf("outbox: %v pending, %v sending", p, s)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st.engine.Stop(t)

	perCustomer := map[string]int{}
	for _, m := range st.smtp.Messages() {
		for _, r := range m.Rcpt {
			perCustomer[r]++
		}
	}
	if len(perCustomer) != n {
		t.Errorf("%d customers acknowledged, want %d", len(perCustomer), n)
	}
	for addr, k := range perCustomer {
		if k != 1 {
			t.Errorf("%s got %d acknowledgements, want 1", addr, k)
		}
	}
	st.start()
	cases := st.allCases()
	if len(cases) != n {
		t.Errorf("%d cases, want %d", len(cases), n)
	}
	numbers := map[int64]bool{}
	for _, c := range cases {
		numbers[c.Number] = true
	}
	for i := int64(1); i <= n; i++ {
		if !numbers[i] {
			t.Errorf("case #%d missing: numbers must have no gaps", i)
			break
		}
	}
	if total, unseen := st.imap.Status(t, "support"); total != n || unseen != 0 {
		t.Errorf("mailbox: %d messages, %d unseen; want %d, all flagged seen", total, unseen, n)
	}
}
