// Package console serves Docket's consoles for people, under /ui/:
// advertisers read their decisions' statements of reasons and file
// appeals; reviewers work the queue; auditors (and admins) read the audit
// log: the latest signed checkpoint, the entries, and each entry's exact
// bytes with its inclusion proof checked against that checkpoint. Other
// staff roles read decisions as the API lets them. Pages are rendered on the server with
// html/template from files embedded in the binary (embed); there is no
// build step and no client framework, only a small script (static/lease.js)
// that ticks a lease countdown the server already printed.
//
// One set of rules. Every page and form calls the same appeals.Store
// methods the JSON API calls (ListDecisions, Decision, FileAppeal, Claim,
// Resolve, Escalate, Withdraw, ...) with the signed-in actor, so tenant
// scope (another advertiser's decision is a 404 page), roles, the appeal
// state machine and separation of duties are the store's, checked once.
// What an advertiser reads comes through the store's views (ViewFor):
// staff by role only, no escalation reasons. The console adds only which
// roles a page admits, mirroring the API's routes.
//
// Sessions. A person signs in once with a bearer token (the ones `docket
// token create` makes); appeals.StartSession checks it as the API does and
// opens a session: a random 256-bit id in an HttpOnly, SameSite=Strict
// cookie (Secure when the request came over TLS), of which the database
// keeps only the SHA-256. A session is linked to its token: revoking the
// token ends its sessions at the next request, as do the idle expiry, the
// absolute expiry and signing out. Every sign-in makes a new id.
//
// CSRF. Every state-changing request is a POST form, and each passes two
// checks: net/http's CrossOriginProtection (Sec-Fetch-Site and Origin must
// say same origin) and a per-session CSRF token in a hidden field,
// compared in constant time. The sign-in form, which has no session yet,
// carries a nonce that must match a short-lived cookie (double submit).
//
// Headers. Every reply under /ui/ carries a strict Content-Security-Policy
// (only the console's own script and style files; no inline script, no
// frames, forms post only here), X-Content-Type-Options: nosniff,
// Referrer-Policy: no-referrer and X-Frame-Options: DENY; pages are
// Cache-Control: no-store.
//
// Input. A page takes only the query parameters it names; an unknown or
// repeated one, invalid UTF-8 or a NUL byte is a 400 page, as in the API.
// Forms take no query string, a body of at most 1 MiB, and no field with
// invalid UTF-8 or NUL; the store then validates each field and the form
// is shown again with the problems by field.
//
// Accessibility. Every control has a label, state is told in words and
// not only by colour, focus is always visible, the pages work by keyboard
// alone and reflow to a phone's width; the browser tests walk one path by
// keyboard only and one in a phone-sized viewport.
package console
