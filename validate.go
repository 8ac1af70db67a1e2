package docket

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// The checks every validator shares, each adding to a Problems what is
// wrong with one field and naming it. The domain (appeals) and the DSA
// statement format (appeals/dsa) validate with the same words, so that a
// client reads one vocabulary of refusals.

// CleanString reports whether s is valid UTF-8 without NUL bytes: text
// Postgres stores as given (it refuses NUL and invalid UTF-8 with an
// error, which would otherwise surface as a 500).
func CleanString(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// DirtyMessage is what a field that fails CleanString is told.
const DirtyMessage = "must be valid UTF-8 without NUL bytes"

// Clean adds a problem for field when v fails CleanString; it reports
// whether v was clean, so the field's other checks can be skipped.
func Clean(p *Problems, field, v string) bool {
	if CleanString(v) {
		return true
	}
	p.Add(field, DirtyMessage)
	return false
}

// Required checks that the text v is clean, not blank, and at most max
// characters.
func Required(p *Problems, field, v string, max int) {
	if !Clean(p, field, v) {
		return
	}
	switch n := utf8.RuneCountInString(v); {
	case strings.TrimSpace(v) == "":
		p.Add(field, "is required")
	case n > max:
		p.Add(field, "must be at most %d characters", max)
	}
}

// MaxLen checks that v, when given, is at most max characters.
func MaxLen(p *Problems, field, v string, max int) {
	if utf8.RuneCountInString(v) > max {
		p.Add(field, "must be at most %d characters", max)
	}
}

// OneOf checks that v, required, is one of set.
func OneOf[T ~string](p *Problems, field string, v T, set []T) {
	if v == "" {
		p.Add(field, "is required")
	} else if !slices.Contains(set, v) {
		p.Add(field, "must be one of %s", joinSet(set))
	}
}

// OptionalOneOf checks v against set when it is given.
func OptionalOneOf[T ~string](p *Problems, field string, v T, set []T) {
	if v != "" && !slices.Contains(set, v) {
		p.Add(field, "must be one of %s", joinSet(set))
	}
}

// EachOneOf checks that each of vals is in set and none repeats, naming
// the bad element as field[i]. vals are strings, as a text[] column
// scans into.
func EachOneOf[T ~string](p *Problems, field string, vals []string, set []T) {
	// A list longer than set repeats a value; past that, checking more
	// items only costs.
	if len(vals) > len(set) {
		p.Add(field, "must have at most %d items", len(set))
		vals = vals[:len(set)+1]
	}
	for i, v := range vals {
		switch {
		case !slices.Contains(set, T(v)):
			p.Add(fmt.Sprintf("%s[%d]", field, i), "must be one of %s", joinSet(set))
		case slices.Index(vals, v) != i:
			p.Add(fmt.Sprintf("%s[%d]", field, i), "repeats %s", v)
		}
	}
}

// joinSet writes a set as a problem's message lists it.
func joinSet[T ~string](set []T) string { return strings.Join(Strings(set), ", ") }

// Strings converts a list of string-typed values (an enumeration's) to
// the plain strings of the wire.
func Strings[T ~string](set []T) []string {
	out := make([]string, len(set))
	for i, v := range set {
		out[i] = string(v)
	}
	return out
}
