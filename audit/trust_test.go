package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/audittest"
	"github.com/docket-dev/docket/internal/logtest"
	"github.com/docket-dev/docket/internal/pgtest"
)

// signedLog is a log of n entries, each batch checkpointed, with a pin.
type signedLog struct {
	db     *sqlx.DB
	signer note.Signer
	vkey   string
	pin    string
	l      *audit.Log
}

func setupSignedLog(t *testing.T, n int) *signedLog {
	t.Helper()
	db := pgtest.New(t)
	signer, vkey := testKeys(t)
	sl := &signedLog{db: db, signer: signer, vkey: vkey, pin: filepath.Join(t.TempDir(), audit.PinFileName)}
	sl.l = sl.open(t, sl.pin)
	for i := 0; i < n; i++ {
		appendTx(t, db, true, testEntry("s", i))
	}
	require.Equal(t, n, logtest.Drain(t, sl.l))
	require.Equal(t, uint64(n), pinnedSize(t, sl.pin, vkey))
	return sl
}

// open is a restart: a new Log on the same database (and pin, if given).
func (sl *signedLog) open(t *testing.T, pin string) *audit.Log {
	t.Helper()
	return newTestLog(t, sl.db, sl.signer, sl.vkey, audit.Options{PinFile: pin})
}

func (sl *signedLog) checkpoints(t *testing.T) (n int, max int64) {
	t.Helper()
	require.NoError(t, sl.db.QueryRow(`SELECT count(*), coalesce(max(size), -1) FROM audit_checkpoints`).Scan(&n, &max))
	return n, max
}

func pinnedSize(t *testing.T, path, vkey string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	v, err := note.NewVerifier(vkey)
	require.NoError(t, err)
	n, err := note.Open(b, note.VerifierList(v))
	require.NoError(t, err)
	var cp log.Checkpoint
	_, err = cp.Unmarshal([]byte(n.Text))
	require.NoError(t, err)
	return cp.Size
}

func evil(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte("enforcer:test"), []byte("enforcer:evil"))
}

// TestRewriteAndRestartSignsNoFork rewrites signed entries the way a
// careful attacker with the owner's rights would (bytes, leaf hashes and
// nodes, all consistent), adds an entry and restarts the integrator: it
// must sign nothing, halt, say why, and stay halted.
func TestRewriteAndRestartSignsNoFork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		dropCheckpoints bool // the attacker also deletes checkpoints and identity
		pin             bool
		source          string
	}{
		{name: "checkpoints kept, no pin", pin: false, source: "database's latest"},
		{name: "checkpoints kept, pin", pin: true, source: "database's latest"},
		{name: "checkpoints deleted, pin", dropCheckpoints: true, pin: true, source: "pinned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			sl := setupSignedLog(t, 10)
			audittest.Rewrite(t, sl.db, 3, evil)
			if tc.dropCheckpoints {
				audittest.Exec(t, sl.db, `DELETE FROM audit_checkpoints`, `DELETE FROM audit_log_identity`)
			}
			nBefore, maxBefore := sl.checkpoints(t)
			appendTx(t, sl.db, true, testEntry("after", 0))

			pin := ""
			if tc.pin {
				pin = sl.pin
			}
			l := sl.open(t, pin)
			var fe *audit.ForkError
			require.Eventually(t, func() bool {
				_, err := l.IntegrateOnce(ctx)
				return errors.As(err, &fe)
			}, 10*time.Second, 5*time.Millisecond)
			require.Contains(t, fe.Source, tc.source)
			require.Equal(t, uint64(10), fe.TrustedSize)
			st := l.Status()
			require.True(t, st.Halted)
			require.Contains(t, st.Reason, "size 10 (root ")
			require.Contains(t, st.Reason, "the tree at size ")

			// It stays halted: nothing is signed however often it is asked.
			for i := 0; i < 3; i++ {
				_, err := l.IntegrateOnce(ctx)
				require.ErrorAs(t, err, &fe)
			}
			if !tc.pin {
				// Nor once the evidence is gone from the database too: the
				// halt is for good, not a check that passes on retry.
				audittest.Exec(t, sl.db, `DELETE FROM audit_checkpoints`, `DELETE FROM audit_log_identity`)
				nBefore, maxBefore = 0, -1
				_, err := l.IntegrateOnce(ctx)
				require.ErrorAs(t, err, &fe)
			}
			n, max := sl.checkpoints(t)
			require.Equal(t, nBefore, n, "no checkpoint signed over the rewritten log")
			require.Equal(t, maxBefore, max)
			if tc.pin {
				require.Equal(t, uint64(10), pinnedSize(t, sl.pin, sl.vkey), "the pin did not move")
			}
		})
	}
}

// TestHaltedIntegratorKeepsTheLock runs the halted integrator through Run:
// it signs nothing and holds the election, so that no standby signs the
// fork it refused.
func TestHaltedIntegratorKeepsTheLock(t *testing.T) {
	t.Parallel()
	sl := setupSignedLog(t, 6)
	audittest.Rewrite(t, sl.db, 0, evil)
	audittest.Exec(t, sl.db, `DELETE FROM audit_checkpoints`)
	appendTx(t, sl.db, true, testEntry("after", 0))

	ctx, cancel := context.WithCancel(context.Background())
	l := sl.open(t, sl.pin)
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	require.Eventually(t, func() bool { return l.Status().Halted }, 10*time.Second, 5*time.Millisecond)
	// A standby with no pin, which alone would see nothing wrong.
	standby := newTestLog(t, sl.db, sl.signer, sl.vkey, audit.Options{LockRetry: 10 * time.Millisecond})
	sctx, scancel := context.WithCancel(context.Background())
	sdone := make(chan error, 1)
	go func() { sdone <- standby.Run(sctx) }()
	// Give the standby many lock retries; the check is on what never happens.
	deadline := time.After(300 * time.Millisecond)
	for waiting := true; waiting; {
		select {
		case <-deadline:
			waiting = false
		case <-time.After(20 * time.Millisecond):
			n, _ := sl.checkpoints(t)
			require.Zero(t, n, "a standby signed the fork")
		}
	}
	scancel()
	require.NoError(t, <-sdone)
	cancel()
	require.NoError(t, <-done)
	n, _ := sl.checkpoints(t)
	require.Zero(t, n, "nothing signed on the way out either")
}

// TestPinNeverAheadOfTheLog makes the checkpoint's commit fail (a deferred
// constraint trigger raises at COMMIT, after signing): the pin must stay
// at the previous checkpoint, and advance once a commit succeeds.
func TestPinNeverAheadOfTheLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sl := setupSignedLog(t, 4)
	_, err := sl.db.Exec(`
		CREATE FUNCTION fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'commit fails'; END $$;
		CREATE CONSTRAINT TRIGGER fail_commit AFTER INSERT ON audit_checkpoints
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_commit()`)
	require.NoError(t, err)
	appendTx(t, sl.db, true, testEntry("more", 0), testEntry("more", 1))
	require.Eventually(t, func() bool {
		_, err := sl.l.IntegrateOnce(ctx)
		return err != nil && bytes.Contains([]byte(err.Error()), []byte("commit fails"))
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, uint64(4), pinnedSize(t, sl.pin, sl.vkey), "the pin is not ahead of the committed log")
	_, max := sl.checkpoints(t)
	require.Equal(t, int64(4), max)

	_, err = sl.db.Exec(`DROP TRIGGER fail_commit ON audit_checkpoints`)
	require.NoError(t, err)
	logtest.Drain(t, sl.l)
	require.Equal(t, uint64(6), pinnedSize(t, sl.pin, sl.vkey))
	// And a restart on that pin carries on.
	appendTx(t, sl.db, true, testEntry("more", 2))
	require.Equal(t, 1, logtest.Drain(t, sl.open(t, sl.pin)))
	require.Equal(t, uint64(7), pinnedSize(t, sl.pin, sl.vkey))
}

// TestStandbyPinsWhatItServes: a process that never signed pins the
// checkpoints it serves, after checking they extend its pin, so that its
// pin is fresh when it takes over.
func TestStandbyPinsWhatItServes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sl := setupSignedLog(t, 3)
	pin := filepath.Join(t.TempDir(), audit.PinFileName)
	standby := sl.open(t, pin)
	_, err := standby.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(3), pinnedSize(t, pin, sl.vkey))
	appendTx(t, sl.db, true, testEntry("more", 0))
	logtest.Drain(t, sl.l)
	_, err = standby.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(4), pinnedSize(t, pin, sl.vkey))
	require.False(t, standby.Status().Halted)
}

// TestPinOfAnotherLogRefused: a data directory that pinned another key's
// log is not used to sign this one.
func TestPinOfAnotherLogRefused(t *testing.T) {
	t.Parallel()
	sl := setupSignedLog(t, 2)
	signer, vkey := testKeys(t)
	_, err := audit.NewLog(sl.db, signer, vkey, testOrigin, audit.Options{PinFile: sl.pin})
	var ie *audit.IdentityError
	require.ErrorAs(t, err, &ie)
	require.Contains(t, err.Error(), audit.KeyID(sl.vkey))
	require.Contains(t, err.Error(), audit.KeyID(vkey))
}

// TestIdentityRecordedAndEnforced: the first checkpoint records the
// identity; a Log with another key is refused by Claim and, should it run
// anyway, signs nothing.
func TestIdentityRecordedAndEnforced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sl := setupSignedLog(t, 2)
	st, err := audit.ReadLogState(ctx, sl.db)
	require.NoError(t, err)
	require.NotNil(t, st.Identity)
	require.Equal(t, sl.vkey, st.Identity.VerifierKey)
	require.Equal(t, testOrigin, st.Identity.Origin)
	require.NoError(t, sl.l.Claim(ctx))

	signer, vkey := testKeys(t)
	other := newTestLog(t, sl.db, signer, vkey, audit.Options{})
	var ie *audit.IdentityError
	require.ErrorAs(t, other.Claim(ctx), &ie)
	require.Equal(t, audit.KeyID(sl.vkey), ie.LogKey)
	require.Equal(t, audit.KeyID(vkey), ie.Key)

	appendTx(t, sl.db, true, testEntry("x", 0))
	require.Eventually(t, func() bool {
		_, err := other.IntegrateOnce(ctx)
		return err != nil
	}, 10*time.Second, 5*time.Millisecond)
	require.True(t, other.Status().Halted)
	_, max := sl.checkpoints(t)
	require.Equal(t, int64(2), max, "the foreign key signed nothing")

	_, err = sl.db.Exec(`UPDATE audit_log_identity SET verifier_key = 'x'`)
	require.ErrorContains(t, err, "append-only")
}

// TestClaimAdoptsLegacyIdentity: a log signed before the identity table
// existed adopts the identity of its latest checkpoint when the key
// verifies it, and refuses any other key.
func TestClaimAdoptsLegacyIdentity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sl := setupSignedLog(t, 3)
	audittest.Exec(t, sl.db, `DELETE FROM audit_log_identity`)

	signer, vkey := testKeys(t)
	var ie *audit.IdentityError
	require.ErrorAs(t, newTestLog(t, sl.db, signer, vkey, audit.Options{}).Claim(ctx), &ie)
	require.Equal(t, audit.KeyID(sl.vkey), ie.LogKey)
	st, err := audit.ReadLogState(ctx, sl.db)
	require.NoError(t, err)
	require.Nil(t, st.Identity, "a refused key records nothing")

	require.NoError(t, sl.open(t, "").Claim(ctx))
	st, err = audit.ReadLogState(ctx, sl.db)
	require.NoError(t, err)
	require.NotNil(t, st.Identity)
	require.Equal(t, sl.vkey, st.Identity.VerifierKey)
}

func verifyOpts(saved ...[]byte) audit.VerifyOptions {
	opts := audit.VerifyOptions{Origin: testOrigin, MaxUnsignedAge: time.Minute}
	for i, s := range saved {
		opts.Saved = append(opts.Saved, audit.SavedCheckpoint{Name: fmt.Sprintf("saved-%d", i), Note: s})
	}
	return opts
}

// TestVerifyCatchesTruncation cuts the tail off a log, with everything that
// pointed at it (leaves, nodes, checkpoints, staged rows): the database
// alone looks fine, the checkpoint saved earlier does not.
func TestVerifyCatchesTruncation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sl := setupSignedLog(t, 8)
	cp8, err := sl.l.LatestCheckpoint(ctx)
	require.NoError(t, err)
	for i := 0; i < 8; i++ {
		appendTx(t, sl.db, true, testEntry("tail", i))
		logtest.Drain(t, sl.l)
	}
	cp16, err := sl.l.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(16), cp16.Size)
	_, err = audit.Verify(ctx, sl.db, sl.vkey, verifyOpts(cp8.Note, cp16.Note))
	require.NoError(t, err)

	// Back to 11 leaves: the tree of 11 needs its nodes below 11 only.
	audittest.Exec(t, sl.db,
		`CREATE TEMP TABLE gone AS SELECT staging_id FROM audit_leaves WHERE idx >= 11`,
		`DELETE FROM audit_leaves WHERE idx >= 11`,
		`DELETE FROM audit_staging WHERE id IN (SELECT staging_id FROM gone)`,
		`DELETE FROM audit_nodes WHERE (idx + 1) * (1::bigint << level) > 11`,
		`DELETE FROM audit_checkpoints WHERE size > 11`)
	_, err = audit.Verify(ctx, sl.db, sl.vkey, verifyOpts(cp8.Note))
	require.NoError(t, err, "the database alone is self-consistent")
	_, err = audit.Verify(ctx, sl.db, sl.vkey, verifyOpts(cp8.Note, cp16.Note))
	var ve *audit.VerifyError
	require.ErrorAs(t, err, &ve)
	require.Contains(t, err.Error(), "truncated: the log has 11 leaves but the saved checkpoint saved-1 covers 16")
}

// TestVerifyCatchesRewriteAgainstSaved: a rewrite with the checkpoints
// removed verifies on its own, not against a checkpoint saved earlier.
func TestVerifyCatchesRewriteAgainstSaved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sl := setupSignedLog(t, 9)
	cp, err := sl.l.LatestCheckpoint(ctx)
	require.NoError(t, err)
	audittest.Rewrite(t, sl.db, 4, evil)
	audittest.Exec(t, sl.db, `DELETE FROM audit_checkpoints`, `DELETE FROM audit_log_identity`)
	// The attacker re-signs what it can: nothing, so it leaves the log bare.
	_, err = audit.Verify(ctx, sl.db, sl.vkey, verifyOpts(cp.Note))
	require.ErrorContains(t, err, "rewritten: at size 9 the log's root is ")
	require.ErrorContains(t, err, fmt.Sprintf("has root %x", cp.Root))
}

// TestVerifyNeedsCheckpoints: leaves with no checkpoint fail, and so do
// entries older than the bound that no checkpoint covers.
func TestVerifyNeedsCheckpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("no checkpoint", func(t *testing.T) {
		t.Parallel()
		sl := setupSignedLog(t, 3)
		audittest.Exec(t, sl.db, `DELETE FROM audit_checkpoints`)
		_, err := audit.Verify(ctx, sl.db, sl.vkey, audit.VerifyOptions{Origin: testOrigin})
		require.ErrorContains(t, err, "the log has 3 leaves but no checkpoint")
	})
	t.Run("empty log", func(t *testing.T) {
		t.Parallel()
		db := pgtest.New(t)
		_, vkey := testKeys(t)
		_, err := audit.Verify(ctx, db, vkey, verifyOpts())
		require.NoError(t, err)
	})
	t.Run("old leaves unsigned", func(t *testing.T) {
		t.Parallel()
		sl := setupSignedLog(t, 3)
		slow := newTestLog(t, sl.db, sl.signer, sl.vkey, audit.Options{CheckpointInterval: time.Hour})
		appendTx(t, sl.db, true, testEntry("late", 0), testEntry("late", 1))
		require.Equal(t, 2, logtest.Drain(t, slow))
		_, err := audit.Verify(ctx, sl.db, sl.vkey, verifyOpts())
		require.NoError(t, err, "fresh unsigned leaves are within the bound")
		audittest.Exec(t, sl.db, `UPDATE audit_staging SET created_at = now() - interval '1 hour' WHERE id IN (SELECT staging_id FROM audit_leaves WHERE idx >= 3)`)
		_, err = audit.Verify(ctx, sl.db, sl.vkey, verifyOpts())
		require.ErrorContains(t, err, "have no checkpoint over them, longer than the 1m0s allowed: the latest checkpoint covers 3 of 5 leaves")
	})
	t.Run("old entries not integrated", func(t *testing.T) {
		t.Parallel()
		sl := setupSignedLog(t, 3)
		appendTx(t, sl.db, true, testEntry("late", 0))
		audittest.Exec(t, sl.db, `UPDATE audit_staging SET created_at = now() - interval '2 minutes' WHERE id NOT IN (SELECT staging_id FROM audit_leaves)`)
		_, err := audit.Verify(ctx, sl.db, sl.vkey, verifyOpts())
		require.ErrorContains(t, err, "have no checkpoint over them")
	})
}

// TestVerifyRefusesAnotherKey: the recorded identity names the key.
func TestVerifyRefusesAnotherKey(t *testing.T) {
	t.Parallel()
	sl := setupSignedLog(t, 2)
	_, vkey := testKeys(t)
	_, err := audit.Verify(context.Background(), sl.db, vkey, verifyOpts())
	require.ErrorContains(t, err, "the log's recorded key is "+audit.KeyID(sl.vkey))
}

// TestTakeoverChecksTheTree: a restart on a rewritten log halts at once,
// before any new entry asks for a checkpoint, so readiness says so early.
func TestTakeoverChecksTheTree(t *testing.T) {
	t.Parallel()
	sl := setupSignedLog(t, 5)
	audittest.Rewrite(t, sl.db, 2, evil)
	l := sl.open(t, sl.pin)
	_, err := l.IntegrateOnce(context.Background())
	var fe *audit.ForkError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, uint64(5), fe.TreeSize)
	require.True(t, l.Status().Halted)
}

// fixedWitness is a witness whose checkpoints the test sets.
type fixedWitness struct {
	mu  sync.Mutex
	cps []audit.TrustedCheckpoint
}

func (w *fixedWitness) set(cps ...audit.TrustedCheckpoint) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cps = cps
}

func (w *fixedWitness) Checkpoints(context.Context) ([]audit.TrustedCheckpoint, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cps, nil
}

// TestWitnessCheckedBeforeEverySignature: a witness's checkpoint that the
// running integrator's next tree does not extend stops it before signing,
// without a restart.
func TestWitnessCheckedBeforeEverySignature(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sl := setupSignedLog(t, 4)
	w := &fixedWitness{}
	l := newTestLog(t, sl.db, sl.signer, sl.vkey, audit.Options{Witnesses: []audit.Witness{w}})
	appendTx(t, sl.db, true, testEntry("w", 0))
	require.Equal(t, 1, logtest.Drain(t, l))
	cp, err := l.LatestCheckpoint(ctx)
	require.NoError(t, err)
	w.set(audit.TrustedCheckpoint{Source: "witness", Size: cp.Size, Root: cp.Root})
	appendTx(t, sl.db, true, testEntry("w", 1))
	require.Equal(t, 1, logtest.Drain(t, l), "a witness the log extends lets it sign")

	// The witness saw a root at size 6 that this log never had.
	w.set(audit.TrustedCheckpoint{Source: "witness", Size: 6, Root: bytes.Repeat([]byte{7}, 32)})
	appendTx(t, sl.db, true, testEntry("w", 2))
	var fe *audit.ForkError
	require.Eventually(t, func() bool {
		_, err := l.IntegrateOnce(ctx)
		return errors.As(err, &fe)
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, "witness", fe.Source)
	require.Equal(t, uint64(7), fe.TreeSize)
	_, max := sl.checkpoints(t)
	require.Equal(t, int64(6), max)
}

// refusingSigner signs until refuse is set, as a KMS key that was revoked.
type refusingSigner struct {
	note.Signer
	mu     sync.Mutex
	refuse bool
}

func (s *refusingSigner) Sign(msg []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse {
		return nil, errors.New("key revoked")
	}
	return s.Signer.Sign(msg)
}

// TestStatusCountsIntegrationAndSigningFailures: the figures an operator
// alerts on move with what the integrator did, and a signer that refuses
// shows as a signing failure while the entries wait, unsigned.
func TestStatusCountsIntegrationAndSigningFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	signer, vkey := testKeys(t)
	rs := &refusingSigner{Signer: signer}
	l := newTestLog(t, db, rs, vkey, audit.Options{CheckpointInterval: -1})
	appendTx(t, db, true, testEntry("c", 0), testEntry("c", 1), testEntry("c", 2))
	require.Equal(t, 3, logtest.Drain(t, l))
	st := l.Status()
	require.Equal(t, uint64(3), st.Integrated)
	require.NotZero(t, st.Checkpoints)
	require.Zero(t, st.SignFailures)
	require.Zero(t, st.Failures)
	require.False(t, st.Leader, "IntegrateOnce runs without the election")

	rs.mu.Lock()
	rs.refuse = true
	rs.mu.Unlock()
	appendTx(t, db, true, testEntry("c", 3))
	require.Eventually(t, func() bool {
		_, err := l.IntegrateOnce(ctx)
		return err != nil
	}, 10*time.Second, 5*time.Millisecond)
	st = l.Status()
	require.Equal(t, uint64(1), st.SignFailures)
	require.Equal(t, uint64(1), st.Failures)
	require.Equal(t, uint64(3), st.Integrated, "a batch whose checkpoint failed is rolled back")
	require.False(t, st.Halted, "a refusing signer is retried, not a fork")
	require.Equal(t, int64(1), logtest.Unintegrated(t, db))

	rs.mu.Lock()
	rs.refuse = false
	rs.mu.Unlock()
	require.Equal(t, 1, logtest.Drain(t, l))
	require.Equal(t, uint64(4), l.Status().Integrated)
}

// TestStatusShowsTheLeader: Leader is set while Run holds the lock.
func TestStatusShowsTheLeader(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	signer, vkey := testKeys(t)
	l := newTestLog(t, db, signer, vkey, audit.Options{PollInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	require.Eventually(t, func() bool { return l.Status().Leader }, 10*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.False(t, l.Status().Leader)
}
