package docket

// Role is what a token may do.
type Role string

const (
	RoleAdmin          Role = "admin"
	RoleEnforcer       Role = "enforcer"
	RoleReviewer       Role = "reviewer"
	RoleSeniorReviewer Role = "senior_reviewer"
	RoleAdvertiser     Role = "advertiser"
	RoleAuditor        Role = "auditor"
	// RoleSystem acts for Docket itself (lease expiry, the CLI); no token has it.
	RoleSystem Role = "system"
)

// Roles lists the roles a token can hold.
var Roles = []Role{RoleAdmin, RoleEnforcer, RoleReviewer, RoleSeniorReviewer, RoleAdvertiser, RoleAuditor}

// Valid reports whether a token can hold r.
func (r Role) Valid() bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// Actor is who acts. Name identifies a person or system across roles, so
// separation of duties compares names, not roles.
type Actor struct {
	Role         Role
	Name         string
	AdvertiserID string // set for advertisers only
}

// String is the form recorded in the log: "role:name". It names one actor
// unambiguously, also for advertisers, because a NAME is bound for good to
// one advertiser or to staff (see appeals.Store.CreateToken); the binding is in
// the log, in the NAME's first token.created entry.
func (a Actor) String() string { return string(a.Role) + ":" + a.Name }

// Is reports whether a holds one of roles.
func (a Actor) Is(roles ...Role) bool {
	for _, r := range roles {
		if a.Role == r {
			return true
		}
	}
	return false
}

// NameOf returns the name part of a recorded "role:name" actor.
func NameOf(recorded string) string {
	for i := 0; i < len(recorded); i++ {
		if recorded[i] == ':' {
			return recorded[i+1:]
		}
	}
	return recorded
}

// RoleOf returns the role part of a recorded "role:name" actor.
func RoleOf(recorded string) string {
	for i := 0; i < len(recorded); i++ {
		if recorded[i] == ':' {
			return recorded[:i]
		}
	}
	return recorded
}
