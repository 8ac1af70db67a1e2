package crashtest

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/jmoiron/sqlx"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Report is what Check found.
type Report struct {
	// Problems, each starting with the guarantee it breaks:
	// "acked:", "entry:", "idempotency:", "log:" or "checkpoint:".
	Problems []string
	Acked    map[string]int // acknowledged writes by kind
	Unknown  int            // writes without a definite reply (no key)
	Retried  int            // keyed writes sent more than once
	Lost     int            // keyed writes whose first reply the client dropped
	Entries  int64
	Checks   int // checkpoints checked against the tree
}

func (r *Report) add(format string, args ...any) {
	if len(r.Problems) < 200 {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

type decisionRow struct {
	ID       string  `db:"id"`
	AdID     *string `db:"ad_id"`
	Status   string  `db:"status"`
	Policy   string  `db:"policy_code"`
	Reversal *string `db:"reversed_by_reversal"`
}

type appealRow struct {
	ID       string `db:"id"`
	Decision string `db:"decision_id"`
	State    string `db:"state"`
}

type entryRow struct {
	Type string `db:"type"`
	Kind string `db:"subject_kind"`
	ID   string `db:"subject_id"`
	Idx  *int64 `db:"idx"`
}

// Check compares ops, what the clients were told, with the database q
// (a *sqlx.DB, or a transaction holding tampered rows): it reads only.
func Check(ctx context.Context, q sqlx.QueryerContext, ops []Op) (*Report, error) {
	r := &Report{Acked: map[string]int{}}
	var decisions []decisionRow
	if err := sqlx.SelectContext(ctx, q, &decisions, `SELECT id, ad_id, status, policy_code, reversed_by_reversal FROM decisions`); err != nil {
		return nil, fmt.Errorf("crashtest: read decisions: %w", err)
	}
	var appeals []appealRow
	if err := sqlx.SelectContext(ctx, q, &appeals, `SELECT id, decision_id, state FROM appeals`); err != nil {
		return nil, fmt.Errorf("crashtest: read appeals: %w", err)
	}
	var policies []struct {
		Code     string `db:"code"`
		Versions int    `db:"versions"`
	}
	if err := sqlx.SelectContext(ctx, q, &policies, `SELECT code, count(*) AS versions FROM policies GROUP BY code`); err != nil {
		return nil, fmt.Errorf("crashtest: read policies: %w", err)
	}
	var entries []entryRow
	if err := sqlx.SelectContext(ctx, q, &entries, `SELECT s.type, s.subject_kind, s.subject_id, l.idx
		FROM audit_staging s LEFT JOIN audit_leaves l ON l.staging_id = s.id`); err != nil {
		return nil, fmt.Errorf("crashtest: read entries: %w", err)
	}

	// Entries by type and subject; every staged entry must be a leaf.
	count := map[string]int{}
	for _, e := range entries {
		count[e.Type+" "+e.ID]++
		if e.Idx == nil {
			r.add("log: entry %s of %s %s was never integrated", e.Type, e.Kind, e.ID)
		}
	}
	one := func(typ, id, what string) {
		if n := count[typ+" "+id]; n != 1 {
			r.add("entry: %s has %d %s entries, want 1", what, n, typ)
		}
	}
	dByID := map[string]decisionRow{}
	byAd := map[string][]string{}
	for _, d := range decisions {
		dByID[d.ID] = d
		if d.AdID != nil {
			byAd[*d.AdID] = append(byAd[*d.AdID], d.ID)
		}
	}
	aByID := map[string]appealRow{}
	for _, a := range appeals {
		aByID[a.ID] = a
	}

	// Every acknowledged write is in the database, with one entry.
	unknownClaims := 0
	for _, o := range ops {
		if o.Key != "" && o.Attempts > 1 {
			r.Retried++
		}
		if o.LostStatus != 0 {
			r.Lost++
			if o.Status != o.LostStatus || o.ID != o.LostID {
				r.add("idempotency: %s with key %s answered %d %q after a dropped %d %q, want the same reply", o.Kind, o.Key, o.Status, o.ID, o.LostStatus, o.LostID)
			}
		}
		if !o.Acked() {
			if o.Key != "" {
				r.add("idempotency: %s with key %s ended with status %d after %d attempts, want a 2xx", o.Kind, o.Key, o.Status, o.Attempts)
			} else if o.Status == 0 {
				r.Unknown++
				if o.Kind == KindClaim {
					unknownClaims++
				}
			}
			continue
		}
		if o.Kind == KindClaim && o.ID == "" {
			continue // 204: nothing was waiting
		}
		r.Acked[o.Kind]++
		switch o.Kind {
		case KindPolicy:
			// Checked below, with every policy.
		case KindDecision:
			d, ok := dByID[o.ID]
			if !ok {
				r.add("acked: decision %s (ad %s) is not in the database", o.ID, o.AdID)
				continue
			}
			if d.AdID == nil || *d.AdID != o.AdID {
				r.add("acked: decision %s has another ad than the %s acknowledged", o.ID, o.AdID)
			}
			one("decision.recorded", o.ID, "acknowledged decision "+o.ID)
			if o.Key != "" && len(byAd[o.AdID]) != 1 {
				r.add("idempotency: key %s (ad %s) made %d decisions %v, want 1", o.Key, o.AdID, len(byAd[o.AdID]), byAd[o.AdID])
			}
		case KindAppeal:
			a, ok := aByID[o.ID]
			if !ok || a.Decision != o.Ref {
				r.add("acked: appeal %s of decision %s is not in the database", o.ID, o.Ref)
				continue
			}
			one("appeal.filed", o.ID, "acknowledged appeal "+o.ID)
		case KindClaim:
			a, ok := aByID[o.ID]
			if !ok || a.State == "pending" || a.State == "withdrawn" {
				r.add("acked: claim of appeal %s is not in the database (state %q)", o.ID, a.State)
				continue
			}
			one("appeal.claimed", o.ID, "acknowledged claim of appeal "+o.ID)
		case KindResolve:
			a, ok := aByID[o.ID]
			if !ok || a.State != o.Outcome {
				r.add("acked: resolution %s of appeal %s is not in the database (state %q)", o.Outcome, o.ID, a.State)
				continue
			}
			one("appeal.resolved", o.ID, "acknowledged resolution of appeal "+o.ID)
			if o.Outcome == "reversed" {
				if d := dByID[a.Decision]; d.Status != "reversed" {
					r.add("acked: reversal of decision %s by appeal %s is not in the database (status %q)", a.Decision, o.ID, d.Status)
				}
				one("decision.reversed", a.Decision, "decision "+a.Decision+" reversed by appeal "+o.ID)
			}
		case KindBulk:
			n := 0
			for _, d := range decisions {
				if d.Policy != o.Ref {
					continue
				}
				n++
				if d.Status != "reversed" || d.Reversal == nil || *d.Reversal != o.ID {
					r.add("acked: bulk reversal %s of %s left decision %s %s", o.ID, o.Ref, d.ID, d.Status)
				}
				one("decision.reversed", d.ID, "decision "+d.ID+" reversed in bulk")
			}
			if n == 0 {
				r.add("acked: bulk reversal %s of %s found no decisions", o.ID, o.Ref)
			}
		}
	}

	// No change without its entry, no entry without its change.
	for _, d := range decisions {
		one("decision.recorded", d.ID, "decision "+d.ID)
		want := 0
		if d.Status == "reversed" {
			want = 1
		}
		if n := count["decision.reversed "+d.ID]; n != want {
			r.add("entry: decision %s (%s) has %d decision.reversed entries, want %d", d.ID, d.Status, n, want)
		}
	}
	for _, a := range appeals {
		one("appeal.filed", a.ID, "appeal "+a.ID)
		claimed, resolved := 0, 0
		switch a.State {
		case "in_review", "escalated":
			claimed = 1
		case "upheld", "reversed":
			claimed, resolved = 1, 1
		}
		if n := count["appeal.claimed "+a.ID]; n != claimed {
			r.add("entry: appeal %s (%s) has %d appeal.claimed entries, want %d", a.ID, a.State, n, claimed)
		}
		if n := count["appeal.resolved "+a.ID]; n != resolved {
			r.add("entry: appeal %s (%s) has %d appeal.resolved entries, want %d", a.ID, a.State, n, resolved)
		}
	}
	versions := map[string]int{}
	for _, p := range policies {
		versions[p.Code] = p.Versions
		if n := count["policy.revised "+p.Code]; n != p.Versions {
			r.add("entry: policy %s has %d versions and %d policy.revised entries", p.Code, p.Versions, n)
		}
	}
	for _, e := range entries {
		missing := false
		switch e.Type {
		case "decision.recorded", "decision.reversed":
			_, ok := dByID[e.ID]
			missing = !ok
		case "appeal.filed", "appeal.claimed", "appeal.resolved":
			_, ok := aByID[e.ID]
			missing = !ok
		case "policy.revised":
			missing = versions[e.ID] == 0
		}
		if missing {
			r.add("entry: %s entry of %s %s without its change", e.Type, e.Kind, e.ID)
		}
	}

	// One change per logical request: each ad was sent as one request
	// (retried only with its key).
	for ad, ids := range byAd {
		if len(ids) > 1 {
			sort.Strings(ids)
			r.add("idempotency: ad %s has %d decisions %v, want 1", ad, len(ids), ids)
		}
	}
	// A claim holds an appeal only if its client was told so or never
	// heard back: a keyed claim retried into a second claim would hold
	// one that nobody knows about.
	held := 0
	for _, a := range appeals {
		if a.State == "in_review" {
			held++
		}
	}
	resolvedOrAsked := map[string]bool{}
	for _, o := range ops {
		if o.Kind == KindResolve && o.Acked() {
			resolvedOrAsked[o.ID] = true
		}
	}
	ackedHeld := 0
	for _, o := range ops {
		if o.Kind == KindClaim && o.Acked() && o.ID != "" && !resolvedOrAsked[o.ID] {
			ackedHeld++
		}
	}
	if held > ackedHeld+unknownClaims {
		r.add("idempotency: %d appeals are in review, but only %d claims were acknowledged without a resolution and %d went unanswered", held, ackedHeld, unknownClaims)
	}

	if err := checkLog(ctx, q, r); err != nil {
		return nil, err
	}
	return r, nil
}

// checkLog checks that the leaf indices are dense and that every
// checkpoint's root is the root of the tree's first size leaves, which
// makes every checkpoint consistent with every other.
func checkLog(ctx context.Context, q sqlx.QueryerContext, r *Report) error {
	var leaves struct {
		N   int64  `db:"n"`
		Min *int64 `db:"lo"`
		Max *int64 `db:"hi"`
	}
	if err := sqlx.GetContext(ctx, q, &leaves, `SELECT count(*) AS n, min(idx) AS lo, max(idx) AS hi FROM audit_leaves`); err != nil {
		return fmt.Errorf("crashtest: read leaves: %w", err)
	}
	r.Entries = leaves.N
	if leaves.N > 0 && (*leaves.Min != 0 || *leaves.Max != leaves.N-1) {
		r.add("log: %d leaves with indices %d..%d, want 0..%d", leaves.N, *leaves.Min, *leaves.Max, leaves.N-1)
	}
	var cps []struct {
		Size int64  `db:"size"`
		Root []byte `db:"root"`
	}
	if err := sqlx.SelectContext(ctx, q, &cps, `SELECT size, root FROM audit_checkpoints ORDER BY size`); err != nil {
		return fmt.Errorf("crashtest: read checkpoints: %w", err)
	}
	if len(cps) < 2 {
		r.add("checkpoint: %d checkpoints, want several", len(cps))
	}
	if len(cps) > 0 && cps[len(cps)-1].Size != leaves.N {
		r.add("checkpoint: the latest covers %d entries, the log has %d", cps[len(cps)-1].Size, leaves.N)
	}
	rows, err := q.QueryxContext(ctx, `SELECT idx, leaf_hash FROM audit_leaves ORDER BY idx`)
	if err != nil {
		return fmt.Errorf("crashtest: read leaf hashes: %w", err)
	}
	defer rows.Close()
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	rng := rf.NewEmptyRange(0)
	next := 0
	compare := func() error {
		for next < len(cps) && uint64(cps[next].Size) == rng.End() {
			root, err := rng.GetRootHash(nil)
			if err != nil {
				return fmt.Errorf("crashtest: root at %d: %w", rng.End(), err)
			}
			if rng.End() == 0 {
				root = rfc6962.DefaultHasher.EmptyRoot()
			}
			if !bytes.Equal(root, cps[next].Root) {
				r.add("checkpoint: the checkpoint at size %d has root %x, the tree's first %d leaves %x", cps[next].Size, cps[next].Root, cps[next].Size, root)
			}
			r.Checks++
			next++
		}
		return nil
	}
	for rows.Next() {
		if err := compare(); err != nil {
			return err
		}
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return fmt.Errorf("crashtest: scan leaf: %w", err)
		}
		if uint64(idx) != rng.End() {
			break // not dense: reported above
		}
		if err := rng.Append(h, nil); err != nil {
			return fmt.Errorf("crashtest: append leaf %d: %w", idx, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("crashtest: leaf hashes: %w", err)
	}
	if err := compare(); err != nil {
		return err
	}
	for ; next < len(cps); next++ {
		r.add("checkpoint: the checkpoint at size %d is beyond the %d leaves checked", cps[next].Size, rng.End())
	}
	return nil
}

// CheckDelivery checks what one consumer received, in order of receipt,
// against a log of n entries: every index 0..n-1 exactly once, in order.
func CheckDelivery(who string, got []int64, n int64) []string {
	var problems []string
	add := func(format string, args ...any) {
		if len(problems) < 50 {
			problems = append(problems, fmt.Sprintf("nats: "+who+": "+format, args...))
		}
	}
	seen := make(map[int64]int, len(got))
	for i, idx := range got {
		seen[idx]++
		if seen[idx] == 2 {
			add("index %d delivered more than once (at position %d)", idx, i)
		}
		if i > 0 && idx <= got[i-1] && seen[idx] == 1 {
			add("index %d delivered after %d: out of order", idx, got[i-1])
		}
	}
	for idx := int64(0); idx < n; idx++ {
		if seen[idx] == 0 {
			add("index %d never delivered", idx)
		}
	}
	for idx := range seen {
		if idx < 0 || idx >= n {
			add("index %d delivered, the log has %d entries", idx, n)
		}
	}
	if int64(len(got)) != n {
		add("%d deliveries for %d entries", len(got), n)
	}
	return problems
}
