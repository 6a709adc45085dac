package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

// BenchmarkListCases measures GET /v1/cases (a page of 50, one filter,
// one sort) over 100k cases through the whole stack: HTTP on loopback,
// authentication, the query and the JSON. "rate=500" sends 500 requests a
// second from 16 clients and reports the latency percentiles; "max" sends
// as fast as 8 clients can.
func BenchmarkListCases(b *testing.B) {
	db := casestoretest.Open(b)
	ctx := context.Background()
	var tenant *casedesk.Tenant
	var key string
	err := db.Update(ctx, func(tx casedesk.Tx) (err error) {
		tenant, err = tx.CreateTenant(ctx, casedesk.NewTenant{Slug: fmt.Sprintf("bench-%d", time.Now().UnixNano()),
			Name: "Bench", SupportAddress: "support@bench.example"})
		if err != nil {
			return err
		}
		u, err := tx.CreateUser(ctx, casedesk.NewUser{TenantID: tenant.ID, Email: "sue@bench.example", Name: "Sue", RoleName: "support"})
		if err != nil {
			return err
		}
		secret, hash := casedesk.NewAPIKeySecret(tenant.ID)
		key = secret
		_, err = tx.CreateAPIKey(ctx, casedesk.NewAPIKey{TenantID: tenant.ID, UserID: u.ID, Hash: hash})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	var requester *casedesk.Contact
	err = db.Update(ctx, func(tx casedesk.Tx) (err error) {
		requester, err = tx.UpsertContact(ctx, tenant.ID, casedesk.Address{Name: "Cara", Email: "cara@customer.example"})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := casestoretest.LoadHistory(ctx, casestoretest.URL(b), tenant.ID, requester.ID, 100_000, 1, "customer.example"); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded 100k cases in %v", time.Since(start).Round(time.Second))
	srv := httptest.NewServer(New(db, Options{Logger: testLogger()}).Handler())
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	// Every loaded case is open: the filter keeps all 100k, and the sort
	// picks the newest 50.
	paths := []string{"/v1/cases?status=open&sort=-created_at&limit=50"}
	get := func(i int) (time.Duration, error) {
		req, _ := http.NewRequest("GET", srv.URL+paths[i%len(paths)], nil)
		req.Header.Set("Authorization", "Bearer "+key)
		t0 := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return 0, fmt.Errorf("status %d", res.StatusCode)
		}
		return time.Since(t0), nil
	}
	for _, bc := range []struct {
		name    string
		rate    int // requests per second; 0: as fast as possible
		clients int
	}{{"rate=500", 500, 16}, {"max", 0, 8}} {
		b.Run(bc.name, func(b *testing.B) {
			lat := make([]time.Duration, b.N)
			jobs := make(chan int)
			var wg sync.WaitGroup
			var failed error
			var mu sync.Mutex
			for range bc.clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range jobs {
						d, err := get(i)
						if err != nil {
							mu.Lock()
							failed = err
							mu.Unlock()
						}
						lat[i] = d
					}
				}()
			}
			b.ResetTimer()
			var tick *time.Ticker
			if bc.rate > 0 {
				tick = time.NewTicker(time.Second / time.Duration(bc.rate))
				defer tick.Stop()
			}
			for i := range b.N {
				if tick != nil {
					<-tick.C
				}
				jobs <- i
			}
			close(jobs)
			wg.Wait()
			b.StopTimer()
			if failed != nil {
				b.Fatal(failed)
			}
			slices.Sort(lat)
			pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
			b.ReportMetric(pct(0.50), "p50_ms")
			b.ReportMetric(pct(0.99), "p99_ms")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
