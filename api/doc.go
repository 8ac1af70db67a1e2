// Package api is Docket's HTTP interface: routes, authentication and
// authorization, JSON decoding, idempotent replays, and problem+json errors.
// It translates requests into domain calls (appeals, audit) and owns the one
// table that maps domain error codes to HTTP statuses. It holds no SQL.
package api
