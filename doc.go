// Package docket is Docket's shared vocabulary: the words every layer
// speaks and none owns. It holds who acts (Actor, and the Role a token
// grants, with Roles, the list a token may hold), how an expected
// failure is told (Error, with its Code, the FieldErrors naming bad
// inputs, and Problems, which collects them while validating), and the
// checks every validator shares (Required, OneOf, EachOneOf, CleanString
// and the rest), so that every refusal reads alike.
//
// It is the bottom layer, as in WTF Dial's root package: it imports
// nothing of the module, and any package may import it
// (internal/archtest holds it to that). The domain (appeals) returns
// *Error; the HTTP layer maps each Code to one status in one table
// (api/httpstatus, for the API and the consoles) and reads an Actor off
// each request's token; the typed client (api/client) decodes a refusal's FieldErrors; the log
// records an Actor by its String form, "role:name".
//
// What belongs here is what two packages would otherwise borrow from
// each other for a purpose unrelated to the lender: a role is not an
// appeal, so api's route table does not import appeals to name one. The
// domain's records (decisions, appeals, policies) and their rules stay in
// package appeals.
package docket
