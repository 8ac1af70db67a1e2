// Package migrations holds Docket's schema as numbered goose SQL files,
// embedded so that the one binary can apply them (`docket migrate up`).
package migrations

import "embed"

// FS holds every migration file; goose reads them in numeric order.
//
//go:embed *.sql
var FS embed.FS
