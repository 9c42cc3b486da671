package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/allot/allot"
)

func (s *Store) existingKeys(ctx context.Context, tx runner, p allot.SequenceAdvanceParams) (map[string]*allot.IdempotencyRecord, error) {
	var out map[string]*allot.IdempotencyRecord
	for _, r := range p.Requests {
		if r.Idempotency == nil {
			continue
		}
		rec, err := scanIdem(tx.QueryRowContext(ctx, idemByKeySQL, r.Idempotency.Scope, r.Idempotency.Key))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make(map[string]*allot.IdempotencyRecord)
		}
		out[rec.Key] = rec
	}
	return out, nil
}

const idemCols = `scope, key, request_hash, period, date, first, last, confirm_by, created_at, result`

// idemByKeySQL reads one idempotency record by scope and key.
const idemByKeySQL = `SELECT ` + idemCols + ` FROM allot_idempotency WHERE scope = ? AND key = ?`

func scanIdem(row scanner) (*allot.IdempotencyRecord, error) {
	var r allot.IdempotencyRecord
	var created int64
	var confirmBy sql.NullInt64
	err := row.Scan(&r.Scope, &r.Key, &r.RequestHash, &r.Period, &r.Date, &r.First, &r.Last, &confirmBy, &created, &r.Result)
	r.CreatedAt = fromMicros(created)
	if confirmBy.Valid {
		t := fromMicros(confirmBy.Int64)
		r.ConfirmBy = &t
	}
	return &r, err
}

// IdempotencyGet returns a stored record.
func (s *Store) IdempotencyGet(ctx context.Context, scope, key string) (*allot.IdempotencyRecord, error) {
	r, err := scanIdem(s.read().QueryRowContext(ctx, idemByKeySQL, scope, key))
	if err != nil {
		return nil, translate(err, fmt.Sprintf("idempotency key %q", key))
	}
	return r, nil
}

// IdempotencyPurge deletes records created before the given time.
func (s *Store) IdempotencyPurge(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.write(ctx, `DELETE FROM allot_idempotency WHERE created_at < ?`, micros(before))
	if err != nil {
		return 0, translate(err, "purge idempotency keys")
	}
	return res.RowsAffected()
}
