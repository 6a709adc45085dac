package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// uniqueTenant is a tenant slug of this test's own: tests share the
// package database.
func uniqueTenant() string {
	return fmt.Sprintf("t%d", time.Now().UnixNano())
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestServeRefusesOldSchema(t *testing.T) {
	url := casestoretest.EmptyDatabase(t)
	m, _, stderr := testMain(t, Config{DatabaseURL: url, HTTPAddr: freeAddr(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := m.Run(ctx, []string{"serve"})
	if err == nil || !strings.Contains(err.Error(), "run 'casedesk migrate'") {
		t.Fatalf("serve on an empty database: %v; want an error saying to run casedesk migrate", err)
	}
	if m.Report(err) != 1 || !strings.Contains(stderr.String(), "schema is at version 0") {
		t.Errorf("stderr %q", stderr)
	}
}

func TestInitIsIdempotent(t *testing.T) {
	cfg := Config{DatabaseURL: casestoretest.URL(t), SupportAddress: "help@init.example", Tenant: uniqueTenant()}
	ctx := context.Background()
	m, out, _ := testMain(t, cfg)
	if err := m.Run(ctx, []string{"init"}); err != nil {
		t.Fatal(err)
	}
	first := out.String()
	lines := strings.Split(strings.TrimSpace(first), "\n")
	key := lines[len(lines)-1]
	if !strings.Contains(first, "created") || !strings.HasPrefix(key, "cdk_") {
		t.Fatalf("first init printed:\n%s\nwant the tenant and admin created and a key", first)
	}
	m2, out2, _ := testMain(t, cfg)
	if err := m2.Run(ctx, []string{"init"}); err != nil {
		t.Fatal(err)
	}
	if second := out2.String(); strings.Contains(second, "created") || strings.Contains(second, "cdk_") {
		t.Errorf("second init printed:\n%s\nwant nothing created and no new key", second)
	}
	p := authenticate(t, m2, key)
	if p.User.Email != "admin@init.example" || p.User.Role.Name != casedesk.RoleAdmin || p.Tenant.SupportAddress != "help@init.example" {
		t.Errorf("the printed key is %s (%s) of tenant %s; want the admin of the new tenant", p.User.Email, p.User.Role.Name, p.Tenant.Slug)
	}
}

// authenticate checks key against the store and returns who it is.
func authenticate(t *testing.T, m *Main, key string) *casedesk.Principal {
	t.Helper()
	tenantID, hash, err := casedesk.ParseAPIKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var p *casedesk.Principal
	err = m.db.Update(context.Background(), func(tx casedesk.Tx) (err error) {
		p, err = tx.Authenticate(context.Background(), tenantID, hash)
		return err
	})
	if err != nil {
		t.Fatalf("authenticate %s: %v", key, err)
	}
	return p
}

func TestBootstrapKey(t *testing.T) {
	cfg := Config{DatabaseURL: casestoretest.URL(t), SupportAddress: "help@boot.example", Tenant: uniqueTenant()}
	ctx := context.Background()
	m, _, _ := testMain(t, cfg)
	if err := m.Run(ctx, []string{"init"}); err != nil {
		t.Fatal(err)
	}
	tenant := authenticateTenant(t, m, cfg.Tenant)

	other, _ := casedesk.NewAPIKeySecret(tenant.ID + 1000)
	m.Config.BootstrapAdminKey = other
	if _, err := m.bootstrap(ctx, m.db, false); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("starts with cdk_%d_", tenant.ID)) {
		t.Errorf("a key of another tenant: %v; want an error naming the right prefix", err)
	}

	key, _ := casedesk.NewAPIKeySecret(tenant.ID)
	m.Config.BootstrapAdminKey = key
	m.Config.SupportAddress = "desk@boot.example" // the address moved
	for i := 0; i < 2; i++ {
		res, err := m.bootstrap(ctx, m.db, false)
		if err != nil {
			t.Fatalf("bootstrap %d: %v", i, err)
		}
		if res.key != "" || !res.bootstrapKey {
			t.Errorf("bootstrap %d printed a new key", i)
		}
	}
	p := authenticate(t, m, key)
	if p.User.Role.Name != casedesk.RoleAdmin || p.Tenant.SupportAddress != "desk@boot.example" {
		t.Errorf("bootstrap key is %s's, tenant address %s", p.User.Role.Name, p.Tenant.SupportAddress)
	}
}

func authenticateTenant(t *testing.T, m *Main, slug string) *casedesk.Tenant {
	t.Helper()
	var ten *casedesk.Tenant
	err := m.db.View(context.Background(), func(tx casedesk.Tx) (err error) {
		ten, err = tx.FindTenantBySlug(context.Background(), slug)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ten
}

// startServe runs "casedesk serve" in the test and returns its address,
// its log and a function that stops it and returns Run's error.
func startServe(t *testing.T, cfg Config) (addr string, log *syncBuffer, stop func() error) {
	t.Helper()
	cfg.DatabaseURL = casestoretest.URL(t)
	cfg.HTTPAddr = freeAddr(t)
	log = &syncBuffer{}
	m := &Main{Config: cfg, Stdout: io.Discard, Stderr: log}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- m.Run(ctx, []string{"serve"})
		m.Close()
	}()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatalf("serve did not stop within 30s; log:\n%s", log)
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	waitFor(t, 20*time.Second, func() bool { return get(t, "http://"+cfg.HTTPAddr+"/healthz", "").code == 200 })
	return cfg.HTTPAddr, log, stop
}

type response struct {
	code int
	body string
}

func get(t *testing.T, url, key string) response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, string(b)}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeWithBadMailServersKeepsRunning(t *testing.T) {
	key := ""
	cfg := Config{SupportAddress: "help@serve.example", Tenant: uniqueTenant(), SMTPConnections: 1,
		IMAPURLs: []string{"imaps://nobody:hunter2@", "imap://support:hunter2@127.0.0.1:1/INBOX"},
		SMTPURL:  "smtp://mail:hunter2@127.0.0.1:1?tls=bogus"}
	// A key for the tenant serve creates: init it first to learn its ID.
	m, _, _ := testMain(t, Config{DatabaseURL: casestoretest.URL(t), SupportAddress: cfg.SupportAddress, Tenant: cfg.Tenant})
	if err := m.Run(context.Background(), []string{"init"}); err != nil {
		t.Fatal(err)
	}
	key, _ = casedesk.NewAPIKeySecret(authenticateTenant(t, m, cfg.Tenant).ID)
	cfg.BootstrapAdminKey = key

	addr, log, stop := startServe(t, cfg)
	base := "http://" + addr
	if r := get(t, base+"/readyz", ""); r.code != 200 || r.body != "ready\n" {
		t.Errorf("/readyz: %d %q", r.code, r.body)
	}
	if r := get(t, base+"/v1/me", key); r.code != 200 || !strings.Contains(r.body, `"admin"`) {
		t.Errorf("/v1/me with the bootstrap key: %d %s", r.code, r.body)
	}
	metrics := get(t, base+"/metrics", "").body
	for _, name := range []string{"casedesk_outbox_depth{state=\"pending\"}", "casedesk_cases_created_total", "go_goroutines"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// The unreachable mailbox is retried and reported; the other one is
	// reported as unusable; neither stops the process.
	waitFor(t, 20*time.Second, func() bool { return strings.Contains(log.String(), "mailbox session ended; reconnecting") })
	if err := stop(); err != nil {
		t.Errorf("serve returned %v", err)
	}
	out := log.String()
	for _, want := range []string{"mailbox URL unusable", "CASEDESK_IMAP_URL #1", "SMTP server URL unusable", "shutting down: stopping pollers", "stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("log shows a password:\n%s", out)
	}
}

func TestServeParts(t *testing.T) {
	addr, log, stop := startServe(t, Config{Disabled: []string{partAPI, partJobs, partIndexer, partPollers, partNotify}})
	if r := get(t, "http://"+addr+"/v1/openapi.json", ""); r.code != 404 {
		t.Errorf("admin API switched off but /v1/openapi.json answers %d", r.code)
	}
	if r := get(t, "http://"+addr+"/readyz", ""); r.code != 200 {
		t.Errorf("/readyz: %d", r.code)
	}
	stop()
	if out := log.String(); !strings.Contains(out, "jobs=false api=false indexer=false") {
		t.Errorf("log does not say the parts are off:\n%s", out)
	}
}

func TestParseJobArgs(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		args    []string
		want    jobArgs
		wantErr string
	}{
		{name: "name only", args: []string{"auto-resolve"}, want: jobArgs{"auto-resolve", now}},
		{name: "offset", args: []string{"auto-resolve", "--now", "+96h"}, want: jobArgs{"auto-resolve", now.Add(96 * time.Hour)}},
		{name: "flag first", args: []string{"--now=-1h", "outbox-sweep"}, want: jobArgs{"outbox-sweep", now.Add(-time.Hour)}},
		{name: "rfc 3339", args: []string{"auto-resolve", "-now", "2027-01-31T09:00:00+01:00"},
			want: jobArgs{"auto-resolve", time.Date(2027, 1, 31, 8, 0, 0, 0, time.UTC)}},
		{name: "no name", args: []string{"--now", "+1h"}, wantErr: "needs a job name"},
		{name: "two names", args: []string{"a", "b"}, wantErr: "one job name"},
		{name: "missing time", args: []string{"a", "--now"}, wantErr: "--now needs a time"},
		{name: "bad time", args: []string{"a", "--now", "tomorrow"}, wantErr: "RFC 3339"},
		{name: "bad offset", args: []string{"a", "--now", "+4d"}, wantErr: "offset"},
		{name: "unknown flag", args: []string{"a", "--force"}, wantErr: "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseJobArgs(tt.args, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.name != tt.want.name || !got.now.Equal(tt.want.now) {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestRunJob(t *testing.T) {
	ctx := context.Background()
	m, out, _ := testMain(t, Config{DatabaseURL: casestoretest.URL(t)})
	if err := m.Run(ctx, []string{"run-job", "auto-resolve", "--now", "2030-01-01T00:00:00Z"}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "auto-resolve at 2030-01-01T00:00:00Z: ") || !strings.Contains(got, "reminders=") {
		t.Errorf("run-job printed %q", got)
	}
	m, out, _ = testMain(t, Config{DatabaseURL: casestoretest.URL(t)})
	if err := m.Run(ctx, []string{"run-job", "invoices", "--now", "2030-01-01T00:00:00Z"}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "invoices at 2030-01-01T00:00:00Z: ") || !strings.Contains(got, "reminders=") {
		t.Errorf("run-job invoices printed %q", got)
	}
	m2, _, stderr := testMain(t, Config{DatabaseURL: casestoretest.URL(t)})
	err := m2.Run(ctx, []string{"run-job", "make-coffee"})
	if code := m2.Report(err); code != 2 || !strings.Contains(stderr.String(), "the jobs are auto-resolve, outbox-sweep, deactivate-users, db-maintenance, invoices") {
		t.Errorf("unknown job: exit %d, stderr %q", code, stderr)
	}
}

// TestServeBuildsSandbox: serve builds the sandbox the API asks for, at
// once, and its key works once it is ready.
func TestServeBuildsSandbox(t *testing.T) {
	cfg := Config{SupportAddress: "help@sandbox-serve.example", Tenant: uniqueTenant()}
	m, _, _ := testMain(t, Config{DatabaseURL: casestoretest.URL(t), SupportAddress: cfg.SupportAddress, Tenant: cfg.Tenant})
	if err := m.Run(context.Background(), []string{"init"}); err != nil {
		t.Fatal(err)
	}
	key, _ := casedesk.NewAPIKeySecret(authenticateTenant(t, m, cfg.Tenant).ID)
	cfg.BootstrapAdminKey = key
	addr, log, _ := startServe(t, cfg)
	base := "http://" + addr
	req, _ := http.NewRequest("POST", base+"/v1/sandbox", strings.NewReader(`{"mode": "anonymized"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		APIKey string `json:"api_key"`
		Tenant struct {
			Slug string `json:"slug"`
		} `json:"tenant"`
	}
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 202 || created.APIKey == "" {
		t.Fatalf("POST /v1/sandbox: %d, %v", resp.StatusCode, err)
	}
	// The builder is woken by the request, not by its next look in 5 s.
	start := time.Now()
	waitFor(t, 4*time.Second, func() bool {
		return strings.Contains(get(t, base+"/v1/sandbox", key).body, `"status":"ready"`)
	})
	if r := get(t, base+"/v1/me", created.APIKey); r.code != 200 {
		t.Errorf("sandbox key once ready: %d %s", r.code, r.body)
	}
	t.Logf("ready after %s", time.Since(start))
	if !strings.Contains(log.String(), "sandbox ready") {
		t.Errorf("log does not report the build:\n%s", log)
	}
	// A sandbox is never the tenant serve polls mail for.
	m2, _, _ := testMain(t, Config{DatabaseURL: casestoretest.URL(t), SupportAddress: cfg.SupportAddress, Tenant: created.Tenant.Slug})
	if err := m2.Run(context.Background(), []string{"init"}); err == nil || !strings.Contains(err.Error(), "names a sandbox") {
		t.Errorf("init with the sandbox's slug: %v", err)
	}
}
