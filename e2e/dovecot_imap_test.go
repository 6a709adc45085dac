package e2e

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// appendWindow is how many APPENDs DeliverMany keeps in flight. Dovecot
// advertises LITERAL+, so a message of up to 4 KiB goes out without waiting
// for a continuation. On loopback the window gains little, since Dovecot's
// CPU is the limit, but it hides round trips wherever they are slower.
const appendWindow = 64

// MailboxMessage is one message of a mailbox as the harness read it back.
type MailboxMessage struct {
	UID   imap.UID
	Flags []imap.Flag
	Raw   []byte // the whole message, CRLF line endings
}

// Seen reports whether the message has the \Seen flag.
func (m MailboxMessage) Seen() bool { return m.HasFlag(imap.FlagSeen) }

// HasFlag reports whether the message has flag f.
func (m MailboxMessage) HasFlag(f imap.Flag) bool { return slices.Contains(m.Flags, f) }

// Header returns the first value of the header field key, RFC 2047 words
// decoded, or "" when there is none.
func (m MailboxMessage) Header(key string) string { return headerOf(m.Raw, key) }

// headerOf returns the first value of the header field key in raw, RFC
// 2047 words decoded (left as they are if they do not decode), or "".
func headerOf(raw []byte, key string) string {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	v := msg.Header.Get(key)
	var dec mime.WordDecoder
	if s, err := dec.DecodeHeader(v); err == nil {
		return s
	}
	return v
}

// login opens an IMAP connection for user. The caller logs out.
func (d *Dovecot) login(user string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(d.addr, nil)
	if err != nil {
		return nil, fmt.Errorf("imap dial %s: %w", d.addr, err)
	}
	if err := c.Login(user, imapPassword).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("imap login %s: %w", user, err)
	}
	return c, nil
}

// logout ends the session politely and closes the connection.
func logout(c *imapclient.Client) error {
	err := c.Logout().Wait()
	return errors.Join(err, c.Close())
}

// DeliverMany appends raws to user's INBOX over one IMAP connection, with
// up to appendWindow APPENDs in flight, and fails the test on any error.
// It is the fast way to fill a mailbox with thousands of messages; unlike
// Deliver it goes through IMAP rather than an MTA's delivery agent.
func (d *Dovecot) DeliverMany(t testing.TB, user string, raws [][]byte) {
	t.Helper()
	c, err := d.login(user)
	if err != nil {
		t.Fatal(err)
	}
	// Appending to the selected mailbox is faster: 3,500 rather than 2,700
	// messages/s for 10,000 small ones.
	_, err = c.Select("INBOX", nil).Wait()
	if err == nil {
		err = appendPipelined(c, "INBOX", raws)
	}
	if err := errors.Join(err, logout(c)); err != nil {
		t.Fatalf("deliver %d messages to %s: %v", len(raws), user, err)
	}
}

// appendPipelined appends raws to mailbox in order. This goroutine writes
// the commands; a second one waits for their results, oldest first, and the
// bounded channel between them keeps at most appendWindow unanswered.
func appendPipelined(c *imapclient.Client, mailbox string, raws [][]byte) error {
	inflight := make(chan *imapclient.AppendCommand, appendWindow)
	result := make(chan error, 1)
	go func() {
		var first error
		for cmd := range inflight {
			if _, err := cmd.Wait(); err != nil && first == nil {
				first = err
			}
		}
		result <- first
	}()
	var sendErr error
	for i, raw := range raws {
		cmd := c.Append(mailbox, int64(len(raw)), nil)
		_, err := cmd.Write(raw)
		if err := errors.Join(err, cmd.Close()); err != nil {
			sendErr = fmt.Errorf("append message %d: %w", i, err)
			break
		}
		inflight <- cmd
	}
	close(inflight)
	if err := <-result; err != nil {
		return fmt.Errorf("append: %w", err)
	}
	return sendErr
}

// Messages returns every message in user's INBOX in UID order, with its
// flags and bytes. It reads without changing anything: EXAMINE, and
// BODY.PEEK so no \Seen is set.
func (d *Dovecot) Messages(t testing.TB, user string) []MailboxMessage {
	t.Helper()
	c, err := d.login(user)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := fetchAll(c, "INBOX")
	if err := errors.Join(err, logout(c)); err != nil {
		t.Fatalf("read %s's INBOX: %v", user, err)
	}
	return msgs
}

// fetchAll fetches the UID, flags and body of every message in mailbox.
func fetchAll(c *imapclient.Client, mailbox string) ([]MailboxMessage, error) {
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, fmt.Errorf("examine %s: %w", mailbox, err)
	}
	if sel.NumMessages == 0 {
		return nil, nil
	}
	body := &imap.FetchItemBodySection{Peek: true}
	bufs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{body},
	}).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", mailbox, err)
	}
	msgs := make([]MailboxMessage, 0, len(bufs))
	for _, b := range bufs {
		msgs = append(msgs, MailboxMessage{UID: b.UID, Flags: b.Flags, Raw: b.FindBodySection(body)})
	}
	slices.SortFunc(msgs, func(a, b MailboxMessage) int { return cmp.Compare(a.UID, b.UID) })
	return msgs, nil
}

// Status returns how many messages user's INBOX holds and how many of them
// lack \Seen, without fetching any: cheap enough to poll on a mailbox of
// 100,000 messages.
func (d *Dovecot) Status(t testing.TB, user string) (total, unseen int) {
	t.Helper()
	c, err := d.login(user)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, NumUnseen: true}).Wait()
	if err := errors.Join(err, logout(c)); err != nil {
		t.Fatalf("status of %s's INBOX: %v", user, err)
	}
	if st.NumMessages == nil || st.NumUnseen == nil {
		t.Fatalf("status of %s's INBOX: server left out MESSAGES or UNSEEN", user)
	}
	return int(*st.NumMessages), int(*st.NumUnseen)
}

// rawMessage returns a small, well-formed text/plain message, CRLF line
// endings, with a Message-ID made unique by id.
func rawMessage(from, to, subject, body string, id int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\n", from, to, mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <e2e-%d-%d@example.com>\r\n", time.Now().Format(time.RFC1123Z), id, time.Now().UnixNano())
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	b.WriteString("\r\n")
	return b.Bytes()
}
