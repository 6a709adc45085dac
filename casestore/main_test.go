package casestore_test

import (
	"testing"

	"github.com/casedesk/casedesk/casestore/casestoretest"
)

func TestMain(m *testing.M) { casestoretest.Main(m) }
