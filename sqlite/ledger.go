package sqlite

import (
	"context"
	"database/sql"
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
		return list(ctx, tx, "read ledger", scanLedgerValue, takenNear, seq, period, sp.First, sp.Last)
	}, func(kind allot.LedgerKind, sp allot.Span) ([]allot.LedgerEntry, error) {
		return list(ctx, tx, "read ledger", scanLedgerValue, notesNear, seq, period, sp.First, sp.Last, string(kind))
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
	return scanLedger(t.tx.QueryRowContext(ctx, `INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, reason, owner, created_at, reference)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+ledgerCols, seq, period, string(n.Kind), n.Span.First, n.Span.Last,
		n.Reason, owner, micros(time.Now()), n.Reference))
}

// settle marks entries as no longer pending. Reserved entries are settled
// only by the planners (any is true), once confirmed or voided in full.
func settle(ctx context.Context, q querier, ids []int64, reserved bool) error {
	if len(ids) == 0 {
		return nil
	}
	kinds := `'issued', 'leased'`
	if reserved {
		kinds += `, 'reserved'`
	}
	args := make([]any, len(ids))
	marks := make([]string, len(ids))
	for i, id := range ids {
		args[i], marks[i] = id, "?"
	}
	_, err := q.ExecContext(ctx, `UPDATE allot_sequence_ledger SET pending = 0 WHERE pending AND kind IN (`+kinds+`) AND id IN (`+strings.Join(marks, ", ")+`)`, args...)
	return err
}

// liveOwnerSQL holds when server ?1 is running: it has not stopped and was
// seen within allot.ServerSilentAfter (?2 is the cutoff, Unix micros).
const liveOwnerSQL = `EXISTS (SELECT 1 FROM allot_servers sv WHERE sv.owner = ?1 AND sv.stopped_at IS NULL AND sv.seen_at >= ?2)`

func silentCutoff() int64 { return micros(time.Now().Add(-allot.ServerSilentAfter)) }

// ledgerTx lends a transaction to the root package's ledger operations.
type ledgerTx struct{ tx *sql.Tx }

func (t ledgerTx) Settle(ctx context.Context, ids []int64, reserved bool) error {
	return settle(ctx, t.tx, ids, reserved)
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
	return list(ctx, t.tx, "expired reservations", scanLedgerValue, `SELECT `+ledgerCols+` FROM allot_sequence_ledger
		WHERE kind = 'reserved' AND pending AND confirm_by <= ? AND id IN (`+strings.Join(marks, ", ")+`) ORDER BY first`, args...)
}

func (t ledgerTx) ReservationsSwept(ctx context.Context, owner string, now time.Time) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO allot_reservation_sweeps (id, owner, swept_at) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, swept_at = max(swept_at, excluded.swept_at)`, owner, micros(now))
	return err
}

// SequenceVoid records a voided range, as allot.PlanVoid decides.
func (s *Store) SequenceVoid(ctx context.Context, p allot.SequenceVoidParams) (*allot.LedgerEntry, error) {
	var out *allot.LedgerEntry
	err := s.withTx(ctx, func(tx *sql.Tx) (err error) {
		out, err = allot.VoidTx(ctx, ledgerTx{tx}, p)
		return err
	})
	if err != nil {
		return nil, translate(err, "void")
	}
	return out, nil
}

// SequenceReturn gives numbers back, as allot.PlanReturn decides, one
// period after another (in period order, the one lock order) in one
// transaction.
func (s *Store) SequenceReturn(ctx context.Context, p allot.SequenceReturnParams) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error { return allot.ReturnTx(ctx, ledgerTx{tx}, p) })
	return translate(err, fmt.Sprintf("give back numbers of %q", p.Sequence))
}

// SequenceSettle marks issued and leased entries as no longer pending.
func (s *Store) SequenceSettle(ctx context.Context, ids []int64) error {
	for len(ids) > 0 {
		n := min(len(ids), 500)
		if err := settle(ctx, s.db, ids[:n], false); err != nil {
			return translate(err, "settle ledger entries")
		}
		ids = ids[n:]
	}
	return nil
}

// SequenceConfirm confirms reserved numbers, as allot.PlanConfirm decides.
func (s *Store) SequenceConfirm(ctx context.Context, p allot.SequenceConfirmParams) (*allot.LedgerEntry, bool, error) {
	var out *allot.LedgerEntry
	var replayed bool
	err := s.withTx(ctx, func(tx *sql.Tx) (err error) {
		out, replayed, err = allot.ConfirmTx(ctx, ledgerTx{tx}, p)
		return err
	})
	if err != nil {
		return nil, false, translate(err, "confirm")
	}
	return out, replayed, nil
}

// SequenceExpireReserved voids the reservations past their deadline.
func (s *Store) SequenceExpireReserved(ctx context.Context, now time.Time, owner string) (int64, error) {
	due, err := list(ctx, s.db, "expired reservations", scanLedgerValue, `SELECT `+ledgerCols+` FROM allot_sequence_ledger
		WHERE pending AND kind = 'reserved' AND confirm_by <= ? ORDER BY sequence, period, first LIMIT 5000`, micros(now))
	if err != nil {
		return 0, translate(err, "void expired reservations")
	}
	var voided int64
	for _, group := range allot.ByPeriod(due) {
		var n int64
		err := s.withTx(ctx, func(tx *sql.Tx) error {
			n, err = allot.ExpireReservedTx(ctx, ledgerTx{tx}, group, now, owner)
			return err
		})
		if err != nil {
			return voided, translate(err, "void expired reservations")
		}
		voided += n // only once committed: withTx may run the closure twice
	}
	return voided, nil
}

// SequencePeriodClose closes (or reopens) a period.
func (s *Store) SequencePeriodClose(ctx context.Context, p allot.SequencePeriodCloseParams) (*allot.SequenceCounter, error) {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO allot_sequence_counters (sequence, period, last, max)
			SELECT name, ?, start - 1, max FROM allot_sequences WHERE name = ? ON CONFLICT DO NOTHING`, p.Period, p.Sequence); err != nil {
			return err
		}
		var found int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM allot_sequences WHERE name = ?`, p.Sequence).Scan(&found); err != nil {
			return err
		}
		if found == 0 {
			return allot.NotFoundf("sequence %q", p.Sequence)
		}
		if p.Reopen {
			_, err := tx.ExecContext(ctx, `UPDATE allot_sequence_counters SET closed_at = NULL WHERE sequence = ? AND period = ?`, p.Sequence, p.Period)
			return err
		}
		owners, err := list(ctx, tx, "leases", func(r scanner) (string, error) {
			var o string
			return o, r.Scan(&o)
		}, `SELECT DISTINCT l.owner FROM allot_sequence_ledger l WHERE l.sequence = ?2 AND l.period = ?3 AND l.kind = 'leased' AND l.pending
			AND EXISTS (SELECT 1 FROM allot_servers sv WHERE sv.owner = l.owner AND sv.stopped_at IS NULL AND sv.seen_at >= ?1)
			ORDER BY l.owner`, silentCutoff(), p.Sequence, p.Period)
		if err != nil {
			return err
		}
		if len(owners) > 0 {
			return allot.Errorf(allot.ErrInvalidState, "period %s can't be closed while running servers hold leases in it (%s): they may still hand numbers out; "+
				"close it once they are stopped or their leases sat idle long enough to be given back", p.Period, strings.Join(owners, ", "))
		}
		_, err = tx.ExecContext(ctx, `UPDATE allot_sequence_counters SET closed_at = coalesce(closed_at, ?) WHERE sequence = ? AND period = ?`,
			micros(time.Now()), p.Sequence, p.Period)
		return err
	})
	if err != nil {
		return nil, translate(err, "close period")
	}
	return s.SequenceCounterGet(ctx, p.Sequence, p.Period)
}

// SequenceNumberInfo returns what the ledger says of number n: each
// lookup is one backward probe of the partial index its kind filter names.
func (s *Store) SequenceNumberInfo(ctx context.Context, name, period string, n int64) (*allot.NumberInfo, error) {
	if _, err := s.SequenceGet(ctx, name); err != nil {
		return nil, err
	}
	info, err := allot.ReadNumberInfo(n, func(kinds string) (*allot.LedgerEntry, error) {
		e, err := scanLedger(s.db.QueryRowContext(ctx, `SELECT `+ledgerCols+` FROM allot_sequence_ledger
			WHERE sequence = ? AND period = ? AND `+kinds+` AND first <= ? ORDER BY first DESC LIMIT 1`, name, period, n))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		return e, err
	}, func(owner string) (live bool, err error) {
		err = s.db.QueryRowContext(ctx, `SELECT `+liveOwnerSQL, owner, silentCutoff()).Scan(&live)
		return live, err
	})
	return info, translate(err, "read ledger")
}

// SequenceBatchEntries returns the pending taken entries of a batch.
func (s *Store) SequenceBatchEntries(ctx context.Context, name, period string, batch int64) ([]allot.LedgerEntry, error) {
	return list(ctx, s.db, "read ledger", scanLedgerValue, `SELECT `+ledgerCols+` FROM allot_sequence_ledger
		WHERE sequence = ? AND period = ? AND pending AND batch = ? AND kind IN ('issued', 'leased', 'reserved') ORDER BY first`,
		name, period, batch)
}
