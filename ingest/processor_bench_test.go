package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/casestore/casestoretest"
	"github.com/casedesk/casedesk/threading"
)

// The processor benchmark runs against a tenant with history: 100,000
// cases of 10 messages each (1M messages), loaded once per process.
// CASEDESK_BENCH_CASES makes it smaller for a quick run.
const benchDomain = "mail.bench.example"

type procBench struct {
	db     *casestore.DB
	tenant *casedesk.Tenant
	tokens threading.Tokens
	proc   *StoreProcessor
	cases  int
}

var (
	procBenchOnce sync.Once
	procBenchEnv  *procBench
	procBenchErr  error
	procSeq       atomic.Int64
)

func setupProcBench(b *testing.B) *procBench {
	b.Helper()
	procBenchOnce.Do(func() {
		cases := 100_000
		if v, err := strconv.Atoi(os.Getenv("CASEDESK_BENCH_CASES")); err == nil && v > 0 {
			cases = v
		}
		start := time.Now()
		procBenchEnv, procBenchErr = loadProcBench(casestoretest.URL(b), cases)
		if procBenchErr == nil {
			b.Logf("loaded %d cases, %d messages in %v", cases, cases*10, time.Since(start).Round(time.Second))
		}
	})
	if procBenchErr != nil {
		b.Fatal(procBenchErr)
	}
	return procBenchEnv
}

func loadProcBench(url string, cases int) (*procBench, error) {
	ctx := context.Background()
	db, err := casestore.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	pb := &procBench{db: db, cases: cases}
	var requester int64
	err = db.Update(ctx, func(tx casedesk.Tx) error {
		t, err := tx.CreateTenant(ctx, casedesk.NewTenant{Slug: fmt.Sprintf("bench-proc-%d", time.Now().UnixNano()),
			Name: "Processor benchmark", SupportAddress: "support@bench.example"})
		if err != nil {
			return err
		}
		pb.tenant = t
		c, err := tx.UpsertContact(ctx, t.ID, casedesk.Address{Name: "Alice Customer", Email: "alice@customer.example"})
		if err != nil {
			return err
		}
		requester = c.ID
		_, err = tx.CreateUser(ctx, casedesk.NewUser{TenantID: t.ID, Name: "Alex Agent", Email: "alex@bench.example", RoleName: "support"})
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := casestoretest.LoadHistory(ctx, url, pb.tenant.ID, requester, cases, 10, benchDomain); err != nil {
		return nil, err
	}
	pb.tokens = threading.NewTokens(pb.tenant.ID, pb.tenant.TokenSecret)
	pb.proc = NewStoreProcessor(db, ProcessorOptions{Logger: testLogger()})
	return pb, nil
}

// mail returns message number seq of the benchmark's mix:
//   - 45% customer replies to a case of the history, found by the
//     Message-IDs in In-Reply-To and References (rule 3);
//   - 15% customer replies carrying our token (rule 2);
//   - 25% new conversations from 5,000 different people (a case and an
//     acknowledgement each, within the hourly limit);
//   - 10% agent replies to a case (relayed, case set pending);
//   - 5% out-of-office replies (stored, nothing else).
//
// Bodies are 2-8 KB of text; a third also have an HTML alternative.
func (pb *procBench) mail(seq int64, rnd *rand.Rand) []byte {
	n := 1 + rnd.IntN(pb.cases)
	subject := fmt.Sprintf("Re: Printer on floor %d prints blank pages (ref %d)", n%40, n)
	m := email{ID: fmt.Sprintf("bench-%d-%d@mail.customer.example", seq, rnd.Uint32()), From: "Alice Customer <alice@customer.example>",
		To: "Support <support@bench.example>", Subject: subject}
	switch p := rnd.IntN(100); {
	case p < 45:
		m.InReplyTo = casestoretest.HistoryMessageID(n, 10, benchDomain)
		m.References = brackets(casestoretest.HistoryMessageID(n, 1, benchDomain), m.InReplyTo)
	case p < 60:
		m.InReplyTo = pb.tokens.MessageID(int64(n), 1, "bench.example")
	case p < 85:
		m.From = fmt.Sprintf("Person %d <person%d@org%d.example>", seq%5000, seq%5000, seq%97)
		m.Subject = fmt.Sprintf("Question %d about invoices", seq)
	case p < 95:
		m.From = "Alex Agent <alex@bench.example>"
		m.InReplyTo = casestoretest.HistoryMessageID(n, 9, benchDomain)
	default:
		m.InReplyTo = pb.tokens.MessageID(int64(n), 1, "bench.example")
		m.Subject = "Automatic reply: " + subject
		m.Headers = []string{"Auto-Submitted: auto-replied"}
	}
	text := strings.Repeat(fmt.Sprintf("Line %d: the printer prints blank pages since the update. ", seq), 30+rnd.IntN(100))
	if rnd.IntN(3) == 0 {
		m.Body = ""
		return htmlAlternative(m, text)
	}
	m.Body = text
	return m.raw()
}

// htmlAlternative renders m as multipart/alternative with text.
func htmlAlternative(m email, text string) []byte {
	raw := string(m.raw())
	head := raw[:strings.Index(raw, "MIME-Version:")]
	return []byte(head + "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n" +
		"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n" +
		"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>" + text + "</p></body></html>\r\n--alt--\r\n")
}

// BenchmarkProcessor measures parse -> decide -> commit through
// StoreProcessor.Process into the loaded store. One op is one message;
// batch is the messages per Process call (the poller's batch), workers the
// mailboxes processed at once.
func BenchmarkProcessor(b *testing.B) {
	pb := setupProcBench(b)
	for _, bc := range []struct{ batch, workers int }{{1, 1}, {50, 1}, {200, 1}, {50, 4}} {
		b.Run(fmt.Sprintf("batch=%d/workers=%d", bc.batch, bc.workers), func(b *testing.B) {
			before := pb.proc.Stats()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range bc.workers {
				wg.Go(func() {
					rnd := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
					for {
						first := next.Add(int64(bc.batch)) - int64(bc.batch)
						if first >= int64(b.N) {
							return
						}
						var batch []*Fetched
						for i := first; i < min(first+int64(bc.batch), int64(b.N)); i++ {
							seq := procSeq.Add(1)
							raw := pb.mail(seq, rnd)
							batch = append(batch, &Fetched{TenantID: pb.tenant.ID, Mailbox: fmt.Sprintf("bench/%d", w),
								UIDValidity: 1, UID: uint32(seq), Raw: raw, Size: int64(len(raw))})
						}
						if err := pb.proc.Process(context.Background(), batch); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			after := pb.proc.Stats()
			per := func(d time.Duration) float64 {
				return float64(d.Microseconds()) / float64(after.Messages-before.Messages)
			}
			b.ReportMetric(per(after.Parse-before.Parse), "parse-us/msg")
			b.ReportMetric(per(after.Lookup-before.Lookup), "lookup-us/msg")
			b.ReportMetric(per(after.Write-before.Write), "write-us/msg")
			b.ReportMetric(per(after.Append-before.Append), "append-us/msg")
			b.ReportMetric(per(after.Commit-before.Commit), "commit-us/msg")
		})
	}
}
