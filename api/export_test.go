package api

// OpenAPIDocument is the document New serves, for the validating client
// of the tests (openapi_test.go).
func OpenAPIDocument() ([]byte, error) { return openAPIDocument(ops(), "test") }

// RoutePatterns are the patterns routes registers: the route table's, and
// /metrics (the consoles' prefix is not a pattern of Docket's API).
func RoutePatterns() []string {
	var out []string
	for _, rt := range routeTable() {
		out = append(out, rt.pattern)
	}
	return append(out, metricsPattern)
}
