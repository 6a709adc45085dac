package ingest

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/casedesk/casedesk"
)

// A batch is decided in memory and written set by set; these tests cover
// what that must keep: arrival order, cases a batch opens and changes, and
// work that other transactions commit in the meantime.

func TestProcessorNumbersCasesInArrivalOrder(t *testing.T) {
	e := newProcEnv(t)
	ids := []string{"first@customer.example", "second@customer.example", "third@customer.example"}
	var batch [][]byte
	for i, id := range ids {
		batch = append(batch, email{ID: id, From: caraAddr, To: supAddr, Subject: []string{"One", "Two", "Three"}[i]}.raw())
	}
	e.mustDeliver(batch...)
	for i, id := range ids {
		if c := wantOn(t, e, id, nil); c.Number != int64(i+1) {
			t.Errorf("%s is on case #%d, want #%d", id, c.Number, i+1)
		}
	}
}

// An agent answers, in the same batch, the mail that opens a case: the
// reply lands on the new case, which goes pending, and is relayed.
func TestProcessorAgentAnswersNewCaseInSameBatch(t *testing.T) {
	e := newProcEnv(t)
	first := opening()
	answer := agentMail("agent-1@acme.example", "Re: Printer on fire", "", first.ID)
	e.mustDeliver(first.raw(), answer.raw())
	c := wantOn(t, e, first.ID, nil)
	wantOn(t, e, answer.ID, c)
	wantStatus(t, e, c, casedesk.StatusPending)
	wantAcks(t, e, "cara@customer.example", 1, 0)
	if n := e.outbox(casedesk.OutboxRelay, "cara@customer.example"); n != 1 {
		t.Errorf("%d relays to Cara, want 1", n)
	}
	if ev := events(t, e, c); !slices.Equal(ev, []string{casedesk.EventCreated, casedesk.EventStatusChanged}) {
		t.Errorf("events = %v, want created, status_changed", ev)
	}
}

// conflictStore lets a test commit other work just before the processor
// writes, as another replica or an agent in the admin API can.
type conflictStore struct {
	casedesk.Store
	once    sync.Once
	before  func()
	updates atomic.Int32
}

func (s *conflictStore) Update(ctx context.Context, fn func(casedesk.Tx) error) error {
	s.updates.Add(1)
	return s.Store.Update(ctx, func(tx casedesk.Tx) error { return fn(&conflictTx{Tx: tx, s: s}) })
}

type conflictTx struct {
	casedesk.Tx
	s *conflictStore
}

// AppendMessages is the first write of a batch that touches its cases.
func (t *conflictTx) AppendMessages(ctx context.Context, ns []casedesk.NewMessage) ([]casedesk.Appended, error) {
	t.s.once.Do(t.s.before)
	return t.Tx.AppendMessages(ctx, ns)
}

// A customer's reply would reopen a pending case, but an agent solves the
// case between the processor's lookups and its writes. The batch is decided
// again: the reply reopens the solved case, and it is stored once.
func TestProcessorRedecidesWhenStatusChangesConcurrently(t *testing.T) {
	e := newProcEnv(t)
	e.mustDeliver(opening().raw())
	c := wantOn(t, e, opening().ID, nil)
	e.setStatus(c, casedesk.StatusPending)
	store := &conflictStore{Store: e.db, before: func() { e.setStatus(c, casedesk.StatusSolved) }}
	e.proc.store = store
	r := reply("CAF+again@mail.gmail.com", caraAddr, "Re: Printer on fire", opening().ID, opening().ID)
	e.mustDeliver(r.raw())
	if n := store.updates.Load(); n != 2 {
		t.Errorf("%d transactions, want 2: one meeting the change, one deciding again", n)
	}
	wantOn(t, e, r.ID, c)
	wantStatus(t, e, c, casedesk.StatusOpen)
	if n := len(messages(t, e, c)); n != 2 {
		t.Errorf("%d messages on the case, want 2", n)
	}
	var moves []string
	e.view(func(tx casedesk.Tx) error {
		list, err := tx.ListEvents(context.Background(), e.tenant.ID, c.ID)
		for _, ev := range list {
			if ev.Kind == casedesk.EventStatusChanged {
				var d struct{ From, To string }
				if err := json.Unmarshal(ev.Data, &d); err != nil {
					return err
				}
				moves = append(moves, d.From+">"+d.To)
			}
		}
		return err
	})
	if want := []string{"new>pending", "pending>solved", "solved>open"}; !slices.Equal(moves, want) {
		t.Errorf("status changes = %v, want %v", moves, want)
	}
}

// Mail without a usable sender still opens a case, attributed to its
// envelope sender or a placeholder, in a batch with other mail; nothing is
// acknowledged to an address that does not exist.
func TestProcessorMailWithoutSender(t *testing.T) {
	e := newProcEnv(t)
	noFrom := []byte("Message-ID: <nofrom@customer.example>\r\nTo: support@acme.example\r\nSubject: Help\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nThe printer is broken.\r\n")
	e.mustDeliver(opening().raw(), noFrom)
	c := wantNewCase(t, e, "nofrom@customer.example", wantOn(t, e, opening().ID, nil))
	if c.Requester.Email != "unknown-sender@invalid" {
		t.Errorf("requester = %q, want the placeholder", c.Requester.Email)
	}
	wantAcks(t, e, "unknown-sender@invalid", 0, 0)
	wantAcks(t, e, "cara@customer.example", 1, 0)
}
