package appeals_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/logtest"
)

// TestExportKeys: the log indexes entries by the keys this package hands
// it, so an export filtered by advertiser or by policy returns exactly the
// entries about that advertiser's or that policy's decisions, their
// appeals (filed, claimed, resolved, in a batch or alone), reversals
// (by appeal and in bulk), notices, and a policy's revisions; the log
// itself reads no field of theirs.
func TestExportKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := f.ctx
	_, err := f.store.PutPolicy(ctx, admin, "gambling", appeals.PolicyInput{Title: "Gambling", Text: "No betting ads."})
	require.NoError(t, err)
	_, _, err = f.store.CreateToken(ctx, admin, appeals.TokenInput{Name: "globex-owner", Role: docket.RoleAdvertiser, AdvertiserID: "globex"})
	require.NoError(t, err)

	record := func(advertiser, policy string, action appeals.Action) appeals.Decision {
		in := decisionInput(action)
		in.AdvertiserID, in.PolicyCode = advertiser, policy
		d, err := f.store.RecordDecision(ctx, enforcer, in)
		require.NoError(t, err)
		return d
	}
	d1 := record("acme", "crypto", appeals.ActionAdRemoval)
	d2 := record("globex", "gambling", appeals.ActionAdRemoval)
	d3 := record("acme", "gambling", appeals.ActionAdvertiserBan)
	_, err = f.store.RecordNotice(ctx, enforcer, d2.ID, appeals.NoticeInput{Channel: "email"})
	require.NoError(t, err)

	// d1: an appeal reversed (resolved alone, with the decision's reversal).
	a1 := f.file(d1)
	f.claim(rita)
	f.resolve(rita, a1.ID, appeals.AppealReversed)
	// d3: an appeal upheld (claimed and resolved through the batches).
	a3 := f.file(d3)
	f.claim(rita)
	f.resolve(rita, a3.ID, appeals.AppealUpheld)
	// gambling 1 withdrawn: d2 and d3 reversed in bulk.
	_, err = f.store.PutPolicy(ctx, admin, "gambling", appeals.PolicyInput{Title: "Gambling", Text: "No betting ads, anywhere."})
	require.NoError(t, err)
	_, err = f.store.ReversePolicyVersions(ctx, admin, "gambling", appeals.ReversalInput{Versions: []int{1}, Rationale: "Withdrawn."})
	require.NoError(t, err)

	logtest.Drain(t, logtest.New(t, f.db, audit.Options{}))

	// What each entry is about, from the domain's own facts.
	decisions := map[string]appeals.Decision{d1.ID: d1, d2.ID: d2, d3.ID: d3}
	appealOf := map[string]string{a1.ID: d1.ID, a3.ID: d3.ID}
	type about struct{ advertiser, policy string }
	var all []about
	require.NoError(t, audit.Export(ctx, f.db, audit.ExportFilter{}, -1, audit.Narrow, func(r *audit.Row) error {
		var e struct {
			Subject audit.Subject `json:"subject"`
			Record  struct {
				AdvertiserID *string `json:"advertiser_id"`
			} `json:"record"`
		}
		require.NoError(t, json.Unmarshal(r.Data, &e))
		var a about
		switch e.Subject.Kind {
		case "decision":
			a = about{decisions[e.Subject.ID].AdvertiserID, decisions[e.Subject.ID].PolicyCode}
		case "appeal":
			d := decisions[appealOf[e.Subject.ID]]
			a = about{d.AdvertiserID, d.PolicyCode}
		case "policy":
			a = about{policy: e.Subject.ID}
		case "token":
			if e.Record.AdvertiserID != nil {
				a = about{advertiser: *e.Record.AdvertiserID}
			}
		}
		all = append(all, a)
		return nil
	}))

	export := func(flt audit.ExportFilter) (idx []int64, kinds map[string]int) {
		idx, kinds = []int64{}, map[string]int{}
		require.NoError(t, audit.Export(ctx, f.db, flt, -1, audit.Narrow, func(r *audit.Row) error {
			idx = append(idx, r.Index)
			kinds[string(r.Type)]++
			return nil
		}))
		n, err := audit.CountExport(ctx, f.db, flt, -1)
		require.NoError(t, err)
		require.EqualValues(t, len(idx), n)
		return idx, kinds
	}
	for _, c := range []struct{ advertiser, policy string }{
		{"acme", ""}, {"globex", ""}, {"", "crypto"}, {"", "gambling"}, {"acme", "gambling"}, {"globex", "crypto"}, {"nobody", ""},
	} {
		want := []int64{}
		for i, a := range all {
			if (c.advertiser == "" || a.advertiser == c.advertiser) && (c.policy == "" || a.policy == c.policy) {
				want = append(want, int64(i))
			}
		}
		got, _ := export(audit.ExportFilter{Keys: appeals.AuditKeys(c.advertiser, c.policy)})
		require.Equal(t, want, got, "advertiser %q policy %q", c.advertiser, c.policy)
	}

	// Spelled out: acme's history holds its appeals' entries, and the
	// bulk reversal of its gambling decision.
	_, kinds := export(audit.ExportFilter{Keys: appeals.AuditKeys("acme", "")})
	require.Equal(t, map[string]int{"decision.recorded": 2, "appeal.filed": 2, "appeal.claimed": 2, "appeal.resolved": 2,
		"decision.reversed": 2}, kinds)
	_, kinds = export(audit.ExportFilter{Keys: appeals.AuditKeys("", "gambling")})
	require.Equal(t, map[string]int{"policy.revised": 2, "decision.recorded": 2, "notice.delivered": 1,
		"appeal.filed": 1, "appeal.claimed": 1, "appeal.resolved": 1, "decision.reversed": 2}, kinds)
	_, kinds = export(audit.ExportFilter{Keys: appeals.AuditKeys("globex", "")})
	require.Equal(t, map[string]int{"token.created": 1, "decision.recorded": 1, "notice.delivered": 1,
		"decision.reversed": 1}, kinds)

	// The keys are the log's index, not part of any record it keeps.
	var leaked int
	require.NoError(t, f.db.Get(&leaked, `SELECT count(*) FROM audit_staging
		WHERE position('"policy_code"' IN convert_from(entry, 'UTF8')) > 0 AND type LIKE 'appeal.%'`))
	require.Zero(t, leaked, "an appeal's policy is its key, not a field of its record")
}
