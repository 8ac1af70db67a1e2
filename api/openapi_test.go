package api_test

import (
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/internal/oapitest"
)

var (
	validatorOnce sync.Once
	validator     *oapitest.Validator
	validatorErr  error
)

// openAPIValidator loads the document the server serves, once per package.
func openAPIValidator(t *testing.T) *oapitest.Validator {
	t.Helper()
	validatorOnce.Do(func() {
		doc, err := api.OpenAPIDocument()
		if err != nil {
			validatorErr = err
			return
		}
		validator, validatorErr = oapitest.New(doc)
	})
	require.NoError(t, validatorErr)
	return validator
}

// validateTraffic routes srv's client through the document: every request
// the server accepts and every response it gives must be one /openapi.json
// describes, or the test fails naming the exchange.
func validateTraffic(t *testing.T, srv *httptest.Server) {
	t.Helper()
	v := openAPIValidator(t)
	c := srv.Client()
	c.Transport = v.Transport(c.Transport, func(msg string) {
		t.Errorf("openapi drift: %s", msg)
	})
}
