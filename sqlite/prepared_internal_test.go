package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func migrated(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "allot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHotStatementsArePrepared: a hot statement that no longer prepares
// (a renamed column, a typo) would silently run unprepared again.
func TestHotStatementsArePrepared(t *testing.T) {
	s := migrated(t)
	m := s.hot.Load()
	if m == nil {
		t.Fatal("nothing prepared after Migrate")
	}
	for _, q := range hot {
		if (*m)[q] == nil {
			if _, err := s.db.Prepare(q); err != nil {
				t.Errorf("hot statement does not prepare: %v\n%s", err, q)
			} else {
				t.Errorf("hot statement not prepared:\n%s", q)
			}
		}
	}
}

// TestExpiryLookupUsesThePoolIndex: the lazy expiry of every claim batch
// and pool read must probe the pool's holds by expiry (migration 007), not
// walk the pool's every claim, on a database without statistics.
func TestExpiryLookupUsesThePoolIndex(t *testing.T) {
	s := migrated(t)
	for _, q := range []string{expireHeldSQL, poolGetSQL} {
		rows, err := s.db.Query("EXPLAIN QUERY PLAN "+q, 1, "p", 1)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "\n"), "allot_claims_pool_held_expiry") {
			t.Errorf("plan of\n%s\ndoes not use allot_claims_pool_held_expiry:\n%s", q, strings.Join(plan, "\n"))
		}
	}
}

// TestWriterWaitEndsWithTheContext: a write waiting for this process's
// other writer gives up when its context ends, without starting.
func TestWriterWaitEndsWithTheContext(t *testing.T) {
	s := migrated(t)
	holding, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.withTx(t.Context(), func(runner) error { close(holding); <-release; return nil })
	}()
	<-holding
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	ran := false
	err := s.withTx(ctx, func(runner) error { ran = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Fatalf("waiting write: err %v, ran %v; want the deadline, not run", err, ran)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.withTx(t.Context(), func(runner) error { return nil }); err != nil {
		t.Fatalf("write after the holder ended: %v", err)
	}
}
