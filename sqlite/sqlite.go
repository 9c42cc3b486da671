// Package sqlite is allot's embedded store: a single SQLite file, through
// the pure-Go modernc.org/sqlite driver (no cgo).
//
// Guarantees: every write runs in a BEGIN IMMEDIATE transaction, so SQLite's
// single writer lock serializes them, also across processes sharing the
// file. The database runs in WAL mode with synchronous=FULL, so a committed
// number survives a crash of the process or the machine. Triggers in the
// schema refuse a counter that moves backwards or past max.
//
// It does not scale writes across machines: use the postgres store for
// several servers.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/migrate"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// PathDefault is where the embedded store keeps its file by default.
const PathDefault = "./allot.db"

// Store is the SQLite implementation of allot.Store.
type Store struct {
	db   *sql.DB
	path string
}

var _ allot.Store = (*Store)(nil)

// PathFromURL turns a store URL into a file path: sqlite:///abs/file.db,
// sqlite://relative/file.db and sqlite:file.db are accepted.
func PathFromURL(u string) (string, error) {
	rest, ok := strings.CutPrefix(u, "sqlite:")
	if !ok {
		return "", fmt.Errorf("sqlite: %q is not a sqlite: URL", u)
	}
	rest = strings.TrimPrefix(rest, "//")
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest = rest[:i]
	}
	p, err := url.PathUnescape(rest)
	if err != nil || p == "" {
		return "", fmt.Errorf("sqlite: %q has no file path: use sqlite:///path/to/allot.db", u)
	}
	return p, nil
}

// Open opens (creating if needed) the SQLite file at path.
func Open(ctx context.Context, path string) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("sqlite: directory of %s: %w", path, err)
		}
	}
	dsn := path + "?_txlock=immediate&_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=on"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// One writer at a time is all SQLite allows; a few connections let
	// reads run beside it in WAL mode.
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// DB returns the underlying handle, for tests and audits.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Migrate applies pending migrations in one IMMEDIATE transaction.
func (s *Store) Migrate(ctx context.Context) error {
	migs, err := migrate.Load(migrationsFS, "migrations")
	if err != nil {
		return err
	}
	return s.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS allot_schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL DEFAULT '', applied_at INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT version, checksum FROM allot_schema_migrations`)
		if err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		sums := map[int]string{}
		current := 0
		for rows.Next() {
			var v int
			var sum string
			if err := rows.Scan(&v, &sum); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: migrate: %w", err)
			}
			sums[v] = sum
			current = max(current, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		if err := migrate.Verify(migs, sums); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if current > len(migs) {
			return fmt.Errorf("sqlite: database schema is version %d, newer than this allot (%d): upgrade allot", current, len(migs))
		}
		for _, m := range migs[current:] {
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("sqlite: migration %03d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO allot_schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`,
				m.Version, m.Name, m.Checksum, time.Now().UnixMicro()); err != nil {
				return fmt.Errorf("sqlite: record migration %d: %w", m.Version, err)
			}
		}
		return nil
	})
}

// withTx runs fn in an IMMEDIATE transaction (the DSN's _txlock), retrying
// once if the database was busy past the busy timeout.
func (s *Store) withTx(ctx context.Context, fn func(*sql.Tx) error) error {
	err := s.tx(ctx, fn)
	if isBusy(err) {
		err = s.tx(ctx, fn)
	}
	return err
}

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func isBusy(err error) bool {
	var e *sqlite3.Error
	if errors.As(err, &e) {
		code := e.Code() & 0xff
		return code == sqlite3lib.SQLITE_BUSY || code == sqlite3lib.SQLITE_LOCKED
	}
	return false
}

// translate maps driver errors to allot's sentinels at the boundary.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return allot.NotFoundf("%s", what)
	}
	for _, sentinel := range []error{allot.ErrInvalid, allot.ErrAlreadyExists, allot.ErrNotFound, allot.ErrInvalidState,
		allot.ErrClaimExpired, allot.ErrIdempotencyMismatch} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	var e *sqlite3.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3lib.SQLITE_CONSTRAINT_UNIQUE:
			return allot.Errorf(allot.ErrAlreadyExists, "%s already exists", what)
		case sqlite3lib.SQLITE_CONSTRAINT_CHECK, sqlite3lib.SQLITE_CONSTRAINT_TRIGGER:
			return &allot.InvalidError{Reason: e.Error()}
		}
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

const seqCols = `name, format, start, max, mode, block_size, reset, timezone, warn_at, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanSeq(row scanner) (*allot.Sequence, error) {
	var q allot.Sequence
	var mode, reset string
	var created, updated int64
	err := row.Scan(&q.Name, &q.Format, &q.Start, &q.Max, &mode, &q.BlockSize, &reset, &q.Timezone, &q.WarnAt, &created, &updated)
	q.Mode, q.Reset = allot.Mode(mode), allot.Reset(reset)
	q.CreatedAt, q.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &q, err
}

// list runs a query and scans every row with scan.
func list[T any](ctx context.Context, s *Store, what string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
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

// SequenceCreate stores a new sequence.
func (s *Store) SequenceCreate(ctx context.Context, q *allot.Sequence) (*allot.Sequence, error) {
	now := micros(time.Now())
	out, err := scanSeq(s.db.QueryRowContext(ctx, `INSERT INTO allot_sequences (`+seqCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+seqCols,
		q.Name, q.Format, q.Start, q.Max, string(q.Mode), q.BlockSize, string(q.Reset), q.Timezone, q.WarnAt, now, now))
	if err != nil {
		return nil, translate(err, fmt.Sprintf("sequence %q", q.Name))
	}
	return out, nil
}

// SequenceGet returns one sequence.
func (s *Store) SequenceGet(ctx context.Context, name string) (*allot.Sequence, error) {
	q, err := scanSeq(s.db.QueryRowContext(ctx, `SELECT `+seqCols+` FROM allot_sequences WHERE name = ?`, name))
	if err != nil {
		return nil, translate(err, fmt.Sprintf("sequence %q", name))
	}
	return q, nil
}

// SequenceList returns every sequence ordered by name.
func (s *Store) SequenceList(ctx context.Context) ([]*allot.Sequence, error) {
	return list(ctx, s, "list sequences", scanSeq, `SELECT `+seqCols+` FROM allot_sequences ORDER BY name`)
}

// SequenceUpdate changes max and warn_at, checking the new max against
// every period's counter inside the same write transaction.
func (s *Store) SequenceUpdate(ctx context.Context, p allot.SequenceUpdateParams) (*allot.Sequence, error) {
	var out *allot.Sequence
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		q, err := scanSeq(tx.QueryRowContext(ctx, `SELECT `+seqCols+` FROM allot_sequences WHERE name = ?`, p.Name))
		if err != nil {
			return translate(err, fmt.Sprintf("sequence %q", p.Name))
		}
		if p.Max != nil {
			var highest sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT max(last) FROM allot_sequence_counters WHERE sequence = ?`, p.Name).Scan(&highest); err != nil {
				return err
			}
			if highest.Valid && *p.Max < highest.Int64 {
				return allot.Invalidf("max", "%d is below %d, the highest number already taken: max may only go down to that", *p.Max, highest.Int64)
			}
			q.Max = *p.Max
		}
		if p.WarnAt != nil {
			q.WarnAt = *p.WarnAt
		}
		if _, err := tx.ExecContext(ctx, `UPDATE allot_sequence_counters SET max = ? WHERE sequence = ?`, q.Max, p.Name); err != nil {
			return err
		}
		out, err = scanSeq(tx.QueryRowContext(ctx, `UPDATE allot_sequences SET max = ?, warn_at = ?, updated_at = ? WHERE name = ? RETURNING `+seqCols,
			q.Max, q.WarnAt, micros(time.Now()), p.Name))
		return err
	})
	if err != nil {
		return nil, translate(err, "update sequence")
	}
	return out, nil
}

// SequenceCounterGet returns one period's counter.
func (s *Store) SequenceCounterGet(ctx context.Context, name, period string) (*allot.SequenceCounter, error) {
	c := &allot.SequenceCounter{Period: period}
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(c.last, s.start - 1), coalesce(c.voided, 0)
		FROM allot_sequences s LEFT JOIN allot_sequence_counters c ON c.sequence = s.name AND c.period = ?
		WHERE s.name = ?`, period, name).Scan(&c.Last, &c.Voided)
	if err != nil {
		return nil, translate(err, fmt.Sprintf("sequence %q", name))
	}
	return c, nil
}

// SequenceAdvance serves a batch in one IMMEDIATE transaction.
func (s *Store) SequenceAdvance(ctx context.Context, p allot.SequenceAdvanceParams) ([]allot.SequenceAdvanceResult, error) {
	var out []allot.SequenceAdvanceResult
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var last, max int64
		err := tx.QueryRowContext(ctx, `SELECT coalesce(c.last, s.start - 1), s.max FROM allot_sequences s
			LEFT JOIN allot_sequence_counters c ON c.sequence = s.name AND c.period = ? WHERE s.name = ?`,
			p.Period, p.Sequence).Scan(&last, &max) // the sequence's max and the counter's are kept equal
		if err != nil {
			return translate(err, fmt.Sprintf("sequence %q", p.Sequence))
		}
		existing, err := s.existingKeys(ctx, tx, p)
		if err != nil {
			return err
		}
		plan := allot.PlanAdvance(p, last, max, existing)
		out = plan.Results
		if plan.NewLast == last {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO allot_sequence_counters (sequence, period, last, max) VALUES (?, ?, ?, ?)
			ON CONFLICT (sequence, period) DO UPDATE SET last = excluded.last`, p.Sequence, p.Period, plan.NewLast, max); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, reason, owner, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, p.Sequence, p.Period, string(p.Kind), plan.First, plan.Last,
			allot.LedgerReason(p.Kind, len(p.Requests)), p.Owner, micros(time.Now())); err != nil {
			return err
		}
		for _, k := range plan.Keys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO allot_idempotency (scope, key, request_hash, period, date, first, last, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, k.Scope, k.Key, k.RequestHash, k.Period, k.Date, k.First, k.Last, micros(time.Now())); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, translate(err, fmt.Sprintf("advance sequence %q", p.Sequence))
	}
	return out, nil
}

func (s *Store) existingKeys(ctx context.Context, tx *sql.Tx, p allot.SequenceAdvanceParams) (map[string]*allot.IdempotencyRecord, error) {
	var out map[string]*allot.IdempotencyRecord
	for _, r := range p.Requests {
		if r.Idempotency == nil {
			continue
		}
		rec, err := scanIdem(tx.QueryRowContext(ctx, `SELECT `+idemCols+` FROM allot_idempotency WHERE scope = ? AND key = ?`,
			r.Idempotency.Scope, r.Idempotency.Key))
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

const idemCols = `scope, key, request_hash, period, date, first, last, created_at`

func scanIdem(row scanner) (*allot.IdempotencyRecord, error) {
	var r allot.IdempotencyRecord
	var created int64
	err := row.Scan(&r.Scope, &r.Key, &r.RequestHash, &r.Period, &r.Date, &r.First, &r.Last, &created)
	r.CreatedAt = fromMicros(created)
	return &r, err
}

// SequenceVoid records a voided range.
func (s *Store) SequenceVoid(ctx context.Context, p allot.SequenceVoidParams) (*allot.LedgerEntry, error) {
	var out *allot.LedgerEntry
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var last int64
		err := tx.QueryRowContext(ctx, `SELECT last FROM allot_sequence_counters WHERE sequence = ? AND period = ?`,
			p.Sequence, p.Period).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) || err == nil && p.Last > last {
			return allot.Invalidf("number", "%s was never issued", rangeText(p.First, p.Last))
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT first, last FROM allot_sequence_ledger WHERE sequence = ? AND period = ?
			AND kind = 'voided' AND first <= ? AND last >= ? ORDER BY first`, p.Sequence, p.Period, p.Last, p.First)
		if err != nil {
			return err
		}
		var voided [][2]int64
		for rows.Next() {
			var v [2]int64
			if err := rows.Scan(&v[0], &v[1]); err != nil {
				rows.Close()
				return err
			}
			voided = append(voided, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		gaps := [][2]int64{{p.First, p.Last}}
		if p.SkipVoided {
			if gaps = allot.Gaps(p.First, p.Last, voided); len(gaps) == 0 {
				return nil
			}
		} else if len(voided) > 0 {
			return allot.Errorf(allot.ErrAlreadyExists, "%s was already voided", rangeText(p.First, p.Last))
		}
		if !p.Force {
			var owner string
			// The taken range that can hold the numbers is the one
			// starting last at or before them (one index probe); an owner
			// with no server row counts as stopped.
			err := tx.QueryRowContext(ctx, `SELECT t.owner FROM (
					SELECT kind, owner, last FROM allot_sequence_ledger
					WHERE sequence = ?1 AND period = ?2 AND kind IN ('issued', 'leased') AND first <= ?4
					ORDER BY first DESC LIMIT 1) t
				JOIN allot_servers s ON s.owner = t.owner
				WHERE t.kind = 'leased' AND t.last >= ?3 AND t.owner <> ?5 AND s.stopped_at IS NULL`,
				p.Sequence, p.Period, p.First, p.Last, p.Owner).Scan(&owner)
			if err == nil {
				return allot.Errorf(allot.ErrInvalidState, "%s is in a block leased to server %s, which has not stopped and may not have handed it out yet: "+
					"void it there, or once it has stopped, or with force if it crashed", rangeText(p.First, p.Last), owner)
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		for _, g := range gaps {
			if _, err := tx.ExecContext(ctx, `UPDATE allot_sequence_counters SET voided = voided + ? WHERE sequence = ? AND period = ?`,
				g[1]-g[0]+1, p.Sequence, p.Period); err != nil {
				return err
			}
			out, err = scanLedger(tx.QueryRowContext(ctx, `INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, reason, owner, created_at)
				VALUES (?, ?, 'voided', ?, ?, ?, ?, ?) RETURNING `+ledgerCols, p.Sequence, p.Period, g[0], g[1], p.Reason, p.Owner, micros(time.Now())))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, translate(err, "void")
	}
	return out, nil
}

// ServerStart records that a server started.
func (s *Store) ServerStart(ctx context.Context, owner string) error {
	now := micros(time.Now())
	_, err := s.db.ExecContext(ctx, `INSERT INTO allot_servers (owner, started_at) VALUES (?, ?)
		ON CONFLICT (owner) DO UPDATE SET started_at = excluded.started_at, stopped_at = NULL`, owner, now)
	return translate(err, "record server start")
}

// ServerStop records that a server stopped gracefully.
func (s *Store) ServerStop(ctx context.Context, owner string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE allot_servers SET stopped_at = ? WHERE owner = ?`, micros(time.Now()), owner)
	return translate(err, "record server stop")
}

func rangeText(first, last int64) string {
	if first == last {
		return fmt.Sprintf("number %d", first)
	}
	return fmt.Sprintf("numbers %d-%d", first, last)
}

// SequenceNumberStatus reports what became of number n.
func (s *Store) SequenceNumberStatus(ctx context.Context, name, period string, n int64) (allot.NumberStatus, error) {
	var start, last int64
	var voided bool
	err := s.db.QueryRowContext(ctx, `SELECT s.start, coalesce(c.last, s.start - 1),
			EXISTS (SELECT 1 FROM allot_sequence_ledger l WHERE l.sequence = s.name AND l.period = ? AND l.kind = 'voided' AND l.first <= ? AND l.last >= ?)
		FROM allot_sequences s LEFT JOIN allot_sequence_counters c ON c.sequence = s.name AND c.period = ?
		WHERE s.name = ?`, period, n, n, period, name).Scan(&start, &last, &voided)
	if err != nil {
		return "", translate(err, fmt.Sprintf("sequence %q", name))
	}
	return allot.StatusOf(n, start, last, voided), nil
}

const ledgerCols = `id, sequence, kind, period, first, last, reason, owner, created_at`

func scanLedger(row scanner) (*allot.LedgerEntry, error) {
	var e allot.LedgerEntry
	var kind string
	var created int64
	err := row.Scan(&e.ID, &e.Sequence, &kind, &e.Period, &e.First, &e.Last, &e.Reason, &e.Owner, &created)
	e.Kind = allot.LedgerKind(kind)
	e.Count = e.Last - e.First + 1
	e.CreatedAt = fromMicros(created)
	return &e, err
}

// SequenceLedger lists ledger entries after a cursor.
func (s *Store) SequenceLedger(ctx context.Context, p allot.SequenceLedgerParams) ([]allot.LedgerEntry, error) {
	return list(ctx, s, "ledger", func(r scanner) (allot.LedgerEntry, error) {
		e, err := scanLedger(r)
		if err != nil {
			return allot.LedgerEntry{}, err
		}
		return *e, nil
	}, `SELECT `+ledgerCols+` FROM allot_sequence_ledger WHERE sequence = ? AND id > ? ORDER BY id LIMIT ?`,
		p.Sequence, p.AfterID, p.Limit)
}

// IdempotencyGet returns a stored record.
func (s *Store) IdempotencyGet(ctx context.Context, scope, key string) (*allot.IdempotencyRecord, error) {
	r, err := scanIdem(s.db.QueryRowContext(ctx, `SELECT `+idemCols+` FROM allot_idempotency WHERE scope = ? AND key = ?`, scope, key))
	if err != nil {
		return nil, translate(err, fmt.Sprintf("idempotency key %q", key))
	}
	return r, nil
}

// IdempotencyPurge deletes records created before the given time.
func (s *Store) IdempotencyPurge(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM allot_idempotency WHERE created_at < ?`, micros(before))
	if err != nil {
		return 0, translate(err, "purge idempotency keys")
	}
	return res.RowsAffected()
}
