package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/internal/testlog"
)

// benchCases is how many waiting cases BenchmarkAutoResolve works on.
const benchCases = 100_000

// BenchmarkAutoResolve runs auto-resolve over a tenant of benchCases
// pending cases (and as many closed ones, which it must not read), with
// the default batch of 200: one op is one run over all of them.
//
//	go test -run '^$' -bench AutoResolve -benchtime 3x ./jobs/
func BenchmarkAutoResolve(b *testing.B) {
	e := newEnv(b)
	f := e.tenant("bench", casedesk.TenantSettings{})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(tb testing.TB, sql string, args ...any) {
		tb.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			tb.Fatal(err)
		}
	}
	// Closed history first, then the waiting cases, all waiting since t0.
	exec(b, `INSERT INTO cases (tenant_id, number, subject, status, priority, category, requester_id,
			created_at, updated_at, pending_since, last_agent_reply_at, solved_at, closed_at)
		SELECT $1, g, 'Case ' || g, CASE WHEN g <= $3 THEN 'closed' ELSE 'pending' END, 'normal', 'email', $2,
			$4, $4, CASE WHEN g > $3 THEN $4::timestamptz END, $4, CASE WHEN g <= $3 THEN $4::timestamptz END,
			CASE WHEN g <= $3 THEN $4::timestamptz END
		FROM generate_series(1, 2 * $3::int) AS g`, f.tenant.ID, f.requester.ID, benchCases, t0)
	exec(b, `UPDATE case_counters SET last_number = 2 * $2::int WHERE tenant_id = $1`, f.tenant.ID, benchCases)
	exec(b, `VACUUM ANALYZE cases`)
	job := AutoResolve(e.db, AutoResolveOptions{Logger: testlog.New()})

	// Each step's reset puts every waiting case back where the step
	// starts from.
	steps := []struct {
		name  string
		reset func(testing.TB)
		at    time.Time
		key   string
	}{
		{"remind", func(tb testing.TB) {
			exec(tb, `UPDATE cases SET reminded_for = NULL WHERE tenant_id = $1 AND status = 'pending'`, f.tenant.ID)
		}, t0.Add(4 * day), KeyReminders},
		{"idle", nil, t0.Add(4 * day), ""}, // every case reminded already: nothing to do
		{"solve", func(tb testing.TB) {
			exec(tb, `UPDATE cases SET status = 'pending', pending_since = $2, solved_at = NULL
				WHERE tenant_id = $1 AND status = 'solved'`, f.tenant.ID, t0)
		}, t0.Add(8 * day), KeySolved},
		{"close", func(tb testing.TB) {
			exec(tb, `UPDATE cases SET status = 'solved', solved_at = $2, closed_at = NULL
				WHERE tenant_id = $1 AND number > $3`, f.tenant.ID, t0.Add(8*day), benchCases)
		}, t0.Add(22 * day), KeyClosed},
	}
	for _, st := range steps {
		b.Run(st.name, func(b *testing.B) {
			var took time.Duration
			for range b.N {
				if st.reset != nil {
					st.reset(b)
					exec(b, `VACUUM ANALYZE cases`)
				}
				e.clock.Set(st.at)
				start := time.Now()
				s, err := job.Run(ctx, st.at)
				took += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if st.key != "" && s[st.key] != benchCases {
					b.Fatalf("summary %v, want %s=%d", s, st.key, benchCases)
				}
			}
			b.ReportMetric(float64(benchCases*b.N)/took.Seconds(), "cases/s")
		})
	}
}
