package appeals_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/internal/pgtest"
)

// TestReadOneByID: a decision and an appeal are read by their id the same
// way (getRow): bad bytes are Invalid, an id of no shape or of no record
// is NotFound, and another advertiser's record is NotFound too.
func TestReadOneByID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := appeals.NewStore(pgtest.New(t), appeals.Options{})
	admin := docket.Actor{Role: docket.RoleAdmin, Name: "ada"}
	_, err := store.PutPolicy(ctx, admin, "crypto", appeals.PolicyInput{Title: "Crypto", Text: "No token sales."})
	require.NoError(t, err)
	yes := true
	d, err := store.RecordDecision(ctx, docket.Actor{Role: docket.RoleEnforcer, Name: "pipeline"}, appeals.DecisionInput{
		AdvertiserID: "acme", AdID: "ad-1", Action: appeals.ActionAdRemoval, PolicyCode: "crypto", Ground: appeals.GroundTerms,
		Explanation: "e", Facts: "f", Source: appeals.SourceVoluntary, AutomatedDetection: &yes, AutomatedDecision: appeals.AutomatedNone})
	require.NoError(t, err)
	acme := docket.Actor{Role: docket.RoleAdvertiser, Name: "acme", AdvertiserID: "acme"}
	a, err := store.FileAppeal(ctx, acme, d.ID, appeals.AppealInput{Statement: "We are licensed."})
	require.NoError(t, err)

	got, err := store.Decision(ctx, acme, d.ID)
	require.NoError(t, err)
	require.Equal(t, d.ID, got.ID)
	gotA, err := store.Appeal(ctx, acme, a.ID)
	require.NoError(t, err)
	require.Equal(t, a.ID, gotA.ID)

	globex := docket.Actor{Role: docket.RoleAdvertiser, Name: "globex", AdvertiserID: "globex"}
	for id, code := range map[string]docket.Code{"d-\x00": docket.Invalid, "\xff": docket.Invalid, "a b": docket.NotFound,
		"0192f0c4-5e1a-7000-8000-000000000009": docket.NotFound} {
		_, err := store.Decision(ctx, admin, id)
		require.Equal(t, code, docket.ErrorCode(err), "decision %q: %v", id, err)
		_, err = store.Appeal(ctx, admin, id)
		require.Equal(t, code, docket.ErrorCode(err), "appeal %q: %v", id, err)
	}
	_, err = store.Decision(ctx, globex, d.ID)
	require.Equal(t, docket.NotFound, docket.ErrorCode(err), "another advertiser's decision")
	_, err = store.Appeal(ctx, globex, a.ID)
	require.Equal(t, docket.NotFound, docket.ErrorCode(err), "another advertiser's appeal")
}
