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

// Who may do what: each right is one list, named for what it grants. The
// API's route table (api/routes.go) admits each route's callers by one of
// these, the consoles' pages by the same, and the store (appeals) checks
// the same list before it writes or reads, so a right is written once.
// RoleSystem (Docket itself, the CLI) is never in a list: a store method
// that also serves the CLI says so in its own rule.
var (
	// Readers read policies, decisions and appeals (an advertiser only its
	// own, by the store's rule): every role a token can hold.
	Readers = Roles
	// Admins revise policies and run bulk reversals.
	Admins = []Role{RoleAdmin}
	// Recorders record enforcement decisions and their notices (the
	// pipelines, and the mailer, run with enforcer tokens).
	Recorders = []Role{RoleEnforcer, RoleAdmin}
	// Reviewers claim, escalate and resolve appeals; no other role ever does.
	Reviewers = []Role{RoleReviewer, RoleSeniorReviewer}
	// Appellants file and withdraw appeals against decisions about them.
	Appellants = []Role{RoleAdvertiser}
	// Auditors read the whole audit log, export it and the DSA
	// statements, and read the transparency reports.
	Auditors = []Role{RoleAuditor, RoleAdmin}
)

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
