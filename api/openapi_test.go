package api_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
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

// exchange is one request and response for the validator, made up.
func exchange(t *testing.T, v *oapitest.Validator, method, path, reqBody string, status int, ct, respBody string) error {
	t.Helper()
	req, err := http.NewRequest(method, "http://docket.test"+path, strings.NewReader(reqBody))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer x")
	if reqBody != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp := &http.Response{StatusCode: status, Header: http.Header{}}
	if ct != "" {
		resp.Header.Set("Content-Type", ct)
	}
	return v.Check(req, []byte(reqBody), resp, []byte(respBody), true)
}

// TestOpenAPIDocumentRefusesWhatTheServerRefuses: the cases a user found
// with kin-openapi, as the document must now answer them.
func TestOpenAPIDocumentRefusesWhatTheServerRefuses(t *testing.T) {
	t.Parallel()
	v := openAPIValidator(t)
	ok := func(reqBody string) error {
		return exchange(t, v, "POST", "/v1/decisions", reqBody, 201, "application/json", `{"bogus": 1}`)
	}
	for _, body := range []string{`{}`, `{"bogus": 1}`,
		`{"advertiser_id": "acme", "ad_id": "ad-1", "action": "ad_removal", "policy_code": "crypto", "ground": "terms",
		  "explanation": "x", "facts": "y", "source": "voluntary", "automated_detection": true, "automated_decision": "maybe"}`,
		`{"advertiser_id": "ac me", "ad_id": "ad-1", "action": "ad_removal", "policy_code": "crypto", "ground": "terms",
		  "explanation": "x", "facts": "y", "source": "voluntary", "automated_detection": true, "automated_decision": "none"}`,
	} {
		err := ok(body)
		require.Error(t, err, "a 201 to %s must be drift", body)
		require.Contains(t, err.Error(), "accepted a request the document refuses")
	}
	// A valid decision request is accepted; the reply here is no Decision.
	err := ok(`{"advertiser_id": "acme", "ad_id": "ad-1", "action": "ad_removal", "policy_code": "crypto", "ground": "terms",
		"explanation": "x", "facts": "y", "source": "voluntary", "automated_detection": true, "automated_decision": "none"}`)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "accepted a request")

	// Statuses and content types the server really answers.
	require.NoError(t, exchange(t, v, "POST", "/v1/appeals/claim", "", 204, "", ""))
	require.NoError(t, exchange(t, v, "GET", "/v1/policies?limit=0", "", 400, "application/problem+json",
		`{"type": "urn:docket:problem:invalid", "title": "Bad Request", "status": 400, "errors": [{"field": "limit", "message": "must be a whole number from 1 to 500"}]}`))
	require.NoError(t, exchange(t, v, "GET", "/v1/reports/appeals?format=csv", "", 200, "text/csv; charset=utf-8", "a,b\n1,2\n"))
	require.NoError(t, exchange(t, v, "GET", "/v1/exports/dsa", "", 200, "application/x-ndjson", ""))
	// And refuses what it does not: an undocumented status, content type, a
	// problem that is not one.
	require.Error(t, exchange(t, v, "GET", "/v1/policies", "", 418, "application/problem+json", `{}`))
	require.Error(t, exchange(t, v, "GET", "/v1/audit/key", "", 200, "application/json", `{}`))
	require.Error(t, exchange(t, v, "GET", "/v1/policies", "", 400, "application/problem+json", `{"title": "x"}`))
	require.Error(t, exchange(t, v, "GET", "/v1/exports/dsa", "", 200, "application/x-ndjson", "{\"bogus\": 1}\n"))
}

// TestOpenAPILint applies the rules of Redocly's recommended set that
// matter here, in Go, so `make test` keeps them without Node (make
// lint-openapi runs Redocly itself). With DOCKET_OPENAPI_OUT set it writes
// the document there.
func TestOpenAPILint(t *testing.T) {
	t.Parallel()
	doc, err := api.OpenAPIDocument()
	require.NoError(t, err)
	if out := os.Getenv("DOCKET_OPENAPI_OUT"); out != "" {
		require.NoError(t, os.WriteFile(out, doc, 0o644))
	}
	v := openAPIValidator(t)
	require.NotEmpty(t, v.Doc.Servers, "no-empty-servers")
	require.NotNil(t, v.Doc.Info.License, "info-license")
	tags := map[string]bool{}
	for _, tag := range v.Doc.Tags {
		tags[tag.Name] = true
	}
	ids := map[string]string{}
	for path, item := range v.Doc.Paths.Map() {
		for method, o := range item.Operations() {
			name := method + " " + path
			require.NotEmpty(t, o.OperationID, "operation-operationId: %s", name)
			other, dup := ids[o.OperationID]
			require.False(t, dup, "operation-operationId-unique: %s and %s", name, other)
			ids[o.OperationID] = name
			require.NotEmpty(t, o.Summary, "operation-summary: %s", name)
			has4xx, has2xx := false, false
			for code := range o.Responses.Map() {
				has4xx = has4xx || strings.HasPrefix(code, "4")
				has2xx = has2xx || strings.HasPrefix(code, "2")
			}
			require.True(t, has4xx, "operation-4xx-response: %s", name)
			require.True(t, has2xx, "operation-2xx-response: %s", name)
			require.NotEmpty(t, o.Tags, "operation-tag-defined: %s", name)
			for _, tag := range o.Tags {
				require.True(t, tags[tag], "operation-tag-defined: %s has undeclared tag %s", name, tag)
			}
			declared := map[string]bool{}
			for _, p := range o.Parameters {
				if p.Value.In == "path" {
					declared[p.Value.Name] = true
				}
			}
			for _, seg := range strings.Split(path, "/") {
				if strings.HasPrefix(seg, "{") {
					require.True(t, declared[strings.Trim(seg, "{}")], "path-parameters-defined: %s %s", name, seg)
				}
			}
			require.Len(t, declared, strings.Count(path, "{"), "path-parameters-defined: %s declares a parameter its path lacks", name)
			if o.Security != nil && len(*o.Security) == 0 {
				continue // public
			}
			require.Contains(t, o.Responses.Map(), "401", "security-defined: %s", name)
		}
	}
}
