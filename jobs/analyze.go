package jobs

import (
	"context"
	"time"
)

// AnalyzeSchedule is the schedule of the "analyze" job: often, because a
// new tenant's tables grow fast and the first statistics matter most.
const AnalyzeSchedule = "@every 10s"

// KeyAnalyzed is the summary key of the analyze job.
const KeyAnalyzed = "analyzed"

// StaleAnalyzer gathers planner statistics for the tables that need them
// and names those it analysed; casestore.DB.AnalyzeStale is one.
type StaleAnalyzer interface {
	AnalyzeStale(ctx context.Context) ([]string, error)
}

// Analyze returns the "analyze" job: it keeps the database's planner
// statistics current where autovacuum does not (see
// casestore.DB.AnalyzeStale). The summary counts the tables analysed.
// Its work does not depend on now.
func Analyze(a StaleAnalyzer) Job {
	return Job{Name: NameAnalyze, Schedule: AnalyzeSchedule,
		Run: func(ctx context.Context, _ time.Time) (Summary, error) {
			tables, err := a.AnalyzeStale(ctx)
			return Summary{KeyAnalyzed: len(tables)}, err
		}}
}
