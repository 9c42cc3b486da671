package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/allot/allot"
)

const seqCols = `name, format, start, max, mode, block_size, reset, timezone, warn_at, created_at, updated_at,
	periods_back, periods_ahead, confirm_within_ms, allow_overlap, label`

type scanner interface{ Scan(dest ...any) error }

func scanSeq(row scanner) (*allot.Sequence, error) {
	var q allot.Sequence
	var mode, reset string
	var created, updated, confirmMS int64
	var label string
	err := row.Scan(&q.Name, &q.Format, &q.Start, &q.Max, &mode, &q.BlockSize, &reset, &q.Timezone, &q.WarnAt, &created, &updated,
		&q.PeriodsBack, &q.PeriodsAhead, &confirmMS, &q.AllowOverlap, &label)
	if err == nil {
		q.Label, err = allot.ParseLabelSetting(label)
	}
	q.Mode, q.Reset = allot.Mode(mode), allot.Reset(reset)
	q.CreatedAt, q.UpdatedAt = fromMicros(created), fromMicros(updated)
	q.ConfirmWithin = allot.Duration(time.Duration(confirmMS) * time.Millisecond)
	return &q, err
}

// list runs a query and scans every row with scan.
func list[T any](ctx context.Context, q querier, what string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, translate(err, what)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, translate(err, what)
		}
		out = append(out, v)
	}
	return out, translate(rows.Err(), what)
}

// getSequence reads one sequence. It takes no locking clause: inside a
// write transaction, SQLite's write lock already keeps the row still.
func getSequence(ctx context.Context, q querier, name string) (*allot.Sequence, error) {
	seq, err := scanSeq(q.QueryRowContext(ctx, `SELECT `+seqCols+` FROM allot_sequences WHERE name = ?`, name))
	if err != nil {
		return nil, translate(err, fmt.Sprintf("sequence %q", name))
	}
	return seq, nil
}

func listSequences(ctx context.Context, q querier) ([]*allot.Sequence, error) {
	return list(ctx, q, "list sequences", scanSeq, `SELECT `+seqCols+` FROM allot_sequences ORDER BY name`)
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// SequenceCreate stores a new sequence, refusing one whose IDs could
// collide with another's (the write lock is held, so creates can't race).
func (s *Store) SequenceCreate(ctx context.Context, q *allot.Sequence) (*allot.Sequence, error) {
	out, err := allot.TxValue(ctx, s.withTx, func(tx runner) (*allot.Sequence, error) {
		others, err := listSequences(ctx, tx)
		if err != nil {
			return nil, err
		}
		if err := allot.CheckNewSequence(q, others); err != nil {
			return nil, err
		}
		now := micros(time.Now())
		return scanSeq(tx.QueryRowContext(ctx, `INSERT INTO allot_sequences (`+seqCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+seqCols,
			q.Name, q.Format, q.Start, q.Max, string(q.Mode), q.BlockSize, string(q.Reset), q.Timezone, q.WarnAt, now, now,
			q.PeriodsBack, q.PeriodsAhead, time.Duration(q.ConfirmWithin).Milliseconds(), q.AllowOverlap, allot.LabelSetting(q.Label)))
	})
	return out, translate(err, fmt.Sprintf("sequence %q", q.Name))
}

// SequenceGet returns one sequence.
func (s *Store) SequenceGet(ctx context.Context, name string) (*allot.Sequence, error) {
	return getSequence(ctx, s.db, name)
}

// SequenceList returns every sequence ordered by name.
func (s *Store) SequenceList(ctx context.Context) ([]*allot.Sequence, error) {
	return listSequences(ctx, s.db)
}

// SequenceUpdate changes the mutable settings, checking a new max against
// every period's counter and the other sequences inside the same write
// transaction.
func (s *Store) SequenceUpdate(ctx context.Context, p allot.SequenceUpdateParams) (*allot.Sequence, error) {
	out, err := allot.TxValue(ctx, s.withTx, func(tx runner) (*allot.Sequence, error) {
		q, err := getSequence(ctx, tx, p.Name)
		if err != nil {
			return nil, err
		}
		if p.Max != nil {
			var highest *int64
			if err := tx.QueryRowContext(ctx, `SELECT max(last) FROM allot_sequence_counters WHERE sequence = ?`, p.Name).Scan(&highest); err != nil {
				return nil, err
			}
			if err := allot.ApplyMax(q, *p.Max, highest, func() ([]*allot.Sequence, error) {
				return listSequences(ctx, tx)
			}); err != nil {
				return nil, err
			}
		}
		p.ApplyTo(q)
		if _, err := tx.ExecContext(ctx, `UPDATE allot_sequence_counters SET max = ? WHERE sequence = ?`, q.Max, p.Name); err != nil {
			return nil, err
		}
		return scanSeq(tx.QueryRowContext(ctx, `UPDATE allot_sequences SET max = ?, warn_at = ?, periods_back = ?, periods_ahead = ?,
			confirm_within_ms = ?, label = ?, updated_at = ? WHERE name = ? RETURNING `+seqCols,
			q.Max, q.WarnAt, q.PeriodsBack, q.PeriodsAhead, time.Duration(q.ConfirmWithin).Milliseconds(), allot.LabelSetting(q.Label),
			micros(time.Now()), p.Name))
	})
	return out, translate(err, "update sequence")
}

// leasedSQL is how many numbers of period ?2 of sequence ?1 sit in pending
// leases, less those voided (voids never overlap, so those inside a lease
// start at the one holding its first number: an index range, not a scan).
const leasedSQL = `SELECT coalesce(sum((l.last - l.first + 1) - coalesce((SELECT sum(min(v.last, l.last) - max(v.first, l.first) + 1)
		FROM allot_sequence_ledger v WHERE v.sequence = l.sequence AND v.period = l.period AND v.kind = 'voided'
		AND v.first <= l.last AND v.last >= l.first
		AND v.first >= coalesce((SELECT max(x.first) FROM allot_sequence_ledger x WHERE x.sequence = l.sequence AND x.period = l.period
			AND x.kind = 'voided' AND x.first <= l.first), l.first)), 0)), 0)
	FROM allot_sequence_ledger l WHERE l.sequence = ?1 AND l.period = ?2 AND l.kind = 'leased' AND l.pending`

// SequenceCounterGet returns one period's counter with its figures.
func (s *Store) SequenceCounterGet(ctx context.Context, name, period string) (*allot.SequenceCounter, error) {
	c := &allot.SequenceCounter{Period: period}
	var closed sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(c.last, s.start - 1), coalesce(c.voided, 0), coalesce(c.reserved, 0), c.closed_at,
			(`+leasedSQL+`)
		FROM allot_sequences s LEFT JOIN allot_sequence_counters c ON c.sequence = s.name AND c.period = ?2
		WHERE s.name = ?1`, name, period).Scan(&c.Last, &c.Voided, &c.Reserved, &closed, &c.Leased)
	if err != nil {
		return nil, translate(err, fmt.Sprintf("sequence %q", name))
	}
	if closed.Valid {
		t := fromMicros(closed.Int64)
		c.Closed = &t
	}
	return c, nil
}

// The statements of a gapless batch (see prepared.go): the period's
// counter and the sequence's max ($1 period, $2 sequence), a ledger entry,
// the counter's new figures, an idempotency key.
const (
	counterStateSQL = `SELECT coalesce(c.last, s.start - 1), s.max, c.closed_at FROM allot_sequences s
		LEFT JOIN allot_sequence_counters c ON c.sequence = s.name AND c.period = ? WHERE s.name = ?`
	insertLedgerSQL = `INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, reason, owner, created_at,
		date, reference, confirm_by, pending, batch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	upsertCounterSQL = `INSERT INTO allot_sequence_counters (sequence, period, last, max, reserved) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (sequence, period) DO UPDATE SET last = excluded.last, reserved = reserved + excluded.reserved`
	insertSeqKeySQL = `INSERT INTO allot_idempotency (scope, key, request_hash, period, date, first, last, confirm_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// SequenceAdvance serves a batch in one IMMEDIATE transaction.
func (s *Store) SequenceAdvance(ctx context.Context, p allot.SequenceAdvanceParams) ([]allot.SequenceAdvanceResult, error) {
	var out []allot.SequenceAdvanceResult
	err := s.withTurn(ctx, p.Turn, func(tx runner) error {
		var c allot.CounterState
		var closed sql.NullInt64
		err := tx.QueryRowContext(ctx, counterStateSQL, p.Period, p.Sequence).Scan(&c.Last, &c.Max, &closed) // the sequence's max and the counter's are kept equal
		if err != nil {
			return translate(err, fmt.Sprintf("sequence %q", p.Sequence))
		}
		c.Closed = closed.Valid
		existing, err := s.existingKeys(ctx, tx, p)
		if err != nil {
			return err
		}
		plan := allot.PlanAdvance(p, c, existing)
		out = plan.Results
		if plan.NewLast == c.Last {
			return nil
		}
		var reserved int64
		now := micros(time.Now())
		ids := make([]int64, 0, len(plan.Rows))
		for _, r := range plan.Rows {
			if r.Kind == allot.LedgerReserved {
				reserved += r.Len()
			}
			var id int64
			if err := tx.QueryRowContext(ctx, insertLedgerSQL, p.Sequence, p.Period, string(r.Kind), r.First, r.Last, r.Reason, p.Owner, now,
				r.DateKey, r.Reference, microsPtr(r.ConfirmBy), r.Pending, p.Batch).Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		if _, err := tx.ExecContext(ctx, upsertCounterSQL, p.Sequence, p.Period, plan.NewLast, c.Max, reserved); err != nil {
			return err
		}
		for _, k := range plan.Keys {
			if _, err := tx.ExecContext(ctx, insertSeqKeySQL, k.Scope, k.Key, k.RequestHash, k.Period, k.Date, k.First, k.Last, microsPtr(k.ConfirmBy), now); err != nil {
				return err
			}
		}
		allot.SetRows(out, plan.RowOf, ids)
		return nil
	})
	if err != nil {
		return nil, translate(err, fmt.Sprintf("advance sequence %q", p.Sequence))
	}
	return out, nil
}

// ServerStart records that a server started.
func (s *Store) ServerStart(ctx context.Context, owner string) error {
	now := micros(time.Now())
	_, err := s.write(ctx, `INSERT INTO allot_servers (owner, started_at, seen_at) VALUES (?, ?, ?)
		ON CONFLICT (owner) DO UPDATE SET started_at = excluded.started_at, seen_at = excluded.seen_at, stopped_at = NULL`, owner, now, now)
	return translate(err, "record server start")
}

// ServerSeen records that a server is alive.
func (s *Store) ServerSeen(ctx context.Context, owner string) error {
	_, err := s.write(ctx, `UPDATE allot_servers SET seen_at = ? WHERE owner = ?`, micros(time.Now()), owner)
	return translate(err, "record server alive")
}

// ServerStop records that a server stopped gracefully; a trigger settles
// its leases.
func (s *Store) ServerStop(ctx context.Context, owner string) error {
	now := micros(time.Now())
	_, err := s.write(ctx, `UPDATE allot_servers SET stopped_at = ?, seen_at = ? WHERE owner = ?`, now, now, owner)
	return translate(err, "record server stop")
}

const ledgerCols = `id, sequence, kind, period, first, last, reason, owner, created_at, date, reference, confirm_by, pending, batch`

func scanLedger(row scanner) (allot.LedgerEntry, error) {
	var e allot.LedgerEntry
	var kind string
	var created int64
	var confirmBy sql.NullInt64
	err := row.Scan(&e.ID, &e.Sequence, &kind, &e.Period, &e.First, &e.Last, &e.Reason, &e.Owner, &created,
		&e.Date, &e.Reference, &confirmBy, &e.Pending, &e.Batch)
	e.Kind = allot.LedgerKind(kind)
	e.Count = e.Last - e.First + 1
	e.CreatedAt = fromMicros(created)
	if confirmBy.Valid {
		t := fromMicros(confirmBy.Int64)
		e.ConfirmBy = &t
	}
	return e, err
}

// SequenceLedger lists ledger entries after a cursor.
func (s *Store) SequenceLedger(ctx context.Context, p allot.SequenceLedgerParams) ([]allot.LedgerEntry, error) {
	return list(ctx, s.db, "ledger", scanLedger,
		`SELECT `+ledgerCols+` FROM allot_sequence_ledger WHERE sequence = ? AND id > ? ORDER BY id LIMIT ?`,
		p.Sequence, p.AfterID, p.Limit)
}
