package casestore_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/casedesk/casedesk"
)

func TestAppendMessageDuplicateMessageID(t *testing.T) {
	f := newFixture(t)
	c := f.newCase(t, "dup")
	var first, second *casedesk.Message
	var dup1, dup2 bool
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		first, dup1, err = tx.AppendMessage(ctx(), f.inbound(c.ID, "dup-1@customer.example"))
		return err
	})
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		second, dup2, err = tx.AppendMessage(ctx(), f.inbound(c.ID, "dup-1@customer.example"))
		return err
	})
	if dup1 || !dup2 {
		t.Fatalf("duplicate flags = %v, %v; want false, true", dup1, dup2)
	}
	if second.ID != first.ID || second.Text != "It is still burning." {
		t.Fatalf("duplicate returned %+v, want the stored message %d", second, first.ID)
	}
	if got := f.messageCount(t, c.ID); got != 1 {
		t.Fatalf("%d messages stored, want 1", got)
	}
}

func TestAppendMessageDuplicateConcurrent(t *testing.T) {
	f := newFixture(t)
	c := f.newCase(t, "race")
	const n = 4
	var wg sync.WaitGroup
	dups := make([]bool, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = f.db.Update(ctx(), func(tx casedesk.Tx) (err error) {
				_, dups[i], err = tx.AppendMessage(ctx(), f.inbound(c.ID, "race@customer.example"))
				return err
			})
		}()
	}
	close(start)
	wg.Wait()
	stored := 0
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if !dups[i] {
			stored++
		}
	}
	if stored != 1 {
		t.Fatalf("%d calls stored the message, want exactly 1 (dups %v)", stored, dups)
	}
	if got := f.messageCount(t, c.ID); got != 1 {
		t.Fatalf("%d rows, want 1", got)
	}
}

func TestAppendMessageWithoutMessageIDDedupsOnRawBytes(t *testing.T) {
	f := newFixture(t)
	c := f.newCase(t, "no id")
	n := f.inbound(c.ID, "x")
	n.MessageID = ""
	n.Raw = []byte("From: cara@customer.example\r\nSubject: hi\r\n\r\nno message-id here\r\n")
	var dups []bool
	for i := 0; i < 2; i++ {
		update(t, f.db, func(tx casedesk.Tx) error {
			_, dup, err := tx.AppendMessage(ctx(), n)
			dups = append(dups, dup)
			return err
		})
	}
	other := n
	other.Raw = []byte("From: cara@customer.example\r\nSubject: hi\r\n\r\na different body\r\n")
	update(t, f.db, func(tx casedesk.Tx) error {
		_, dup, err := tx.AppendMessage(ctx(), other)
		dups = append(dups, dup)
		return err
	})
	if fmt.Sprint(dups) != "[false true false]" {
		t.Fatalf("duplicate flags = %v, want [false true false]", dups)
	}
}

func TestAppendMessageKeepsRawAndAttachmentsOnce(t *testing.T) {
	f := newFixture(t)
	c := f.newCase(t, "raw")
	pdf := bytes.Repeat([]byte("%PDF-1.7 invoice body "), 500)
	raw := []byte(strings.Repeat("Received: from mx.example by mx2.example\r\n", 50) + "Subject: x\r\n\r\nbody\r\n")
	var msgs []*casedesk.Message
	var gotRaw, gotPDF []byte
	update(t, f.db, func(tx casedesk.Tx) error {
		for i := 0; i < 2; i++ {
			n := f.inbound(c.ID, fmt.Sprintf("att-%d@customer.example", i))
			n.Raw = raw
			n.Attachments = []casedesk.NewAttachment{
				{Name: "invoice.pdf", ContentType: "application/pdf", Content: pdf},
				{Name: "logo.png", ContentType: "image/png", ContentID: "logo@x", Inline: true, Content: []byte{0x89, 'P', 'N', 'G'}},
			}
			if _, _, err := tx.AppendMessage(ctx(), n); err != nil {
				return err
			}
		}
		var err error
		if msgs, err = tx.ListMessages(ctx(), f.tenant.ID, c.ID); err != nil {
			return err
		}
		if gotRaw, err = tx.RawMessage(ctx(), f.tenant.ID, msgs[0].ID); err != nil {
			return err
		}
		gotPDF, err = tx.AttachmentContent(ctx(), f.tenant.ID, msgs[1].Attachments[0].SHA256)
		return err
	})
	if !bytes.Equal(gotRaw, raw) || !bytes.Equal(gotPDF, pdf) {
		t.Fatal("raw bytes or attachment content changed on the way through the store")
	}
	if len(msgs) != 2 || len(msgs[0].Attachments) != 2 {
		t.Fatalf("messages %d, attachments %d", len(msgs), len(msgs[0].Attachments))
	}
	a := msgs[0].Attachments[1]
	if a.Name != "logo.png" || !a.Inline || a.ContentID != "logo@x" || a.Size != 4 {
		t.Errorf("attachment metadata = %+v", a)
	}
	var blobs, compressed int
	if err := queryRow(t, `SELECT count(*), count(*) FILTER (WHERE compression = 'zstd') FROM blobs WHERE tenant_id = $1`,
		[]any{f.tenant.ID}, &blobs, &compressed); err != nil {
		t.Fatal(err)
	}
	if blobs != 2 || compressed != 1 {
		t.Errorf("%d blobs (%d compressed), want 2 stored once each, the repetitive PDF compressed", blobs, compressed)
	}
	var stored int
	if err := queryRow(t, `SELECT length(data) FROM message_raw WHERE tenant_id = $1 AND message_id = $2`,
		[]any{f.tenant.ID, msgs[0].ID}, &stored); err != nil {
		t.Fatal(err)
	}
	if stored >= len(raw)/2 {
		t.Errorf("raw stored in %d bytes for %d: not compressed", stored, len(raw))
	}
}

func TestFindMessagesByMessageIDs(t *testing.T) {
	f := newFixture(t)
	c1, c2 := f.newCase(t, "one"), f.newCase(t, "two")
	update(t, f.db, func(tx casedesk.Tx) error {
		for _, m := range []casedesk.NewMessage{f.inbound(c1.ID, "a@x"), f.inbound(c2.ID, "b@x")} {
			if _, _, err := tx.AppendMessage(ctx(), m); err != nil {
				return err
			}
		}
		return nil
	})
	var refs []casedesk.MessageRef
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		refs, err = tx.FindMessagesByMessageIDs(ctx(), f.tenant.ID, []string{"<a@x>", " b@x ", "unknown@x", "", "a@x"})
		return err
	})
	got := map[string]int64{}
	for _, r := range refs {
		got[r.MessageID] = r.CaseNumber
	}
	if len(refs) != 2 || got["a@x"] != c1.Number || got["b@x"] != c2.Number {
		t.Fatalf("refs = %+v, want a@x in #%d and b@x in #%d", refs, c1.Number, c2.Number)
	}
}

func TestBadInputStoredSafelyOrRefused(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("Ünïcødé subject ", 2000)
	c := f.newCase(t, long)
	if len(c.Subject) > 4000 || !utf8.ValidString(c.Subject) || !strings.HasPrefix(long, c.Subject) {
		t.Errorf("over-long subject stored as %d bytes, valid=%v", len(c.Subject), utf8.ValidString(c.Subject))
	}
	n := f.inbound(c.ID, "nul@x")
	n.Text = "before\x00after \xff\xfe bad utf-8"
	n.Subject = "nul\x00subject"
	n.From.Name = "Evil\x00Name"
	var stored *casedesk.Message
	update(t, f.db, func(tx casedesk.Tx) error {
		if _, _, err := tx.AppendMessage(ctx(), n); err != nil {
			return err
		}
		msgs, err := tx.ListMessages(ctx(), f.tenant.ID, c.ID)
		if len(msgs) == 1 {
			stored = msgs[0]
		}
		return err
	})
	if stored == nil || strings.ContainsRune(stored.Text, 0) || !utf8.ValidString(stored.Text) || !strings.Contains(stored.Text, "after") {
		t.Fatalf("text with NUL and bad UTF-8 stored as %+v", stored)
	}
	tooLongID := f.inbound(c.ID, strings.Repeat("x", 2000)+"@x")
	err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
		_, _, err := tx.AppendMessage(ctx(), tooLongID)
		return err
	})
	wantCode(t, err, casedesk.EINVALID)

	err = f.db.Update(ctx(), func(tx casedesk.Tx) error {
		_, _, err := tx.AppendMessage(ctx(), f.inbound(987654321, "orphan@x"))
		return err
	})
	wantCode(t, err, casedesk.EINVALID)

	err = f.db.Update(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.UpsertContact(ctx(), f.tenant.ID, casedesk.Address{Email: "not an address"})
		return err
	})
	wantCode(t, err, casedesk.EINVALID)

	err = f.db.Update(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.CreateCase(ctx(), casedesk.NewCase{TenantID: f.tenant.ID, RequesterID: 987654321})
		return err
	})
	wantCode(t, err, casedesk.EINVALID)
}

func (f *fixture) messageCount(t *testing.T, caseID int64) int {
	t.Helper()
	var rows, counter int
	if err := queryRow(t, `SELECT (SELECT count(*) FROM messages WHERE tenant_id = $1 AND case_id = $2),
		(SELECT message_count FROM cases WHERE tenant_id = $1 AND id = $2)`,
		[]any{f.tenant.ID, caseID}, &rows, &counter); err != nil {
		t.Fatal(err)
	}
	if rows != counter {
		t.Fatalf("case.message_count = %d but %d rows", counter, rows)
	}
	return rows
}

func TestAppendMessagesBatch(t *testing.T) {
	f := newFixture(t)
	c := f.newCase(t, "batch")
	update(t, f.db, func(tx casedesk.Tx) error {
		_, _, err := tx.AppendMessage(ctx(), f.inbound(c.ID, "old@x"))
		return err
	})
	withAtt := f.inbound(c.ID, "att@x")
	withAtt.Attachments = []casedesk.NewAttachment{{Name: "log.txt", Content: []byte("stack trace")}}
	note := casedesk.NewMessage{TenantID: f.tenant.ID, CaseID: c.ID, Direction: casedesk.Note,
		AuthorKind: casedesk.AuthorAgent, Text: "call them back"}
	noID := f.inbound(c.ID, "")
	noID.MessageID, noID.Raw = "", []byte("Subject: no id\r\n\r\nbody\r\n")
	batch := []casedesk.NewMessage{
		f.inbound(c.ID, "new-1@x"),
		f.inbound(c.ID, "old@x"), // stored before
		withAtt,
		f.inbound(c.ID, "new-1@x"), // repeated within the batch
		note,
		noID,
		note, // notes have no key: both are stored
		noID, // same bytes without a Message-ID: a duplicate
	}
	var res []casedesk.Appended
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		res, err = tx.AppendMessages(ctx(), batch)
		return err
	})
	var dups []bool
	for _, r := range res {
		dups = append(dups, r.Duplicate)
	}
	if fmt.Sprint(dups) != "[false true false true false false false true]" {
		t.Fatalf("duplicate flags = %v", dups)
	}
	if res[7].Message.ID != res[5].Message.ID || res[4].Message.ID == res[6].Message.ID {
		t.Errorf("keyless notes or raw duplicates mismatched: %d %d %d %d",
			res[4].Message.ID, res[5].Message.ID, res[6].Message.ID, res[7].Message.ID)
	}
	if res[3].Message.ID != res[0].Message.ID || res[1].Message.MessageID != "old@x" {
		t.Errorf("duplicates do not point at the stored messages: %+v", res)
	}
	if len(res[2].Message.Attachments) != 1 || res[2].Message.Attachments[0].Size != 11 {
		t.Errorf("attachments = %+v", res[2].Message.Attachments)
	}
	if n := f.messageCount(t, c.ID); n != 6 {
		t.Fatalf("%d messages stored, want 6", n)
	}
	var raw []byte
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		raw, err = tx.RawMessage(ctx(), f.tenant.ID, res[5].Message.ID)
		return err
	})
	if string(raw) != string(noID.Raw) {
		t.Errorf("raw of the message without Message-ID = %q", raw)
	}
}

func TestViewRefusesWrites(t *testing.T) {
	f := newFixture(t)
	c := f.newCase(t, "read only")
	writes := map[string]func(tx casedesk.Tx) error{
		"AppendMessage": func(tx casedesk.Tx) error {
			_, _, err := tx.AppendMessage(ctx(), f.inbound(c.ID, "view@x"))
			return err
		},
		"ChangeStatus": func(tx casedesk.Tx) error {
			_, err := tx.ChangeStatus(ctx(), f.tenant.ID, c.ID, casedesk.StatusOpen, casedesk.SystemActor)
			return err
		},
		"CreateCase": func(tx casedesk.Tx) error {
			_, err := tx.CreateCase(ctx(), casedesk.NewCase{TenantID: f.tenant.ID, RequesterID: f.requester.ID})
			return err
		},
	}
	for name, write := range writes {
		if err := f.db.View(ctx(), write); err == nil {
			t.Errorf("%s succeeded in a View", name)
		}
	}
	if n := f.messageCount(t, c.ID); n != 0 {
		t.Fatalf("a View wrote %d messages", n)
	}
	update(t, f.db, func(tx casedesk.Tx) error {
		got, err := tx.FindCase(ctx(), f.tenant.ID, c.ID)
		if err == nil && got.Status != casedesk.StatusNew {
			err = fmt.Errorf("status changed in a View: %s", got.Status)
		}
		return err
	})
}

func TestAgentReplyMovesCaseClock(t *testing.T) {
	now := time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	c := f.newCase(t, "clock")
	agentMsg := func(id string, dir casedesk.Direction, visible bool) casedesk.NewMessage {
		return casedesk.NewMessage{TenantID: f.tenant.ID, CaseID: c.ID, MessageID: id, Direction: dir,
			AuthorKind: casedesk.AuthorAgent, Text: "hello", CustomerVisible: visible}
	}
	find := func() *casedesk.Case {
		var got *casedesk.Case
		update(t, f.db, func(tx casedesk.Tx) (err error) {
			got, err = tx.FindCase(ctx(), f.tenant.ID, c.ID)
			return err
		})
		return got
	}
	now = now.Add(time.Hour)
	update(t, f.db, func(tx casedesk.Tx) error {
		_, err := tx.AppendMessages(ctx(), []casedesk.NewMessage{agentMsg("", casedesk.Note, false), f.inbound(c.ID, "cust@x")})
		return err
	})
	if got := find(); !got.LastAgentReplyAt.IsZero() || !got.FirstResponseAt.IsZero() || got.MessageCount != 2 || !got.UpdatedAt.Equal(now) {
		t.Fatalf("after a note and customer mail: %+v", got)
	}
	replied := now.Add(time.Hour)
	now = replied
	update(t, f.db, func(tx casedesk.Tx) error {
		_, _, err := tx.AppendMessage(ctx(), agentMsg("reply-1@acme.example", casedesk.Outbound, true))
		return err
	})
	now = now.Add(time.Hour)
	update(t, f.db, func(tx casedesk.Tx) error {
		_, _, err := tx.AppendMessage(ctx(), f.inbound(c.ID, "cust-2@x"))
		return err
	})
	got := find()
	if !got.LastAgentReplyAt.Equal(replied) || !got.FirstResponseAt.Equal(replied) || got.MessageCount != 4 {
		t.Fatalf("agent reply clock = %v, first response %v, count %d; want %v", got.LastAgentReplyAt, got.FirstResponseAt, got.MessageCount, replied)
	}
	err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
		_, _, err := tx.AppendMessage(ctx(), agentMsg("", casedesk.Outbound, true))
		return err
	})
	wantCode(t, err, casedesk.EINVALID)
}
