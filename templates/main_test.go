package templates

import (
	"testing"

	"github.com/casedesk/casedesk/casestore/casestoretest"
)

// Save and ForTenant are tested against a real PostgreSQL database.
func TestMain(m *testing.M) { casestoretest.Main(m) }
