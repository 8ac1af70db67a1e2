package appeals

import "slices"

// The contract's closed sets of values. Each is declared once, as its
// constants and the list of them here: the validators check input against
// the list (enum, optionalEnum, enumList), a field's `enumSet:"NAME"` tag
// names it for /openapi.json and the query parameters of the same name
// take it too (EnumSet), and the tests range over it. No value is written
// out again in a tag or in the API.
var enumSets = map[string]func() []string{
	"action":             func() []string { return actions },
	"ground":             func() []string { return grounds },
	"source":             func() []string { return sources },
	"automated_decision": func() []string { return automatedDecisions },
	"content_type":       func() []string { return contentTypes },
	"decision_status":    func() []string { return decisionStatuses },
	"appeal_state":       func() []string { return appealStates },
	"outcome":            func() []string { return outcomes },
	"channel":            func() []string { return noticeChannels },
	"countries":          Countries,
	"dsa_categories":     DSACategories,
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
