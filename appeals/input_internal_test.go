package appeals

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals/groupcommit"
)

// TestOneBadCallInABatchFailsNoOther puts a resolution Postgres refuses
// (an id that is not UTF-8, as if it had got past Resolve's checks) into a
// batch of good ones: the batch's statement fails as a whole and commits
// nothing; and through the store's batcher functions, in one batch, the
// good calls are answered alone and succeed, rather than sharing the bad
// one's error, which fails by itself.
func TestOneBadCallInABatchFailsNoOther(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 6
	s, db, _ := queueFixture(t, n, 0, "")
	rita := docket.Actor{Role: docket.RoleReviewer, Name: "rita"}
	for range n {
		got, err := s.Claim(ctx, rita)
		require.NoError(t, err)
		require.NotNil(t, got)
	}
	upheld := ResolveInput{Outcome: AppealUpheld, Rationale: "Checked."}
	var reqs []resolveReq
	for i := 1; i <= n; i++ {
		reqs = append(reqs, resolveReq{by: rita, id: fmt.Sprintf("a-%06d", i), in: upheld})
		if i == 3 {
			reqs = append(reqs, resolveReq{by: rita, id: "a-\xff", in: upheld})
		}
	}
	_, err := s.resolveBatch(ctx, reqs)
	require.Error(t, err, "the batch fails as a whole")
	require.Empty(t, entriesOf(t, db, EntryAppealResolved), "the failed batch committed nothing")

	// The same calls through a batcher that holds them until all have
	// joined, so that they are one batch.
	var batches, biggest atomic.Int64
	b := groupcommit.New(groupcommit.Options{MaxBatch: len(reqs), MaxWait: time.Hour},
		func(ctx context.Context, reqs []resolveReq) ([]groupcommit.Result[Appeal], error) {
			batches.Add(1)
			biggest.Store(max(biggest.Load(), int64(len(reqs))))
			return s.resolveBatch(ctx, reqs)
		}, s.resolveAlone)
	got := make([]Appeal, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() { got[i], errs[i] = b.Do(ctx, r) })
	}
	wg.Wait()
	require.Equal(t, int64(1), batches.Load(), "one batch; the rest went alone")
	require.Equal(t, int64(len(reqs)), biggest.Load())
	for i, r := range reqs {
		if strings.Contains(r.id, "\xff") {
			require.Error(t, errs[i])
			require.NotErrorIs(t, errs[i], groupcommit.ErrAlone, "its own error, from its own transaction")
			continue
		}
		require.NoError(t, errs[i], "call %d", i)
		require.Equal(t, AppealUpheld, got[i].State)
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
	rita := docket.Actor{Role: docket.RoleReviewer, Name: "rita"}
	for range n {
		got, err := s.Claim(ctx, rita)
		require.NoError(t, err)
		require.NotNil(t, got)
	}
	upheld := ResolveInput{Outcome: AppealUpheld, Rationale: "Checked."}
	bad := map[string]docket.Code{"a-\xff": docket.Invalid, "a-\x00": docket.Invalid, strings.Repeat("a", 200): docket.NotFound, "a b": docket.NotFound}
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
			assert.Equal(t, code, docket.ErrorCode(err), "%q: %v", id, err)
		})
	}
	wg.Wait()
}

// TestValidateBoundsItsWork: a list far over its bound costs a bounded
// number of checks and errors, whoever calls Validate.
func TestValidateBoundsItsWork(t *testing.T) {
	t.Parallel()
	var e *docket.Error
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
