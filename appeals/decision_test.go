package appeals_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
)

// TestDecisionPinsCurrentVersion records decisions through a store that
// has cached a policy's version while another process (a second store on
// the same database) revises the policy: each decision, and its audit
// entry, carries the version current when it was recorded, never the
// cached one.
func TestDecisionPinsCurrentVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	other := appeals.NewStore(f.db, appeals.Options{Now: f.clk.Now})

	d1 := f.decision(appeals.ActionAdRemoval)
	require.Equal(t, 1, d1.PolicyVersion)

	rev, err := other.PutPolicy(f.ctx, admin, "crypto", appeals.PolicyInput{Title: "Crypto", Text: "No crypto ads, nor NFTs."})
	require.NoError(t, err)
	require.Equal(t, 2, rev.Version)

	d2 := f.decision(appeals.ActionAdRemoval)
	require.Equal(t, 2, d2.PolicyVersion)
	require.Equal(t, rev.TextSHA256, d2.PolicyTextSHA256)

	var stored struct {
		Version int    `db:"policy_version"`
		SHA     string `db:"policy_text_sha256"`
	}
	require.NoError(t, f.db.Get(&stored, `SELECT policy_version, policy_text_sha256 FROM decisions WHERE id = $1`, d2.ID))
	require.Equal(t, 2, stored.Version)
	require.Equal(t, rev.TextSHA256, stored.SHA)

	var raw []byte
	require.NoError(t, f.db.Get(&raw, `SELECT entry FROM audit_staging WHERE subject_id = $1`, d2.ID))
	var e struct {
		audit.Entry
		Record appeals.Decision `json:"record"`
	}
	require.NoError(t, json.Unmarshal(raw, &e))
	require.Equal(t, "decision.recorded", e.Type)
	require.Equal(t, []audit.Subject{{Kind: "policy", ID: "crypto@2"}}, e.Refs)
	require.Equal(t, 2, e.Record.PolicyVersion)

	// A policy that does not exist names the field, and writes nothing.
	in := decisionInput(appeals.ActionAdRemoval)
	in.PolicyCode = "gambling"
	_, err = f.store.RecordDecision(f.ctx, enforcer, in)
	require.Equal(t, docket.Invalid, docket.ErrorCode(err))
	var problem *docket.Error
	require.ErrorAs(t, err, &problem)
	require.Equal(t, "policy_code", problem.Fields[0].Field)
	var n int
	require.NoError(t, f.db.Get(&n, `SELECT count(*) FROM decisions WHERE policy_code = 'gambling'`))
	require.Zero(t, n)
}
