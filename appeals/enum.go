package appeals

import (
	"slices"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals/dsa"
)

// The contract's closed sets of values. Each is declared once, here, as a
// type, its constants and the list of them: fields hold the type, so Go
// code compares and switches on the constants, never on a literal; the
// validators check input against the list (docket.OneOf, OptionalOneOf,
// EachOneOf); a field's `enumSet:"NAME"` tag names the list for
// /openapi.json, and the query parameters of the same name take it too
// (EnumSet); the tests range over it. No value is written out again in a tag or in the API.

// Action is the measure a decision takes.
type Action string

// The actions.
const (
	ActionAdvertiserBan Action = "advertiser_ban"
	ActionAdRemoval     Action = "ad_removal"
	ActionAdRestriction Action = "ad_restriction"
)

var actions = []Action{ActionAdvertiserBan, ActionAdRemoval, ActionAdRestriction}

// Ground is what a decision rests on: the platform's terms, or the law.
type Ground string

// The grounds.
const (
	GroundTerms Ground = "terms"
	GroundLaw   Ground = "law"
)

var grounds = []Ground{GroundTerms, GroundLaw}

// Source is how the content a decision is about came to be reviewed.
type Source string

// The sources.
const (
	SourceVoluntary      Source = "voluntary"
	SourceNotice         Source = "notice"
	SourceTrustedFlagger Source = "trusted_flagger"
	SourceAuthority      Source = "authority"
)

var sources = []Source{SourceVoluntary, SourceNotice, SourceTrustedFlagger, SourceAuthority}

// AutomatedDecision is how far a decision was taken by automated means.
type AutomatedDecision string

// The degrees of automation.
const (
	AutomatedNone    AutomatedDecision = "none"
	AutomatedPartial AutomatedDecision = "partial"
	AutomatedFull    AutomatedDecision = "full"
)

var automatedDecisions = []AutomatedDecision{AutomatedNone, AutomatedPartial, AutomatedFull}

// ContentType is a kind of content a decision is about. The fields that
// list them stay []string (pq.StringArray in Decision): lib/pq scans a
// text[] only into that, and every caller writes them as string literals.
type ContentType string

// The content types.
const (
	ContentText           ContentType = "text"
	ContentImage          ContentType = "image"
	ContentVideo          ContentType = "video"
	ContentAudio          ContentType = "audio"
	ContentApp            ContentType = "app"
	ContentProduct        ContentType = "product"
	ContentSyntheticMedia ContentType = "synthetic_media"
	ContentOther          ContentType = "other"
)

var contentTypes = []ContentType{ContentText, ContentImage, ContentVideo, ContentAudio, ContentApp,
	ContentProduct, ContentSyntheticMedia, ContentOther}

// DecisionStatus is whether a decision's measure holds. Expired is derived
// from the clock on reading (Decision.effective), never stored.
type DecisionStatus string

// The decision statuses.
const (
	StatusInEffect DecisionStatus = "in_effect"
	StatusReversed DecisionStatus = "reversed"
	StatusExpired  DecisionStatus = "expired"
)

var decisionStatuses = []DecisionStatus{StatusInEffect, StatusReversed, StatusExpired}

// AppealState is where an appeal stands in the workflow (the open ones:
// openStates). An outcome is the state a review leaves an appeal in, so
// it is an AppealState too, of the list outcomes.
type AppealState string

// The appeal states.
const (
	AppealPending   AppealState = "pending"
	AppealInReview  AppealState = "in_review"
	AppealEscalated AppealState = "escalated"
	AppealUpheld    AppealState = "upheld"
	AppealReversed  AppealState = "reversed"
	AppealWithdrawn AppealState = "withdrawn"
)

var (
	appealStates = []AppealState{AppealPending, AppealInReview, AppealEscalated, AppealUpheld, AppealReversed, AppealWithdrawn}
	// outcomes are how a review ends.
	outcomes = []AppealState{AppealUpheld, AppealReversed}
)

// NoticeChannel is how a statement of reasons reached an advertiser.
type NoticeChannel string

// The notice channels.
const (
	ChannelEmail NoticeChannel = "email"
	ChannelInApp NoticeChannel = "in_app"
	ChannelAPI   NoticeChannel = "api"
	ChannelPost  NoticeChannel = "post"
	ChannelOther NoticeChannel = "other"
)

var noticeChannels = []NoticeChannel{ChannelEmail, ChannelInApp, ChannelAPI, ChannelPost, ChannelOther}

// enumSets names each list as the `enumSet` tags do.
var enumSets = map[string]func() []string{
	"action":             values(actions),
	"ground":             values(grounds),
	"source":             values(sources),
	"automated_decision": values(automatedDecisions),
	"content_type":       values(contentTypes),
	"decision_status":    values(decisionStatuses),
	"appeal_state":       values(appealStates),
	"outcome":            values(outcomes),
	"channel":            values(noticeChannels),
	"countries":          Countries,
	"dsa_categories":     dsa.Categories,
}

// values reads a typed list as the strings of the wire, for enumSets.
func values[T ~string](set []T) func() []string {
	return func() []string { return docket.Strings(set) }
}

// EnumSet returns a copy of the values of the set name (as a field's
// `enumSet` tag names it), and whether there is such a set.
func EnumSet(name string) ([]string, bool) {
	f, ok := enumSets[name]
	if !ok {
		return nil, false
	}
	return slices.Clone(f()), true
}
