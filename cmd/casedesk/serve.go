package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/admin"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/ingest"
	"github.com/casedesk/casedesk/jobs"
	"github.com/casedesk/casedesk/notify"
)

// Shutdown limits: the HTTP server gets this long for requests in flight,
// and the outbox workers this long to send what is due.
const (
	httpShutdownTimeout = 10 * time.Second
	drainTimeout        = 10 * time.Second
)

// serve runs the engine until ctx ends: see engine.
func (m *Main) serve(ctx context.Context) error {
	db, err := m.openDBWaiting(ctx)
	if err != nil || db == nil {
		return err
	}
	if err := db.CheckSchema(ctx); err != nil {
		return lineError{err}
	}
	var tenant *casedesk.Tenant
	if m.Config.SupportAddress != "" || m.Config.BootstrapAdminKey != "" {
		res, err := m.bootstrap(ctx, db, false)
		if err != nil {
			return err
		}
		tenant = res.tenant
	}
	e := newEngine(m.Config, m.logger, db, tenant)
	return e.run(ctx)
}

// openDBWaiting opens the store, and while the database cannot be
// reached, says so and tries again with growing waits until ctx ends
// (then it returns nil, nil). A URL that cannot work is an error at once.
func (m *Main) openDBWaiting(ctx context.Context) (*casestore.DB, error) {
	wait := time.Second
	for {
		db, err := m.openDB(ctx)
		if err == nil || casedesk.ErrorCode(err) == casedesk.EINVALID {
			return db, err
		}
		m.logger.Error("database unreachable; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// engine is one serve process: the parts the configuration enables, and
// the HTTP server for the admin API, health and metrics.
type engine struct {
	cfg     Config
	log     *slog.Logger
	db      *casestore.DB
	metrics *metrics

	pollers   []*ingest.Poller
	workers   []*notify.Worker
	scheduler *jobs.Scheduler
	sandboxes *jobs.SandboxBuilder
	handler   http.Handler

	// schemaOK caches the last successful schema check of /readyz.
	schemaOK atomic.Int64
}

func newEngine(cfg Config, log *slog.Logger, db *casestore.DB, tenant *casedesk.Tenant) *engine {
	e := &engine{cfg: cfg, log: log, db: db, metrics: newMetrics(db)}
	if cfg.Enabled(partNotify) {
		e.workers = e.newWorkers()
	}
	proc := ingest.NewStoreProcessor(db, ingest.ProcessorOptions{
		Classifier: ingest.ClassifierConfig{LoopValue: notify.DefaultLoop},
		Logger:     log.With("component", "ingest"),
		OnCommit: func(c ingest.BatchCounts) {
			e.metrics.committed(c)
			if len(c.Queued) > 0 {
				e.wakeWorkers()
			}
		},
	})
	if cfg.Enabled(partPollers) {
		e.pollers = e.newPollers(tenant, proc)
	}
	if cfg.Enabled(partJobs) {
		e.scheduler = e.newScheduler()
		e.sandboxes = jobs.NewSandboxBuilder(db, db, jobs.SandboxBuilderOptions{Logger: log})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", e.healthz)
	mux.HandleFunc("GET /readyz", e.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.metrics.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	if cfg.Enabled(partAPI) {
		api := admin.New(db, admin.Options{Logger: log, Reprocessor: proc, OutboxQueued: e.wakeWorkers,
			SandboxQueued: e.wakeSandboxes})
		mux.Handle("/", api.Handler())
	}
	e.handler = mux
	return e
}

// newWorkers returns the outbox workers, one per SMTP connection, or
// none when no SMTP server is configured (or its URL is unusable: the
// mail then waits in the outbox).
func (e *engine) newWorkers() []*notify.Worker {
	if e.cfg.SMTPURL == "" {
		e.log.Warn("no SMTP server configured (" + envSMTPURL + "): outbound mail stays queued")
		return nil
	}
	smtpCfg, err := notify.ParseSMTPURL(e.cfg.SMTPURL)
	if err != nil {
		e.log.Error("SMTP server URL unusable; outbound mail stays queued until it is fixed", "err", err)
		return nil
	}
	var workers []*notify.Worker
	// The workers record their sent items together (one commit for
	// several acknowledgements).
	group := notify.NewSentGroup(e.db)
	// Sandboxes' mail goes to their own server, or nowhere.
	var sandboxCfg *notify.SMTPConfig
	if e.cfg.SandboxSMTPURL != "" {
		c, err := notify.ParseSMTPURL(e.cfg.SandboxSMTPURL)
		if err != nil {
			e.log.Error("sandbox SMTP server URL unusable ("+envSandboxSMTPURL+"); outbound mail stays queued until it is fixed", "err", err)
			return nil
		}
		sandboxCfg = &c
	}
	for i := 0; i < e.cfg.SMTPConnections; i++ {
		sender, err := notify.NewSender(smtpCfg)
		if err != nil {
			e.log.Error("SMTP server unusable; outbound mail stays queued until it is fixed", "err", err)
			return nil
		}
		opts := notify.WorkerOptions{Logger: e.log, OnOutcome: e.metrics.outcome, Locker: e.db, Group: group}
		if sandboxCfg != nil {
			if opts.SandboxMailer, err = notify.NewSender(*sandboxCfg); err != nil {
				e.log.Error("sandbox SMTP server unusable; outbound mail stays queued until it is fixed", "err", err)
				return nil
			}
		}
		workers = append(workers, notify.NewWorker(e.db, sender, opts))
	}
	e.log.Info("outbox workers ready", "smtp", smtpCfg, "connections", len(workers))
	return workers
}

// newPollers returns a poller per configured mailbox of the default
// tenant. A mailbox whose URL is unusable is reported and left out; the
// others run.
func (e *engine) newPollers(tenant *casedesk.Tenant, proc ingest.Processor) []*ingest.Poller {
	var pollers []*ingest.Poller
	for i, raw := range e.cfg.IMAPURLs {
		mb, err := ingest.ParseMailboxURL(raw)
		if err == nil {
			mb.TenantID = tenant.ID
			var p *ingest.Poller
			p, err = ingest.NewPoller(mb, e.db, e.db, proc, ingest.PollerOptions{
				PollInterval: e.cfg.PollInterval, Logger: e.log.With("component", "poller"), Metrics: e.metrics})
			if err == nil {
				pollers = append(pollers, p)
				continue
			}
		}
		// The URL holds a password: only its position is logged.
		e.log.Error("mailbox URL unusable; this mailbox is not polled", "mailbox", fmt.Sprintf("%s #%d", envIMAPURL, i+1), "err", err)
	}
	return pollers
}

// newScheduler returns the scheduler of the jobs.
func (e *engine) newScheduler() *jobs.Scheduler {
	s, err := jobs.NewScheduler(e.db, jobList(e.db, e.log), jobs.SchedulerOptions{
		Logger: e.log.With("component", "jobs"), OnRun: e.metrics.jobRun})
	if err != nil {
		// The schedules are constants of this program.
		panic(fmt.Sprintf("job schedules: %v", err))
	}
	return s
}

func (e *engine) wakeSandboxes() {
	if e.sandboxes != nil {
		e.sandboxes.Wake()
	}
}

func (e *engine) wakeWorkers() {
	for _, w := range e.workers {
		w.Wake()
	}
}

// run serves until ctx ends, then shuts down in order: stop taking in
// mail and starting jobs (a transaction in flight finishes), stop the
// HTTP server (requests in flight get httpShutdownTimeout), let the
// workers send what is due (up to drainTimeout), close the database.
func (e *engine) run(ctx context.Context) error {
	ln, err := net.Listen("tcp", e.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (%s): %w", e.cfg.HTTPAddr, envHTTPAddr, err)
	}
	srv := &http.Server{Handler: e.handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(e.log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	intake, stopIntake := context.WithCancel(context.WithoutCancel(ctx))
	defer stopIntake()
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var intakeWG, workWG sync.WaitGroup
	for _, p := range e.pollers {
		e.supervise(intake, &intakeWG, "poller "+p.Name(), p.Run)
	}
	if e.scheduler != nil {
		e.supervise(intake, &intakeWG, "scheduler", e.scheduler.Run)
	}
	if e.sandboxes != nil {
		e.supervise(intake, &intakeWG, "sandbox builder", e.sandboxes.Run)
	}
	if e.cfg.Enabled(partIndexer) {
		e.supervise(intake, &intakeWG, "search indexer", func(ctx context.Context) error {
			e.db.RunSearchIndexer(ctx, time.Second, e.log.With("component", "search"))
			return nil
		})
	}
	for i, w := range e.workers {
		e.supervise(work, &workWG, fmt.Sprintf("outbox worker %d", i+1), w.Run)
	}
	e.log.Info("casedesk serving", "version", version, "addr", ln.Addr().String(), "mailboxes", len(e.pollers),
		"smtp_connections", len(e.workers), "jobs", e.scheduler != nil, "api", e.cfg.Enabled(partAPI),
		"indexer", e.cfg.Enabled(partIndexer))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
		serveErr = fmt.Errorf("http server: %w", serveErr)
		e.log.Error("http server stopped; shutting down", "err", serveErr)
	}
	e.log.Info("shutting down: stopping pollers and jobs")
	stopIntake()
	intakeWG.Wait()
	e.log.Info("shutting down: stopping the HTTP server")
	sctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	if err := srv.Shutdown(sctx); err != nil {
		e.log.Warn("http shutdown", "err", err)
	}
	cancel()
	e.log.Info("shutting down: sending what is due")
	stopWork()
	workWG.Wait()
	e.drain()
	e.log.Info("stopped")
	return serveErr
}

// drain sends the outbox items due now, for at most drainTimeout, after
// the workers' own loops have stopped: acknowledgements of the last mail
// taken in go out before the process ends.
func (e *engine) drain() {
	if len(e.workers) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	w := e.workers[0]
	for ctx.Err() == nil {
		stats, err := w.Drain(ctx)
		if err != nil {
			e.log.Warn("outbox drain", "err", err)
			return
		}
		if stats.Claimed == 0 || stats.Unreachable {
			return
		}
	}
}

// supervise runs fn in a goroutine until ctx ends. A panic is logged and
// fn started again a second later, so one bug does not silently stop a
// part of the engine.
func (e *engine) supervise(ctx context.Context, wg *sync.WaitGroup, name string, fn func(context.Context) error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if err := e.runSafely(ctx, name, fn); err != nil && ctx.Err() == nil {
				e.log.Error(name+" stopped; restarting", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
}

func (e *engine) runSafely(ctx context.Context, name string, fn func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error(name+" panic", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn(ctx)
}

// healthz answers 200 while the process runs.
func (e *engine) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// readyz answers 200 when the database answers and its schema is current,
// 503 otherwise. The schema is read again at most every 30 seconds.
func (e *engine) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	err := e.db.Ping(ctx)
	if err == nil && time.Since(time.Unix(0, e.schemaOK.Load())) > 30*time.Second {
		if err = e.db.CheckSchema(ctx); err == nil {
			e.schemaOK.Store(time.Now().UnixNano())
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", oneLine(err))
		return
	}
	fmt.Fprintln(w, "ready")
}
