package appeals

import "github.com/docket-dev/docket"

// Advertisers see staff by role only. Reviewers and enforcement staff act on
// an advertiser's business; their names are theirs, not the tenant's, and
// an escalation reason is an internal note between reviewers. The reasoned
// outcome (rationale) stays: it is the statement the advertiser is owed.
// Staff and auditors read everything. The log keeps every name: these views
// shape what the store returns to a caller, never what it records.

// roleOnly turns a recorded "role:name" actor into its role.
func roleOnly(recorded *string) *string {
	if recorded == nil {
		return nil
	}
	r := docket.RoleOf(*recorded)
	return &r
}

// ViewFor is a as by may read it.
func (a Appeal) ViewFor(by docket.Actor) Appeal {
	if by.Role != docket.RoleAdvertiser {
		return a
	}
	a.AssignedTo = roleOnly(a.AssignedTo)
	a.EscalatedBy = roleOnly(a.EscalatedBy)
	a.ResolvedBy = roleOnly(a.ResolvedBy)
	a.EscalationReason = nil
	return a
}

// ViewFor is d as by may read it: the enforcer or admin who decided is a
// member of staff like a reviewer, so an advertiser sees the role.
func (d Decision) ViewFor(by docket.Actor) Decision {
	if by.Role != docket.RoleAdvertiser {
		return d
	}
	d.DecidedBy = docket.RoleOf(d.DecidedBy)
	if d.Appeals != nil {
		as := make([]Appeal, len(d.Appeals))
		for i, a := range d.Appeals {
			as[i] = a.ViewFor(by)
		}
		d.Appeals = as
	}
	return d
}

// ViewFor is p as by may read it: the admin who wrote the version is staff.
func (p Policy) ViewFor(by docket.Actor) Policy {
	if by.Role == docket.RoleAdvertiser {
		p.CreatedBy = docket.RoleOf(p.CreatedBy)
	}
	return p
}
