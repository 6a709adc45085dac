package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/casestore/casestoretest"
	"github.com/casedesk/casedesk/internal/testlog"
)

// The admin tests run against a real PostgreSQL database of their own.
func TestMain(m *testing.M) { casestoretest.Main(m) }

func testLogger() *slog.Logger { return testlog.New() }

// openAPI is the parsed document and a router over it, shared by tests.
var openAPI = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDoc)
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(context.Background())
})

var openAPIRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := openAPI()
	if err != nil {
		return nil, err
	}
	return gorillamux.NewRouter(doc)
})

// roles are the built-in roles every tenant fixture has a user and key for.
var roles = []string{casedesk.RoleAdmin, casedesk.RoleTechnical, casedesk.RoleSupport, casedesk.RoleFinance,
	casedesk.RoleGeneral, casedesk.RoleSupportAccess}

// tenantFix is a tenant with one user and API key per built-in role, an
// account (customer.example) and cases.
type tenantFix struct {
	tenant  *casedesk.Tenant
	account *casedesk.Account
	users   map[string]*casedesk.User
	keys    map[string]string
	cases   []*casedesk.Case // cases[0] is Cara's (the general user's), with an attachment
	attach  string           // sha256 of the attachment on cases[0]
}

// apiEnv is the API over two tenants, A and B.
type apiEnv struct {
	t    *testing.T
	db   *casestore.DB
	srv  *Server
	http *httptest.Server
	a, b *tenantFix
	// reprocessed records Reprocess calls.
	mu          sync.Mutex
	reprocessed [][]byte
	reprocess   error
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	e := &apiEnv{t: t, db: casestoretest.Open(t)}
	e.a = e.newTenant("alpha")
	e.b = e.newTenant("bravo")
	e.srv = New(e.db, Options{Logger: testLogger(), NoRecover: true, Reprocessor: e})
	e.http = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.http.Close)
	return e
}

func (e *apiEnv) Reprocess(ctx context.Context, tenantID int64, mailbox string, raw []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.reprocess != nil {
		return e.reprocess
	}
	e.reprocessed = append(e.reprocessed, raw)
	return nil
}

func (e *apiEnv) update(fn func(tx casedesk.Tx) error) {
	e.t.Helper()
	if err := e.db.Update(context.Background(), fn); err != nil {
		e.t.Fatal(err)
	}
}

func rawMail(id, from, subject, body string) []byte {
	return []byte(fmt.Sprintf("Message-ID: <%s>\r\nFrom: %s\r\nTo: support@acme.example\r\nSubject: %s\r\n"+
		"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n%s\r\n", id, from, subject, body))
}

func (e *apiEnv) newTenant(name string) *tenantFix {
	e.t.Helper()
	ctx := context.Background()
	f := &tenantFix{users: map[string]*casedesk.User{}, keys: map[string]string{}}
	e.update(func(tx casedesk.Tx) (err error) {
		f.tenant, err = tx.CreateTenant(ctx, casedesk.NewTenant{Slug: fmt.Sprintf("%s-%d", name, time.Now().UnixNano()),
			Name: "Acme " + name, SupportAddress: "support@" + name + ".acme.example"})
		if err != nil {
			return err
		}
		f.account, err = tx.CreateAccount(ctx, casedesk.NewAccount{TenantID: f.tenant.ID, Name: "Customer Inc " + name,
			Domains: []string{"customer.example"}})
		if err != nil {
			return err
		}
		for _, role := range roles {
			email := role + "@acme.example"
			if role == casedesk.RoleGeneral {
				email = "cara@customer.example" // a customer with portal access
			}
			u, err := tx.CreateUser(ctx, casedesk.NewUser{TenantID: f.tenant.ID, Email: email, Name: "User " + role + " " + name, RoleName: role})
			if err != nil {
				return err
			}
			f.users[role] = u
			secret, hash := casedesk.NewAPIKeySecret(f.tenant.ID)
			if _, err := tx.CreateAPIKey(ctx, casedesk.NewAPIKey{TenantID: f.tenant.ID, UserID: u.ID, Name: role, Hash: hash}); err != nil {
				return err
			}
			f.keys[role] = secret
		}
		if name == "alpha" {
			// Case numbers are per tenant. Alpha's cases start at #4, so
			// that numbers of alpha's cases name nothing in bravo.
			filler, err := tx.UpsertContact(ctx, f.tenant.ID, casedesk.Address{Email: "filler@elsewhere.example"})
			if err != nil {
				return err
			}
			for range 3 {
				if _, err := tx.CreateCase(ctx, casedesk.NewCase{TenantID: f.tenant.ID, Subject: "filler", RequesterID: filler.ID}); err != nil {
					return err
				}
			}
		}
		for i, who := range []string{"Cara Customer <cara@customer.example>", "Otto Other <otto@elsewhere.example>",
			"Dan <dan@customer.example>"} {
			addr := casedesk.Address{Name: strings.Fields(who)[0] + " " + name, Email: strings.Trim(strings.Fields(who)[len(strings.Fields(who))-1], "<>")}
			requester, err := tx.UpsertContact(ctx, f.tenant.ID, addr)
			if err != nil {
				return err
			}
			c, err := tx.CreateCase(ctx, casedesk.NewCase{TenantID: f.tenant.ID, Subject: fmt.Sprintf("Printer %d on fire (%s)", i, name),
				RequesterID: requester.ID})
			if err != nil {
				return err
			}
			n := casedesk.NewMessage{TenantID: f.tenant.ID, CaseID: c.ID, MessageID: fmt.Sprintf("m%d-%s@customer.example", i, name),
				Direction: casedesk.Inbound, AuthorKind: casedesk.AuthorCustomer, ContactID: requester.ID, From: addr,
				Subject: c.Subject, Text: "The toner smells of smoke.", Class: "normal",
				Raw: rawMail(fmt.Sprintf("m%d-%s@customer.example", i, name), who, c.Subject, "The toner smells of smoke.")}
			if i == 0 {
				n.Attachments = []casedesk.NewAttachment{{Name: "log-" + name + ".txt", ContentType: "text/plain", Content: []byte("error 42 " + name)}}
			}
			m, _, err := tx.AppendMessage(ctx, n)
			if err != nil {
				return err
			}
			if i == 0 {
				f.attach = fmt.Sprintf("%x", m.Attachments[0].SHA256)
			}
			f.cases = append(f.cases, c)
		}
		return nil
	})
	return f
}

// response is an answer of the API.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) errorMessage() string {
	var e errorBody
	json.Unmarshal(r.body, &e)
	return e.Error.Message
}

func (r response) errorCode() string {
	var e errorBody
	json.Unmarshal(r.body, &e)
	return e.Error.Code
}

// do sends a request with key (none when empty) and a JSON body (a string
// is sent as it is), and checks the answer against the OpenAPI document.
func (e *apiEnv) do(key, method, path string, body any) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.send(req)
}

// send sends req as it is and checks the answer against the OpenAPI
// document, as every request of the tests is.
func (e *apiEnv) send(req *http.Request) response {
	e.t.Helper()
	res, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	out := response{status: res.StatusCode, header: res.Header, body: raw}
	e.checkOpenAPI(req, out)
	return out
}

// checkOpenAPI validates an answer against the document: its status must
// be documented for the route and its body must match the schema.
func (e *apiEnv) checkOpenAPI(req *http.Request, res response) {
	e.t.Helper()
	router, err := openAPIRouter()
	if err != nil {
		e.t.Fatal(err)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		if res.status != http.StatusNotFound && res.status != http.StatusMethodNotAllowed {
			e.t.Errorf("%s %s is not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 res.status, Header: res.header, Body: io.NopCloser(bytes.NewReader(res.body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		e.t.Errorf("%s %s answered %d, not as documented: %v\n%s", req.Method, req.URL.Path, res.status, err, res.body)
	}
}
