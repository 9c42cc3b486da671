package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/migrate"
)

var _ allot.AdminStore = (*Store)(nil)

// OpenReadOnly connects to the database at url for reading only (every
// transaction is read-only), for `allot audit`.
func OpenReadOnly(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeoutDefault
	}
	return NewWithConfig(ctx, cfg)
}

// SchemaVersion returns the database's schema version and this binary's.
func (s *Store) SchemaVersion(ctx context.Context) (have, want int, err error) {
	migs, err := migrate.Load(migrationsFS, "migrations")
	if err != nil {
		return 0, 0, err
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('allot_schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, len(migs), translate(err, "read the schema version")
	}
	if !exists {
		return 0, len(migs), nil
	}
	var v *int
	if err := s.pool.QueryRow(ctx, `SELECT max(version) FROM allot_schema_migrations`).Scan(&v); err != nil {
		return 0, len(migs), translate(err, "read the schema version")
	}
	if v == nil {
		return 0, len(migs), nil
	}
	return *v, len(migs), nil
}

// SequenceCounters returns every period's counter of a sequence.
func (s *Store) SequenceCounters(ctx context.Context, name string) ([]allot.SequenceCounter, error) {
	return list(ctx, s.pool, "read counters", func(r pgx.Row) (allot.SequenceCounter, error) {
		var c allot.SequenceCounter
		return c, r.Scan(&c.Period, &c.Last, &c.Voided, &c.Reserved)
	}, `SELECT period, last, voided, reserved FROM allot_sequence_counters WHERE sequence = $1 ORDER BY period`, name)
}

// SequenceActivity counts the numbers ledger entries created in [from, to) took.
func (s *Store) SequenceActivity(ctx context.Context, name string, from, to time.Time) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(last - first + 1), 0)::bigint FROM allot_sequence_ledger
		WHERE sequence = $1 AND kind IN ('issued', 'leased', 'reserved') AND created_at >= $2 AND created_at < $3 AND owner IS DISTINCT FROM $4`,
		name, from, to, allot.RestoreOwner).Scan(&n)
	return n, translate(err, "read activity")
}

// LastActivity returns when the newest ledger entry or claim was written.
func (s *Store) LastActivity(ctx context.Context) (time.Time, error) {
	var t *time.Time
	err := s.pool.QueryRow(ctx, `SELECT greatest((SELECT max(created_at) FROM allot_sequence_ledger WHERE owner IS DISTINCT FROM $1),
		(SELECT max(updated_at) FROM allot_claims), (SELECT max(updated_at) FROM allot_sequences), (SELECT max(updated_at) FROM allot_pools),
		(SELECT max(seen_at) FROM allot_servers))`, allot.RestoreOwner).Scan(&t)
	if err != nil || t == nil {
		return time.Time{}, translate(err, "read activity")
	}
	return t.UTC(), nil
}

// SequenceSkip moves a counter past numbers and voids them.
func (s *Store) SequenceSkip(ctx context.Context, p allot.SequenceSkipParams) (*allot.SequenceCounter, error) {
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, newCounterSQL, p.Sequence, p.Period); err != nil {
			return err
		}
		var last, maxv int64
		err := tx.QueryRow(ctx, `SELECT last, max FROM allot_sequence_counters WHERE sequence = $1 AND period = $2 FOR UPDATE`,
			p.Sequence, p.Period).Scan(&last, &maxv)
		if errors.Is(err, pgx.ErrNoRows) {
			return allot.NotFoundf("sequence %q", p.Sequence)
		}
		if err != nil {
			return err
		}
		n := min(p.Count, allot.Remaining(last, maxv))
		if n <= 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE allot_sequence_counters SET last = $3, voided = voided + $4 WHERE sequence = $1 AND period = $2`,
			p.Sequence, p.Period, last+n, n); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, reason, owner)
			SELECT $1, $2, k, $3, $4, $5, $6 FROM unnest(ARRAY['issued', 'voided']) AS k`, p.Sequence, p.Period, last+1, last+n, p.Reason, p.Owner)
		return err
	})
	if err != nil {
		return nil, translate(err, "skip numbers")
	}
	return s.SequenceCounterGet(ctx, p.Sequence, p.Period)
}

// ServersForget records that no server is running.
func (s *Store) ServersForget(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `UPDATE allot_servers SET seen_at = 'epoch' WHERE stopped_at IS NULL`)
	return translate(err, "forget servers")
}

// ServersRunning lists the servers that were running as of asOf: not
// stopped, and seen within allot.ServerSilentAfter before it.
func (s *Store) ServersRunning(ctx context.Context, asOf time.Time) ([]allot.ServerSeen, error) {
	return list(ctx, s.pool, "read servers", func(r pgx.Row) (allot.ServerSeen, error) {
		var v allot.ServerSeen
		return v, r.Scan(&v.Owner, &v.SeenAt)
	}, `SELECT owner, seen_at FROM allot_servers WHERE stopped_at IS NULL AND seen_at >= $1 ORDER BY owner`, asOf.Add(-allot.ServerSilentAfter))
}
