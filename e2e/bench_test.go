package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// benchN reads the message count of a benchmark from the environment.
func benchN(b *testing.B, env string, def int) int {
	if v := os.Getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive number", env, v)
		}
		return n
	}
	return def
}

// customerMail is n messages from n different customers (so that no
// acknowledgement is rate limited), each about 300 bytes.
func customerMail(n, offset int) [][]byte {
	raws := make([][]byte, n)
	for i := range raws {
		raws[i] = rawMessage(fmt.Sprintf("Customer %d <c%d@customer.test>", i+offset, i+offset), supportAddress,
			fmt.Sprintf("Question %d", i+offset), "Hello, I have a question about my invoice.\nRegards", i+offset)
	}
	return raws
}

// BenchmarkEndToEnd delivers N messages (CASEDESK_E2E_N, default 10,000)
// into Dovecot, starts casedesk serve and times it until every case is
// committed and every acknowledgement accepted by the SMTP server. It
// also reports the rate at which the cases were created (ingest-msgs/s)
// and the engine's peak RSS. Run it once:
//
//	go test -run '^$' -bench EndToEnd -benchtime 1x ./e2e/
func BenchmarkEndToEnd(b *testing.B) {
	n := benchN(b, "CASEDESK_E2E_N", 10000)
	for i := 0; i < b.N; i++ {
		extra := map[string]string{}
		for _, k := range []string{"CASEDESK_SMTP_CONNECTIONS", "CASEDESK_DISABLE"} {
			if v := os.Getenv(k); v != "" {
				extra[k] = v
			}
		}
		st := newStack(b, extra)
		st.imap.DeliverMany(b, "support", customerMail(n, 0))
		start := time.Now()
		st.engine = startEngine(b, st.env)
		ingested := make(chan time.Duration, 1)
		go func() { ingested <- st.timeIngest(start, n, 30*time.Minute) }()
		st.smtp.WaitFor(b, 30*time.Minute, func(m []Received) bool { return len(m) >= n })
		took := time.Since(start)
		ingest := <-ingested
		rss := st.engine.PeakRSSKB()
		if err := st.engine.Stop(b); err != nil {
			b.Fatal(err)
		}
		if os.Getenv("CASEDESK_E2E_LOG") != "" {
			b.Log(st.engine.Log())
		}
		if got := st.smtp.Count(); got != n {
			b.Fatalf("%d acknowledgements, want %d", got, n)
		}
		b.ReportMetric(float64(n)/took.Seconds(), "msgs/s")
		if ingest > 0 {
			b.ReportMetric(float64(n)/ingest.Seconds(), "ingest-msgs/s")
		}
		b.ReportMetric(float64(rss)/1024, "peak-RSS-MB")
		b.ReportMetric(0, "ns/op")
	}
}

// timeIngest returns how long after start the engine's metrics counted n
// cases created, read every 100 ms; 0 if they did not within timeout.
func (st *stack) timeIngest(start time.Time, n int, timeout time.Duration) time.Duration {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if st.metrics()["casedesk_cases_created_total"] >= float64(n) {
			return time.Since(start)
		}
	}
	return 0
}

// BenchmarkAckLatency delivers one message a second (CASEDESK_E2E_N
// messages, default 60) to a running casedesk serve, which waits in IDLE,
// and reports the time from delivery to the acknowledgement at the SMTP
// server: median, p99 and maximum.
//
//	go test -run '^$' -bench AckLatency -benchtime 1x ./e2e/
func BenchmarkAckLatency(b *testing.B) {
	n := benchN(b, "CASEDESK_E2E_N", 60)
	for i := 0; i < b.N; i++ {
		st := newStack(b, nil)
		st.engine = startEngine(b, st.env)
		waitHTTP(b, st.base+"/readyz", 30*time.Second)
		var lat []time.Duration
		tick := time.NewTicker(time.Second)
		for k, raw := range customerMail(n, 0) {
			<-tick.C
			sent := time.Now()
			st.imap.Deliver(b, "support", raw)
			got := st.smtp.WaitFor(b, 30*time.Second, func(m []Received) bool { return len(m) >= k+1 })
			lat = append(lat, got[k].Received.Sub(sent))
		}
		tick.Stop()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(lat[(len(lat)*99)/100].Milliseconds()), "p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms")
		b.ReportMetric(0, "ns/op")
		if err := st.engine.Stop(b); err != nil {
			b.Fatal(err)
		}
	}
}
