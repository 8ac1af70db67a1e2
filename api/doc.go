// Package api is Docket's HTTP interface: routes, authentication and
// authorization, JSON decoding, idempotent replays, and problem+json errors.
// It also owns the limits of the HTTP server (HTTPServer: timeouts, header
// size) and of clients (failed authentications per address, requests per
// token), so that `docket serve` and the tests run one configuration.
// It translates requests into domain calls (appeals, audit) and owns the one
// table that maps domain error codes to HTTP statuses. It holds no SQL.
//
// Hostile input is refused by name before it costs anything: every route
// is registered through checkedMux (params.go), which vets path values and
// the query against the parameters ops() documents; bodies pass a strict
// token pass (strict.go) before encoding/json; error bodies list at most
// docket.MaxFieldErrors fields, then how many more.
package api
