package sqlite_test

import (
	"context"
	"strings"
	"testing"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/storetest"
	"github.com/allot/allot/internal/testdb"
	"github.com/allot/allot/sqlite"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() allot.Store {
		path := testdb.SQLitePath(t)
		return func() allot.Store {
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}, storetest.Hooks{HoldCounter: func(t *testing.T, st allot.Store, seq, period string) func() {
		// SQLite has one write lock for the whole database.
		conn, err := st.(*sqlite.Store).DB().Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
			t.Fatal(err)
		}
		return func() {
			_, _ = conn.ExecContext(context.Background(), `ROLLBACK`)
			conn.Close()
		}
	}})
}

func TestPathFromURL(t *testing.T) {
	for in, want := range map[string]string{
		"sqlite:///var/lib/allot.db": "/var/lib/allot.db",
		"sqlite://allot.db":          "allot.db",
		"sqlite:data/allot.db":       "data/allot.db",
		"sqlite:///tmp/a%20b.db?x=1": "/tmp/a b.db",
	} {
		got, err := sqlite.PathFromURL(in)
		if err != nil || got != want {
			t.Errorf("PathFromURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"postgres://x", "sqlite://", "sqlite:"} {
		if _, err := sqlite.PathFromURL(bad); err == nil {
			t.Errorf("PathFromURL(%q) accepted", bad)
		}
	}
}

// TestTriggersGuardCounter checks the database itself refuses a counter that
// moves back or past max, whatever the application does.
func TestTriggersGuardCounter(t *testing.T) {
	ctx := context.Background()
	s := testdb.SQLiteStore(t)
	q, _ := allot.NewSequence(allot.SequenceCreateParams{Name: "a", Max: ptr[int64](10)})
	if _, err := s.SequenceCreate(ctx, q); err != nil {
		t.Fatal(err)
	}
	exec := func(q string) error { _, err := s.DB().Exec(q); return err }
	if err := exec(`INSERT INTO allot_sequence_counters (sequence, period, last, max) VALUES ('a', '', 5, 10)`); err != nil {
		t.Fatal(err)
	}
	if err := exec(`INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, created_at) VALUES ('a', '', 'issued', 1, 5, 0)`); err != nil {
		t.Fatal(err)
	}
	storetest.GuardLedger(t, exec)
	if _, err := s.DB().Exec(`UPDATE allot_sequence_counters SET last = 11`); err == nil {
		t.Fatal("counter passed max")
	}
}

func ptr[T any](v T) *T { return &v }

// TestMigrateRefusesAnEditedMigration: a database whose applied migration
// differs from the embedded one refuses to migrate, loudly.
func TestMigrateRefusesAnEditedMigration(t *testing.T) {
	ctx := context.Background()
	s := testdb.SQLiteStore(t)
	if _, err := s.DB().Exec(`UPDATE allot_schema_migrations SET checksum = 'edited' WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "must never be edited") {
		t.Fatalf("migrate over an edited migration: %v", err)
	}
}
