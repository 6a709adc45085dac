package ingest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/casedesk/casedesk"
)

// session is one connection's life: connect, log in, select, then read
// new mail and wait for more until an error or the end of ctx. connected
// reports that it got as far as selecting the mailbox.
func (p *Poller) session(ctx context.Context, lease casedesk.Lease) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wake := make(chan struct{}, 1)
	c, err := p.dial(wake)
	if err != nil {
		return false, err
	}
	defer c.Close()
	// The context ends a session at once while it waits (IDLE, backoff);
	// a command in flight gets ShutdownGrace, then the connection is cut.
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		select {
		case <-ended:
			return
		case <-lease.Lost():
			cancel()
		case <-ctx.Done():
		}
		t := time.NewTimer(p.opts.ShutdownGrace)
		defer t.Stop()
		select {
		case <-ended:
		case <-t.C:
			c.Close()
		}
	}()

	if err := c.Login(p.cfg.Username, p.cfg.Password).Wait(); err != nil {
		return false, fmt.Errorf("login as %s: %w", p.cfg.Username, err)
	}
	sel, err := c.Select(p.cfg.folder(), &imap.SelectOptions{ReadOnly: p.cfg.Disposition == DispositionKeep}).Wait()
	if err != nil {
		return false, fmt.Errorf("select %s: %w", p.cfg.folder(), err)
	}
	disp, err := p.disposition(c)
	if err != nil {
		return false, err
	}
	cp, err := p.checkpoint(ctx, sel.UIDValidity)
	if err != nil {
		return false, err
	}
	p.opts.Metrics.Connected(p.name, true)
	defer p.opts.Metrics.Connected(p.name, false)
	p.log.Info("mailbox selected", "uidvalidity", sel.UIDValidity, "messages", sel.NumMessages,
		"last_uid", cp.LastUID, "idle", !p.opts.NoIdle && c.Caps().Has(imap.CapIdle), "disposition", disp)
	for {
		if err := p.drain(ctx, c, &cp, disp); err != nil {
			return true, err
		}
		if err := p.wait(ctx, c, wake); err != nil {
			return true, err
		}
	}
}

// dial connects with the configured security. wake receives a token when
// the server reports a new message count.
func (p *Poller) dial(wake chan struct{}) (*imapclient.Client, error) {
	host, _, _ := net.SplitHostPort(p.cfg.Addr)
	tlsConfig := p.cfg.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	opts := &imapclient.Options{
		TLSConfig: tlsConfig,
		Dialer:    &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	var c *imapclient.Client
	var err error
	switch p.cfg.Security {
	case SecurityTLS:
		c, err = imapclient.DialTLS(p.cfg.Addr, opts)
	case SecuritySTARTTLS:
		c, err = imapclient.DialStartTLS(p.cfg.Addr, opts)
	default:
		c, err = imapclient.DialInsecure(p.cfg.Addr, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s (%s): %w", p.cfg.Addr, p.cfg.Security, err)
	}
	return c, nil
}

// disposition returns what the server lets us do with processed mail. A
// move needs MOVE or UIDPLUS: without them the only way to remove a
// message is an EXPUNGE of everything flagged \Deleted, including mail
// that someone else flagged and did not mean to lose.
func (p *Poller) disposition(c *imapclient.Client) (Disposition, error) {
	if p.cfg.Disposition != DispositionMove {
		return p.cfg.Disposition, nil
	}
	caps := c.Caps()
	if !caps.Has(imap.CapMove) && !caps.Has(imap.CapUIDPlus) {
		p.log.Error("the server has neither MOVE nor UIDPLUS; flagging mail \\Seen instead of moving it", "move_to", p.cfg.MoveTo)
		return DispositionSeen, nil
	}
	// Creating a folder that exists fails harmlessly; a folder that cannot
	// be created shows up as a failed MOVE, with the server's reason.
	_ = c.Create(p.cfg.MoveTo, nil).Wait()
	return DispositionMove, nil
}

// drain reads everything past the checkpoint, batch by batch. After each
// batch is committed it flags or moves that batch and saves the
// checkpoint, in that order, so that a crash in between leaves the mail to
// be read (and deduplicated) again rather than committed but unflagged.
func (p *Poller) drain(ctx context.Context, c *imapclient.Client, cp *casedesk.MailboxCheckpoint, disp Disposition) error {
	for {
		pending, err := p.pending(c, cp.LastUID)
		if err != nil || len(pending) == 0 {
			return err
		}
		for len(pending) > 0 {
			n := p.batchLen(pending)
			uids := pending[:n]
			pending = pending[n:]
			if ctx.Err() != nil {
				return ctx.Err()
			}
			batch, err := p.fetch(c, cp, uids)
			if err != nil {
				return err
			}
			if err := p.commit(ctx, c, cp, batch, uint32(uids[len(uids)-1].uid), disp); err != nil {
				return err
			}
		}
	}
}

// commit hands a batch to the processor, then flags or moves it and moves
// the checkpoint to last. Once begun it is finished even if the poller is
// stopping, within ShutdownGrace, so no transaction is cut off midway and
// committed mail is flagged.
func (p *Poller) commit(ctx context.Context, c *imapclient.Client, cp *casedesk.MailboxCheckpoint, batch []*Fetched, last uint32, disp Disposition) error {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(p.opts.ShutdownGrace, cancel) })
	defer stop()
	if len(batch) > 0 {
		if err := p.handle(work, batch); err != nil {
			return err
		}
	}
	if err := p.dispose(c, batch, disp); err != nil {
		return err
	}
	next := *cp
	next.LastUID = last
	if err := p.saveCheckpoint(work, next); err != nil {
		return err
	}
	*cp = next
	return nil
}

// message is a UID waiting to be fetched, with its size.
type message struct {
	uid  imap.UID
	size int64
}

// pending lists the messages past last that are not flagged \Deleted, in
// UID order, with their sizes (one search and one small fetch).
func (p *Poller) pending(c *imapclient.Client, last uint32) ([]message, error) {
	data, err := c.UIDSearch(&imap.SearchCriteria{
		UID:     []imap.UIDSet{{imap.UIDRange{Start: imap.UID(last) + 1, Stop: 0}}},
		NotFlag: []imap.Flag{imap.FlagDeleted},
	}, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("search past uid %d: %w", last, err)
	}
	// "n:*" always includes the highest UID, even one at or below n.
	uids := slices.DeleteFunc(data.AllUIDs(), func(u imap.UID) bool { return uint32(u) <= last })
	if len(uids) == 0 {
		return nil, nil
	}
	slices.Sort(uids)
	sizes, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch sizes: %w", err)
	}
	size := make(map[imap.UID]int64, len(sizes))
	for _, m := range sizes {
		size[m.UID] = m.RFC822Size
	}
	out := make([]message, 0, len(uids))
	for _, u := range uids {
		if s, ok := size[u]; ok { // gone (expunged by someone else) otherwise
			out = append(out, message{uid: u, size: s})
		}
	}
	return out, nil
}

// batchLen is how many of pending make the next batch: up to BatchSize
// messages and MaxBatchBytes, and at least one.
func (p *Poller) batchLen(pending []message) int {
	var bytes int64
	for i, m := range pending {
		bytes += m.size
		if i == p.opts.BatchSize || (i > 0 && bytes > p.opts.MaxBatchBytes) {
			return i
		}
	}
	return len(pending)
}

// fetch downloads a batch without setting \Seen. A message expunged or
// flagged \Deleted since the search is left out.
func (p *Poller) fetch(c *imapclient.Client, cp *casedesk.MailboxCheckpoint, want []message) ([]*Fetched, error) {
	uids := make([]imap.UID, len(want))
	for i, m := range want {
		uids[i] = m.uid
	}
	cmd := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	batch := make([]*Fetched, 0, len(uids))
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		m, err := p.readMessage(msg, cp.UIDValidity)
		if err != nil {
			// The connection broke inside a literal. Reading on would
			// race with the client's decoder, so drop the connection.
			c.Close()
			return nil, fmt.Errorf("fetch uids %d-%d: %w", uids[0], uids[len(uids)-1], err)
		}
		if m != nil {
			batch = append(batch, m)
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("fetch uids %d-%d: %w", uids[0], uids[len(uids)-1], err)
	}
	slices.SortFunc(batch, func(a, b *Fetched) int { return int(a.UID) - int(b.UID) })
	p.opts.Metrics.Fetched(p.name, len(batch))
	return batch, nil
}

// readMessage reads one message's FETCH data. It returns nil for a message
// flagged \Deleted since the search, and an error for a message whose body
// did not arrive.
func (p *Poller) readMessage(msg *imapclient.FetchMessageData, validity uint32) (*Fetched, error) {
	m := &Fetched{TenantID: p.cfg.TenantID, Mailbox: p.name, UIDValidity: validity}
	deleted, hasBody := false, false
	for item := msg.Next(); item != nil; item = msg.Next() {
		switch item := item.(type) {
		case imapclient.FetchItemDataUID:
			m.UID = uint32(item.UID)
		case imapclient.FetchItemDataFlags:
			deleted = slices.Contains(item.Flags, imap.FlagDeleted)
		case imapclient.FetchItemDataInternalDate:
			m.InternalDate = item.Time
		case imapclient.FetchItemDataRFC822Size:
			m.Size = item.Size
		case imapclient.FetchItemDataBodySection:
			if item.Literal == nil {
				continue
			}
			// A connection that closes inside the literal ends the read
			// with a plain EOF: only the length tells a truncated message
			// from a whole one.
			raw, err := io.ReadAll(item.Literal)
			if err == nil && int64(len(raw)) != item.Literal.Size() {
				err = fmt.Errorf("uid %d: body cut off after %d of %d bytes", m.UID, len(raw), item.Literal.Size())
			}
			if err != nil {
				return nil, err
			}
			m.Raw, hasBody = raw, true
		}
	}
	switch {
	case m.UID == 0 || deleted:
		return nil, nil
	case !hasBody:
		return nil, fmt.Errorf("uid %d: the server sent no body", m.UID)
	}
	return m, nil
}

// dispose flags or moves committed mail.
func (p *Poller) dispose(c *imapclient.Client, batch []*Fetched, disp Disposition) error {
	if len(batch) == 0 || disp == DispositionKeep {
		return nil
	}
	var set imap.UIDSet
	for _, m := range batch {
		if !m.leaveOnServer {
			set.AddNum(imap.UID(m.UID))
		}
	}
	if len(set) == 0 {
		return nil
	}
	if disp == DispositionSeen {
		err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
		return wrapIf(err, "flag \\Seen")
	}
	if c.Caps().Has(imap.CapMove) {
		_, err := c.Move(set, p.cfg.MoveTo).Wait()
		return wrapIf(err, "move to "+p.cfg.MoveTo)
	}
	// UIDPLUS: copy, flag, then expunge exactly these UIDs.
	if _, err := c.Copy(set, p.cfg.MoveTo).Wait(); err != nil {
		return fmt.Errorf("copy to %s: %w", p.cfg.MoveTo, err)
	}
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return fmt.Errorf("flag \\Deleted: %w", err)
	}
	return wrapIf(c.UIDExpunge(set).Close(), "expunge moved mail")
}

// wait returns when the mailbox may have new mail: at once if the server
// already said so, on an IDLE update, after IdleRefresh, or after
// PollInterval on a server without IDLE.
func (p *Poller) wait(ctx context.Context, c *imapclient.Client, wake <-chan struct{}) error {
	if p.opts.NoIdle || !c.Caps().Has(imap.CapIdle) {
		sleep(ctx, p.opts.PollInterval)
		return ctx.Err()
	}
	select {
	case <-wake:
		return nil
	default:
	}
	idle, err := c.Idle()
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	t := time.NewTimer(p.opts.IdleRefresh)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-ctx.Done():
	case <-c.Closed():
	}
	if err := idle.Close(); err != nil {
		return fmt.Errorf("end idle: %w", err)
	}
	if err := idle.Wait(); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	return ctx.Err()
}

func wrapIf(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
