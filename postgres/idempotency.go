package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/allot/allot"
)

func existingKeys(ctx context.Context, tx pgx.Tx, p allot.SequenceAdvanceParams) (map[string]*allot.IdempotencyRecord, error) {
	var scope string
	var keys []string
	for _, r := range p.Requests {
		if r.Idempotency != nil {
			scope = r.Idempotency.Scope
			keys = append(keys, r.Idempotency.Key)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	recs, err := list(ctx, tx, "read idempotency keys", scanIdem, `SELECT `+idemCols+` FROM allot_idempotency WHERE scope = $1 AND key = ANY($2)`, scope, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*allot.IdempotencyRecord, len(recs))
	for _, rec := range recs {
		out[rec.Key] = rec
	}
	return out, nil
}

const idemCols = `scope, key, request_hash, period, date, first, last, confirm_by, created_at, result`

func scanIdem(row pgx.Row) (*allot.IdempotencyRecord, error) {
	var r allot.IdempotencyRecord
	err := row.Scan(&r.Scope, &r.Key, &r.RequestHash, &r.Period, &r.Date, &r.First, &r.Last, &r.ConfirmBy, &r.CreatedAt, &r.Result)
	r.CreatedAt = r.CreatedAt.UTC()
	if r.ConfirmBy != nil {
		t := r.ConfirmBy.UTC()
		r.ConfirmBy = &t
	}
	return &r, err
}

// IdempotencyGet returns a stored record.
func (s *Store) IdempotencyGet(ctx context.Context, scope, key string) (*allot.IdempotencyRecord, error) {
	r, err := scanIdem(s.pool.QueryRow(ctx, `SELECT `+idemCols+` FROM allot_idempotency WHERE scope = $1 AND key = $2`, scope, key))
	if err != nil {
		return nil, translate(err, fmt.Sprintf("idempotency key %q", key))
	}
	return r, nil
}

// IdempotencyPurge deletes records created before the given time.
func (s *Store) IdempotencyPurge(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM allot_idempotency WHERE created_at < $1`, before)
	if err != nil {
		return 0, translate(err, "purge idempotency keys")
	}
	return tag.RowsAffected(), nil
}
