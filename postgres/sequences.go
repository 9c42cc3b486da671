package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/allot/allot"
)

// querier is what the pool, a connection and a transaction share.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

const seqCols = `name, format, start, max, mode, block_size, reset, timezone, warn_at, created_at, updated_at,
	periods_back, periods_ahead, confirm_within_ms, allow_overlap, label`

func scanSeq(row pgx.Row) (*allot.Sequence, error) {
	var q allot.Sequence
	var mode, reset string
	var confirmMS int64
	var label string
	err := row.Scan(&q.Name, &q.Format, &q.Start, &q.Max, &mode, &q.BlockSize, &reset, &q.Timezone, &q.WarnAt, &q.CreatedAt, &q.UpdatedAt,
		&q.PeriodsBack, &q.PeriodsAhead, &confirmMS, &q.AllowOverlap, &label)
	if err == nil {
		q.Label, err = allot.ParseLabelSetting(label)
	}
	q.Mode, q.Reset = allot.Mode(mode), allot.Reset(reset)
	q.CreatedAt, q.UpdatedAt = q.CreatedAt.UTC(), q.UpdatedAt.UTC()
	q.ConfirmWithin = allot.Duration(time.Duration(confirmMS) * time.Millisecond)
	return &q, err
}

// list runs a query and scans every row with scan.
func list[T any](ctx context.Context, q querier, what string, scan func(pgx.Row) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, translate(err, what)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	return out, translate(err, what)
}

// getSequence reads one sequence, with lock (a locking clause, or
// nothing) appended to the query.
func getSequence(ctx context.Context, q querier, name, lock string) (*allot.Sequence, error) {
	seq, err := scanSeq(q.QueryRow(ctx, `SELECT `+seqCols+` FROM allot_sequences WHERE name = $1 `+lock, name))
	if err != nil {
		return nil, translate(err, fmt.Sprintf("sequence %q", name))
	}
	return seq, nil
}

func listSequences(ctx context.Context, q querier) ([]*allot.Sequence, error) {
	return list(ctx, q, "list sequences", scanSeq, `SELECT `+seqCols+` FROM allot_sequences ORDER BY name`)
}

// lockSequences serializes the writes that must see every sequence
// (creates, and updates that raise max), so two of them can't race past
// the overlap check. Plain reads and number-taking are not blocked.
const lockSequences = `LOCK TABLE allot_sequences IN SHARE ROW EXCLUSIVE MODE`

// SequenceCreate stores a new sequence, refusing one whose IDs could
// collide with another's.
func (s *Store) SequenceCreate(ctx context.Context, q *allot.Sequence) (*allot.Sequence, error) {
	out, err := allot.TxValue(ctx, s.withTx, func(tx pgx.Tx) (*allot.Sequence, error) {
		if _, err := tx.Exec(ctx, lockSequences); err != nil {
			return nil, err
		}
		others, err := listSequences(ctx, tx)
		if err != nil {
			return nil, err
		}
		if err := allot.CheckNewSequence(q, others); err != nil {
			return nil, err
		}
		return scanSeq(tx.QueryRow(ctx, `INSERT INTO allot_sequences (name, format, start, max, mode, block_size, reset, timezone, warn_at,
				periods_back, periods_ahead, confirm_within_ms, allow_overlap, label)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING `+seqCols,
			q.Name, q.Format, q.Start, q.Max, string(q.Mode), q.BlockSize, string(q.Reset), q.Timezone, q.WarnAt,
			q.PeriodsBack, q.PeriodsAhead, time.Duration(q.ConfirmWithin).Milliseconds(), q.AllowOverlap, allot.LabelSetting(q.Label)))
	})
	return out, translate(err, fmt.Sprintf("sequence %q", q.Name))
}

// SequenceGet returns one sequence.
func (s *Store) SequenceGet(ctx context.Context, name string) (*allot.Sequence, error) {
	return getSequence(ctx, s.pool, name, "")
}

// SequenceList returns every sequence ordered by name.
func (s *Store) SequenceList(ctx context.Context) ([]*allot.Sequence, error) {
	return listSequences(ctx, s.pool)
}

// SequenceUpdate changes the mutable settings. A new max is checked
// against every period's counter while the sequence row is locked, so no
// lease or issue can slip past it, and against the other sequences.
func (s *Store) SequenceUpdate(ctx context.Context, p allot.SequenceUpdateParams) (*allot.Sequence, error) {
	out, err := allot.TxValue(ctx, s.withTx, func(tx pgx.Tx) (*allot.Sequence, error) {
		q, err := getSequence(ctx, tx, p.Name, "FOR UPDATE")
		if err != nil {
			return nil, err
		}
		if p.Max != nil {
			var highest *int64
			if err := tx.QueryRow(ctx, `SELECT max(last) FROM allot_sequence_counters WHERE sequence = $1`, p.Name).Scan(&highest); err != nil {
				return nil, translate(err, "read counters")
			}
			if err := allot.ApplyMax(q, *p.Max, highest, func() ([]*allot.Sequence, error) {
				if _, err := tx.Exec(ctx, lockSequences); err != nil {
					return nil, err
				}
				return listSequences(ctx, tx)
			}); err != nil {
				return nil, err
			}
		}
		p.ApplyTo(q)
		// Lock the counters in period order, the order every
		// multi-period transaction uses, before updating them.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM allot_sequence_counters WHERE sequence = $1 ORDER BY period FOR UPDATE`, p.Name); err != nil {
			return nil, translate(err, "lock counters")
		}
		if _, err := tx.Exec(ctx, `UPDATE allot_sequence_counters SET max = $2 WHERE sequence = $1`, p.Name, q.Max); err != nil {
			return nil, translate(err, "update counters")
		}
		return scanSeq(tx.QueryRow(ctx, `UPDATE allot_sequences SET max = $2, warn_at = $3, periods_back = $4, periods_ahead = $5,
			confirm_within_ms = $6, label = $7, updated_at = now() WHERE name = $1 RETURNING `+seqCols,
			p.Name, q.Max, q.WarnAt, q.PeriodsBack, q.PeriodsAhead, time.Duration(q.ConfirmWithin).Milliseconds(), allot.LabelSetting(q.Label)))
	})
	return out, translate(err, "update sequence")
}

// newCounterSQL creates the counter of period $2 of sequence $1 if it has
// none. It reads the sequence's max FOR SHARE: an update of max holds the
// sequence row while it moves every counter's max, so the new counter
// waits for it and starts with the max it committed (a plain read would
// take the old one, which the update never sees to correct).
const newCounterSQL = `INSERT INTO allot_sequence_counters (sequence, period, last, max)
	SELECT name, $2, start - 1, max FROM allot_sequences WHERE name = $1 FOR SHARE ON CONFLICT DO NOTHING`

// leasedSQL is how many numbers of period $2 of sequence $1 sit in pending
// leases, less those voided (voids never overlap, so those inside a lease
// start at the one holding its first number: an index range, not a scan).
const leasedSQL = `SELECT coalesce(sum((l.last - l.first + 1) - coalesce((SELECT sum(least(v.last, l.last) - greatest(v.first, l.first) + 1)
		FROM allot_sequence_ledger v WHERE v.sequence = l.sequence AND v.period = l.period AND v.kind = 'voided'
		AND v.first <= l.last AND v.last >= l.first
		AND v.first >= coalesce((SELECT max(x.first) FROM allot_sequence_ledger x WHERE x.sequence = l.sequence AND x.period = l.period
			AND x.kind = 'voided' AND x.first <= l.first), l.first)), 0)), 0)::bigint
	FROM allot_sequence_ledger l WHERE l.sequence = $1 AND l.period = $2 AND l.kind = 'leased' AND l.pending`

// SequenceCounterGet returns one period's counter with its figures.
func (s *Store) SequenceCounterGet(ctx context.Context, name, period string) (*allot.SequenceCounter, error) {
	c := &allot.SequenceCounter{Period: period}
	err := s.pool.QueryRow(ctx, `SELECT coalesce(c.last, s.start - 1), coalesce(c.voided, 0), coalesce(c.reserved, 0), c.closed_at,
			(`+leasedSQL+`)
		FROM allot_sequences s LEFT JOIN allot_sequence_counters c ON c.sequence = s.name AND c.period = $2
		WHERE s.name = $1`, name, period).Scan(&c.Last, &c.Voided, &c.Reserved, &c.Closed, &c.Leased)
	if err != nil {
		return nil, translate(err, fmt.Sprintf("sequence %q", name))
	}
	if c.Closed != nil {
		t := c.Closed.UTC()
		c.Closed = &t
	}
	return c, nil
}

// SequenceAdvance serves a batch in one transaction.
//
// The common case, where the whole batch of issued numbers fits below
// max, takes one round trip: a single statement in its own implicit
// transaction moves the counter, writes the ledger entries and the
// idempotency keys, so the counter row is locked for that one statement
// only. Anything else (a lease, which PlanAdvance caps; a period's first
// use; a batch that does not fit; a closed period; a key stored meanwhile
// by another process) falls back to a full transaction that decides
// request by request.
//
// Like PoolClaim, it ignores p.Turn: the batches of one sequence run one
// at a time.
func (s *Store) SequenceAdvance(ctx context.Context, p allot.SequenceAdvanceParams) ([]allot.SequenceAdvanceResult, error) {
	if p.Kind == allot.LedgerIssued {
		if out, ok, err := s.advanceFast(ctx, p); err != nil {
			return nil, translate(err, fmt.Sprintf("advance sequence %q", p.Sequence))
		} else if ok {
			return out, nil
		}
	}
	var out []allot.SequenceAdvanceResult
	run := func() error {
		return s.withTx(ctx, func(tx pgx.Tx) error {
			var err error
			out, err = advanceTx(ctx, tx, p)
			return err
		})
	}
	err := run()
	if isUniqueViolation(err) {
		// A key inserted concurrently by another process makes the batch
		// roll back; running it again replays that key.
		err = run()
	}
	if err != nil {
		return nil, translate(err, fmt.Sprintf("advance sequence %q", p.Sequence))
	}
	return out, nil
}

// advanceFastSQL serves a whole batch in one statement, or updates nothing
// (no row returned) when the period has no counter yet, is closed, or the
// batch does not fit below max. $3 is the batch's total count; the unnest
// arrays are the ledger entries and the idempotency keys, with their
// offsets from the batch's first number.
const advanceFastSQL = `
WITH c AS (
    UPDATE allot_sequence_counters SET last = last + $3, reserved = reserved + $6
    WHERE sequence = $1 AND period = $2 AND last <= max - $3 AND closed_at IS NULL
    RETURNING last - $3 AS prev, max
), l AS (
    INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, reason, owner, date, reference, confirm_by, pending, batch)
    SELECT $1, $2, r.kind, c.prev + r.rf, c.prev + r.rl, r.reason, $4, r.date, r.ref, r.cby, r.pending, $5
    FROM c, unnest($7::text[], $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::timestamptz[], $14::bool[])
        WITH ORDINALITY AS r(kind, rf, rl, reason, date, ref, cby, pending, ord)
    ORDER BY r.ord
    RETURNING id
), k AS (
    INSERT INTO allot_idempotency (scope, key, request_hash, period, date, first, last, confirm_by)
    SELECT u.scope, u.key, u.hash, $2, u.date, c.prev + u.rf, c.prev + u.rl, u.cby
    FROM c, unnest($15::text[], $16::text[], $17::text[], $18::text[], $19::bigint[], $20::bigint[], $21::timestamptz[])
        AS u(scope, key, hash, date, rf, rl, cby)
)
SELECT prev, max, (SELECT array_agg(id ORDER BY id) FROM l) FROM c`

// advanceFast tries the one-statement path. ok is false when the batch
// must take the full path instead; nothing was written then.
func (s *Store) advanceFast(ctx context.Context, p allot.SequenceAdvanceParams) ([]allot.SequenceAdvanceResult, bool, error) {
	// Plan with offsets from the batch's first number: every request
	// fits (or the statement updates nothing), so each gets the next
	// range.
	rel := make([]allot.SequenceAdvanceResult, len(p.Requests))
	var total int64
	var scopes, keys, hashes, dates []string
	var rfs, rls []int64
	var cbys []*time.Time
	seen := map[string]bool{}
	for i, r := range p.Requests {
		if r.Count < 1 {
			return nil, false, nil
		}
		rel[i].First, rel[i].Last = total+1, total+r.Count
		if k := r.Idempotency; k != nil {
			if seen[k.Key] {
				return nil, false, nil
			}
			seen[k.Key] = true
			scopes, keys, hashes, dates = append(scopes, k.Scope), append(keys, k.Key), append(hashes, k.RequestHash), append(dates, k.Date)
			rfs, rls, cbys = append(rfs, total+1), append(rls, total+r.Count), append(cbys, r.ConfirmBy)
		}
		total += r.Count
	}
	rows, rowOf := allot.PlanRows(p, rel)
	var reserved int64
	n := len(rows)
	kinds, reasons, rdates, refs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	rf, rl, rcby, pend := make([]int64, n), make([]int64, n), make([]*time.Time, n), make([]bool, n)
	for i, r := range rows {
		kinds[i], rf[i], rl[i], reasons[i], rdates[i], refs[i], rcby[i], pend[i] = string(r.Kind), r.First, r.Last, r.Reason, r.DateKey, r.Reference, r.ConfirmBy, r.Pending
		if r.Kind == allot.LedgerReserved {
			reserved += r.Len()
		}
	}
	var prev, maxv int64
	var ids []int64
	err := s.pool.QueryRow(ctx, advanceFastSQL, p.Sequence, p.Period, total, p.Owner, p.Batch, reserved,
		kinds, rf, rl, reasons, rdates, refs, rcby, pend,
		scopes, keys, hashes, dates, rfs, rls, cbys).Scan(&prev, &maxv, &ids)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		if isUniqueViolation(err) {
			return nil, false, nil // a key was stored meanwhile: the full path replays it
		}
		return nil, false, err
	}
	for i := range rel {
		rel[i].First += prev
		rel[i].Last += prev
		rel[i].CounterLast, rel[i].Max = prev+total, maxv
	}
	allot.SetRows(rel, rowOf, ids)
	return rel, true, nil
}

const lockCounterSQL = `SELECT last, max, closed_at IS NOT NULL FROM allot_sequence_counters WHERE sequence = $1 AND period = $2 FOR UPDATE`

// advanceTx takes numbers inside tx. It locks the period's counter row, so
// concurrent transactions on the same period queue behind it.
func advanceTx(ctx context.Context, tx pgx.Tx, p allot.SequenceAdvanceParams) ([]allot.SequenceAdvanceResult, error) {
	var c allot.CounterState
	err := tx.QueryRow(ctx, lockCounterSQL, p.Sequence, p.Period).Scan(&c.Last, &c.Max, &c.Closed)
	if errors.Is(err, pgx.ErrNoRows) {
		// First use of the period: create its counter, then lock it.
		if _, err := tx.Exec(ctx, newCounterSQL, p.Sequence, p.Period); err != nil {
			return nil, err
		}
		err = tx.QueryRow(ctx, lockCounterSQL, p.Sequence, p.Period).Scan(&c.Last, &c.Max, &c.Closed)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, allot.NotFoundf("sequence %q", p.Sequence)
		}
	}
	if err != nil {
		return nil, err
	}
	existing, err := existingKeys(ctx, tx, p)
	if err != nil {
		return nil, err
	}
	plan := allot.PlanAdvance(p, c, existing)
	if plan.NewLast == c.Last {
		return plan.Results, nil
	}
	n := len(plan.Rows)
	kinds, reasons, dates, refs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	firsts, lasts, cbys, pend := make([]int64, n), make([]int64, n), make([]*time.Time, n), make([]bool, n)
	var reserved int64
	for i, r := range plan.Rows {
		kinds[i], firsts[i], lasts[i], reasons[i], dates[i], refs[i], cbys[i], pend[i] = string(r.Kind), r.First, r.Last, r.Reason, r.DateKey, r.Reference, r.ConfirmBy, r.Pending
		if r.Kind == allot.LedgerReserved {
			reserved += r.Len()
		}
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE allot_sequence_counters SET last = $3, reserved = reserved + $4 WHERE sequence = $1 AND period = $2`,
		p.Sequence, p.Period, plan.NewLast, reserved)
	var ids []int64
	b.Queue(`INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, reason, owner, date, reference, confirm_by, pending, batch)
		SELECT $1, $2, r.kind, r.f, r.l, r.reason, $3, r.date, r.ref, r.cby, r.pending, $4
		FROM unnest($5::text[], $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::bool[])
			WITH ORDINALITY AS r(kind, f, l, reason, date, ref, cby, pending, ord)
		ORDER BY r.ord RETURNING id`,
		p.Sequence, p.Period, p.Owner, p.Batch, kinds, firsts, lasts, reasons, dates, refs, cbys, pend).Query(func(rows pgx.Rows) error {
		var err error
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	if len(plan.Keys) > 0 {
		k := len(plan.Keys)
		scopes, keys, hashes, periods, kdates := make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k)
		kf, kl, kc := make([]int64, k), make([]int64, k), make([]*time.Time, k)
		for i, r := range plan.Keys {
			scopes[i], keys[i], hashes[i], periods[i], kdates[i], kf[i], kl[i], kc[i] = r.Scope, r.Key, r.RequestHash, r.Period, r.Date, r.First, r.Last, r.ConfirmBy
		}
		b.Queue(`INSERT INTO allot_idempotency (scope, key, request_hash, period, date, first, last, confirm_by)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::timestamptz[])`,
			scopes, keys, hashes, periods, kdates, kf, kl, kc)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	allot.SetRows(plan.Results, plan.RowOf, ids)
	return plan.Results, nil
}

// ServerStart records that a server started.
func (s *Store) ServerStart(ctx context.Context, owner string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO allot_servers (owner, started_at, seen_at) VALUES ($1, now(), now())
		ON CONFLICT (owner) DO UPDATE SET started_at = now(), seen_at = now(), stopped_at = NULL`, owner)
	return translate(err, "record server start")
}

// ServerSeen records that a server is alive.
func (s *Store) ServerSeen(ctx context.Context, owner string) error {
	_, err := s.pool.Exec(ctx, `UPDATE allot_servers SET seen_at = now() WHERE owner = $1`, owner)
	return translate(err, "record server alive")
}

// ServerStop records that a server stopped gracefully; a trigger settles
// its leases.
func (s *Store) ServerStop(ctx context.Context, owner string) error {
	_, err := s.pool.Exec(ctx, `UPDATE allot_servers SET stopped_at = now(), seen_at = now() WHERE owner = $1`, owner)
	return translate(err, "record server stop")
}

const ledgerCols = `id, sequence, kind, period, first, last, reason, owner, created_at, date, reference, confirm_by, pending, batch`

func scanLedger(row pgx.Row) (allot.LedgerEntry, error) {
	var e allot.LedgerEntry
	var kind string
	err := row.Scan(&e.ID, &e.Sequence, &kind, &e.Period, &e.First, &e.Last, &e.Reason, &e.Owner, &e.CreatedAt,
		&e.Date, &e.Reference, &e.ConfirmBy, &e.Pending, &e.Batch)
	e.Kind = allot.LedgerKind(kind)
	e.Count = e.Last - e.First + 1
	e.CreatedAt = e.CreatedAt.UTC()
	if e.ConfirmBy != nil {
		t := e.ConfirmBy.UTC()
		e.ConfirmBy = &t
	}
	return e, err
}

// SequenceLedger lists ledger entries after a cursor.
func (s *Store) SequenceLedger(ctx context.Context, p allot.SequenceLedgerParams) ([]allot.LedgerEntry, error) {
	return list(ctx, s.pool, "ledger", scanLedger,
		`SELECT `+ledgerCols+` FROM allot_sequence_ledger WHERE sequence = $1 AND id > $2 ORDER BY id LIMIT $3`,
		p.Sequence, p.AfterID, p.Limit)
}
