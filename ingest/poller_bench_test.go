package ingest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPollerFetch measures how fast the poller drains a mailbox from
// the in-process IMAP server over loopback: search, size fetch, body
// fetch in batches, \Seen flags and a checkpoint in PostgreSQL per batch.
// The processor only counts, so this is the poller's own cost. One op is
// one message.
func BenchmarkPollerFetch(b *testing.B) {
	for _, size := range []int{1, 50, 200} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			e := newPollerEnv(b, imapOptions{})
			var bytes int64
			for i := range b.N {
				_, raw := testMessage(i)
				bytes += int64(len(raw))
				e.imap.appendRaw(b, "INBOX", raw)
			}
			b.SetBytes(bytes / int64(b.N))
			var n atomic.Int64
			count := ProcessorFunc(func(_ context.Context, batch []*Fetched) error {
				n.Add(int64(len(batch)))
				return nil
			})
			opts := fastOptions()
			opts.BatchSize = size
			b.ResetTimer()
			start := time.Now()
			r := e.start(e.config(), e.db, count, opts)
			waitFor(b, 10*time.Minute, "the mailbox drained", func() bool { return n.Load() >= int64(b.N) })
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			r.stop(b)
		})
	}
}
