// Package console serves Docket's consoles for people, under /ui/:
// advertisers read their decisions' statements of reasons and file
// appeals; reviewers work the queue; auditors (and admins) read the audit
// log: the latest signed checkpoint, the entries, and each entry's exact
// bytes with its inclusion proof checked against that checkpoint, and the
// transparency figures (Store.AppealsReport, Store.ReportSeries) as charts
// drawn on the server as SVG (report.go: bars laid out in Go, markup
// written and escaped by the template, no script), with exports; admins
// (policy owners) read each policy's versions with a diff between any two
// and reverse decisions in bulk: the form previews the count
// (Store.CountReversible, the same role and checks as the reversal, and
// the same selection of decisions in effect), then a confirmation runs
// Store.ReversePolicyVersions and shows its report; they also write new
// policies and revise them (Store.PutPolicy, as PUT /v1/policies/{code}).
// Enforcers and admins record a decision by hand (Store.RecordDecision)
// and a decision's notice (Store.RecordNotice). Everyone lists the appeals
// they may read (Store.ListAppeals). Other staff roles read decisions as
// the API lets them. Pages are rendered on the server with
// html/template from files embedded in the binary (embed); there is no
// build step and no client framework, only two small scripts:
// static/lease.js ticks a lease countdown the server already printed, and
// static/verify.js checks an audit entry in the browser (below).
//
// Checked by the auditor, not only by the server. A check done only by
// the server being audited proves nothing, so an entry's page also hands
// the browser the entry's bytes, its inclusion proof and the signed
// checkpoint, and verify.js (WebCrypto) recomputes the leaf hash
// SHA-256(0x00||entry) and the root (RFC 9162 2.1.3.2), checks the
// checkpoint's Ed25519 note signature with the verifier key, and checks it
// extends the checkpoint the auditor holds: one pinned in localStorage
// from an earlier visit (the first pin is trust on first use) or pasted,
// through a consistency proof fetched from /ui/audit/consistency (RFC 9162
// 2.1.4.2). A newer checkpoint that verifies becomes the pinned one. The
// verifier key is read from the page: an auditor who wants to trust no
// page pastes a checkpoint verified elsewhere (docket verify) or checks the
// key shown against the one published.
//
// Exports. The API's export routes take bearer tokens, which a browser
// session does not hold, so the console serves the same exports under
// /ui/exports/ (auditors and admins, by session) through the functions
// the API's handlers call: audit.jsonl and audit.csv (audit.Export),
// dsa.jsonl (Store.ExportDSA), report.json and report.csv
// (Store.AppealsReport), and bundle.json: the latest signed checkpoint,
// the verifier key and every entry it covers (exact bytes, base64), from
// which anyone recomputes the root and checks the signature offline.
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
// cookie, of which the database keeps only the SHA-256. The cookies are
// Secure when the request came over TLS: to this server, or to a
// TLS-terminating proxy the API trusts (DOCKET_TRUSTED_PROXIES, the same
// list that names X-Forwarded-For's client) that sends X-Forwarded-Proto:
// https; from any other peer that header is ignored (Config.TLS). A
// session is linked to its token: revoking the token ends its sessions at
// the next request, as do the idle expiry and the absolute expiry
// (Config.Sessions: DOCKET_SESSION_IDLE, DOCKET_SESSION_MAX, 30 minutes
// and 12 hours by default) and signing out. Every sign-in makes a new id.
//
// CSRF. Every state-changing request is a POST form, and each passes two
// checks: net/http's CrossOriginProtection (Sec-Fetch-Site and Origin must
// say same origin) and a per-session CSRF token in a hidden field,
// compared in constant time. The sign-in form, which has no session yet,
// carries a nonce that must match a short-lived cookie (double submit).
//
// Headers. Every reply under /ui/ carries a strict Content-Security-Policy
// (only the console's own script and style files; no inline script, no
// frames, forms post only here, fetch only to here), X-Content-Type-Options: nosniff,
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
