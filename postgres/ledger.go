package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/allot/allot"
)

// The ledger operations: each locks the period's counter row, reads what
// the root package's planners need, lets the planner decide, and writes
// the plan, in one transaction.

// takenNear selects the taken entries overlapping $3..$4 of period $2: the
// one holding $3 starts at the greatest first at or before it (taken
// entries never overlap), so the scan starts there, not at the period's
// first entry.
const takenNear = `SELECT ` + ledgerCols + ` FROM allot_sequence_ledger
	WHERE sequence = $1 AND period = $2 AND kind IN ('issued', 'leased', 'reserved') AND first <= $4
	AND first >= coalesce((SELECT max(first) FROM allot_sequence_ledger WHERE sequence = $1 AND period = $2
		AND kind IN ('issued', 'leased', 'reserved') AND first <= $3), $3)
	ORDER BY first`

// notesNear selects the entries of kind KIND (voided or confirmed, which
// never overlap their own kind) overlapping $3..$4. The kind is written
// into the statement, not passed, so the planner always sees which partial
// index applies.
const notesNear = `SELECT ` + ledgerCols + ` FROM allot_sequence_ledger
	WHERE sequence = $1 AND period = $2 AND kind = 'KIND' AND first <= $4 AND last >= $3
	AND first >= coalesce((SELECT max(first) FROM allot_sequence_ledger WHERE sequence = $1 AND period = $2
		AND kind = 'KIND' AND first <= $3), $3)
	ORDER BY first`

var notesNearSQL = map[allot.LedgerKind]string{
	allot.LedgerVoided:    strings.ReplaceAll(notesNear, "KIND", "voided"),
	allot.LedgerConfirmed: strings.ReplaceAll(notesNear, "KIND", "confirmed"),
}

// Ledger locks the counter of a period and reads the entries around
// spans. exists is false when the period has no counter yet.
func (t ledgerTx) Ledger(ctx context.Context, seq, period string, spans []allot.Span) (l allot.PeriodLedger, exists bool, err error) {
	tx := t.tx
	l = allot.PeriodLedger{Sequence: seq, Period: period}
	err = tx.QueryRow(ctx, `SELECT start FROM allot_sequences WHERE name = $1`, seq).Scan(&l.Start)
	if err != nil {
		return l, false, translate(err, fmt.Sprintf("sequence %q", seq))
	}
	err = tx.QueryRow(ctx, `SELECT last FROM allot_sequence_counters WHERE sequence = $1 AND period = $2 FOR UPDATE`, seq, period).Scan(&l.Last)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		l.Last = l.Start - 1
		return l, false, nil
	case err != nil:
		return l, false, err
	}
	err = allot.ReadNear(&l, spans, func(sp allot.Span) ([]allot.LedgerEntry, error) {
		return list(ctx, tx, "read ledger", scanLedger, takenNear, seq, period, sp.First, sp.Last)
	}, func(kind allot.LedgerKind, sp allot.Span) ([]allot.LedgerEntry, error) {
		return list(ctx, tx, "read ledger", scanLedger, notesNearSQL[kind], seq, period, sp.First, sp.Last)
	})
	return l, true, err
}

func (t ledgerTx) ChangeEntry(ctx context.Context, c allot.RowChange) (err error) {
	if c.Returned {
		_, err = t.tx.Exec(ctx, `UPDATE allot_sequence_ledger SET kind = 'returned', reason = $2, pending = false WHERE id = $1`, c.ID, c.Reason)
	} else {
		_, err = t.tx.Exec(ctx, `UPDATE allot_sequence_ledger SET last = $2 WHERE id = $1`, c.ID, c.NewLast)
	}
	return err
}

func (t ledgerTx) MoveCounter(ctx context.Context, seq, period string, last, voided, reserved int64) error {
	_, err := t.tx.Exec(ctx, `UPDATE allot_sequence_counters SET last = $3, voided = voided + $4, reserved = reserved + $5
		WHERE sequence = $1 AND period = $2`, seq, period, last, voided, reserved)
	return err
}

func (t ledgerTx) AddNote(ctx context.Context, seq, period string, n allot.LedgerNote, owner string) (*allot.LedgerEntry, error) {
	e, err := scanLedger(t.tx.QueryRow(ctx, `INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, reason, owner, reference)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+ledgerCols, seq, period, string(n.Kind), n.Span.First, n.Span.Last,
		n.Reason, owner, n.Reference))
	return &e, err
}

// Settle marks entries as no longer pending. Reserved entries are settled
// only by the planners (reserved is true), once confirmed or voided in
// full.
func (t ledgerTx) Settle(ctx context.Context, ids []int64, reserved bool) error {
	if len(ids) == 0 {
		return nil
	}
	kinds := []string{"issued", "leased"}
	if reserved {
		kinds = append(kinds, "reserved")
	}
	_, err := t.tx.Exec(ctx, `UPDATE allot_sequence_ledger SET pending = false WHERE pending AND kind = ANY($2) AND id = ANY($1)`, ids, kinds)
	return err
}

// liveOwnerSQL holds when server $1 is running: it has not stopped and was
// seen within allot.ServerSilentAfter ($2 is the cutoff).
const liveOwnerSQL = `EXISTS (SELECT 1 FROM allot_servers sv WHERE sv.owner = $1 AND sv.stopped_at IS NULL AND sv.seen_at >= $2)`

func silentCutoff() time.Time { return time.Now().Add(-allot.ServerSilentAfter) }

// ledgerTx lends a transaction (or, for the lookups alone, the pool) to
// the root package's ledger operations.
type ledgerTx struct{ tx querier }

// SequenceLedgerTx runs fn in one transaction, run again whole on a
// serialization failure or deadlock.
func (s *Store) SequenceLedgerTx(ctx context.Context, what string, fn func(allot.LedgerTx) error) error {
	return translate(s.withTx(ctx, func(tx pgx.Tx) error { return fn(ledgerTx{tx}) }), what)
}

// SequenceLedgerRead runs fn with lookups on the pool, each its own
// statement.
func (s *Store) SequenceLedgerRead(ctx context.Context, what string, fn func(allot.LedgerReader) error) error {
	return translate(fn(ledgerTx{s.pool}), what)
}

func (t ledgerTx) OwnerLive(ctx context.Context, owner string) (live bool, err error) {
	err = t.tx.QueryRow(ctx, `SELECT `+liveOwnerSQL, owner, silentCutoff()).Scan(&live)
	return live, err
}

// Nearest is one backward probe of the partial index kinds names.
func (t ledgerTx) Nearest(ctx context.Context, seq, period, kinds string, n int64) (*allot.LedgerEntry, error) {
	e, err := scanLedger(t.tx.QueryRow(ctx, `SELECT `+ledgerCols+` FROM allot_sequence_ledger
		WHERE sequence = $1 AND period = $2 AND `+kinds+` AND first <= $3 ORDER BY first DESC LIMIT 1`, seq, period, n))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return &e, err
}

func (t ledgerTx) BatchEntries(ctx context.Context, seq, period string, batch int64) ([]allot.LedgerEntry, error) {
	return list(ctx, t.tx, "read ledger", scanLedger, `SELECT `+ledgerCols+` FROM allot_sequence_ledger
		WHERE sequence = $1 AND period = $2 AND pending AND batch = $3 AND kind IN ('issued', 'leased', 'reserved') ORDER BY first`,
		seq, period, batch)
}

func (t ledgerTx) ReservationsDue(ctx context.Context, now time.Time, limit int) ([]allot.LedgerEntry, error) {
	return list(ctx, t.tx, "expired reservations", scanLedger, `SELECT `+ledgerCols+` FROM allot_sequence_ledger
		WHERE pending AND kind = 'reserved' AND confirm_by <= $1 ORDER BY sequence, period, first LIMIT $2`, now, limit)
}

func (t ledgerTx) DueReserved(ctx context.Context, ids []int64, now time.Time) ([]allot.LedgerEntry, error) {
	return list(ctx, t.tx, "expired reservations", scanLedger, `SELECT `+ledgerCols+` FROM allot_sequence_ledger
		WHERE id = ANY($1) AND kind = 'reserved' AND pending AND confirm_by <= $2 ORDER BY first`, ids, now)
}

func (t ledgerTx) ReservationsSwept(ctx context.Context, owner string, now time.Time) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO allot_reservation_sweeps (id, owner, swept_at) VALUES (1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, swept_at = GREATEST(allot_reservation_sweeps.swept_at, excluded.swept_at)`,
		owner, now)
	return err
}

func (t ledgerTx) LockCounter(ctx context.Context, seq, period string) (found bool, err error) {
	if _, err := t.tx.Exec(ctx, newCounterSQL, seq, period); err != nil {
		return false, err
	}
	err = t.tx.QueryRow(ctx, `SELECT true FROM allot_sequence_counters WHERE sequence = $1 AND period = $2 FOR UPDATE`, seq, period).Scan(&found)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return found, err
}

func (t ledgerTx) SetClosed(ctx context.Context, seq, period string, closed bool) error {
	_, err := t.tx.Exec(ctx, `UPDATE allot_sequence_counters SET closed_at = CASE WHEN $3 THEN coalesce(closed_at, now()) END
		WHERE sequence = $1 AND period = $2`, seq, period, closed)
	return err
}

func (t ledgerTx) LeaseHolders(ctx context.Context, seq, period string) ([]string, error) {
	return list(ctx, t.tx, "leases", func(r pgx.Row) (o string, err error) { return o, r.Scan(&o) }, `SELECT DISTINCT l.owner FROM allot_sequence_ledger l
		WHERE l.sequence = $2 AND l.period = $3 AND l.kind = 'leased' AND l.pending
		AND EXISTS (SELECT 1 FROM allot_servers sv WHERE sv.owner = l.owner AND sv.stopped_at IS NULL AND sv.seen_at >= $1)
		ORDER BY l.owner`, silentCutoff(), seq, period)
}

// SequenceSettle marks issued and leased entries as no longer pending.
func (s *Store) SequenceSettle(ctx context.Context, ids []int64) error {
	return translate((ledgerTx{s.pool}).Settle(ctx, ids, false), "settle ledger entries")
}
