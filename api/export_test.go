package api

// OpenAPIDocument is the document New serves, for the validating client
// of the tests (openapi_test.go).
func OpenAPIDocument() ([]byte, error) { return openAPIDocument(ops(), "test") }
