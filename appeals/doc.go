// Package appeals is Docket's domain: policies and their versions, the
// enforcement decisions taken under them, appeals against those decisions,
// the workflow's rules, the actors and tokens allowed to act, and their
// Postgres store. Every change of state commits together with its audit
// entry (audit.Append in the same transaction). It knows nothing of HTTP.
//
// No string reaches Postgres unchecked (input.go): ids and codes are vetted
// before any SQL, and before a call joins a queue batch; one call's failure
// in a batch makes every call of it retry alone (inLane), so one bad call
// never fails another.
package appeals
