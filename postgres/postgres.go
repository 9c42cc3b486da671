// Package postgres is allot's PostgreSQL store (pgx v5).
//
// Guarantees: every number is taken under the period's counter row lock
// (SELECT … FOR UPDATE), and the counter, the ledger row and any
// idempotency keys commit in the same transaction, so any number of allot
// processes may share one database without ever issuing a number twice. A
// trigger in the schema refuses a counter that moves backwards or past max.
// Serialization failures and deadlocks are retried once inside the store.
//
// Library users can take gapless numbers inside their own transaction with
// NextTx, so the numbers roll back with their work.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/migrate"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// MaxConnsDefault is the pool size when the URL sets no pool_max_conns.
const MaxConnsDefault = 16

// Store is the PostgreSQL implementation of allot.Store.
type Store struct {
	pool *pgxpool.Pool
}

var _ allot.Store = (*Store)(nil)

// Open connects to the database at url (postgres://…). Pool settings such
// as pool_max_conns may be given in the URL.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = MaxConnsDefault
	}
	return NewWithConfig(ctx, cfg)
}

// NewWithConfig returns a Store over a pool built from cfg.
func NewWithConfig(ctx context.Context, cfg *pgxpool.Config) (*Store, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Pool returns the underlying pool, for library users that want to begin
// their own transactions (see NextTx).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool.
func (s *Store) Close() error { s.pool.Close(); return nil }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Migrate applies pending migrations under an advisory lock, so several
// processes starting at once apply each migration exactly once.
func (s *Store) Migrate(ctx context.Context) error {
	migs, err := migrate.Load(migrationsFS, "migrations")
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The lock key is per schema, so tests that use a schema each
		// don't queue behind one another.
		var schema string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
		h := fnv.New64a()
		h.Write([]byte("allot-migrate:" + schema))
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
			return fmt.Errorf("postgres: migrate lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS allot_schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL DEFAULT '',
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT version, checksum FROM allot_schema_migrations`)
		if err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
		applied := map[int]string{}
		var current, v int
		var sum string
		if _, err := pgx.ForEachRow(rows, []any{&v, &sum}, func() error {
			applied[v] = sum
			current = max(current, v)
			return nil
		}); err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
		if err := migrate.Verify(migs, applied); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		if current > len(migs) {
			return fmt.Errorf("postgres: database schema is version %d, newer than this allot (%d): upgrade allot", current, len(migs))
		}
		for _, m := range migs[current:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("postgres: migration %03d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO allot_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, m.Version, m.Name, m.Checksum); err != nil {
				return fmt.Errorf("postgres: record migration %d: %w", m.Version, err)
			}
		}
		return nil
	})
}

// translate maps driver errors to allot's sentinels at the boundary.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return allot.NotFoundf("%s", what)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return allot.Errorf(allot.ErrAlreadyExists, "%s already exists", what)
		case "23514":
			return &allot.InvalidError{Reason: pgErr.Message}
		case "22021", "22P05": // bad encoding, or a NUL in text
			return &allot.InvalidError{Reason: "text must be valid UTF-8 without NUL characters"}
		case "P0002": // no_data_found, raised by allot's functions
			return allot.NotFoundf("%s", what)
		}
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// retryable reports serialization failures and deadlocks, which are safe to
// retry once because the failed transaction committed nothing.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// withTx runs fn in a transaction, retrying once on a serialization failure
// or deadlock.
func (s *Store) withTx(ctx context.Context, fn func(pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, fn)
	if retryable(err) {
		err = pgx.BeginFunc(ctx, s.pool, fn)
	}
	return err
}

const seqCols = `name, format, start, max, mode, block_size, reset, timezone, warn_at, created_at, updated_at`

func scanSeq(row pgx.Row) (*allot.Sequence, error) {
	var q allot.Sequence
	var mode, reset string
	err := row.Scan(&q.Name, &q.Format, &q.Start, &q.Max, &mode, &q.BlockSize, &reset, &q.Timezone, &q.WarnAt, &q.CreatedAt, &q.UpdatedAt)
	q.Mode, q.Reset = allot.Mode(mode), allot.Reset(reset)
	q.CreatedAt, q.UpdatedAt = q.CreatedAt.UTC(), q.UpdatedAt.UTC()
	return &q, err
}

// SequenceCreate stores a new sequence.
func (s *Store) SequenceCreate(ctx context.Context, q *allot.Sequence) (*allot.Sequence, error) {
	row := s.pool.QueryRow(ctx, `INSERT INTO allot_sequences (name, format, start, max, mode, block_size, reset, timezone, warn_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+seqCols,
		q.Name, q.Format, q.Start, q.Max, string(q.Mode), q.BlockSize, string(q.Reset), q.Timezone, q.WarnAt)
	out, err := scanSeq(row)
	if err != nil {
		return nil, translate(err, fmt.Sprintf("sequence %q", q.Name))
	}
	return out, nil
}

// SequenceGet returns one sequence.
func (s *Store) SequenceGet(ctx context.Context, name string) (*allot.Sequence, error) {
	q, err := scanSeq(s.pool.QueryRow(ctx, `SELECT `+seqCols+` FROM allot_sequences WHERE name = $1`, name))
	if err != nil {
		return nil, translate(err, fmt.Sprintf("sequence %q", name))
	}
	return q, nil
}

// SequenceList returns every sequence ordered by name.
func (s *Store) SequenceList(ctx context.Context) ([]*allot.Sequence, error) {
	return list(ctx, s, "list sequences", scanSeq, `SELECT `+seqCols+` FROM allot_sequences ORDER BY name`)
}

// list runs a query and scans every row with scan.
func list[T any](ctx context.Context, s *Store, what string, scan func(pgx.Row) (T, error), query string, args ...any) ([]T, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, translate(err, what)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	return out, translate(err, what)
}

// SequenceUpdate changes max and warn_at. The new max is checked against
// every period's counter while the sequence row is locked, so no lease or
// issue can slip past it.
func (s *Store) SequenceUpdate(ctx context.Context, p allot.SequenceUpdateParams) (*allot.Sequence, error) {
	var out *allot.Sequence
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		q, err := scanSeq(tx.QueryRow(ctx, `SELECT `+seqCols+` FROM allot_sequences WHERE name = $1 FOR UPDATE`, p.Name))
		if err != nil {
			return translate(err, fmt.Sprintf("sequence %q", p.Name))
		}
		if p.Max != nil {
			var highest *int64
			if err := tx.QueryRow(ctx, `SELECT max(last) FROM allot_sequence_counters WHERE sequence = $1`, p.Name).Scan(&highest); err != nil {
				return translate(err, "read counters")
			}
			if highest != nil && *p.Max < *highest {
				return allot.Invalidf("max", "%d is below %d, the highest number already taken: max may only go down to that", *p.Max, *highest)
			}
			q.Max = *p.Max
		}
		if p.WarnAt != nil {
			q.WarnAt = *p.WarnAt
		}
		if _, err := tx.Exec(ctx, `UPDATE allot_sequence_counters SET max = $2 WHERE sequence = $1`, p.Name, q.Max); err != nil {
			return translate(err, "update counters")
		}
		out, err = scanSeq(tx.QueryRow(ctx, `UPDATE allot_sequences SET max = $2, warn_at = $3, updated_at = now() WHERE name = $1 RETURNING `+seqCols,
			p.Name, q.Max, q.WarnAt))
		return translate(err, "update sequence")
	})
	return out, err
}

// SequenceCounterGet returns one period's counter.
func (s *Store) SequenceCounterGet(ctx context.Context, name, period string) (*allot.SequenceCounter, error) {
	c := &allot.SequenceCounter{Period: period}
	err := s.pool.QueryRow(ctx, `SELECT coalesce(c.last, s.start - 1), coalesce(c.voided, 0)
		FROM allot_sequences s LEFT JOIN allot_sequence_counters c ON c.sequence = s.name AND c.period = $2
		WHERE s.name = $1`, name, period).Scan(&c.Last, &c.Voided)
	if err != nil {
		return nil, translate(err, fmt.Sprintf("sequence %q", name))
	}
	return c, nil
}

// SequenceAdvance serves a batch in one transaction.
//
// The common case, where the whole batch fits below max, takes one round
// trip: a single statement in its own implicit transaction moves the
// counter, writes the ledger row and the idempotency keys, so the counter
// row is locked for that one statement only. Anything else (a period's
// first use, a batch that does not fit, a key stored meanwhile by another
// process) falls back to a full transaction that decides request by
// request.
func (s *Store) SequenceAdvance(ctx context.Context, p allot.SequenceAdvanceParams) ([]allot.SequenceAdvanceResult, error) {
	if out, ok, err := s.advanceFast(ctx, p); err != nil {
		return nil, translate(err, fmt.Sprintf("advance sequence %q", p.Sequence))
	} else if ok {
		return out, nil
	}
	var out []allot.SequenceAdvanceResult
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = advanceTx(ctx, tx, p)
		return err
	})
	if err != nil {
		// A key inserted concurrently by another process (23505) makes
		// the batch roll back; running it again replays that key.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			err = s.withTx(ctx, func(tx pgx.Tx) error {
				var err error
				out, err = advanceTx(ctx, tx, p)
				return err
			})
		}
	}
	if err != nil {
		return nil, translate(err, fmt.Sprintf("advance sequence %q", p.Sequence))
	}
	return out, nil
}

// advanceFastSQL serves a whole batch in one statement, or updates nothing
// (no row returned) when the period has no counter yet or the batch does
// not fit below max. $3 is the batch's total count; the unnest arrays are
// the idempotency keys with their offsets from the batch's first number.
const advanceFastSQL = `
WITH c AS (
    UPDATE allot_sequence_counters SET last = last + $3
    WHERE sequence = $1 AND period = $2 AND last <= max - $3
    RETURNING last - $3 AS prev
), l AS (
    INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, reason, owner)
    SELECT $1, $2, $4, prev + 1, prev + $3, $5, $6 FROM c
), k AS (
    INSERT INTO allot_idempotency (scope, key, request_hash, period, date, first, last)
    SELECT u.scope, u.key, u.hash, $2, u.date, c.prev + u.rf, c.prev + u.rl
    FROM c, unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[]) AS u(scope, key, hash, date, rf, rl)
)
SELECT prev FROM c`

// advanceFast tries the one-statement path. ok is false when the batch
// must take the full path instead; nothing was written then.
func (s *Store) advanceFast(ctx context.Context, p allot.SequenceAdvanceParams) ([]allot.SequenceAdvanceResult, bool, error) {
	var total int64
	var scopes, keys, hashes, dates []string
	var rfs, rls []int64
	for _, r := range p.Requests {
		if r.Count < 1 {
			return nil, false, nil
		}
		if k := r.Idempotency; k != nil {
			scopes, keys, hashes, dates = append(scopes, k.Scope), append(keys, k.Key), append(hashes, k.RequestHash), append(dates, k.Date)
			rfs, rls = append(rfs, total+1), append(rls, total+r.Count)
		}
		total += r.Count
	}
	if len(keys) > 0 {
		seen := make(map[string]bool, len(keys))
		for _, k := range keys {
			if seen[k] {
				return nil, false, nil
			}
			seen[k] = true
		}
	}
	var prev int64
	err := s.pool.QueryRow(ctx, advanceFastSQL, p.Sequence, p.Period, total, string(p.Kind),
		allot.LedgerReason(p.Kind, len(p.Requests)), p.Owner, scopes, keys, hashes, dates, rfs, rls).Scan(&prev)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return nil, false, nil // a key was stored meanwhile: the full path replays it
		}
		return nil, false, err
	}
	out := make([]allot.SequenceAdvanceResult, len(p.Requests))
	next := prev + 1
	for i, r := range p.Requests {
		out[i].First, out[i].Last = next, next+r.Count-1
		next += r.Count
	}
	return out, true, nil
}

const lockCounterSQL = `SELECT last, max FROM allot_sequence_counters WHERE sequence = $1 AND period = $2 FOR UPDATE`

// advanceTx takes numbers inside tx. It locks the period's counter row, so
// concurrent transactions on the same period queue behind it.
func advanceTx(ctx context.Context, tx pgx.Tx, p allot.SequenceAdvanceParams) ([]allot.SequenceAdvanceResult, error) {
	var last, max int64
	err := tx.QueryRow(ctx, lockCounterSQL, p.Sequence, p.Period).Scan(&last, &max)
	if errors.Is(err, pgx.ErrNoRows) {
		// First use of the period: create its counter, then lock it.
		if _, err := tx.Exec(ctx, `INSERT INTO allot_sequence_counters (sequence, period, last, max)
			SELECT name, $2, start - 1, max FROM allot_sequences WHERE name = $1 ON CONFLICT DO NOTHING`, p.Sequence, p.Period); err != nil {
			return nil, err
		}
		err = tx.QueryRow(ctx, lockCounterSQL, p.Sequence, p.Period).Scan(&last, &max)
	}
	if err != nil {
		return nil, err
	}

	existing, err := existingKeys(ctx, tx, p)
	if err != nil {
		return nil, err
	}
	plan := allot.PlanAdvance(p, last, max, existing)
	if plan.NewLast == last {
		return plan.Results, nil
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE allot_sequence_counters SET last = $3 WHERE sequence = $1 AND period = $2`, p.Sequence, p.Period, plan.NewLast)
	b.Queue(`INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, reason, owner) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		p.Sequence, p.Period, string(p.Kind), plan.First, plan.Last, allot.LedgerReason(p.Kind, len(p.Requests)), p.Owner)
	if len(plan.Keys) > 0 {
		n := len(plan.Keys)
		scopes, keys, hashes, periods, dates := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		firsts, lasts := make([]int64, n), make([]int64, n)
		for i, k := range plan.Keys {
			scopes[i], keys[i], hashes[i], periods[i], dates[i], firsts[i], lasts[i] = k.Scope, k.Key, k.RequestHash, k.Period, k.Date, k.First, k.Last
		}
		b.Queue(`INSERT INTO allot_idempotency (scope, key, request_hash, period, date, first, last)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])`,
			scopes, keys, hashes, periods, dates, firsts, lasts)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return plan.Results, nil
}

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
	rows, err := tx.Query(ctx, `SELECT `+idemCols+` FROM allot_idempotency WHERE scope = $1 AND key = ANY($2)`, scope, keys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]*allot.IdempotencyRecord)
	for rows.Next() {
		rec, err := scanIdem(rows)
		if err != nil {
			return nil, err
		}
		out[rec.Key] = rec
	}
	return out, rows.Err()
}

const idemCols = `scope, key, request_hash, period, date, first, last, created_at`

func scanIdem(row pgx.Row) (*allot.IdempotencyRecord, error) {
	var r allot.IdempotencyRecord
	err := row.Scan(&r.Scope, &r.Key, &r.RequestHash, &r.Period, &r.Date, &r.First, &r.Last, &r.CreatedAt)
	return &r, err
}

// SequenceVoid records a voided range.
func (s *Store) SequenceVoid(ctx context.Context, p allot.SequenceVoidParams) (*allot.LedgerEntry, error) {
	var out *allot.LedgerEntry
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		var last int64
		err := tx.QueryRow(ctx, `SELECT last FROM allot_sequence_counters WHERE sequence = $1 AND period = $2 FOR UPDATE`,
			p.Sequence, p.Period).Scan(&last)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && p.Last > last {
			return allot.Invalidf("number", "%s was never issued", rangeText(p.First, p.Last))
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT first, last FROM allot_sequence_ledger WHERE sequence = $1 AND period = $2
			AND kind = 'voided' AND first <= $4 AND last >= $3 ORDER BY first`, p.Sequence, p.Period, p.First, p.Last)
		if err != nil {
			return err
		}
		voided, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int64, error) {
			var v [2]int64
			err := r.Scan(&v[0], &v[1])
			return v, err
		})
		if err != nil {
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
			err := tx.QueryRow(ctx, leasedToLiveServerSQL, p.Sequence, p.Period, p.First, p.Last, p.Owner).Scan(&owner)
			if err == nil {
				return leasedError(p, owner)
			} else if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		for _, g := range gaps {
			if _, err := tx.Exec(ctx, `UPDATE allot_sequence_counters SET voided = voided + $3 WHERE sequence = $1 AND period = $2`,
				p.Sequence, p.Period, g[1]-g[0]+1); err != nil {
				return err
			}
			e, err := scanLedger(tx.QueryRow(ctx, `INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, reason, owner)
				VALUES ($1, $2, 'voided', $3, $4, $5, $6) RETURNING `+ledgerCols, p.Sequence, p.Period, g[0], g[1], p.Reason, p.Owner))
			if err != nil {
				return err
			}
			out = e
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, allot.ErrInvalid) || errors.Is(err, allot.ErrAlreadyExists) || errors.Is(err, allot.ErrInvalidState) {
			return nil, err
		}
		return nil, translate(err, "void")
	}
	return out, nil
}

// leasedToLiveServerSQL finds the taken range that can hold $3..$4 (taken
// ranges never overlap, so it is the one starting last at or before $4:
// one index probe) and returns its owner if it is a block leased to a
// server other than $5 that is known and has not stopped. An owner with no
// server row (it ran before servers were recorded) counts as stopped.
const leasedToLiveServerSQL = `SELECT t.owner FROM (
		SELECT kind, owner, last FROM allot_sequence_ledger
		WHERE sequence = $1 AND period = $2 AND kind IN ('issued', 'leased') AND first <= $4
		ORDER BY first DESC LIMIT 1) t
	JOIN allot_servers s ON s.owner = t.owner
	WHERE t.kind = 'leased' AND t.last >= $3 AND t.owner <> $5 AND s.stopped_at IS NULL`

func leasedError(p allot.SequenceVoidParams, owner string) error {
	return allot.Errorf(allot.ErrInvalidState, "%s is in a block leased to server %s, which has not stopped and may not have handed it out yet: "+
		"void it there, or once it has stopped, or with force if it crashed", rangeText(p.First, p.Last), owner)
}

// ServerStart records that a server started.
func (s *Store) ServerStart(ctx context.Context, owner string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO allot_servers (owner, started_at) VALUES ($1, now())
		ON CONFLICT (owner) DO UPDATE SET started_at = now(), stopped_at = NULL`, owner)
	return translate(err, "record server start")
}

// ServerStop records that a server stopped gracefully.
func (s *Store) ServerStop(ctx context.Context, owner string) error {
	_, err := s.pool.Exec(ctx, `UPDATE allot_servers SET stopped_at = now() WHERE owner = $1`, owner)
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
	err := s.pool.QueryRow(ctx, `SELECT s.start, coalesce(c.last, s.start - 1),
			EXISTS (SELECT 1 FROM allot_sequence_ledger l WHERE l.sequence = s.name AND l.period = $2 AND l.kind = 'voided' AND l.first <= $3 AND l.last >= $3)
		FROM allot_sequences s LEFT JOIN allot_sequence_counters c ON c.sequence = s.name AND c.period = $2
		WHERE s.name = $1`, name, period, n).Scan(&start, &last, &voided)
	if err != nil {
		return "", translate(err, fmt.Sprintf("sequence %q", name))
	}
	return allot.StatusOf(n, start, last, voided), nil
}

const ledgerCols = `id, sequence, kind, period, first, last, reason, owner, created_at`

func scanLedger(row pgx.Row) (*allot.LedgerEntry, error) {
	var e allot.LedgerEntry
	var kind string
	err := row.Scan(&e.ID, &e.Sequence, &kind, &e.Period, &e.First, &e.Last, &e.Reason, &e.Owner, &e.CreatedAt)
	e.Kind = allot.LedgerKind(kind)
	e.Count = e.Last - e.First + 1
	e.CreatedAt = e.CreatedAt.UTC()
	return &e, err
}

// SequenceLedger lists ledger entries after a cursor.
func (s *Store) SequenceLedger(ctx context.Context, p allot.SequenceLedgerParams) ([]allot.LedgerEntry, error) {
	return list(ctx, s, "ledger", func(r pgx.Row) (allot.LedgerEntry, error) {
		e, err := scanLedger(r)
		if err != nil {
			return allot.LedgerEntry{}, err
		}
		return *e, nil
	}, `SELECT `+ledgerCols+` FROM allot_sequence_ledger WHERE sequence = $1 AND id > $2 ORDER BY id LIMIT $3`,
		p.Sequence, p.AfterID, p.Limit)
}

// IdempotencyGet returns a stored record.
func (s *Store) IdempotencyGet(ctx context.Context, scope, key string) (*allot.IdempotencyRecord, error) {
	r, err := scanIdem(s.pool.QueryRow(ctx, `SELECT `+idemCols+` FROM allot_idempotency WHERE scope = $1 AND key = $2`, scope, key))
	if err != nil {
		return nil, translate(err, fmt.Sprintf("idempotency key %q", key))
	}
	r.CreatedAt = r.CreatedAt.UTC()
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
