package audit

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Backlog is how far the signed log trails the writes, for operators:
// what the integrator has yet to take, and how old the latest checkpoint
// is. It is read from the database, so any replica reports the same.
type Backlog struct {
	// Staged counts entries committed (or in flight) but not yet leaves.
	Staged int64
	// OldestStaged is when the oldest of them was staged; zero when none.
	OldestStaged time.Time
	// CheckpointSize and CheckpointAt describe the latest checkpoint;
	// zero before the first.
	CheckpointSize int64
	CheckpointAt   time.Time
}

// ReadBacklog reads the backlog. It costs index range scans over the
// backlog only: rows past the integrator's watermark, and the latest
// checkpoint by its key.
func ReadBacklog(ctx context.Context, q sqlx.QueryerContext) (Backlog, error) {
	var row struct {
		Staged int64        `db:"staged"`
		Oldest sql.NullTime `db:"oldest"`
		Size   int64        `db:"size"`
		At     sql.NullTime `db:"at"`
	}
	err := sqlx.GetContext(ctx, q, &row, `
		SELECT b.staged, b.oldest, coalesce(c.size, 0) AS size, c.created_at AS at
		FROM (SELECT count(*) AS staged, min(s.created_at) AS oldest
			FROM audit_staging s, audit_integrator w
			WHERE w.id = 1 AND (s.xid, s.id) > (w.watermark, w.watermark_id)) b
		LEFT JOIN LATERAL (SELECT size, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1) c ON true`)
	if err != nil {
		return Backlog{}, fmt.Errorf("audit: read backlog: %w", err)
	}
	return Backlog{Staged: row.Staged, OldestStaged: row.Oldest.Time, CheckpointSize: row.Size, CheckpointAt: row.At.Time}, nil
}
