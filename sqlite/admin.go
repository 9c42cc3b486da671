package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/migrate"
)

var _ allot.AdminStore = (*Store)(nil)

// SchemaVersion returns the database's schema version and this binary's.
func (s *Store) SchemaVersion(ctx context.Context) (have, want int, err error) {
	migs, err := migrate.Load(migrationsFS, "migrations")
	if err != nil {
		return 0, 0, err
	}
	var exists int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'allot_schema_migrations'`).Scan(&exists); err != nil {
		return 0, len(migs), translate(err, "read the schema version")
	}
	if exists == 0 {
		return 0, len(migs), nil
	}
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(version) FROM allot_schema_migrations`).Scan(&v); err != nil {
		return 0, len(migs), translate(err, "read the schema version")
	}
	return int(v.Int64), len(migs), nil
}

// Backup writes a consistent snapshot of the database to path (VACUUM
// INTO), safe to take while servers use the database. path must not exist.
// The snapshot records when it was taken, for `allot restore`.
func (s *Store) Backup(ctx context.Context, path string) (time.Time, error) {
	if _, err := os.Stat(path); err == nil {
		return time.Time{}, fmt.Errorf("sqlite: backup: %s exists already: give a new file", path)
	}
	taken := time.Now()
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return time.Time{}, translate(err, "backup")
	}
	copyDB, err := sql.Open("sqlite", path+"?_txlock=immediate&_journal_mode=DELETE&_synchronous=FULL")
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	defer copyDB.Close()
	// taken_at is before the snapshot (so a backup's age is never
	// underestimated), done_at after it (so a restore knows that what the
	// copy says of servers is older than that).
	if _, err := copyDB.ExecContext(ctx, `CREATE TABLE allot_backup (taken_at INTEGER NOT NULL, done_at INTEGER NOT NULL);
		INSERT INTO allot_backup (taken_at, done_at) VALUES (?, ?)`, micros(taken), micros(time.Now())); err != nil {
		return time.Time{}, fmt.Errorf("sqlite: backup: record its time: %w", err)
	}
	return taken, nil
}

// BackupTime returns when the database was backed up, if it is a backup
// written by Backup (ok false otherwise): the snapshot was taken between
// taken and done. It only reads (see ForgetBackupTime).
func (s *Store) BackupTime(ctx context.Context) (taken, done time.Time, ok bool, err error) {
	var exists int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'allot_backup'`).Scan(&exists); err != nil || exists == 0 {
		return time.Time{}, time.Time{}, false, translate(err, "read the backup time")
	}
	var t, d int64
	if err := s.db.QueryRowContext(ctx, `SELECT taken_at, done_at FROM allot_backup`).Scan(&t, &d); err != nil {
		return time.Time{}, time.Time{}, false, translate(err, "read the backup time")
	}
	return fromMicros(t), fromMicros(d), true, nil
}

// SequenceCounters returns every period's counter of a sequence.
func (s *Store) SequenceCounters(ctx context.Context, name string) ([]allot.SequenceCounter, error) {
	return list(ctx, s.db, "read counters", func(r scanner) (allot.SequenceCounter, error) {
		var c allot.SequenceCounter
		return c, r.Scan(&c.Period, &c.Last, &c.Voided, &c.Reserved)
	}, `SELECT period, last, voided, reserved FROM allot_sequence_counters WHERE sequence = ? ORDER BY period`, name)
}

// SequenceActivity counts the numbers ledger entries created in [from, to) took.
func (s *Store) SequenceActivity(ctx context.Context, name string, from, to time.Time) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(sum(last - first + 1), 0) FROM allot_sequence_ledger
		WHERE sequence = ? AND kind IN ('issued', 'leased', 'reserved') AND created_at >= ? AND created_at < ? AND owner IS NOT ?`,
		name, micros(from), micros(to), allot.RestoreOwner).Scan(&n)
	return n, translate(err, "read activity")
}

// LastActivity returns when the newest ledger entry or claim was written.
func (s *Store) LastActivity(ctx context.Context) (time.Time, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT max(t) FROM (SELECT max(created_at) AS t FROM allot_sequence_ledger WHERE owner IS NOT ?
		UNION ALL SELECT max(updated_at) FROM allot_claims UNION ALL SELECT max(updated_at) FROM allot_sequences
		UNION ALL SELECT max(updated_at) FROM allot_pools UNION ALL SELECT max(seen_at) FROM allot_servers)`, allot.RestoreOwner).Scan(&v)
	if err != nil || !v.Valid {
		return time.Time{}, translate(err, "read activity")
	}
	return fromMicros(v.Int64), nil
}

// SequenceSkip moves a counter past numbers and voids them.
func (s *Store) SequenceSkip(ctx context.Context, p allot.SequenceSkipParams) (*allot.SequenceCounter, error) {
	err := s.withTx(ctx, func(tx runner) error {
		var last, maxv int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(c.last, s.start - 1), s.max FROM allot_sequences s
			LEFT JOIN allot_sequence_counters c ON c.sequence = s.name AND c.period = ? WHERE s.name = ?`, p.Period, p.Sequence).Scan(&last, &maxv); err != nil {
			return translate(err, fmt.Sprintf("sequence %q", p.Sequence))
		}
		n := min(p.Count, allot.Remaining(last, maxv))
		if n <= 0 {
			return nil
		}
		now := micros(time.Now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO allot_sequence_counters (sequence, period, last, max, voided) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (sequence, period) DO UPDATE SET last = excluded.last, voided = voided + excluded.voided`,
			p.Sequence, p.Period, last+n, maxv, n); err != nil {
			return err
		}
		for _, kind := range []string{"issued", "voided"} {
			if _, err := tx.ExecContext(ctx, `INSERT INTO allot_sequence_ledger (sequence, period, kind, first, last, reason, owner, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, p.Sequence, p.Period, kind, last+1, last+n, p.Reason, p.Owner, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, translate(err, "skip numbers")
	}
	return s.SequenceCounterGet(ctx, p.Sequence, p.Period)
}

// ServersForget records that no server is running.
func (s *Store) ServersForget(ctx context.Context) error {
	_, err := s.write(ctx, `UPDATE allot_servers SET seen_at = 0 WHERE stopped_at IS NULL`)
	return translate(err, "forget servers")
}

// ServersRunning lists the servers that were running as of asOf: not
// stopped, and seen within allot.ServerSilentAfter before it.
func (s *Store) ServersRunning(ctx context.Context, asOf time.Time) ([]allot.ServerSeen, error) {
	return list(ctx, s.db, "read servers", func(r scanner) (allot.ServerSeen, error) {
		var v allot.ServerSeen
		var seen int64
		err := r.Scan(&v.Owner, &seen)
		v.SeenAt = fromMicros(seen)
		return v, err
	}, `SELECT owner, seen_at FROM allot_servers WHERE stopped_at IS NULL AND seen_at >= ? ORDER BY owner`, micros(asOf.Add(-allot.ServerSilentAfter)))
}

// ForgetBackupTime drops the record BackupTime reads, once a restore is
// done with it.
func (s *Store) ForgetBackupTime(ctx context.Context) error {
	_, err := s.write(ctx, `DROP TABLE IF EXISTS allot_backup`)
	return translate(err, "forget the backup time")
}
