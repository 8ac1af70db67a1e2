package appeals

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/pgtest"
)

// TestStateListsMatchTheIndexes holds the partial indexes the migrations
// wrote to the state lists the statements splice in (openStates,
// leasedStates): a statement selecting open appeals must say exactly the
// index's predicate for the planner to use it, so a state added in Go and
// not in a migration (or the reverse) fails here.
func TestStateListsMatchTheIndexes(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	want := map[string][]AppealState{"appeals_one_open": openStates, "appeals_queue": openStates, "appeals_leases": leasedStates}
	quoted := regexp.MustCompile(`'([a-z_]+)'::text`)
	for index, states := range want {
		var def string
		require.NoError(t, db.Get(&def, `SELECT indexdef FROM pg_indexes WHERE tablename = 'appeals' AND indexname = $1`, index))
		var got []AppealState
		for _, m := range quoted.FindAllStringSubmatch(def, -1) {
			got = append(got, AppealState(m[1]))
		}
		require.Equal(t, states, got, "%s: %s", index, def)
	}
	// And the table's checks say the same: the states it admits are the
	// contract's, and the resolved ones are those with an outcome.
	var checks []string
	require.NoError(t, db.Select(&checks, `SELECT pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = 'appeals'::regclass AND pg_get_constraintdef(oid) LIKE '%state = ANY%' ORDER BY conname`))
	var lists [][]AppealState
	for _, c := range checks {
		var l []AppealState
		for _, m := range quoted.FindAllStringSubmatch(c, -1) {
			l = append(l, AppealState(m[1]))
		}
		lists = append(lists, l)
	}
	require.Contains(t, lists, appealStates, "%q", checks)
	require.Contains(t, lists, resolvedStates, "%q", checks)
}
