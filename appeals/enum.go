package appeals

import (
	"fmt"
	"slices"
	"strings"

	"github.com/docket-dev/docket"
)

// The contract's closed sets of values. Each is declared once, here, as a
// type, its constants and the list of them: fields hold the type, so Go
// code compares and switches on the constants, never on a literal; the
// validators check input against the list (enum, optionalEnum, enumList);
// a field's `enumSet:"NAME"` tag names the list for /openapi.json, and the
// query parameters of the same name take it too (EnumSet); the tests range
// over it. No value is written out again in a tag or in the API.

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
	"dsa_categories":     DSACategories,
}

// values reads a typed list as the strings of the wire, for enumSets.
func values[T ~string](set []T) func() []string {
	return func() []string { return wire(set) }
}

// wire converts a typed list to its strings.
func wire[T ~string](set []T) []string {
	out := make([]string, len(set))
	for i, v := range set {
		out[i] = string(v)
	}
	return out
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

// enum checks that v, required, is one of set.
func enum[T ~string](p *docket.Problems, field string, v T, set []T) {
	if v == "" {
		p.Add(field, "is required")
	} else if !slices.Contains(set, v) {
		p.Add(field, "must be one of %s", join(set))
	}
}

// optionalEnum checks v against set when it is given.
func optionalEnum[T ~string](p *docket.Problems, field string, v T, set []T) {
	if v != "" && !slices.Contains(set, v) {
		p.Add(field, "must be one of %s", join(set))
	}
}

// enumList checks that each of vals is in set and none repeats, naming
// the bad element as field[i]. vals are strings: see ContentType.
func enumList[T ~string](p *docket.Problems, field string, vals []string, set []T) {
	// A list longer than set repeats a value; past that, checking more
	// items only costs.
	if len(vals) > len(set) {
		p.Add(field, "must have at most %d items", len(set))
		vals = vals[:len(set)+1]
	}
	for i, v := range vals {
		switch {
		case !slices.Contains(set, T(v)):
			p.Add(fmt.Sprintf("%s[%d]", field, i), "must be one of %s", join(set))
		case slices.Index(vals, v) != i:
			p.Add(fmt.Sprintf("%s[%d]", field, i), "repeats %s", v)
		}
	}
}

// join writes a set as a problem's message lists it.
func join[T ~string](set []T) string { return strings.Join(wire(set), ", ") }
