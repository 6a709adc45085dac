// Package admin is casedesk's HTTP JSON admin API: API-key authentication,
// role-based permissions, cases, contacts and accounts, invoices, users and
// roles, quarantined mail and the audit log, described by an OpenAPI document at
// /v1/openapi.json.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/casedesk/casedesk"
)

// Reprocessor runs raw mail through the ingest processor again (a
// quarantined message after a fix). It returns nil when the mail is stored.
type Reprocessor interface {
	Reprocess(ctx context.Context, tenantID int64, mailbox string, raw []byte) error
}

// Options configure a Server; zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// MaxBodyBytes bounds a request body (default 1 MiB); larger bodies
	// are refused with 413.
	MaxBodyBytes int64
	// Reprocessor retries quarantined mail; without one the retry
	// endpoint answers 503.
	Reprocessor Reprocessor
	// OutboxQueued is called after a request queued mail (a reply), so
	// that an in-process notify worker can send it at once.
	OutboxQueued func()
	// SandboxQueued is called after a request asked for a sandbox or
	// deleted one, so that an in-process builder starts at once.
	SandboxQueued func()
	// NoRecover lets handler panics crash the test that caused them.
	NoRecover bool
}

// Server serves the admin API.
type Server struct {
	store  casedesk.Store
	opts   Options
	log    *slog.Logger
	mux    *http.ServeMux
	routes []route
}

// route is one endpoint: its pattern, the permission it needs (empty:
// any authenticated user) and its handler.
type route struct {
	method  string
	path    string
	perm    casedesk.Permission
	handler func(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error
	// public routes need no key.
	public bool
}

// New returns a Server on store.
func New(store casedesk.Store, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{store: store, opts: opts, log: log.With("component", "admin"), mux: http.NewServeMux()}
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, casedesk.Errorf(casedesk.ENOTFOUND, "no endpoint %s %s", r.Method, r.URL.Path))
	})
	return s
}

// routeTable lists every endpoint. The OpenAPI document must describe
// exactly these (TestOpenAPICoversRoutes).
func (s *Server) routeTable() []route {
	return []route{
		{method: "GET", path: "/v1/openapi.json", handler: s.openAPI, public: true},

		{method: "GET", path: "/v1/cases", perm: casedesk.PermCasesRead, handler: s.listCases},
		{method: "POST", path: "/v1/cases", perm: casedesk.PermCasesCreate, handler: s.createCase},
		{method: "GET", path: "/v1/cases/{number}", perm: casedesk.PermCasesRead, handler: s.getCase},
		{method: "PATCH", path: "/v1/cases/{number}", perm: casedesk.PermCasesWrite, handler: s.patchCase},
		{method: "GET", path: "/v1/cases/{number}/messages", perm: casedesk.PermCasesRead, handler: s.listMessages},
		{method: "GET", path: "/v1/cases/{number}/attachments/{sha256}", perm: casedesk.PermCasesRead, handler: s.getAttachment},
		{method: "POST", path: "/v1/cases/{number}/replies", perm: casedesk.PermCasesReply, handler: s.reply},
		{method: "POST", path: "/v1/cases/{number}/notes", perm: casedesk.PermCasesWrite, handler: s.note},
		{method: "POST", path: "/v1/cases/{number}/merge", perm: casedesk.PermCasesWrite, handler: s.merge},

		{method: "GET", path: "/v1/contacts", perm: casedesk.PermContactsRead, handler: s.listContacts},
		{method: "POST", path: "/v1/contacts", perm: casedesk.PermContactsWrite, handler: s.createContact},
		{method: "GET", path: "/v1/contacts/{id}", perm: casedesk.PermContactsRead, handler: s.getContact},
		{method: "PATCH", path: "/v1/contacts/{id}", perm: casedesk.PermContactsWrite, handler: s.patchContact},
		{method: "GET", path: "/v1/accounts", perm: casedesk.PermAccountsRead, handler: s.listAccounts},
		{method: "POST", path: "/v1/accounts", perm: casedesk.PermAccountsWrite, handler: s.createAccount},
		{method: "GET", path: "/v1/accounts/{id}", perm: casedesk.PermAccountsRead, handler: s.getAccount},
		{method: "PATCH", path: "/v1/accounts/{id}", perm: casedesk.PermAccountsWrite, handler: s.patchAccount},

		{method: "GET", path: "/v1/invoices", perm: casedesk.PermInvoicesRead, handler: s.listInvoices},
		{method: "POST", path: "/v1/invoices", perm: casedesk.PermInvoicesWrite, handler: s.createInvoices},
		{method: "GET", path: "/v1/invoices/{number}", perm: casedesk.PermInvoicesRead, handler: s.getInvoice},
		{method: "PATCH", path: "/v1/invoices/{number}", perm: casedesk.PermInvoicesWrite, handler: s.patchInvoice},
		{method: "GET", path: "/v1/invoices/{number}/pdf", perm: casedesk.PermInvoicesRead, handler: s.invoicePDF},
		{method: "POST", path: "/v1/invoices/{number}/send", perm: casedesk.PermInvoicesSend, handler: s.sendInvoice},

		{method: "GET", path: "/v1/users", perm: casedesk.PermUsersRead, handler: s.listUsers},
		{method: "POST", path: "/v1/users", perm: casedesk.PermUsersWrite, handler: s.createUser},
		{method: "GET", path: "/v1/users/{id}", perm: casedesk.PermUsersRead, handler: s.getUser},
		{method: "PATCH", path: "/v1/users/{id}", perm: casedesk.PermUsersWrite, handler: s.patchUser},
		{method: "GET", path: "/v1/users/{id}/keys", perm: casedesk.PermUsersRead, handler: s.listKeys},
		{method: "POST", path: "/v1/users/{id}/keys", perm: casedesk.PermUsersWrite, handler: s.createKey},
		{method: "DELETE", path: "/v1/keys/{id}", perm: casedesk.PermUsersWrite, handler: s.revokeKey},
		{method: "GET", path: "/v1/roles", perm: casedesk.PermSettingsRead, handler: s.listRoles},
		{method: "POST", path: "/v1/roles", perm: casedesk.PermSettingsWrite, handler: s.createRole},
		{method: "PATCH", path: "/v1/roles/{name}", perm: casedesk.PermSettingsWrite, handler: s.patchRole},
		{method: "GET", path: "/v1/settings", perm: casedesk.PermSettingsRead, handler: s.getSettings},
		{method: "PATCH", path: "/v1/settings", perm: casedesk.PermSettingsWrite, handler: s.patchSettings},
		{method: "GET", path: "/v1/me", handler: s.me},

		{method: "GET", path: "/v1/quarantine", perm: casedesk.PermQuarantineRead, handler: s.listQuarantine},
		{method: "GET", path: "/v1/quarantine/{id}/raw", perm: casedesk.PermQuarantineRead, handler: s.quarantineRaw},
		{method: "POST", path: "/v1/quarantine/{id}/retry", perm: casedesk.PermQuarantineFix, handler: s.retryQuarantine},

		{method: "GET", path: "/v1/audit", perm: casedesk.PermAuditRead, handler: s.listAudit},

		{method: "GET", path: "/v1/sandbox", perm: casedesk.PermSandboxManage, handler: s.getSandbox},
		{method: "POST", path: "/v1/sandbox", perm: casedesk.PermSandboxManage, handler: s.createSandbox},
		{method: "DELETE", path: "/v1/sandbox", perm: casedesk.PermSandboxManage, handler: s.deleteSandbox},
	}
}

// Handler returns the API's http.Handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Run serves on addr until ctx ends, then shuts down, giving requests in
// flight up to 10 seconds.
func (s *Server) Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin api: %w", err)
	}
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	s.log.Info("admin api listening", "addr", ln.Addr().String())
	select {
	case err := <-done:
		return fmt.Errorf("admin api: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("admin api shutdown: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin api: %w", err)
	}
	return nil
}

// wrap authenticates the request, checks the route's permission, audits
// support-access reads, limits the body and turns the handler's error into
// the error answer.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.opts.NoRecover {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
					writeError(w, r, s.log, fmt.Errorf("panic: %v", v))
				}
			}()
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		var p *casedesk.Principal
		if !rt.public {
			var err error
			if p, err = s.authenticate(r); err == nil {
				err = s.authorize(r, rt, p)
			}
			if err != nil {
				writeError(w, r, s.log, err)
				return
			}
			if !p.Tenant.Ready {
				// A sandbox being built, or whose build failed.
				w.Header().Set("Retry-After", "10")
				writeJSON(w, http.StatusServiceUnavailable, errorBody{errorDetail{casedesk.EUNAVAILABLE,
					"this sandbox is not ready: it is being built, or its build failed; " +
						"GET /v1/sandbox with a key of its production tenant shows which"}})
				return
			}
		}
		if err := rt.handler(w, r, p); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}
