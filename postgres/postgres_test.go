package postgres_test

import (
	"context"
	"testing"
	"time"

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
	s := testdb.PostgresStore(t)
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

// TestNewCounterWaitsForMax: a period's first counter created while an
// update of max holds the sequence row starts with the max the update
// commits, so no number past it is ever issued.
func TestNewCounterWaitsForMax(t *testing.T) {
	ctx := context.Background()
	s := testdb.PostgresStore(t)
	maxv := int64(1000)
	q, err := allot.NewSequence(allot.SequenceCreateParams{Name: "a", Max: &maxv, Reset: allot.ResetDaily, Format: "A{yyyy}{mm}{dd}-{n}"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SequenceCreate(ctx, q); err != nil {
		t.Fatal(err)
	}
	// What SequenceUpdate does, held open between its row lock and its
	// writes while a new period's counter is created.
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM allot_sequences WHERE name = 'a' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		res []allot.SequenceAdvanceResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := s.SequenceAdvance(ctx, allot.SequenceAdvanceParams{Sequence: "a", Period: "2026-12-01", Kind: allot.LedgerIssued, Owner: "x",
			Requests: []allot.SequenceAdvanceRequest{{Count: 50}}})
		done <- outcome{res, err}
	}()
	time.Sleep(200 * time.Millisecond) // the advance is waiting on the row
	for _, stmt := range []string{`UPDATE allot_sequence_counters SET max = 10 WHERE sequence = 'a'`, `UPDATE allot_sequences SET max = 10 WHERE name = 'a'`} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	if r := o.res[0]; r.Err == nil && r.Last > 10 {
		t.Fatalf("took %d-%d with max lowered to 10", r.First, r.Last)
	}
	var cmax int64
	if err := s.Pool().QueryRow(ctx, `SELECT max FROM allot_sequence_counters WHERE sequence = 'a' AND period = '2026-12-01'`).Scan(&cmax); err != nil {
		t.Fatal(err)
	}
	if cmax != 10 {
		t.Fatalf("the new period's counter has max %d, want 10 (the max the update committed)", cmax)
	}
}
