package appeals

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The `enum` tags feed /openapi.json; the sets feed validation. This test
// keeps the two from drifting apart.
func TestEnumTagsMatchValidation(t *testing.T) {
	t.Parallel()
	want := map[string][]string{
		"action": actions, "ground": grounds, "source": sources, "automated_decision": automatedDecisions,
		"content_type": contentTypes, "status": decisionStatuses, "state": appealStates,
		"outcome": {AppealUpheld, AppealReversed}, "channel": noticeChannels,
	}
	checked := 0
	for _, v := range []any{Decision{}, DecisionInput{}, Appeal{}, ResolveInput{}, NoticeInput{}} {
		typ := reflect.TypeOf(v)
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag, ok := f.Tag.Lookup("enum")
			if !ok {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			set, known := want[name]
			require.True(t, known, "%s.%s has an enum tag but no validation set here", typ.Name(), f.Name)
			require.Equal(t, set, strings.Split(tag, ","), "%s.%s", typ.Name(), f.Name)
			checked++
		}
	}
	require.Equal(t, 15, checked)
}
