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
	// "acked:", "entry:", "idempotency:", "http:", "log:" or "checkpoint:".
	Problems []string
	Acked    map[string]int // acknowledged writes by kind
	Unknown  int            // writes without a definite reply (no key)
	Retried  int            // keyed writes sent more than once
	Lost     int            // keyed writes whose first reply the client dropped
	Entries  int64
	Checks   int // checkpoints checked against the tree
}

// maxProblems is how many problems a Report keeps.
const maxProblems = 200

// addAll adds one step's problems, up to maxProblems in all.
func (r *Report) addAll(ps []string) {
	r.Problems = append(r.Problems, ps[:min(len(ps), maxProblems-len(r.Problems))]...)
}

// problems collects one step's problems, at most as many as a Report
// keeps.
type problems []string

func (p *problems) add(format string, args ...any) {
	if len(*p) < maxProblems {
		*p = append(*p, fmt.Sprintf(format, args...))
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

type policyRow struct {
	Code     string `db:"code"`
	Versions int    `db:"versions"`
}

type entryRow struct {
	Type string `db:"type"`
	Kind string `db:"subject_kind"`
	ID   string `db:"subject_id"`
	Idx  *int64 `db:"idx"`
}

// state is the database as Check reads it: the changes, the entries
// staged for them, and the indexes the steps look them up by.
type state struct {
	decisions []decisionRow
	appeals   []appealRow
	entries   []entryRow
	policies  []policyRow
	versions  map[string]int         // policy versions by code
	count     map[string]int         // entries by type+" "+subject
	dByID     map[string]decisionRow // decisions by id
	byAd      map[string][]string    // decision ids by ad
	aByID     map[string]appealRow   // appeals by id
}

// Check compares ops, what the clients were told, with the database q
// (a *sqlx.DB, or a transaction holding tampered rows): it reads only.
// Each step returns the problems of one guarantee; the report holds
// them in this order.
func Check(ctx context.Context, q sqlx.QueryerContext, ops []Op) (*Report, error) {
	st, err := readState(ctx, q)
	if err != nil {
		return nil, err
	}
	r := &Report{Acked: map[string]int{}}
	r.tally(ops)
	r.addAll(st.integrated())
	r.addAll(retriesAnswered(ops))
	r.addAll(st.acknowledgedInDatabase(ops))
	r.addAll(st.changesHaveEntries())
	r.addAll(st.entriesHaveChanges())
	r.addAll(st.oneChangePerRequest(ops))
	r.addAll(noFaults(ops))
	if err := checkLog(ctx, q, r); err != nil {
		return nil, err
	}
	return r, nil
}

// readState reads the changes and the staged entries, with the leaf
// index each was given (nil: not integrated).
func readState(ctx context.Context, q sqlx.QueryerContext) (*state, error) {
	st := &state{versions: map[string]int{}, count: map[string]int{}, dByID: map[string]decisionRow{},
		byAd: map[string][]string{}, aByID: map[string]appealRow{}}
	for _, read := range []struct {
		what, query string
		dest        any
	}{
		{"decisions", `SELECT id, ad_id, status, policy_code, reversed_by_reversal FROM decisions`, &st.decisions},
		{"appeals", `SELECT id, decision_id, state FROM appeals`, &st.appeals},
		{"policies", `SELECT code, count(*) AS versions FROM policies GROUP BY code`, &st.policies},
		{"entries", `SELECT s.type, s.subject_kind, s.subject_id, l.idx
		FROM audit_staging s LEFT JOIN audit_leaves l ON l.staging_id = s.id`, &st.entries},
	} {
		if err := sqlx.SelectContext(ctx, q, read.dest, read.query); err != nil {
			return nil, fmt.Errorf("crashtest: read %s: %w", read.what, err)
		}
	}
	for _, p := range st.policies {
		st.versions[p.Code] = p.Versions
	}
	for _, e := range st.entries {
		st.count[e.Type+" "+e.ID]++
	}
	for _, d := range st.decisions {
		st.dByID[d.ID] = d
		if d.AdID != nil {
			st.byAd[*d.AdID] = append(st.byAd[*d.AdID], d.ID)
		}
	}
	for _, a := range st.appeals {
		st.aByID[a.ID] = a
	}
	return st, nil
}

// tally counts the ledger's writes by how they ended.
func (r *Report) tally(ops []Op) {
	for _, o := range ops {
		if o.Key != "" && o.Attempts > 1 {
			r.Retried++
		}
		if o.LostStatus != 0 {
			r.Lost++
		}
		if o.unanswered() {
			r.Unknown++
		}
		if o.Acked() && (o.Kind != KindClaim || o.ID != "") { // a claim's 204: nothing was waiting
			r.Acked[o.Kind]++
		}
	}
}

// noFaults checks that no reply was a 5xx but 503: a kill, an outage or
// a lost leader is a 503 to retry or no reply at all, never a 500.
func noFaults(ops []Op) []string {
	var ps problems
	for _, o := range ops {
		for _, s := range o.Faults {
			ps.add("http: a %s write (key %q, id %q) answered %d", o.Kind, o.Key, o.ID, s)
		}
	}
	return ps
}

// integrated checks that every staged entry became a leaf.
func (st *state) integrated() []string {
	var ps problems
	for _, e := range st.entries {
		if e.Idx == nil {
			ps.add("log: entry %s of %s %s was never integrated", e.Type, e.Kind, e.ID)
		}
	}
	return ps
}

// retriesAnswered checks that every keyed write ended with a 2xx, and
// that a retry after a dropped reply was answered as the dropped reply
// was.
func retriesAnswered(ops []Op) []string {
	var ps problems
	for _, o := range ops {
		if o.LostStatus != 0 && (o.Status != o.LostStatus || o.ID != o.LostID) {
			ps.add("idempotency: %s with key %s answered %d %q after a dropped %d %q, want the same reply", o.Kind, o.Key, o.Status, o.ID, o.LostStatus, o.LostID)
		}
		if !o.Acked() && o.Key != "" {
			ps.add("idempotency: %s with key %s ended with status %d after %d attempts, want a 2xx", o.Kind, o.Key, o.Status, o.Attempts)
		}
	}
	return ps
}

// oneEntry checks that the change named what has one entry of type typ.
func (st *state) oneEntry(ps *problems, typ, id, what string) {
	if n := st.count[typ+" "+id]; n != 1 {
		ps.add("entry: %s has %d %s entries, want 1", what, n, typ)
	}
}

// acknowledgedInDatabase checks that each acknowledged write's change is
// in the database with one entry. Policies are checked with every
// policy, in changesHaveEntries.
func (st *state) acknowledgedInDatabase(ops []Op) []string {
	var ps problems
	for _, o := range ops {
		if !o.Acked() {
			continue
		}
		switch o.Kind {
		case KindDecision:
			st.ackedDecision(&ps, o)
		case KindAppeal:
			if a, ok := st.aByID[o.ID]; !ok || a.Decision != o.Ref {
				ps.add("acked: appeal %s of decision %s is not in the database", o.ID, o.Ref)
			} else {
				st.oneEntry(&ps, "appeal.filed", o.ID, "acknowledged appeal "+o.ID)
			}
		case KindClaim:
			if o.ID == "" {
				continue // 204: nothing was waiting
			}
			if a, ok := st.aByID[o.ID]; !ok || a.State == "pending" || a.State == "withdrawn" {
				ps.add("acked: claim of appeal %s is not in the database (state %q)", o.ID, a.State)
			} else {
				st.oneEntry(&ps, "appeal.claimed", o.ID, "acknowledged claim of appeal "+o.ID)
			}
		case KindResolve:
			st.ackedResolution(&ps, o)
		case KindBulk:
			st.ackedBulk(&ps, o)
		}
	}
	return ps
}

func (st *state) ackedDecision(ps *problems, o Op) {
	d, ok := st.dByID[o.ID]
	if !ok {
		ps.add("acked: decision %s (ad %s) is not in the database", o.ID, o.AdID)
		return
	}
	if d.AdID == nil || *d.AdID != o.AdID {
		ps.add("acked: decision %s has another ad than the %s acknowledged", o.ID, o.AdID)
	}
	st.oneEntry(ps, "decision.recorded", o.ID, "acknowledged decision "+o.ID)
	if o.Key != "" && len(st.byAd[o.AdID]) != 1 {
		ps.add("idempotency: key %s (ad %s) made %d decisions %v, want 1", o.Key, o.AdID, len(st.byAd[o.AdID]), st.byAd[o.AdID])
	}
}

// ackedResolution checks the appeal's outcome and, for a reversal, the
// decision's.
func (st *state) ackedResolution(ps *problems, o Op) {
	a, ok := st.aByID[o.ID]
	if !ok || a.State != o.Outcome {
		ps.add("acked: resolution %s of appeal %s is not in the database (state %q)", o.Outcome, o.ID, a.State)
		return
	}
	st.oneEntry(ps, "appeal.resolved", o.ID, "acknowledged resolution of appeal "+o.ID)
	if o.Outcome == "reversed" {
		if d := st.dByID[a.Decision]; d.Status != "reversed" {
			ps.add("acked: reversal of decision %s by appeal %s is not in the database (status %q)", a.Decision, o.ID, d.Status)
		}
		st.oneEntry(ps, "decision.reversed", a.Decision, "decision "+a.Decision+" reversed by appeal "+o.ID)
	}
}

// ackedBulk checks that the bulk reversal reversed every decision under
// its policy.
func (st *state) ackedBulk(ps *problems, o Op) {
	n := 0
	for _, d := range st.decisions {
		if d.Policy != o.Ref {
			continue
		}
		n++
		if d.Status != "reversed" || d.Reversal == nil || *d.Reversal != o.ID {
			ps.add("acked: bulk reversal %s of %s left decision %s %s", o.ID, o.Ref, d.ID, d.Status)
		}
		st.oneEntry(ps, "decision.reversed", d.ID, "decision "+d.ID+" reversed in bulk")
	}
	if n == 0 {
		ps.add("acked: bulk reversal %s of %s found no decisions", o.ID, o.Ref)
	}
}

// wantEntries checks that the subject has want entries of type typ.
func (st *state) wantEntries(ps *problems, typ, kind, id, state string, want int) {
	if n := st.count[typ+" "+id]; n != want {
		ps.add("entry: %s %s (%s) has %d %s entries, want %d", kind, id, state, n, typ, want)
	}
}

// changesHaveEntries checks that every change in the database, whoever
// asked for it, has its entry: no change without its entry.
func (st *state) changesHaveEntries() []string {
	var ps problems
	for _, d := range st.decisions {
		st.oneEntry(&ps, "decision.recorded", d.ID, "decision "+d.ID)
		st.wantEntries(&ps, "decision.reversed", "decision", d.ID, d.Status, b2i(d.Status == "reversed"))
	}
	for _, a := range st.appeals {
		st.oneEntry(&ps, "appeal.filed", a.ID, "appeal "+a.ID)
		claimed, resolved := 0, 0
		switch a.State {
		case "in_review", "escalated":
			claimed = 1
		case "upheld", "reversed":
			claimed, resolved = 1, 1
		}
		st.wantEntries(&ps, "appeal.claimed", "appeal", a.ID, a.State, claimed)
		st.wantEntries(&ps, "appeal.resolved", "appeal", a.ID, a.State, resolved)
	}
	for _, p := range st.policies {
		if n := st.count["policy.revised "+p.Code]; n != p.Versions {
			ps.add("entry: policy %s has %d versions and %d policy.revised entries", p.Code, p.Versions, n)
		}
	}
	return ps
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// entriesHaveChanges checks that every entry's subject is in the
// database: no entry without its change.
func (st *state) entriesHaveChanges() []string {
	var ps problems
	for _, e := range st.entries {
		missing := false
		switch e.Type {
		case "decision.recorded", "decision.reversed":
			_, ok := st.dByID[e.ID]
			missing = !ok
		case "appeal.filed", "appeal.claimed", "appeal.resolved":
			_, ok := st.aByID[e.ID]
			missing = !ok
		case "policy.revised":
			missing = st.versions[e.ID] == 0
		}
		if missing {
			ps.add("entry: %s entry of %s %s without its change", e.Type, e.Kind, e.ID)
		}
	}
	return ps
}

// oneChangePerRequest checks that retries made one change: each ad was
// sent as one request (retried only with its key), and a claim holds an
// appeal only if its client was told so or never heard back: a keyed
// claim retried into a second claim would hold one that nobody knows
// about.
func (st *state) oneChangePerRequest(ops []Op) []string {
	var ps problems
	for ad, ids := range st.byAd {
		if len(ids) > 1 {
			sort.Strings(ids)
			ps.add("idempotency: ad %s has %d decisions %v, want 1", ad, len(ids), ids)
		}
	}
	held := 0
	for _, a := range st.appeals {
		if a.State == "in_review" {
			held++
		}
	}
	resolved := map[string]bool{}
	unknown := 0
	for _, o := range ops {
		if o.Kind == KindResolve && o.Acked() {
			resolved[o.ID] = true
		}
		if o.Kind == KindClaim && o.unanswered() {
			unknown++
		}
	}
	ackedHeld := 0
	for _, o := range ops {
		if o.Kind == KindClaim && o.Acked() && o.ID != "" && !resolved[o.ID] {
			ackedHeld++
		}
	}
	if held > ackedHeld+unknown {
		ps.add("idempotency: %d appeals are in review, but only %d claims were acknowledged without a resolution and %d went unanswered", held, ackedHeld, unknown)
	}
	return ps
}

type checkpointRow struct {
	Size int64  `db:"size"`
	Root []byte `db:"root"`
}

// checkLog checks the log: that the leaf indices are dense, that the
// checkpoints cover it, and that every checkpoint's root is the root of
// the tree's first size leaves, which makes every checkpoint consistent
// with every other.
func checkLog(ctx context.Context, q sqlx.QueryerContext, r *Report) error {
	n, ps, err := denseIndices(ctx, q)
	if err != nil {
		return err
	}
	r.Entries = n
	r.addAll(ps)
	var cps []checkpointRow
	if err := sqlx.SelectContext(ctx, q, &cps, `SELECT size, root FROM audit_checkpoints ORDER BY size`); err != nil {
		return fmt.Errorf("crashtest: read checkpoints: %w", err)
	}
	r.addAll(checkpointsCover(cps, n))
	t := &treeCheck{cps: cps, rng: (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)}
	if err := t.walk(ctx, q); err != nil {
		return err
	}
	r.Checks = t.checked
	r.addAll(t.problems)
	return nil
}

// denseIndices counts the leaves and checks that their indices are
// 0..n-1.
func denseIndices(ctx context.Context, q sqlx.QueryerContext) (int64, []string, error) {
	var leaves struct {
		N   int64  `db:"n"`
		Min *int64 `db:"lo"`
		Max *int64 `db:"hi"`
	}
	if err := sqlx.GetContext(ctx, q, &leaves, `SELECT count(*) AS n, min(idx) AS lo, max(idx) AS hi FROM audit_leaves`); err != nil {
		return 0, nil, fmt.Errorf("crashtest: read leaves: %w", err)
	}
	var ps problems
	if leaves.N > 0 && (*leaves.Min != 0 || *leaves.Max != leaves.N-1) {
		ps.add("log: %d leaves with indices %d..%d, want 0..%d", leaves.N, *leaves.Min, *leaves.Max, leaves.N-1)
	}
	return leaves.N, ps, nil
}

// checkpointsCover checks that there are several checkpoints and that
// the latest covers the log's n entries.
func checkpointsCover(cps []checkpointRow, n int64) []string {
	var ps problems
	if len(cps) < 2 {
		ps.add("checkpoint: %d checkpoints, want several", len(cps))
	}
	if len(cps) > 0 && cps[len(cps)-1].Size != n {
		ps.add("checkpoint: the latest covers %d entries, the log has %d", cps[len(cps)-1].Size, n)
	}
	return ps
}

// treeCheck builds the tree leaf by leaf and, as it reaches each
// checkpoint's size, compares the checkpoint's root with the tree's.
type treeCheck struct {
	cps      []checkpointRow // by size
	rng      *compact.Range
	next     int // the first checkpoint not yet reached
	checked  int
	problems problems
}

// walk reads the leaf hashes in index order up to the first hole (the
// hole is denseIndices' to report) and then reports every checkpoint
// beyond the leaves read.
func (t *treeCheck) walk(ctx context.Context, q sqlx.QueryerContext) error {
	rows, err := q.QueryxContext(ctx, `SELECT idx, leaf_hash FROM audit_leaves ORDER BY idx`)
	if err != nil {
		return fmt.Errorf("crashtest: read leaf hashes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := t.compareReached(); err != nil {
			return err
		}
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return fmt.Errorf("crashtest: scan leaf: %w", err)
		}
		if uint64(idx) != t.rng.End() {
			break // not dense: reported by denseIndices
		}
		if err := t.rng.Append(h, nil); err != nil {
			return fmt.Errorf("crashtest: append leaf %d: %w", idx, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("crashtest: leaf hashes: %w", err)
	}
	if err := t.compareReached(); err != nil {
		return err
	}
	for ; t.next < len(t.cps); t.next++ {
		t.problems.add("checkpoint: the checkpoint at size %d is beyond the %d leaves checked", t.cps[t.next].Size, t.rng.End())
	}
	return nil
}

// compareReached compares the root of every checkpoint whose size the
// tree has reached.
func (t *treeCheck) compareReached() error {
	for t.next < len(t.cps) && uint64(t.cps[t.next].Size) == t.rng.End() {
		root, err := t.rng.GetRootHash(nil)
		if err != nil {
			return fmt.Errorf("crashtest: root at %d: %w", t.rng.End(), err)
		}
		if t.rng.End() == 0 {
			root = rfc6962.DefaultHasher.EmptyRoot()
		}
		if cp := t.cps[t.next]; !bytes.Equal(root, cp.Root) {
			t.problems.add("checkpoint: the checkpoint at size %d has root %x, the tree's first %d leaves %x", cp.Size, cp.Root, cp.Size, root)
		}
		t.checked++
		t.next++
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
