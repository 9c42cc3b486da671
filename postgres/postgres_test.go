package postgres_test

import (
	"context"
	"testing"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/storetest"
	"github.com/allot/allot/internal/testdb"
	"github.com/allot/allot/postgres"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() allot.Store {
		url := testdb.Postgres(t)
		return func() allot.Store {
			s, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}, storetest.Hooks{HoldCounter: func(t *testing.T, st allot.Store, seq, period string) func() {
		ctx := context.Background()
		tx, err := st.(*postgres.Store).Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM allot_sequence_counters WHERE sequence = $1 AND period = $2 FOR UPDATE`, seq, period); err != nil {
			t.Fatal(err)
		}
		return func() { _ = tx.Rollback(ctx) }
	}})
}

// TestTriggersGuardCounter checks the database itself refuses a counter that
// moves back or past max, whatever the application does.
func TestTriggersGuardCounter(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	max := int64(10)
	q, _ := allot.NewSequence(allot.SequenceCreateParams{Name: "a", Max: &max})
	if _, err := s.SequenceCreate(ctx, q); err != nil {
		t.Fatal(err)
	}
	db := s.Pool()
	exec := func(q string) error { _, err := db.Exec(ctx, q); return err }
	if err := exec(`INSERT INTO allot_sequence_counters (sequence, period, last, max) VALUES ('a', '', 5, 10)`); err != nil {
		t.Fatal(err)
	}
	if err := exec(`INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last) VALUES ('a', '', 'issued', 1, 5)`); err != nil {
		t.Fatal(err)
	}
	storetest.GuardLedger(t, exec)
	if _, err := db.Exec(ctx, `UPDATE allot_sequence_counters SET last = 11`); err == nil {
		t.Fatal("counter passed max")
	}
}
