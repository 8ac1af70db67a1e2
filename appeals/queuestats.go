package appeals

import (
	"context"
	"fmt"
	"time"
)

// QueueDepth counts the open appeals by state, and those past their due
// date, for operators' alerts.
type QueueDepth struct {
	Pending, InReview, Escalated int64
	Overdue                      int64
}

// QueueDepth reads the queue's depth at now.
func (s *Store) QueueDepth(ctx context.Context, now time.Time) (QueueDepth, error) {
	var d QueueDepth
	err := s.db.QueryRowxContext(ctx, `
		SELECT count(*) FILTER (WHERE state = $1), count(*) FILTER (WHERE state = $2),
			count(*) FILTER (WHERE state = $3), count(*) FILTER (WHERE due_at < $4)
		FROM appeals WHERE state IN (`+openStatesSQL+`)`,
		AppealPending, AppealInReview, AppealEscalated, now).Scan(&d.Pending, &d.InReview, &d.Escalated, &d.Overdue)
	if err != nil {
		return QueueDepth{}, fmt.Errorf("appeals: queue depth: %w", err)
	}
	return d, nil
}
