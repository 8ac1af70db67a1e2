package appeals

import "slices"

// The types of the audit entries the store stages, each named once here:
// the writes stage them by these constants, and api's export filter
// offers the list (EntryTypes), so that a type added here is selectable
// there. The log's own type, audit.EntryPredecessor, stays audit's.
const (
	EntryPolicyRevised    = "policy.revised"
	EntryDecisionRecorded = "decision.recorded"
	EntryDecisionReversed = "decision.reversed"
	EntryNoticeDelivered  = "notice.delivered"
	EntryAppealFiled      = "appeal.filed"
	EntryAppealClaimed    = "appeal.claimed"
	EntryAppealReleased   = "appeal.released"
	EntryAppealEscalated  = "appeal.escalated"
	EntryAppealResolved   = "appeal.resolved"
	EntryAppealWithdrawn  = "appeal.withdrawn"
	EntryTokenCreated     = "token.created"
	EntryTokenRevoked     = "token.revoked"
)

var entryTypes = []string{EntryPolicyRevised, EntryDecisionRecorded, EntryDecisionReversed, EntryNoticeDelivered,
	EntryAppealFiled, EntryAppealClaimed, EntryAppealReleased, EntryAppealEscalated, EntryAppealResolved,
	EntryAppealWithdrawn, EntryTokenCreated, EntryTokenRevoked}

// EntryTypes returns a copy of the entry types the store stages.
func EntryTypes() []string { return slices.Clone(entryTypes) }
