// Package pgtest gives each test its own freshly migrated Postgres database
// on the real server, dropped when the test ends, so tests can run in
// parallel without sharing state.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/docket-dev/docket/migrations"
)

// BaseURL is the server the tests use: TEST_DATABASE_URL, or the local one.
func BaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// NewURL creates an empty database and returns its URL; it is dropped at cleanup.
func NewURL(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "docket_test_" + hex.EncodeToString(b[:])
	admin, err := sqlx.Open("postgres", BaseURL())
	if err != nil {
		tb.Fatalf("pgtest: open: %v", err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		a, err := sqlx.Open("postgres", BaseURL())
		if err != nil {
			return
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = a.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)")
	})
	u, _ := url.Parse(BaseURL())
	u.Path = "/" + name
	return u.String()
}

// New returns a connection to a new, fully migrated database, configured
// as `docket serve` configures its own (one round trip per statement).
func New(tb testing.TB) *sqlx.DB {
	tb.Helper()
	u, err := url.Parse(NewURL(tb))
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	q := u.Query()
	q.Set("binary_parameters", "yes")
	u.RawQuery = q.Encode()
	db, err := sqlx.Open("postgres", u.String())
	if err != nil {
		tb.Fatalf("pgtest: open: %v", err)
	}
	db.SetMaxOpenConns(24)
	tb.Cleanup(func() { db.Close() })
	if err := migrations.Up(context.Background(), db.DB); err != nil {
		tb.Fatalf("pgtest: migrate: %v", err)
	}
	return db
}
