package admin

import (
	_ "embed"
	"net/http"

	"github.com/casedesk/casedesk"
)

// openAPIDoc describes every route of routeTable; TestOpenAPICoversRoutes
// keeps the two in step and the handler tests validate their answers
// against it.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPI: GET /v1/openapi.json
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request, _ *casedesk.Principal) error {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDoc)
	return nil
}
