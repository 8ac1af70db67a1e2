package appeals

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals/dsa"
)

// FuzzCursor checks the cursor parser on any string: it never panics, a
// cursor it accepts is the canonical encoding of a key it would itself
// write (so re-encoding gives the cursor back), and any key a list can
// hold comes back from its own cursor.
func FuzzCursor(f *testing.F) {
	for _, s := range []string{"", "0192f0c4-5e1a-7000-8000-000000000001", "crypto", "a", "-", "Zm9v", "Zm9v=", "Zm9v\n",
		base64.RawURLEncoding.EncodeToString([]byte("0192f0c4-5e1a-7000-8000-000000000001")), "////", "_-_-", "\x00", "\xff"} {
		f.Add(s, 0)
	}
	f.Add("Y3J5cHRv", 501)
	f.Add("Y3J5cHRv", -1)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		for _, valid := range []func(string) bool{ValidPlatformID, ValidPolicyCode} {
			key, err := PageRequest{Cursor: s}.after(valid)
			if err != nil {
				require.Equal(t, docket.Invalid, docket.ErrorCode(err))
				require.Empty(t, key)
			} else if s != "" {
				require.True(t, valid(key))
				require.Equal(t, s, base64.RawURLEncoding.EncodeToString([]byte(key)), "only the canonical spelling is accepted")
			}
			// A key a list can hold: its cursor reads back as the key.
			if valid(s) {
				p := makePage([]string{"x", s, "y"}, 2, func(v string) string { return v })
				back, err := PageRequest{Cursor: p.NextCursor}.after(valid)
				require.NoError(t, err)
				require.Equal(t, s, back)
			}
		}
		r := PageRequest{Cursor: s, Limit: limit}
		if err := r.Validate(); err != nil {
			require.Equal(t, docket.Invalid, docket.ErrorCode(err))
		}
		require.GreaterOrEqual(t, r.limit(), 1)
		require.LessOrEqual(t, r.limit(), MaxLimit)
	})
}

// FuzzFilters checks the list filters' validation on any values: no
// panic, and every refusal is the caller's (Invalid) error.
func FuzzFilters(f *testing.F) {
	f.Add("acme", "ad_removal", "in_effect", "crypto", "pending", "0192f0c4-5e1a-7000-8000-000000000001", "", 10)
	f.Add("", "", "", "", "", "", "", 0)
	f.Add("ac me", "ban", "gone", "Crypto", "open", "x\x00", "%%%", 501)
	f.Add("\xff", "\xff", "\xff", "\xff", "\xff", "\xff", "\xff", -5)
	f.Fuzz(func(t *testing.T, adv, action, status, code, state, decision, cursor string, limit int) {
		pr := PageRequest{Limit: limit, Cursor: cursor}
		for _, err := range []error{
			DecisionFilter{AdvertiserID: adv, Action: Action(action), Status: DecisionStatus(status), PolicyCode: code, PageRequest: pr}.Validate(),
			AppealFilter{State: AppealState(state), AdvertiserID: adv, DecisionID: decision, PageRequest: pr}.Validate(),
		} {
			if err != nil {
				require.Equal(t, docket.Invalid, docket.ErrorCode(err), "%v", err)
			}
		}
	})
}

// FuzzNoticeValidate checks a notice's validation on any input: no panic,
// refusals are Invalid, and an accepted delivery time is not in the
// future beyond the allowed skew and is in UTC to the microsecond.
func FuzzNoticeValidate(f *testing.F) {
	f.Add("email", "", "msg-1")
	f.Add("in_app", "2026-01-02T03:04:05Z", "")
	f.Add("post", "2026-01-02T03:04:05.123456789+14:00", "ref\x01")
	f.Add("fax", "9999-12-31T23:59:59Z", "\xff")
	f.Add("api", "0000-01-01T00:00:00-23:59", "x")
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, channel, at, ref string) {
		got, err := NoticeInput{Channel: NoticeChannel(channel), DeliveredAt: at, Reference: ref}.validate(now)
		if err != nil {
			require.Equal(t, docket.Invalid, docket.ErrorCode(err))
			return
		}
		require.False(t, got.After(now.Add(noticeSkew)))
		require.Equal(t, time.UTC, got.Location())
		require.Equal(t, got, got.Truncate(time.Microsecond))
	})
}

// pick is the value of set at index i, wrapped.
func pick[T any](set []T, i uint8) T { return set[int(i)%len(set)] }

// FuzzStatementOf checks that every decision a valid input records maps
// to a statement of reasons the Transparency Database accepts: an export
// checks each statement and fails on one that does not validate, so a
// recordable decision whose statement fails would break every DSA export.
// The fields are the fuzzer's own arguments, so it mutates values, not
// JSON syntax; enumerations are picked by index.
func FuzzStatementOf(f *testing.F) {
	f.Add("acme", "ad-1", uint8(1), "crypto", false, "", "The ad promotes a crypto token.", "Ad ad-1 showed a token sale.",
		uint8(0), true, uint8(1), "", "", "", "", 1)
	f.Add("acme", "", uint8(0), "p", true, "Art. 1", "e", "f", uint8(3), false, uint8(0), "DE,US", "text,other",
		"2027-01-01T00:00:00+14:00", "STATEMENT_CATEGORY_SCAMS_AND_FRAUD", 7)
	f.Add("a", "b", uint8(2), "p", false, "", " e ", "f\n", uint8(1), true, uint8(2), "US", "synthetic_media", "", "", 1<<30)
	f.Fuzz(func(t *testing.T, adv, adID string, action uint8, code string, law bool, legalRef, explanation, facts string,
		source uint8, detection bool, automated uint8, scope, content, endsAt, category string, version int) {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		in := DecisionInput{AdvertiserID: adv, AdID: adID, Action: pick(actions, action), PolicyCode: code,
			Ground: "terms", LegalReference: legalRef, Explanation: explanation, Facts: facts,
			Source: pick(sources, source), AutomatedDetection: &detection, AutomatedDecision: pick(automatedDecisions, automated),
			TerritorialScope: split(scope), ContentType: split(content), EndsAt: endsAt}
		if law {
			in.Ground = "law"
		}
		now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
		if in.validateAt(now) != nil || (category != "" && !dsa.ValidCategory(category)) {
			return
		}
		// The decision as recordDecision builds it.
		d := Decision{
			ID: uuid.Must(uuid.NewV7()).String(), AdvertiserID: in.AdvertiserID, AdID: nullable(in.AdID),
			Action: in.Action, PolicyCode: in.PolicyCode, PolicyVersion: version&0x7fffffff + 1,
			PolicyTextSHA256: textHash("text"), Ground: in.Ground, LegalReference: nullable(in.LegalReference),
			Explanation: in.Explanation, Facts: in.Facts, Source: in.Source, AutomatedDetection: *in.AutomatedDetection,
			AutomatedDecision: in.AutomatedDecision, TerritorialScope: pq.StringArray(in.TerritorialScope),
			ContentType: pq.StringArray(in.ContentType), Status: StatusInEffect, DecidedBy: "enforcer:pipeline",
			DecidedAt: now,
		}
		if in.EndsAt != "" {
			e, _ := time.Parse(time.RFC3339, in.EndsAt)
			e = e.UTC()
			d.EndsAt = &e
		}
		st, ok := StatementOf(d, category)
		if !ok {
			return
		}
		require.NoError(t, st.Validate(), "input %+v", in)
	})
}

// TestEndsAtPastYear9999: found by FuzzServer. An ends_at that is in 9999
// as written but in 10000 in UTC validated, then failed the decision's
// audit entry (JSON holds years 0 to 9999) with a 500.
func TestEndsAtPastYear9999(t *testing.T) {
	t.Parallel()
	yes := true
	in := DecisionInput{AdvertiserID: "acme", Action: ActionAdvertiserBan, PolicyCode: "p", Ground: "terms",
		Explanation: "e", Facts: "f", Source: "voluntary", AutomatedDetection: &yes, AutomatedDecision: "none",
		EndsAt: "9999-12-31T23:30:00-01:00"}
	err := in.Validate()
	require.Error(t, err)
	require.Equal(t, docket.Invalid, docket.ErrorCode(err))
	in.EndsAt = "9999-12-31T23:30:00+01:00"
	require.NoError(t, in.Validate())
}
