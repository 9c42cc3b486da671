// Package testdb gives tests real databases: a fresh PostgreSQL schema per
// test and SQLite files in temporary directories. Nothing is mocked.
//
// PostgreSQL comes from TEST_DATABASE_URL, or postgres://postgres@127.0.0.1:5432/postgres.
// Redis comes from TEST_REDIS_URL, or redis://127.0.0.1:6379. When a server
// can't be reached the test fails if CI is set (CI must never skip a test
// that needs a server) and is skipped with a message otherwise.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/allot/allot"
	"github.com/allot/allot/postgres"
	"github.com/allot/allot/sqlite"
)

// PostgresURLDefault is used when TEST_DATABASE_URL is not set.
const PostgresURLDefault = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// PostgresBaseURL returns the server URL tests use.
func PostgresBaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return PostgresURLDefault
}

// Unavailable fails the test in CI and skips it elsewhere.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI but unavailable: %v", what, err)
	}
	t.Skipf("%s unavailable (%v); set CI=1 to make this a failure", what, err)
}

// Postgres creates a fresh schema and returns a URL whose connections use
// it. The schema is dropped when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	base := PostgresBaseURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		Unavailable(t, "PostgreSQL at "+redact(base), err)
	}
	defer conn.Close(context.Background())
	schema := "allot_t_" + randHex(6)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(base, schema)
}

// WithSearchPath returns url with its connections' search_path set to schema.
func WithSearchPath(base, schema string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + url.QueryEscape(schema)
}

// RedisURLDefault is used when TEST_REDIS_URL is not set.
const RedisURLDefault = "redis://127.0.0.1:6379"

// RedisURL returns the URL of a reachable Redis, failing in CI and skipping
// elsewhere when there is none.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TEST_REDIS_URL")
	if u == "" {
		u = RedisURLDefault
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		t.Fatalf("TEST_REDIS_URL %q is not a redis:// URL", redact(u))
	}
	c, err := net.DialTimeout("tcp", p.Host, 3*time.Second)
	if err != nil {
		Unavailable(t, "Redis at "+p.Host, err)
	}
	c.Close()
	return u
}

// SQLitePath returns a path for a new SQLite file in a temporary directory.
func SQLitePath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "allot.db")
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the configured URL"
	}
	return p.Redacted()
}

// PostgresStore opens a migrated PostgreSQL store on a fresh schema (see
// Postgres), closed when the test ends.
func PostgresStore(t testing.TB) *postgres.Store {
	t.Helper()
	return migrated(t, "postgres", postgres.Open, Postgres(t))
}

// SQLiteStore opens a migrated SQLite store on a fresh file, closed when
// the test ends.
func SQLiteStore(t testing.TB) *sqlite.Store {
	t.Helper()
	return migrated(t, "sqlite", sqlite.Open, SQLitePath(t))
}

// migrated opens a store with open and migrates it.
func migrated[S interface {
	Migrate(context.Context) error
	Close() error
}](t testing.TB, what string, open func(context.Context, string) (S, error), dsn string) S {
	t.Helper()
	st, err := open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open %s: %v", what, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", what, err)
	}
	return st
}

// Service starts a Service on cfg (its Store set), closed when the test
// ends.
func Service(t testing.TB, cfg allot.Config) *allot.Service {
	t.Helper()
	svc, err := allot.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("allot.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Close(ctx); err != nil {
			t.Errorf("close service: %v", err)
		}
	})
	return svc
}
