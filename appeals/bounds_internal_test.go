package appeals

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
)

// The `maxLength` tags feed /openapi.json; Validate enforces the bounds.
// This test keeps the two in step: a string field tagged n takes n
// characters and refuses n+1, and an untagged one is not bounded by
// Validate at all (a bound Validate has must be in the document).
func TestMaxLengthTagsMatchValidation(t *testing.T) {
	t.Parallel()
	// legal_reference is checked only when ground is law.
	inputs := []any{DecisionInput{Ground: "law"}, AppealInput{}, ResolveInput{}, EscalateInput{}, ReversalInput{}, PolicyInput{}, NoticeInput{}}
	bounded := 0
	for _, in := range inputs {
		typ := reflect.TypeOf(in)
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if f.Type.Kind() != reflect.String || f.Tag.Get("pattern") != "" ||
				f.Tag.Get("enumSet") != "" || f.Tag.Get("format") != "" {
				continue // shaped fields: their pattern or set bounds them
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			says := func(n int) bool {
				v := reflect.New(typ).Elem()
				v.Set(reflect.ValueOf(in))
				v.Field(i).SetString(strings.Repeat("é", n))
				return mentionsLength(v.Interface(), name)
			}
			tag, tagged := f.Tag.Lookup("maxLength")
			if !tagged {
				require.False(t, says(200_000), "%s.%s is bounded by Validate but has no maxLength tag", typ.Name(), f.Name)
				continue
			}
			n, err := strconv.Atoi(tag)
			require.NoError(t, err)
			require.False(t, says(n), "%s.%s: %d characters are refused, the tag says they are not", typ.Name(), f.Name, n)
			require.True(t, says(n+1), "%s.%s: %d characters are taken, the tag says at most %d", typ.Name(), f.Name, n+1, n)
			bounded++
		}
	}
	// Evidence items are validated through AppealInput.
	for _, c := range []struct {
		field string
		set   func(*EvidenceItem, int)
	}{
		{"description", func(e *EvidenceItem, n int) { e.Description = strings.Repeat("é", n) }},
		{"url", func(e *EvidenceItem, n int) {
			e.URL = "https://x.example/" + strings.Repeat("a", n-len("https://x.example/"))
		}},
	} {
		f, _ := reflect.TypeOf(EvidenceItem{}).FieldByNameFunc(func(s string) bool { return strings.EqualFold(s, c.field) })
		n, err := strconv.Atoi(f.Tag.Get("maxLength"))
		require.NoError(t, err, c.field)
		says := func(n int) bool {
			var e EvidenceItem
			c.set(&e, n)
			return mentionsLength(AppealInput{Statement: "s", Evidence: []EvidenceItem{e}}, "evidence[0]."+c.field)
		}
		require.False(t, says(n), "evidence %s of %d", c.field, n)
		require.True(t, says(n+1), "evidence %s of %d", c.field, n+1)
		bounded++
	}
	require.Equal(t, 12, bounded)
}

// mentionsLength reports whether v's Validate names field for its length.
func mentionsLength(v any, field string) bool {
	var e *docket.Error
	if !errors.As(v.(interface{ Validate() error }).Validate(), &e) {
		return false
	}
	for _, f := range e.Fields {
		if f.Field == field && (strings.Contains(f.Message, "at most") || strings.Contains(f.Message, "characters")) {
			return true
		}
	}
	return false
}
