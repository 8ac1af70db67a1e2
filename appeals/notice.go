package appeals

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/audit"
)

// NoticeInput reports that the statement of reasons of a decision reached
// its advertiser (DSA Art. 17(1): it must be provided "at the latest" when
// the restriction is imposed; this records when it actually was).
type NoticeInput struct {
	Channel NoticeChannel `json:"channel" enumSet:"channel"`
	// DeliveredAt is when the notice was delivered (RFC 3339); empty: now.
	DeliveredAt string `json:"delivered_at" format:"date-time" doc:"When the notice was delivered; not in the future. Absent: now."`
	// Reference is the sender's own id of the message, for tracing.
	Reference string `json:"reference" maxLength:"256" doc:"The sender's own id of the message, printable characters."`
}

// Validate checks the input as validate does at the current time.
func (in NoticeInput) Validate() error {
	_, err := in.validate(time.Now())
	return err
}

// Notice is the record of one delivery, as logged in notice.delivered.
type Notice struct {
	DecisionID   string        `json:"decision_id"`
	AdvertiserID string        `json:"advertiser_id"`
	Channel      NoticeChannel `json:"channel"`
	DeliveredAt  time.Time     `json:"delivered_at"`
	Reference    string        `json:"reference,omitempty"`
	// NotifiedAt is the decision's notified_at after this delivery.
	NotifiedAt time.Time `json:"notified_at"`
	RecordedBy string    `json:"recorded_by"`
	RecordedAt time.Time `json:"recorded_at"`
}

// noticeSkew is how far in the future a reported delivery may lie, for
// the sender's clock.
const noticeSkew = 5 * time.Minute

func (in NoticeInput) validate(now time.Time) (time.Time, error) {
	var p docket.Problems
	docket.OneOf(&p, "channel", in.Channel, noticeChannels)
	at := now
	if in.DeliveredAt != "" {
		t, err := time.Parse(time.RFC3339, in.DeliveredAt)
		switch {
		case err != nil:
			p.Add("delivered_at", "must be an RFC 3339 timestamp")
		case t.After(now.Add(noticeSkew)):
			p.Add("delivered_at", "must not be in the future")
		default:
			at = t.UTC().Truncate(time.Microsecond)
		}
	}
	if !utf8.ValidString(in.Reference) || utf8.RuneCountInString(in.Reference) > 256 || strings.ContainsFunc(in.Reference, func(r rune) bool { return r < 0x20 }) {
		p.Add("reference", "must be at most 256 printable characters")
	}
	return at, p.Err()
}

// RecordNotice records that a decision's statement of reasons was
// delivered to its advertiser: a notice.delivered entry for every
// delivery, and the decision's notified_at set to the earliest delivery
// known, so that a late notice is visible on the decision itself.
//
// Admins and enforcers may record notices: the mailer that sends the
// statements runs with an enforcer-role token, as the pipeline that
// records decisions does; reviewers, auditors and advertisers may not.
func (s *Store) RecordNotice(ctx context.Context, by docket.Actor, decisionID string, in NoticeInput, opts ...WriteOption) (Decision, error) {
	if !by.Is(docket.Recorders...) {
		return Decision{}, docket.Errorf(docket.Forbidden, "only enforcers and admins record notices")
	}
	at, err := in.validate(s.now())
	if err != nil {
		return Decision{}, err
	}
	return write(ctx, s, idempotencyOf(opts), func(tx *sqlx.Tx, now time.Time) (Decision, error) {
		d, err := getDecision(ctx, tx, decisionID, true)
		if err != nil {
			return Decision{}, err
		}
		// Senders often report whole seconds; only a delivery before the
		// decision's second is impossible.
		if at.Before(d.DecidedAt.Truncate(time.Second)) {
			return Decision{}, &docket.Error{Code: docket.Invalid, Message: "the request has invalid fields",
				Fields: []docket.FieldError{{Field: "delivered_at", Message: "must not be before the decision (" + d.DecidedAt.Format(time.RFC3339) + ")"}}}
		}
		// The earliest delivery is when the advertiser learned of the
		// decision; later (or out-of-order) reports only add entries.
		if d.NotifiedAt == nil || at.Before(*d.NotifiedAt) {
			if _, err := tx.ExecContext(ctx, `UPDATE decisions SET notified_at = $2 WHERE id = $1`, d.ID, at); err != nil {
				return Decision{}, fmt.Errorf("appeals: set notified_at: %w", err)
			}
			d.NotifiedAt = &at
		}
		n := Notice{DecisionID: d.ID, AdvertiserID: d.AdvertiserID, Channel: in.Channel, DeliveredAt: at,
			Reference: in.Reference, NotifiedAt: *d.NotifiedAt, RecordedBy: by.String(), RecordedAt: now}
		if err := s.append(ctx, tx, audit.Entry{Type: EntryNoticeDelivered, Time: now, Actor: by.String(),
			Subject: audit.Subject{Kind: "decision", ID: d.ID}, Record: n,
			Keys: AuditKeys(d.AdvertiserID, d.PolicyCode)}); err != nil {
			return Decision{}, err
		}
		d.effective(now)
		return d, nil
	})
}
