package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/ingest"
	"github.com/casedesk/casedesk/jobs"
)

// metrics are the Prometheus metrics of one serve process, in a registry
// of its own (no global state). They implement ingest.PollerMetrics and
// are fed by callbacks of the processor, the outbox workers and the
// scheduler.
type metrics struct {
	reg *prometheus.Registry

	fetched     *prometheus.CounterVec
	processed   *prometheus.CounterVec
	quarantined *prometheus.CounterVec
	mailboxUp   *prometheus.GaugeVec
	pollLag     prometheus.Histogram
	cases       prometheus.Counter
	queued      *prometheus.CounterVec
	outcomes    *prometheus.CounterVec
	jobRuns     *prometheus.CounterVec
	jobTime     *prometheus.HistogramVec
}

// outboxDepther counts the outbox; *casestore.DB is one.
type outboxDepther interface {
	OutboxDepth(ctx context.Context) (pending, sending int64, err error)
}

func newMetrics(depth outboxDepther) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "casedesk", Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	m.fetched = counterVec("messages_fetched_total", "Messages downloaded from IMAP mailboxes.", "mailbox")
	m.processed = counterVec("messages_processed_total", "Messages committed to the store (duplicates included).", "mailbox")
	m.quarantined = counterVec("messages_quarantined_total", "Messages kept raw because they could not be processed.", "mailbox")
	m.queued = counterVec("outbox_queued_total", "Outbox items queued by ingest, by kind (ack: acknowledgements).", "kind")
	m.outcomes = counterVec("outbox_results_total",
		"Outbox send attempts recorded, by kind and result: sent, retry (temporary failure) or failed (for good).", "kind", "result")
	m.jobRuns = counterVec("job_runs_total", "Scheduled job runs, by job and result: ok, error or skipped (held by another replica).", "job", "result")
	m.mailboxUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "casedesk", Name: "mailbox_connected",
		Help: "1 while the poller has the mailbox selected."}, []string{"mailbox"})
	m.pollLag = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "casedesk", Name: "poll_lag_seconds",
		Help:    "Time from a message's arrival in the mailbox (INTERNALDATE) to its commit.",
		Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800}})
	m.cases = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "casedesk", Name: "cases_created_total",
		Help: "Cases created from mail."})
	m.jobTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "casedesk", Name: "job_duration_seconds",
		Help: "Duration of scheduled job runs.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 8)}, []string{"job"})
	m.reg.MustRegister(m.mailboxUp, m.pollLag, m.cases, m.jobTime,
		&depthCollector{depth: depth, desc: prometheus.NewDesc("casedesk_outbox_depth",
			"Outbox items not yet sent, by state: pending (waiting for their attempt) or sending (claimed by a worker).",
			[]string{"state"}, nil)},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Fetched implements ingest.PollerMetrics.
func (m *metrics) Fetched(mailbox string, n int) { m.fetched.WithLabelValues(mailbox).Add(float64(n)) }

// Stored implements ingest.PollerMetrics.
func (m *metrics) Stored(mailbox string, batch []*ingest.Fetched, committed time.Time) {
	m.processed.WithLabelValues(mailbox).Add(float64(len(batch)))
	for _, f := range batch {
		if !f.InternalDate.IsZero() {
			m.pollLag.Observe(max(committed.Sub(f.InternalDate), 0).Seconds())
		}
	}
}

// Quarantined implements ingest.PollerMetrics.
func (m *metrics) Quarantined(mailbox string) { m.quarantined.WithLabelValues(mailbox).Inc() }

// Connected implements ingest.PollerMetrics.
func (m *metrics) Connected(mailbox string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.mailboxUp.WithLabelValues(mailbox).Set(v)
}

// committed counts what a batch of the processor wrote.
func (m *metrics) committed(c ingest.BatchCounts) {
	m.cases.Add(float64(c.Cases))
	for kind, n := range c.Queued {
		m.queued.WithLabelValues(string(kind)).Add(float64(n))
	}
}

// outcome counts one recorded send attempt.
func (m *metrics) outcome(kind casedesk.OutboxKind, state casedesk.OutboxState) {
	result := "retry"
	switch state {
	case casedesk.OutboxSent:
		result = "sent"
	case casedesk.OutboxFailed:
		result = "failed"
	}
	m.outcomes.WithLabelValues(string(kind), result).Inc()
}

// jobRun counts one scheduled run.
func (m *metrics) jobRun(name string, took time.Duration, _ jobs.Summary, err error) {
	result := "ok"
	switch {
	case jobs.IsLocked(err):
		result = "skipped"
	case err != nil:
		result = "error"
	}
	m.jobRuns.WithLabelValues(name, result).Inc()
	if result != "skipped" {
		m.jobTime.WithLabelValues(name).Observe(took.Seconds())
	}
}

// depthCollector reads the outbox depth from the database at each scrape.
type depthCollector struct {
	depth outboxDepther
	desc  *prometheus.Desc
}

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	pending, sending, err := c.depth.OutboxDepth(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(pending), "pending")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(sending), "sending")
}
