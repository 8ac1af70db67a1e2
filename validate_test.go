package docket_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
)

type color string

var colors = []color{"red", "green"}

// TestSharedChecks: each shared check names the field and says what is
// wrong in the words every validator uses.
func TestSharedChecks(t *testing.T) {
	t.Parallel()
	var p docket.Problems
	docket.Required(&p, "blank", "  ", 5)
	docket.Required(&p, "long", "abcdef", 5)
	docket.Required(&p, "dirty", "a\x00", 5)
	docket.Required(&p, "fine", "ünï", 3)
	docket.MaxLen(&p, "max", "abc", 2)
	docket.MaxLen(&p, "max_ok", "", 2)
	docket.OneOf(&p, "missing", color(""), colors)
	docket.OneOf(&p, "other", color("blue"), colors)
	docket.OneOf(&p, "one", color("red"), colors)
	docket.OptionalOneOf(&p, "opt_absent", color(""), colors)
	docket.OptionalOneOf(&p, "opt_bad", color("blue"), colors)
	docket.EachOneOf(&p, "each", []string{"red", "blue", "red"}, colors)
	docket.EachOneOf(&p, "many", []string{"red", "green", "red", "red", "red"}, colors)
	require.Equal(t, docket.Problems{
		{Field: "blank", Message: "is required"},
		{Field: "long", Message: "must be at most 5 characters"},
		{Field: "dirty", Message: docket.DirtyMessage},
		{Field: "max", Message: "must be at most 2 characters"},
		{Field: "missing", Message: "is required"},
		{Field: "other", Message: "must be one of red, green"},
		{Field: "opt_bad", Message: "must be one of red, green"},
		{Field: "each", Message: "must have at most 2 items"},
		{Field: "each[1]", Message: "must be one of red, green"},
		{Field: "each[2]", Message: "repeats red"},
		{Field: "many", Message: "must have at most 2 items"},
		{Field: "many[2]", Message: "repeats red"},
	}, p, "many checks only one item past the set's size")
	require.False(t, docket.CleanString(string([]byte{0xff})))
	require.True(t, docket.CleanString(strings.Repeat("é", 3)))
	require.Equal(t, []string{"red", "green"}, docket.Strings(colors))
}
