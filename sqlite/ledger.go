package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/allot/allot"
)

// The ledger operations: each reads what the root package's planners need
// inside one IMMEDIATE transaction (which holds SQLite's write lock, so the
// period's counter can't move meanwhile), lets the planner decide, and
// writes the plan.

// takenNear selects the taken entries overlapping ?3..?4 of period ?2:
// the one holding ?3 starts at the greatest first at or before it (taken
// entries never overlap), so the scan starts there, not at the period's
// first entry.
const takenNear = `SELECT ` + ledgerCols + ` FROM allot_sequence_ledger
	WHERE sequence = ?1 AND period = ?2 AND kind IN ('issued', 'leased', 'reserved') AND first <= ?4
	AND first >= coalesce((SELECT max(first) FROM allot_sequence_ledger WHERE sequence = ?1 AND period = ?2
		AND kind IN ('issued', 'leased', 'reserved') AND first <= ?3), ?3)
	ORDER BY first`

// notesNear selects the entries of kind ?5 (voided or confirmed, which
// never overlap their own kind) overlapping ?3..?4.
const notesNear = `SELECT ` + ledgerCols + ` FROM allot_sequence_ledger
	WHERE sequence = ?1 AND period = ?2 AND kind = ?5 AND first <= ?4 AND last >= ?3
	AND first >= coalesce((SELECT max(first) FROM allot_sequence_ledger WHERE sequence = ?1 AND period = ?2
		AND kind = ?5 AND first <= ?3), ?3)
	ORDER BY first`

// Ledger reads the counter of a period and the entries around spans.
// exists is false when the period has no counter yet.
func (t ledgerTx) Ledger(ctx context.Context, seq, period string, spans []allot.Span) (l allot.PeriodLedger, exists bool, err error) {
	tx := t.tx
	l = allot.PeriodLedger{Sequence: seq, Period: period}
	err = tx.QueryRowContext(ctx, `SELECT s.start, coalesce(c.last, s.start - 1), c.last IS NOT NULL FROM allot_sequences s
		LEFT JOIN allot_sequence_counters c ON c.sequence = s.name AND c.period = ? WHERE s.name = ?`, period, seq).Scan(&l.Start, &l.Last, &exists)
	if err != nil {
		return l, false, translate(err, fmt.Sprintf("sequence %q", seq))
	}
	err = allot.ReadNear(&l, spans, func(sp allot.Span) ([]allot.LedgerEntry, error) {
		return list(ctx, tx, "read ledger", scanLedger, takenNear, seq, period, sp.First, sp.Last)
	}, func(kind allot.LedgerKind, sp allot.Span) ([]allot.LedgerEntry, error) {
		return list(ctx, tx, "read ledger", scanLedger, notesNear, seq, period, sp.First, sp.Last, string(kind))
	})
	return l, exists, err
}

func (t ledgerTx) ChangeEntry(ctx context.Context, c allot.RowChange) (err error) {
	if c.Returned {
		_, err = t.tx.ExecContext(ctx, `UPDATE allot_sequence_ledger SET kind = 'returned', reason = ?, pending = 0 WHERE id = ?`, c.Reason, c.ID)
	} else {
		_, err = t.tx.ExecContext(ctx, `UPDATE allot_sequence_ledger SET last = ? WHERE id = ?`, c.NewLast, c.ID)
	}
	return err
}

func (t ledgerTx) MoveCounter(ctx context.Context, seq, period string, last, voided, reserved int64) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE allot_sequence_counters SET last = ?, voided = voided + ?, reserved = reserved + ?
		WHERE sequence = ? AND period = ?`, last, voided, reserved, seq, period)
	return err
}

func (t ledgerTx) AddNote(ctx context.Context, seq, period string, n allot.LedgerNote, owner string) (*allot.LedgerEntry, error) {
	e, err := scanLedger(t.tx.QueryRowContext(ctx, `INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, reason, owner, created_at, reference)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+ledgerCols, seq, period, string(n.Kind), n.Span.First, n.Span.Last,
		n.Reason, owner, micros(time.Now()), n.Reference))
	return &e, err
}

// Settle marks entries as no longer pending. Reserved entries are settled
// only by the planners (any is true), once confirmed or voided in full.
func (t ledgerTx) Settle(ctx context.Context, ids []int64, reserved bool) error {
	if len(ids) == 0 {
		return nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	q := settleSQL
	if reserved {
		q = settleAnySQL
	}
	_, err = t.tx.ExecContext(ctx, q, string(list))
	return err
}

// settleSQL and settleAnySQL settle the entries whose ids are in the JSON
// array ?1: one statement text for any number of ids, so it is prepared
// once (see prepared.go).
const (
	settleSQL    = `UPDATE allot_sequence_ledger SET pending = 0 WHERE pending AND kind IN ('issued', 'leased') AND id IN (SELECT value FROM json_each(?1))`
	settleAnySQL = `UPDATE allot_sequence_ledger SET pending = 0 WHERE pending AND kind IN ('issued', 'leased', 'reserved') AND id IN (SELECT value FROM json_each(?1))`
)

// liveOwnerSQL holds when server ?1 is running: it has not stopped and was
// seen within allot.ServerSilentAfter (?2 is the cutoff, Unix micros).
const liveOwnerSQL = `EXISTS (SELECT 1 FROM allot_servers sv WHERE sv.owner = ?1 AND sv.stopped_at IS NULL AND sv.seen_at >= ?2)`

func silentCutoff() int64 { return micros(time.Now().Add(-allot.ServerSilentAfter)) }

// ledgerTx lends a transaction (or, for the lookups alone, the database)
// to the root package's ledger operations.
type ledgerTx struct{ tx querier }

// SequenceLedgerTx runs fn in one IMMEDIATE transaction, run again whole
// if SQLite reports the database busy.
func (s *Store) SequenceLedgerTx(ctx context.Context, what string, fn func(allot.LedgerTx) error) error {
	return translate(s.withTx(ctx, func(tx runner) error { return fn(ledgerTx{tx}) }), what)
}

// SequenceLedgerRead runs fn with lookups on the database, each its own
// statement.
func (s *Store) SequenceLedgerRead(ctx context.Context, what string, fn func(allot.LedgerReader) error) error {
	return translate(fn(ledgerTx{s.db}), what)
}

func (t ledgerTx) OwnerLive(ctx context.Context, owner string) (live bool, err error) {
	err = t.tx.QueryRowContext(ctx, `SELECT `+liveOwnerSQL, owner, silentCutoff()).Scan(&live)
	return live, err
}

func (t ledgerTx) DueReserved(ctx context.Context, ids []int64, now time.Time) ([]allot.LedgerEntry, error) {
	args := []any{micros(now)}
	marks := make([]string, len(ids))
	for i, id := range ids {
		args, marks[i] = append(args, id), "?"
	}
	return list(ctx, t.tx, "expired reservations", scanLedger, `SELECT `+ledgerCols+` FROM allot_sequence_ledger
		WHERE kind = 'reserved' AND pending AND confirm_by <= ? AND id IN (`+strings.Join(marks, ", ")+`) ORDER BY first`, args...)
}

func (t ledgerTx) ReservationsSwept(ctx context.Context, owner string, now time.Time) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO allot_reservation_sweeps (id, owner, swept_at) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, swept_at = max(swept_at, excluded.swept_at)`, owner, micros(now))
	return err
}

// Nearest is one backward probe of the partial index kinds names.
func (t ledgerTx) Nearest(ctx context.Context, seq, period, kinds string, n int64) (*allot.LedgerEntry, error) {
	e, err := scanLedger(t.tx.QueryRowContext(ctx, `SELECT `+ledgerCols+` FROM allot_sequence_ledger
		WHERE sequence = ? AND period = ? AND `+kinds+` AND first <= ? ORDER BY first DESC LIMIT 1`, seq, period, n))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return &e, err
}

func (t ledgerTx) BatchEntries(ctx context.Context, seq, period string, batch int64) ([]allot.LedgerEntry, error) {
	return list(ctx, t.tx, "read ledger", scanLedger, `SELECT `+ledgerCols+` FROM allot_sequence_ledger
		WHERE sequence = ? AND period = ? AND pending AND batch = ? AND kind IN ('issued', 'leased', 'reserved') ORDER BY first`,
		seq, period, batch)
}

func (t ledgerTx) ReservationsDue(ctx context.Context, now time.Time, limit int) ([]allot.LedgerEntry, error) {
	return list(ctx, t.tx, "expired reservations", scanLedger, `SELECT `+ledgerCols+` FROM allot_sequence_ledger
		WHERE pending AND kind = 'reserved' AND confirm_by <= ? ORDER BY sequence, period, first LIMIT ?`, micros(now), limit)
}

// LockCounter makes the counter if need be; the IMMEDIATE transaction
// already holds SQLite's write lock, so nothing else can move it.
func (t ledgerTx) LockCounter(ctx context.Context, seq, period string) (found bool, err error) {
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO allot_sequence_counters (sequence, period, last, max)
		SELECT name, ?, start - 1, max FROM allot_sequences WHERE name = ? ON CONFLICT DO NOTHING`, period, seq); err != nil {
		return false, err
	}
	err = t.tx.QueryRowContext(ctx, `SELECT count(*) > 0 FROM allot_sequences WHERE name = ?`, seq).Scan(&found)
	return found, err
}

func (t ledgerTx) SetClosed(ctx context.Context, seq, period string, closed bool) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE allot_sequence_counters SET closed_at = CASE WHEN ?3 THEN coalesce(closed_at, ?4) END
		WHERE sequence = ?1 AND period = ?2`, seq, period, closed, micros(time.Now()))
	return err
}

func (t ledgerTx) LeaseHolders(ctx context.Context, seq, period string) ([]string, error) {
	return list(ctx, t.tx, "leases", func(r scanner) (o string, err error) { return o, r.Scan(&o) }, `SELECT DISTINCT l.owner FROM allot_sequence_ledger l
		WHERE l.sequence = ?2 AND l.period = ?3 AND l.kind = 'leased' AND l.pending
		AND EXISTS (SELECT 1 FROM allot_servers sv WHERE sv.owner = l.owner AND sv.stopped_at IS NULL AND sv.seen_at >= ?1)
		ORDER BY l.owner`, silentCutoff(), seq, period)
}

// SequenceSettle marks issued and leased entries as no longer pending.
func (s *Store) SequenceSettle(ctx context.Context, ids []int64) error {
	for len(ids) > 0 {
		n := min(len(ids), 500)
		if err := s.withTx(ctx, func(tx runner) error { return ledgerTx{tx}.Settle(ctx, ids[:n], false) }); err != nil {
			return translate(err, "settle ledger entries")
		}
		ids = ids[n:]
	}
	return nil
}
