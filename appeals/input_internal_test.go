package appeals

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOneBadCallInABatchFailsNoOther puts a resolution Postgres refuses
// (an id that is not UTF-8, as if it had got past Resolve's checks) into a
// batch of good ones: the batch's statement fails, and the good calls are
// busy, tried again alone, and succeed, rather than sharing the bad one's
// error. Nothing of the failed batch committed.
func TestOneBadCallInABatchFailsNoOther(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 6
	s, db, _ := queueFixture(t, n, 0, "")
	rita := Actor{Role: RoleReviewer, Name: "rita"}
	for range n {
		_, ok, err := s.Claim(ctx, rita)
		require.NoError(t, err)
		require.True(t, ok)
	}
	upheld := ResolveInput{Outcome: AppealUpheld, Rationale: "Checked."}
	var reqs []resolveReq
	for i := 1; i <= n; i++ {
		reqs = append(reqs, resolveReq{by: rita, id: fmt.Sprintf("a-%06d", i), in: upheld})
		if i == 3 {
			reqs = append(reqs, resolveReq{by: rita, id: "a-\xff", in: upheld})
		}
	}
	outs := s.runResolves(ctx, reqs)
	for i, o := range outs {
		require.ErrorIs(t, o.err, errBusy, "call %d (%q) must be retried alone, not given the batch's error", i, reqs[i].id)
	}
	require.Empty(t, entriesOf(t, db, EntryAppealResolved), "the failed batch committed nothing")

	// Each tried again alone, as Resolve does with errBusy: the good ones
	// succeed, the bad one fails by itself.
	for i, r := range reqs {
		a, err := write(ctx, s, func(tx *sqlx.Tx, now time.Time) (Appeal, error) {
			outs, err := s.resolveIn(ctx, on{tx: tx}, now, []resolveReq{r})
			if err != nil {
				return Appeal{}, err
			}
			return outs[0].val, outs[0].err
		})
		if strings.Contains(r.id, "\xff") {
			require.Error(t, err)
			continue
		}
		require.NoError(t, err, "call %d", i)
		require.Equal(t, AppealUpheld, a.State)
	}
	require.Len(t, entriesOf(t, db, EntryAppealResolved), n)
}

// TestResolveVetsTheIDBeforeTheBatch: ids Postgres would refuse never
// reach a batch. Sent concurrently with good resolutions, each bad one is
// Invalid (bad bytes) or NotFound (no id has its shape), and every good
// one succeeds.
func TestResolveVetsTheIDBeforeTheBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 25
	s, _, _ := queueFixture(t, n, 0, "")
	rita := Actor{Role: RoleReviewer, Name: "rita"}
	for range n {
		_, ok, err := s.Claim(ctx, rita)
		require.NoError(t, err)
		require.True(t, ok)
	}
	upheld := ResolveInput{Outcome: AppealUpheld, Rationale: "Checked."}
	bad := map[string]Code{"a-\xff": Invalid, "a-\x00": Invalid, strings.Repeat("a", 200): NotFound, "a b": NotFound}
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Go(func() {
			_, err := s.Resolve(ctx, rita, fmt.Sprintf("a-%06d", i), upheld)
			assert.NoError(t, err)
		})
	}
	for id, code := range bad {
		wg.Go(func() {
			_, err := s.Resolve(ctx, rita, id, upheld)
			assert.Equal(t, code, ErrorCode(err), "%q: %v", id, err)
		})
	}
	wg.Wait()
}

// TestValidateBoundsItsWork: a list far over its bound costs a bounded
// number of checks and errors, whoever calls Validate.
func TestValidateBoundsItsWork(t *testing.T) {
	t.Parallel()
	var e *Error
	err := AppealInput{Statement: "s", Evidence: make([]EvidenceItem, 340_000)}.Validate()
	require.ErrorAs(t, err, &e)
	require.Len(t, e.Fields, 1+MaxEvidenceItems, "the list's error, then one per item that could be kept")
	yes := true
	err = DecisionInput{AdvertiserID: "acme", AdID: "ad", Action: ActionAdRemoval, PolicyCode: "p", Ground: "terms",
		Explanation: "e", Facts: "f", Source: "voluntary", AutomatedDetection: &yes, AutomatedDecision: "none",
		TerritorialScope: make([]string, 100_000), ContentType: make([]string, 100_000)}.Validate()
	require.ErrorAs(t, err, &e)
	require.LessOrEqual(t, len(e.Fields), 2+MaxTerritorialScope+len(contentTypes)+1)
}
