package jobs

import (
	"context"
	"time"

	"github.com/casedesk/casedesk/casestore"
)

// MaintainSchedule is the schedule of the "db-maintenance" job: often,
// because the plans made on a new database's empty tables stay until
// statistics come, and a run with nothing to do costs a query or two.
const MaintainSchedule = "@every 2s"

// Summary keys of the db-maintenance job.
const (
	KeyVacuumed = "vacuumed"
	KeyAnalyzed = "analyzed"
)

// Maintainer vacuums and analyses the tables that need it where autovacuum
// does not; casestore.DB is one.
type Maintainer interface {
	Maintain(ctx context.Context) (casestore.Maintenance, error)
}

// Maintain returns the "db-maintenance" job (see casestore.DB.Maintain).
// The summary counts the tables vacuumed and analysed. Its work does not
// depend on now.
func Maintain(m Maintainer) Job {
	return Job{Name: NameMaintain, Schedule: MaintainSchedule,
		Run: func(ctx context.Context, _ time.Time) (Summary, error) {
			done, err := m.Maintain(ctx)
			return Summary{KeyVacuumed: len(done.Vacuumed), KeyAnalyzed: len(done.Analyzed)}, err
		}}
}
