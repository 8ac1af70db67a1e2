package appeals_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/internal/pgtest"
)

func TestRecordNotice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	clock := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	store := appeals.NewStore(db, appeals.Options{Now: func() time.Time { return clock }})
	admin := docket.Actor{Role: docket.RoleAdmin, Name: "ada"}
	mailer := docket.Actor{Role: docket.RoleEnforcer, Name: "mailer"}
	_, err := store.PutPolicy(ctx, admin, "crypto", appeals.PolicyInput{Title: "Crypto", Text: "No token sales."})
	require.NoError(t, err)
	yes := true
	d, err := store.RecordDecision(ctx, mailer, appeals.DecisionInput{AdvertiserID: "acme", AdID: "ad-1", Action: "ad_removal",
		PolicyCode: "crypto", Ground: "terms", Explanation: "e", Facts: "f", Source: "voluntary",
		AutomatedDetection: &yes, AutomatedDecision: "none"})
	require.NoError(t, err)
	require.Nil(t, d.NotifiedAt)

	// Roles other than enforcer and admin may never record a notice.
	for _, r := range []docket.Role{docket.RoleReviewer, docket.RoleSeniorReviewer, docket.RoleAuditor, docket.RoleAdvertiser} {
		_, err := store.RecordNotice(ctx, docket.Actor{Role: r, Name: "x", AdvertiserID: "acme"}, d.ID, appeals.NoticeInput{Channel: "email"})
		require.Equal(t, docket.Forbidden, docket.ErrorCode(err), r)
	}
	// Every bad field is named.
	_, err = store.RecordNotice(ctx, mailer, d.ID, appeals.NoticeInput{Channel: "pigeon", DeliveredAt: "yesterday"})
	var ae *docket.Error
	require.ErrorAs(t, err, &ae)
	require.Len(t, ae.Fields, 2)
	_, err = store.RecordNotice(ctx, mailer, d.ID, appeals.NoticeInput{Channel: "email", DeliveredAt: clock.Add(-time.Hour).Format(time.RFC3339)})
	require.Equal(t, docket.Invalid, docket.ErrorCode(err), "a delivery before the decision")
	_, err = store.RecordNotice(ctx, mailer, "nope", appeals.NoticeInput{Channel: "email"})
	require.Equal(t, docket.NotFound, docket.ErrorCode(err))

	// The first delivery, three days late, sets notified_at.
	first := clock.Add(72 * time.Hour)
	clock = clock.Add(100 * time.Hour)
	got, err := store.RecordNotice(ctx, mailer, d.ID, appeals.NoticeInput{Channel: "email", DeliveredAt: first.Format(time.RFC3339), Reference: "msg-1"})
	require.NoError(t, err)
	require.NotNil(t, got.NotifiedAt)
	require.True(t, got.NotifiedAt.Equal(first))
	// A later delivery is logged but leaves notified_at alone.
	got, err = store.RecordNotice(ctx, admin, d.ID, appeals.NoticeInput{Channel: "in_app"})
	require.NoError(t, err)
	require.True(t, got.NotifiedAt.Equal(first))
	// An earlier one reported late moves it back: the advertiser knew then.
	earlier := first.Add(-time.Hour)
	got, err = store.RecordNotice(ctx, mailer, d.ID, appeals.NoticeInput{Channel: "post", DeliveredAt: earlier.Format(time.RFC3339)})
	require.NoError(t, err)
	require.True(t, got.NotifiedAt.Equal(earlier))
	read, err := store.Decision(ctx, admin, d.ID)
	require.NoError(t, err)
	require.True(t, read.NotifiedAt.Equal(earlier))

	// One notice.delivered entry per delivery, about the decision.
	var entries [][]byte
	require.NoError(t, db.Select(&entries, `SELECT entry FROM audit_staging WHERE type = 'notice.delivered' ORDER BY id`))
	require.Len(t, entries, 3)
	var e struct {
		Type    string `json:"type"`
		Actor   string `json:"actor"`
		Subject struct{ Kind, ID string }
		Record  appeals.Notice `json:"record"`
	}
	require.NoError(t, json.Unmarshal(entries[0], &e))
	require.Equal(t, "notice.delivered", e.Type)
	require.Equal(t, "enforcer:mailer", e.Actor)
	require.Equal(t, "decision", e.Subject.Kind)
	require.Equal(t, d.ID, e.Subject.ID)
	require.Equal(t, appeals.ChannelEmail, e.Record.Channel)
	require.Equal(t, "msg-1", e.Record.Reference)
	require.True(t, e.Record.DeliveredAt.Equal(first))
}
