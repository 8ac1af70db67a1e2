// Package api is Docket's HTTP interface: routes, authentication and
// authorization, JSON decoding, idempotent replays, and problem+json errors.
// It also owns the limits of the HTTP server (HTTPServer: timeouts, header
// size) and of clients (failed authentications per address, requests per
// token), so that `docket serve` and the tests run one configuration.
// It translates requests into domain calls (appeals, audit) and owns the one
// table that maps domain error codes to HTTP statuses. It holds no SQL.
package api
