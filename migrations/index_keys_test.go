package migrations_test

import (
	"context"
	"testing"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/pgtest"
	"github.com/docket-dev/docket/migrations"
)

// TestIndexKeysBackfill migrates a database holding entries staged before
// index keys existed: 00011 gives each the keys the appeals package now
// hands (an appeal's and a notice's inherited from their decision), leaves
// every entry's bytes as they were, keeps the log append-only, and copies
// each appeal's decision's policy.
func TestIndexKeysBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlx.Open("postgres", pgtest.NewURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, db.DB, migrations.FS)
	require.NoError(t, err)
	_, err = p.UpTo(ctx, 10)
	require.NoError(t, err)

	_, err = db.Exec(`
		INSERT INTO policies (code, version, title, text, text_sha256, created_at, created_by)
		VALUES ('crypto', 1, 'Crypto', 'No crypto ads.', 'x', now(), 'admin:ada');
		INSERT INTO decisions (id, advertiser_id, action, policy_code, policy_version, policy_text_sha256, ground,
			explanation, facts, source, automated_detection, automated_decision, status, decided_by, decided_at, appeal_deadline)
		VALUES ('d1', 'acme', 'ad_removal', 'crypto', 1, 'x', 'terms', 'e', 'f', 'voluntary', true, 'none', 'in_effect',
			'enforcer:pipe', now(), now() + interval '6 months');
		INSERT INTO appeals (id, decision_id, advertiser_id, decider_name, state, statement, filed_by, filed_at, due_at)
		VALUES ('a1', 'd1', 'acme', 'pipe', 'pending', 's', 'advertiser:acme-owner', now(), now() + interval '14 days');`)
	require.NoError(t, err)
	old := []struct{ typ, kind, id, entry, keys string }{
		{"policy.revised", "policy", "crypto", `{"type":"policy.revised","subject":{"kind":"policy","id":"crypto"},"record":{"code":"crypto"}}`,
			`{"policy": "crypto"}`},
		{"decision.recorded", "decision", "d1", `{"type":"decision.recorded","subject":{"kind":"decision","id":"d1"},"record":{"id":"d1","advertiser_id":"acme","policy_code":"crypto"}}`,
			`{"policy": "crypto", "advertiser": "acme"}`},
		{"notice.delivered", "decision", "d1", `{"type":"notice.delivered","subject":{"kind":"decision","id":"d1"},"record":{"decision_id":"d1","advertiser_id":"acme"}}`,
			`{"policy": "crypto", "advertiser": "acme"}`},
		{"appeal.claimed", "appeal", "a1", `{"type":"appeal.claimed","subject":{"kind":"appeal","id":"a1"},"refs":[{"kind":"decision","id":"d1"}],"record":{"id":"a1","decision_id":"d1","advertiser_id":"acme"}}`,
			`{"policy": "crypto", "advertiser": "acme"}`},
		{"decision.reversed", "decision", "d1", `{"type":"decision.reversed","subject":{"kind":"decision","id":"d1"},"refs":[{"kind":"appeal","id":"a1"}]}`,
			`{"policy": "crypto", "advertiser": "acme"}`},
		{"token.created", "token", "t1", `{"type":"token.created","subject":{"kind":"token","id":"t1"},"record":{"advertiser_id":"acme"}}`,
			`{"advertiser": "acme"}`},
		{"token.created", "token", "t2", `{"type":"token.created","subject":{"kind":"token","id":"t2"},"record":{"name":"ada"}}`, `{}`},
		{"token.created", "token", "t3", `not json`, `{}`},
	}
	for _, e := range old {
		_, err := db.Exec(`INSERT INTO audit_staging (type, actor, subject_kind, subject_id, entry) VALUES ($1, 'x', $2, $3, $4)`,
			e.typ, e.kind, e.id, []byte(e.entry))
		require.NoError(t, err)
	}

	_, err = p.UpTo(ctx, 11)
	require.NoError(t, err)
	var rows []struct {
		Entry []byte `db:"entry"`
		Keys  string `db:"keys"`
	}
	require.NoError(t, db.Select(&rows, `SELECT entry, keys::text AS keys FROM audit_staging ORDER BY id`))
	require.Len(t, rows, len(old))
	for i, r := range rows {
		require.Equal(t, old[i].entry, string(r.Entry), "the entry's bytes are untouched")
		require.JSONEq(t, old[i].keys, r.Keys, old[i].entry)
	}
	var policy string
	require.NoError(t, db.Get(&policy, `SELECT policy_code FROM appeals WHERE id = 'a1'`))
	require.Equal(t, "crypto", policy)
	_, err = db.Exec(`UPDATE audit_staging SET keys = '{}'`)
	require.ErrorContains(t, err, "append-only", "the trigger is back")

	// Down and up again.
	_, err = p.DownTo(ctx, 10)
	require.NoError(t, err)
	_, err = p.UpTo(ctx, 11)
	require.NoError(t, err)
}
