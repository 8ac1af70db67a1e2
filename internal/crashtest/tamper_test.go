package crashtest

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
)

// checkerCatches breaks each guarantee in turn, on the run's own database
// (in a transaction rolled back afterwards) or in a copy of its ledger,
// and requires Check or CheckDelivery to name the break.
func checkerCatches(t *testing.T, db *sqlx.DB, ops []Op, n int64, delivered []int64) {
	ctx := context.Background()
	var keyed, acked Op
	for _, o := range ops {
		if o.Kind == KindDecision && o.Acked() && o.Key != "" && keyed.ID == "" {
			keyed = o
		}
		if o.Kind == KindDecision && o.Acked() && o.Key == "" && acked.ID == "" {
			acked = o
		}
	}
	require.NotEmpty(t, keyed.ID)
	require.NotEmpty(t, acked.ID)

	cases := []struct {
		name   string
		ops    func() []Op
		tamper string // SQL run in the transaction
		want   string
	}{
		{name: "an acknowledged decision that is not in the database",
			ops: func() []Op {
				return append(append([]Op(nil), ops...), Op{Kind: KindDecision, Status: 201, ID: "never-made", AdID: "ad-never"})
			},
			want: "acked: decision never-made (ad ad-never) is not in the database"},
		{name: "a keyed request whose retry was refused",
			ops: func() []Op {
				return append(append([]Op(nil), ops...), Op{Kind: KindAppeal, Key: "k-409", Status: 409, Attempts: 2})
			},
			want: "idempotency: appeal with key k-409 ended with status 409"},
		{name: "a retry after a dropped reply that answered another change",
			ops: func() []Op {
				o := append([]Op(nil), ops...)
				return append(o, Op{Kind: KindClaim, Key: "k-lost", Status: 200, Attempts: 2, ID: acked.ID, LostStatus: 200, LostID: "other"})
			},
			want: `idempotency: claim with key k-lost answered 200 "` + acked.ID + `" after a dropped 200 "other"`},
		{name: "a server error on some attempt",
			ops: func() []Op {
				o := append([]Op(nil), ops...)
				return append(o, Op{Kind: KindResolve, Key: "k-500", Status: 200, Attempts: 2, ID: acked.ID, Faults: []int{500}})
			},
			want: `http: a resolve write (key "k-500", id "` + acked.ID + `") answered 500`},
		{name: "a change without its entry",
			tamper: `CREATE TEMP TABLE d ON COMMIT DROP AS SELECT * FROM decisions WHERE id = '` + acked.ID + `';
				UPDATE d SET id = 'copied', ad_id = 'copied-ad'; INSERT INTO decisions SELECT * FROM d`,
			want: "entry: decision copied has 0 decision.recorded entries, want 1"},
		{name: "an entry without its change",
			tamper: `INSERT INTO audit_staging (type, actor, subject_kind, subject_id, entry) VALUES ('appeal.filed', 'x', 'appeal', 'no-such-appeal', '{}')`,
			want:   "entry: appeal.filed entry of appeal no-such-appeal without its change"},
		{name: "an acknowledged write logged twice",
			tamper: `INSERT INTO audit_staging (type, actor, subject_kind, subject_id, entry) VALUES ('decision.recorded', 'x', 'decision', '` + acked.ID + `', '{}')`,
			want:   "entry: acknowledged decision " + acked.ID + " has 2 decision.recorded entries, want 1"},
		{name: "a staged entry never integrated",
			tamper: `INSERT INTO audit_staging (type, actor, subject_kind, subject_id, entry) VALUES ('token.created', 'x', 'token', 't', '{}')`,
			want:   "log: entry token.created of token t was never integrated"},
		{name: "a keyed request retried into a second change",
			tamper: `CREATE TEMP TABLE d ON COMMIT DROP AS SELECT * FROM decisions WHERE id = '` + keyed.ID + `';
				UPDATE d SET id = 'retried'; INSERT INTO decisions SELECT * FROM d`,
			want: "idempotency: key " + keyed.Key + " (ad " + keyed.AdID + ") made 2 decisions"},
		{name: "a hole in the indices",
			tamper: `WITH s AS (INSERT INTO audit_staging (type, actor, subject_kind, subject_id, entry) VALUES ('token.created', 'x', 'token', 't', '{}') RETURNING id)
				INSERT INTO audit_leaves (idx, staging_id, leaf_hash) SELECT (SELECT count(*) + 1 FROM audit_leaves), id, '\x00' FROM s`,
			want: "log: "},
		{name: "a checkpoint inconsistent with the others",
			tamper: `INSERT INTO audit_checkpoints (size, root, note)
				SELECT s, '\xdeadbeef', 'forged' FROM generate_series(1, (SELECT max(size) FROM audit_checkpoints)) s
				WHERE s NOT IN (SELECT size FROM audit_checkpoints) LIMIT 1`,
			want: "has root deadbeef"},
	}
	for _, c := range cases {
		t.Run("checker catches "+c.name, func(t *testing.T) {
			tx, err := db.BeginTxx(ctx, nil)
			require.NoError(t, err)
			defer tx.Rollback()
			if c.tamper != "" {
				_, err := tx.ExecContext(ctx, c.tamper)
				require.NoError(t, err)
			}
			o := ops
			if c.ops != nil {
				o = c.ops()
			}
			rep, err := Check(ctx, tx, o)
			require.NoError(t, err)
			require.NotEmpty(t, rep.Problems)
			found := false
			for _, p := range rep.Problems {
				found = found || contains(p, c.want)
			}
			require.True(t, found, "want a problem with %q, got %q", c.want, rep.Problems)
		})
	}

	t.Run("delivery check catches a duplicate, a gap and disorder", func(t *testing.T) {
		require.Empty(t, CheckDelivery("c", delivered, n))
		dup := append(append([]int64(nil), delivered...), delivered[len(delivered)-1])
		require.Contains(t, CheckDelivery("c", dup, n)[0], "delivered more than once")
		gap := append([]int64(nil), delivered[:len(delivered)-1]...)
		require.Contains(t, CheckDelivery("c", gap, n), "nats: c: index "+itoa(n-1)+" never delivered")
		swapped := append([]int64(nil), delivered...)
		swapped[1], swapped[2] = swapped[2], swapped[1]
		require.Contains(t, CheckDelivery("c", swapped, n)[0], "out of order")
	})
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
