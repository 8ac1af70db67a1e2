package appeals

import (
	"regexp"

	"github.com/docket-dev/docket"
)

// Hostile input: every string that reaches Postgres is checked here or in
// api first (docket.CleanString), and in a batch (see batcher) a bad one
// would otherwise be the error of every call in it.

// checkID vets a record id (a decision's, an appeal's) before any SQL
// sees it. Docket's ids are UUIDs, and every id ever stored has the shape
// of ValidPlatformID, so anything else cannot name a record: bad bytes are
// the caller's error (Invalid, naming field), any other shape is NotFound
// without echoing the id, whose length the caller chose.
func checkID(what, field, id string) error {
	if !docket.CleanString(id) {
		return &docket.Error{Code: docket.Invalid, Message: "the request has invalid fields",
			Fields: []docket.FieldError{{Field: field, Message: docket.DirtyMessage}}}
	}
	if !ValidPlatformID(id) {
		return docket.Errorf(docket.NotFound, "%s not found", what)
	}
	return nil
}

// checkCode vets a policy code from a path as checkID vets an id.
func checkCode(code string) error {
	if !docket.CleanString(code) {
		return &docket.Error{Code: docket.Invalid, Message: "the request has invalid fields",
			Fields: []docket.FieldError{{Field: "code", Message: docket.DirtyMessage}}}
	}
	if !ValidPolicyCode(code) {
		return docket.Errorf(docket.NotFound, "policy not found")
	}
	return nil
}

// The shapes of identifiers, as patterns /openapi.json repeats (fields
// name them with a `pattern` tag).
const (
	PlatformIDPattern = `^[A-Za-z0-9._:-]{1,128}$`
	PolicyCodePattern = `^[a-z0-9-]{1,64}$`
)

var (
	platformIDRe = regexp.MustCompile(PlatformIDPattern)
	policyCodeRe = regexp.MustCompile(PolicyCodePattern)
	tokenNameRe  = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)
)

// ValidPlatformID reports whether s is an advertiser or ad identifier.
func ValidPlatformID(s string) bool { return platformIDRe.MatchString(s) }

// ValidPolicyCode reports whether s is a policy code.
func ValidPolicyCode(s string) bool { return policyCodeRe.MatchString(s) }
