package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testdb"
	"github.com/allot/allot/postgres"
)

// TestNextTx takes gapless numbers inside the caller's own transactions:
// a rolled-back transaction leaves no gap, a committed one keeps its
// numbers and its business row together.
func TestNextTx(t *testing.T) {
	ctx := context.Background()
	st := testdb.PostgresStore(t)
	svc, err := allot.New(context.Background(), allot.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(ctx)
	if _, err := svc.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "inv", Format: "INV-{n:5}", Mode: allot.ModeGapless}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pool().Exec(ctx, `CREATE TABLE invoices (id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	errRollback := errors.New("payment failed")
	err = pgx.BeginFunc(ctx, st.Pool(), func(tx pgx.Tx) error {
		r, err := postgres.NextTx(ctx, svc, tx, allot.NextParams{Sequence: "inv"})
		if err != nil {
			return err
		}
		if r.IDs[0] != "INV-00001" {
			t.Errorf("first id %s", r.IDs[0])
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	err = pgx.BeginFunc(ctx, st.Pool(), func(tx pgx.Tx) error {
		r, err := postgres.NextTx(ctx, svc, tx, allot.NextParams{Sequence: "inv", IdempotencyKey: "k"})
		if err != nil {
			return err
		}
		if r.IDs[0] != "INV-00001" {
			t.Errorf("after a rollback the number must be reused: got %s", r.IDs[0])
		}
		_, err = tx.Exec(ctx, `INSERT INTO invoices VALUES ($1)`, r.IDs[0])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Outside any transaction the service continues after it.
	r, err := svc.Next(ctx, allot.NextParams{Sequence: "inv"})
	if err != nil || r.IDs[0] != "INV-00002" {
		t.Fatalf("next after NextTx: %+v %v", r, err)
	}
	// The key committed with the caller's transaction.
	r, err = svc.Next(ctx, allot.NextParams{Sequence: "inv", IdempotencyKey: "k"})
	if err != nil || !r.Replayed || r.IDs[0] != "INV-00001" {
		t.Fatalf("replay of the key taken in NextTx: %+v %v", r, err)
	}
	if _, err := postgres.NextTx(ctx, svc, nil, allot.NextParams{Sequence: "inv", Count: 0, Date: "bad"}); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("bad date: %v", err)
	}
}
