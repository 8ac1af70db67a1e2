// Package api is Docket's HTTP interface. It turns requests into calls of
// the domain (package appeals) and the log (package audit) and their
// results into replies; it holds no SQL and no rule of the domain.
//
// # A request, end to end
//
// Every route is one line of routeTable (routes.go): its Go 1.22 pattern,
// the rights that may call it (docket.Readers, docket.Reviewers, ...; nil
// for a public route) and its handler. routes registers the table through
// checkedMux (params.go), which refuses, before any handler runs, a path
// value or query parameter that ops() does not document for the route, so
// hostile input costs nothing. An authed route then reads the bearer
// token (auth.go): the token is looked up by its hash through a small
// cache (authcache.go), failed look-ups are rate limited per client
// address (limit.go, before any look-up) and the caller becomes a
// docket.Actor, whose role the route's rights must include. The store
// checks the same rights again, from the same lists in package docket:
// the route table is the first gate, not the only one.
//
// A write's body passes a strict token pass (strict.go: duplicate or
// wrong-case keys, NUL, invalid UTF-8) before encoding/json, then the
// input's Validate; decodeWrite returns the input with its
// Idempotency-Key as an appeals.WriteOption (appeals.Idempotent), so the
// key is an explicit part of the write and its first reply, headers
// included, is stored in the same transaction as the change. A retry
// gets that reply back (*appeals.Replay, written by writeError).
//
// # Errors
//
// The domain returns *docket.Error with a Code; package httpstatus maps
// each Code to one HTTP status in one table, for the API and the consoles
// alike, and errors.go writes RFC 9457 problem+json naming the fields (at most docket.MaxFieldErrors, then how many more). A
// database that is down or slow is a 503 with Retry-After, never a 500:
// every /v1 request's database work ends at Config.DBTimeout. Only a 5xx
// whose client is still there is logged as an error.
//
// # The document and its readers
//
// ops.go describes each route's parameters, body, replies and headers;
// openapi.go builds /openapi.json from it and from routeTable's rights,
// and the schemas from the same Go types and enum lists the validators
// use. Tests validate every request and reply they make against that
// document (internal/oapitest), so the document cannot drift from the
// server. The typed Go client (api/client) is written on the same types.
//
// The consoles (api/console) are a second reader of the domain beside
// this package: server-rendered pages under /ui/ that call the same store
// methods with the same actors. This package mounts them; their code never
// imports it (only their tests do).
//
// # Limits
//
// The HTTP server's own limits (HTTPServer: header, read, write and idle
// timeouts, header size) and the clients' (failed authentications per
// address, requests per token) live here too, so that `docket serve` and
// the tests run one configuration.
package api
