package casestore_test

import (
	"testing"

	"github.com/casedesk/casedesk"
)

func TestOutboxDepth(t *testing.T) {
	f := newFixture(t)
	pending0, sending0, err := f.db.OutboxDepth(ctx())
	if err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, 3, casedesk.OutboxAck)
	pending, sending, err := f.db.OutboxDepth(ctx())
	if err != nil {
		t.Fatal(err)
	}
	// Other tests of the package share the database but none runs in
	// parallel with this one.
	if pending-pending0 != 3 || sending != sending0 {
		t.Errorf("depth went from pending %d, sending %d to %d, %d; want 3 more pending",
			pending0, sending0, pending, sending)
	}
}
