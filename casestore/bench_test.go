package casestore_test

// Benchmarks for the two hot paths of mail ingest: appending a message to an
// existing case, and looking up Message-IDs (duplicate check and threading by
// In-Reply-To/References). Both run against a messages table that already
// holds a 1,000,000-message tenant (loaded once per process with set-based
// SQL), so indexes have a realistic size. Results and the command to rerun
// them are in BENCHMARKS.md at the repository root.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

// runTag makes tenant slugs and Message-IDs of this process unique, so the
// benchmarks never collide with each other, with earlier b.N rounds or with
// tests sharing the package database.
var runTag = func() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}()

// ---------------------------------------------------------------------------
// The 1M-message tenant.

const (
	loadCases           = 100_000
	loadMessagesPerCase = 10
	loadDomain          = "mail.bench.example"
)

// loadedMessageID is the Message-ID the loader gave message k (1-based) of
// case number n; the SQL in loadBigTenant computes the same string.
func loadedMessageID(n, k int) string { return casestoretest.HistoryMessageID(n, k, loadDomain) }

var (
	bigOnce   sync.Once
	bigTenant int64
	bigErr    error
)

// loadBig loads, once per process, a tenant with loadCases cases of
// loadMessagesPerCase messages each, and returns its ID.
func loadBig(b *testing.B) int64 {
	b.Helper()
	bigOnce.Do(func() {
		start := time.Now()
		bigTenant, bigErr = loadBigTenant(casestoretest.URL(b))
		if bigErr == nil {
			b.Logf("loaded %d messages in %d cases in %v", loadCases*loadMessagesPerCase, loadCases,
				time.Since(start).Round(time.Second))
		}
	})
	if bigErr != nil {
		b.Fatalf("load 1M messages: %v", bigErr)
	}
	return bigTenant
}

func loadBigTenant(url string) (int64, error) {
	ctx := context.Background()
	db, err := casestore.Open(ctx, url)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var tenantID, contactID int64
	err = db.Update(ctx, func(tx casedesk.Tx) error {
		t, err := tx.CreateTenant(ctx, casedesk.NewTenant{Slug: "bench-lookup-" + runTag,
			Name: "Lookup benchmark", SupportAddress: "support@bench.example"})
		if err != nil {
			return err
		}
		c, err := tx.UpsertContact(ctx, t.ID, casedesk.Address{Name: "Alice Customer", Email: "alice@customer.example"})
		if err != nil {
			return err
		}
		tenantID, contactID = t.ID, c.ID
		return nil
	})
	if err != nil {
		return 0, err
	}

	if err := casestoretest.LoadHistory(ctx, url, tenantID, contactID, loadCases, loadMessagesPerCase, loadDomain); err != nil {
		return 0, err
	}
	return tenantID, nil
}

// checkpoint has the server write back what earlier work left dirty now
// rather than while the next benchmark measures. CHECKPOINT needs superuser
// or pg_checkpoint; without them the benchmark merely starts while the
// server is still writing.
func checkpoint(ctx context.Context, conn *pgx.Conn) {
	_, _ = conn.Exec(ctx, "CHECKPOINT")
}

// ---------------------------------------------------------------------------
// BenchmarkAppendMessage

// appendCases is the number of existing cases the appended mail is spread over.
const appendCases = 1000

var (
	appendOnce sync.Once
	appendFx   *appendFixture
	appendErr  error
	// appendSeq numbers appended messages across all rounds and sub-benchmarks.
	appendSeq atomic.Uint64
)

type appendFixture struct {
	tenantID  int64
	contactID int64
	cases     []appendCase
}

type appendCase struct {
	id, number int64
	subject    string
	rootID     string // Message-ID of the mail that opened the case
}

// setupAppend creates, once per process, a tenant with appendCases cases,
// each opened by one inbound message, the way ingest creates them.
func setupAppend(b *testing.B, db *casestore.DB) *appendFixture {
	b.Helper()
	appendOnce.Do(func() {
		ctx := context.Background()
		fx := &appendFixture{}
		appendErr = db.Update(ctx, func(tx casedesk.Tx) error {
			t, err := tx.CreateTenant(ctx, casedesk.NewTenant{Slug: "bench-append-" + runTag,
				Name: "Append benchmark", SupportAddress: "support@acme.example"})
			if err != nil {
				return err
			}
			c, err := tx.UpsertContact(ctx, t.ID, casedesk.Address{Name: "Alice Customer", Email: "alice@customer.example"})
			if err != nil {
				return err
			}
			fx.tenantID, fx.contactID = t.ID, c.ID
			g := newMailGen(fx, mrand.New(mrand.NewPCG(1, 2)))
			for i := range appendCases {
				subject := fmt.Sprintf("%s (order %d)", subjects[i%len(subjects)], 40000+i)
				cs, err := tx.CreateCase(ctx, casedesk.NewCase{TenantID: t.ID, Subject: subject, RequesterID: c.ID})
				if err != nil {
					return err
				}
				ac := appendCase{id: cs.ID, number: cs.Number, subject: subject,
					rootID: fmt.Sprintf("root.%s.%d@mail.customer.example", runTag, i)}
				first := g.message(&ac, ac.rootID, nil)
				first.Subject = subject
				if _, _, err := tx.AppendMessage(ctx, first); err != nil {
					return err
				}
				fx.cases = append(fx.cases, ac)
			}
			return nil
		})
		appendFx = fx
	})
	if appendErr != nil {
		b.Fatalf("set up append benchmark: %v", appendErr)
	}
	return appendFx
}

// BenchmarkAppendMessage appends inbound mail (~4.5 KB raw, ~1 KB text) to
// existing cases in Store.Update transactions of batch messages, from
// workers concurrent writers. An op is one message, so ns/op is wall time
// per message and msgs/s the throughput. "each" calls Tx.AppendMessage once
// per message; "batched" hands the transaction's messages to one
// Tx.AppendMessages call. Each worker writes to its own share of the cases,
// as one ingest worker per mailbox would, so the workers never wait on each
// other's case row locks.
func BenchmarkAppendMessage(b *testing.B) {
	db := casestoretest.Open(b)
	loadBig(b)
	fx := setupAppend(b, db)
	for _, batched := range []bool{false, true} {
		for _, workers := range []int{1, 4} {
			for _, batch := range []int{1, 10, 100} {
				if batched && batch == 1 {
					continue // the same as "each"
				}
				name := fmt.Sprintf("each/workers=%d/batch=%d", workers, batch)
				if batched {
					name = fmt.Sprintf("batched/workers=%d/batch=%d", workers, batch)
				}
				b.Run(name, func(b *testing.B) {
					benchAppend(b, db, fx, workers, batch, batched)
				})
			}
		}
	}
}

func benchAppend(b *testing.B, db *casestore.DB, fx *appendFixture, workers, batch int, batched bool) {
	ctx := context.Background()
	// Worker w owns cases w, w+workers, w+2*workers, ...
	gens := make([]*mailGen, workers)
	for w := range workers {
		g := newMailGen(fx, mrand.New(mrand.NewPCG(uint64(w), appendSeq.Load())))
		for i := w; i < len(fx.cases); i += workers {
			g.cases = append(g.cases, &fx.cases[i])
		}
		gens[w] = g
	}
	appendAll := func(tx casedesk.Tx, msgs []casedesk.NewMessage) error {
		if batched {
			res, err := tx.AppendMessages(ctx, msgs)
			if err != nil {
				return err
			}
			for i, r := range res {
				if r.Duplicate {
					return fmt.Errorf("message %s reported as duplicate", msgs[i].MessageID)
				}
			}
			return nil
		}
		for _, m := range msgs {
			_, dup, err := tx.AppendMessage(ctx, m)
			if err != nil {
				return err
			}
			if dup {
				return fmt.Errorf("message %s reported as duplicate", m.MessageID)
			}
		}
		return nil
	}
	var (
		claimed  atomic.Int64
		rawBytes atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	b.ResetTimer()
	for _, g := range gens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				end := claimed.Add(int64(batch))
				n := min(int64(batch), int64(b.N)-(end-int64(batch)))
				if n <= 0 {
					return
				}
				msgs := g.batch(int(n))
				err := db.Update(ctx, func(tx casedesk.Tx) error { return appendAll(tx, msgs) })
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				for _, m := range msgs {
					rawBytes.Add(int64(len(m.Raw)))
				}
				g.committed(msgs)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(rawBytes.Load())/float64(b.N), "raw-B/msg")
}

// ---------------------------------------------------------------------------
// Realistic inbound mail.

var subjects = []string{
	"Printer on floor 3 prints blank pages",
	"Cannot log in after password reset",
	"Invoice INV-2291 shows the wrong VAT rate",
	"Export to CSV times out for large projects",
	"Webhook deliveries failing with 502",
	"Request: add SSO for our second domain",
	"Mobile app crashes when opening attachments",
	"Question about the annual plan renewal",
}

var sentences = []string{
	"Thanks for getting back to me so quickly.",
	"I tried the steps you suggested but the problem is still there.",
	"It happens every time we open the report for last month.",
	"Our team in Lisbon sees the same thing since Tuesday morning.",
	"I have attached a screenshot of the error message we get.",
	"Could you check whether something changed on your side?",
	"We restarted the service and cleared the browser cache twice.",
	"The request ID shown in the dialog was 7f3c-22a1-9b0e.",
	"This is blocking our month-end close, so any help is appreciated.",
	"Let me know if you need access to our test account.",
	"It worked fine with the previous version of the client.",
	"We are on the Business plan with about 40 seats.",
	"I can jump on a call tomorrow between 9 and 11 CET if that helps.",
	"Interestingly, it only fails for users in the finance group.",
	"The export finished once after about ten minutes, then failed again.",
	"Please also update the billing contact to our new finance address.",
}

// mailGen builds the messages of one worker; it is not safe for concurrent use.
type mailGen struct {
	fx    *appendFixture
	rnd   *mrand.Rand
	cases []*appendCase
	// last holds each case's newest Message-IDs (oldest first), by case ID,
	// for In-Reply-To and References.
	last map[int64][]string
	next int
}

func newMailGen(fx *appendFixture, rnd *mrand.Rand) *mailGen {
	return &mailGen{fx: fx, rnd: rnd, last: map[int64][]string{}}
}

// batch returns n new replies, to the worker's cases in turn.
func (g *mailGen) batch(n int) []casedesk.NewMessage {
	out := make([]casedesk.NewMessage, n)
	for i := range out {
		c := g.cases[g.next%len(g.cases)]
		g.next++
		// A message id as a mail client makes one: random-looking, so
		// inserts land all over the index, plus a sequence for uniqueness.
		seq := appendSeq.Add(1)
		id := fmt.Sprintf("CA%016x%s.%d@mail.customer.example", mix64(seq), runTag, seq)
		out[i] = g.message(c, id, append([]string{c.rootID}, g.last[c.id]...))
	}
	return out
}

// committed remembers the committed messages for the next replies' References.
func (g *mailGen) committed(msgs []casedesk.NewMessage) {
	for _, m := range msgs {
		refs := append(g.last[m.CaseID], casedesk.NormalizeMessageID(m.MessageID))
		if len(refs) > 3 {
			refs = slices.Clone(refs[len(refs)-3:])
		}
		g.last[m.CaseID] = refs
	}
}

// mailBody is the part of a message that does not depend on its case and
// ids: the text and HTML bodies and the DKIM signature. Building them takes
// longer than the store needs to compress them, so they are built once and
// reused; every message still gets its own ids, dates and headers.
type mailBody struct {
	text, html, dkimBH, dkimB string
}

// mailBodies are built once per process from a fixed seed.
var mailBodies = sync.OnceValue(func() []mailBody {
	rnd := mrand.New(mrand.NewPCG(7, 11))
	out := make([]mailBody, 64)
	for i := range out {
		var text strings.Builder
		text.WriteString("Hi team,\n\n")
		for text.Len() < 700 {
			text.WriteString(sentences[rnd.IntN(len(sentences))])
			text.WriteString(" ")
			if rnd.IntN(4) == 0 {
				text.WriteString("\n\n")
			}
		}
		text.WriteString("\n\nBest regards,\nAlice\n\n")
		date := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC).Add(time.Duration(rnd.IntN(1e6)) * time.Second)
		fmt.Fprintf(&text, "On %s Acme Support <support@acme.example> wrote:\n", date.Format(time.RFC1123Z))
		for text.Len() < 1000 {
			fmt.Fprintf(&text, "> %s\n", sentences[rnd.IntN(len(sentences))])
		}
		body := text.String()

		var html strings.Builder
		html.WriteString(`<div dir="ltr"><div>`)
		for _, p := range strings.Split(body, "\n\n") {
			fmt.Fprintf(&html, "<p style=\"margin:0 0 8px\">%s</p>", strings.ReplaceAll(p, "\n", "<br>"))
		}
		html.WriteString(`</div></div>`)

		// RSA-2048 signature and body hash: incompressible, as in real mail.
		sig, bh := make([]byte, 256), make([]byte, 32)
		for j := range sig {
			sig[j] = byte(rnd.Uint32())
		}
		for j := range bh {
			bh[j] = byte(rnd.Uint32())
		}
		b64 := base64.StdEncoding.EncodeToString(sig)
		var wrapped strings.Builder
		for len(b64) > 0 {
			n := min(72, len(b64))
			wrapped.WriteString("\r\n\t " + b64[:n])
			b64 = b64[n:]
		}
		out[i] = mailBody{text: body, html: html.String(),
			dkimBH: base64.StdEncoding.EncodeToString(bh), dkimB: wrapped.String()}
	}
	return out
})

// message builds an inbound reply on c: a multipart/alternative mail with a
// ~1 KB text part (with a quoted earlier message) and an HTML part, and the
// header block of a big mail provider (Received, DKIM), about 4.5 KB in all.
func (g *mailGen) message(c *appendCase, id string, refs []string) casedesk.NewMessage {
	body := mailBodies()[g.rnd.IntN(len(mailBodies()))]
	date := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC).Add(time.Duration(g.rnd.IntN(1e7)) * time.Second)
	dateStr := date.Format(time.RFC1123Z)
	boundary := fmt.Sprintf("000000000000%016x", g.rnd.Uint64())
	subject := "Re: [Case #" + fmt.Sprint(c.number) + "] " + c.subject
	var inReplyTo, references string
	if len(refs) > 0 {
		inReplyTo = "<" + refs[len(refs)-1] + ">"
		references = "<" + strings.Join(refs, ">\r\n <") + ">"
	}

	var raw bytes.Buffer
	raw.Grow(5000)
	fmt.Fprintf(&raw, "Return-Path: <alice@customer.example>\r\n"+
		"Delivered-To: support@acme.example\r\n"+
		"Received: from mail-ed1-f52.google.com (mail-ed1-f52.google.com [209.85.208.52])\r\n"+
		"\tby mx1.acme.example (Postfix) with ESMTPS id 4Z%08X\r\n\tfor <support@acme.example>; %s\r\n"+
		"Received: by mail-ed1-f52.google.com with SMTP id %x.%d\r\n"+
		"        for <support@acme.example>; %s\r\n"+
		"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"+
		"        d=customer.example; s=20230601; t=%d; x=%d;\r\n"+
		"        h=to:subject:message-id:date:from:in-reply-to:references\r\n"+
		"         :mime-version:from:to:cc:subject:date:message-id:reply-to;\r\n"+
		"        bh=%s;\r\n        b=%s\r\n"+
		"Authentication-Results: mx1.acme.example; dkim=pass (2048-bit key) header.d=customer.example\r\n"+
		"X-Google-Smtp-Source: AGHT+IF%016x%016x\r\n"+
		"MIME-Version: 1.0\r\n",
		g.rnd.Uint32(), dateStr, g.rnd.Uint64(), g.rnd.IntN(1e6), dateStr,
		date.Unix(), date.Unix()+604800, body.dkimBH, body.dkimB, g.rnd.Uint64(), g.rnd.Uint64())
	if references != "" {
		fmt.Fprintf(&raw, "References: %s\r\nIn-Reply-To: %s\r\n", references, inReplyTo)
	}
	fmt.Fprintf(&raw, "From: Alice Customer <alice@customer.example>\r\n"+
		"Date: %s\r\nMessage-ID: <%s>\r\nSubject: %s\r\n"+
		"To: Acme Support <support@acme.example>\r\n"+
		"Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"+
		"--%s\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
		dateStr, id, subject, boundary, boundary)
	for line := range strings.Lines(body.text) {
		raw.WriteString(strings.TrimSuffix(line, "\n"))
		raw.WriteString("\r\n")
	}
	fmt.Fprintf(&raw, "\r\n--%s\r\nContent-Type: text/html; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n", boundary)
	raw.WriteString(body.html)
	fmt.Fprintf(&raw, "\r\n--%s--\r\n", boundary)

	return casedesk.NewMessage{
		TenantID:   g.fx.tenantID,
		CaseID:     c.id,
		MessageID:  "<" + id + ">",
		InReplyTo:  inReplyTo,
		References: slices.Clone(refs),
		Direction:  casedesk.Inbound,
		AuthorKind: casedesk.AuthorCustomer,
		ContactID:  g.fx.contactID,
		From:       casedesk.Address{Name: "Alice Customer", Email: "alice@customer.example"},
		To:         []casedesk.Address{{Name: "Acme Support", Email: "support@acme.example"}},
		Subject:    subject,
		Text:       body.text,
		Class:      "normal",
		Mailbox:    "INBOX",
		Raw:        raw.Bytes(),
	}
}

// mix64 is the splitmix64 finaliser: distinct inputs give distinct,
// well-spread outputs.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// ---------------------------------------------------------------------------
// BenchmarkFindMessageByID

// BenchmarkFindMessageByID looks up Message-IDs in a tenant of 1,000,000
// messages through Store.View and Tx.FindMessagesByMessageIDs, one lookup
// (one View) per op, and reports the latency percentiles of the ops.
// "ids=1" asks for one existing id, as the duplicate check does; "ids=5"
// asks for 2 existing ids of one case and 3 unknown ones, as threading does
// with a References header that names mail the tenant never received.
// "baseline=SELECT-1" times a bare SELECT 1 on a connection of its own:
// the round trip every lookup pays, whatever the query.
func BenchmarkFindMessageByID(b *testing.B) {
	db := casestoretest.Open(b)
	tenantID := loadBig(b)
	ctx := context.Background()
	// Measure lookups, not the write-back of the append benchmarks' WAL.
	conn, err := pgx.Connect(ctx, casestoretest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	checkpoint(ctx, conn)
	defer conn.Close(ctx)

	// The floor: one round trip to the server, with the same driver, for
	// reading the lookups' latencies on a given machine.
	b.Run("baseline=SELECT-1", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		var one int
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			err := conn.QueryRow(ctx, "SELECT 1").Scan(&one)
			lat = append(lat, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportLatency(b, lat)
	})

	for _, v := range []struct {
		name           string
		known, unknown int
	}{{"ids=1", 1, 0}, {"ids=5/known=2", 2, 3}} {
		b.Run(v.name, func(b *testing.B) {
			rnd := mrand.New(mrand.NewPCG(uint64(v.known), uint64(b.N)))
			lat := make([]time.Duration, 0, b.N)
			ids := make([]string, 0, v.known+v.unknown)
			want := map[string]int64{} // Message-ID -> case number
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ids = ids[:0]
				n := 1 + rnd.IntN(loadCases)
				clear(want)
				for _, k := range rnd.Perm(loadMessagesPerCase)[:v.known] {
					id := loadedMessageID(n, k+1)
					ids = append(ids, id)
					want[id] = int64(n)
				}
				for range v.unknown {
					ids = append(ids, fmt.Sprintf("%016x.%d@unknown.example", rnd.Uint64(), i))
				}
				var refs []casedesk.MessageRef
				start := time.Now()
				err := db.View(ctx, func(tx casedesk.Tx) error {
					var err error
					refs, err = tx.FindMessagesByMessageIDs(ctx, tenantID, ids)
					return err
				})
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				if len(refs) != len(want) {
					b.Fatalf("lookup of %q found %d messages, want %d", ids, len(refs), len(want))
				}
				for _, r := range refs {
					if num, ok := want[r.MessageID]; !ok || r.CaseNumber != num {
						b.Fatalf("lookup of %q returned %s in case #%d", ids, r.MessageID, r.CaseNumber)
					}
				}
			}
			b.StopTimer()
			reportLatency(b, lat)
		})
	}
}

// reportLatency reports the median and 99th percentile of per-op latencies.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 50).Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(percentile(lat, 99).Nanoseconds())/1e3, "p99-us")
}

// percentile returns the p-th percentile (nearest rank) of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100 // ceil(n*p/100)
	return sorted[max(i-1, 0)]
}
