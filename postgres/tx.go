package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/allot/allot"
)

// NextTx takes numbers from a sequence inside the caller's transaction tx,
// the Tx twin of allot.Service.Next. The numbers, their ledger row and any
// idempotency key commit or roll back with tx, so a gapless invoice number
// is only used if the invoice itself commits.
//
// tx holds the period's counter row lock until it ends, so other issuers of
// the same sequence wait for it: keep such transactions short. The numbers
// are recorded as issued whatever the sequence's mode. svc must run on a
// Store over the same database as tx.
func NextTx(ctx context.Context, svc *allot.Service, tx pgx.Tx, p allot.NextParams) (*allot.NextResult, error) {
	return svc.NextVia(ctx, p, func(ctx context.Context, ap allot.SequenceAdvanceParams) ([]allot.SequenceAdvanceResult, error) {
		res, err := advanceTx(ctx, tx, ap)
		if err != nil {
			return nil, translate(err, fmt.Sprintf("advance sequence %q", ap.Sequence))
		}
		return res, nil
	})
}
