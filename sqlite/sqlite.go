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
	"sync/atomic"
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
	db      *sql.DB
	path    string
	notices *notices
	hot     atomic.Pointer[prepared] // see prepared.go
	writer  chan struct{}            // one write transaction of this process at a time (see tx)
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
	return open(ctx, path, false)
}

// OpenReadOnly opens an existing SQLite file without writing to it (for
// `allot audit`, also on a read-only copy): queries only, no migrations.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, true)
}

func open(ctx context.Context, path string, readOnly bool) (*Store, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("sqlite: can't use %s: its directory %s: %w", path, dir, unwrapPathError(err))
	}
	if readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("sqlite: can't read %s: %w", path, unwrapPathError(err))
		}
	}
	dsn := path + "?_txlock=immediate&_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=on"
	if readOnly {
		// mode=ro never writes; a WAL database needs its -shm file or a
		// writable directory for that, so a copy without them is opened
		// immutable (it can't change while nothing writes to it).
		dsn = "file:" + path + "?mode=ro&_pragma=query_only(1)&_busy_timeout=10000"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// One writer at a time is all SQLite allows; a few connections let
	// reads run beside it in WAL mode.
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(0)
	err = db.PingContext(ctx)
	if err == nil && readOnly {
		_, err = db.ExecContext(ctx, `SELECT count(*) FROM sqlite_master`)
	}
	if err != nil && readOnly {
		db.Close()
		// Immutable reads the main file alone: committed transactions
		// still in the -wal would be missed, so refuse rather than read
		// an older (or half checkpointed) state.
		if fi, werr := os.Stat(path + "-wal"); werr == nil && fi.Size() > 0 {
			return nil, fmt.Errorf("sqlite: can't read %s: its -wal file holds transactions that a read-only open of this directory can't use; "+
				"copy the database with its -wal and -shm files to a directory you can write, or stop the server so it checkpoints, and try again", path)
		}
		if db, err = sql.Open("sqlite", "file:"+path+"?mode=ro&immutable=1&_pragma=query_only(1)"); err != nil {
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		db.SetMaxOpenConns(4)
		err = db.PingContext(ctx)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: can't open %s: %s", path, diagnose(path, readOnly, err))
	}
	return &Store{db: db, path: path, notices: noticesFor(path), writer: make(chan struct{}, 1)}, nil
}

// diagnose says why SQLite could not open path in words a user can act on.
func diagnose(path string, readOnly bool, err error) string {
	dir := filepath.Dir(path)
	if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) && !readOnly {
		probe, perr := os.CreateTemp(dir, ".allot-probe-*")
		if perr != nil {
			return fmt.Sprintf("the file does not exist and the directory %s does not let this user create it (%v): "+
				"fix the directory's permissions, or give --store a path in a writable directory", dir, unwrapPathError(perr))
		}
		probe.Close()
		os.Remove(probe.Name())
	} else if f, oerr := os.OpenFile(path, os.O_RDWR, 0); oerr != nil && !readOnly {
		return fmt.Sprintf("the file can't be opened for writing (%v): fix its permissions, or use `allot audit` to read a read-only copy", unwrapPathError(oerr))
	} else if f != nil {
		f.Close()
	}
	return err.Error()
}

// unwrapPathError drops the repetition of the path from an *os.PathError.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// DB returns the underlying handle, for tests and audits.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error {
	if m := s.hot.Swap(nil); m != nil {
		closeAll(*m)
	}
	return s.db.Close()
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// sqliteRunner applies migrations in one IMMEDIATE transaction.
type sqliteRunner struct{ tx *sql.Tx }

func (r sqliteRunner) Applied(ctx context.Context) (map[int]string, error) {
	if _, err := r.tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS allot_schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL DEFAULT '', applied_at INTEGER NOT NULL)`); err != nil {
		return nil, err
	}
	rows, err := r.tx.QueryContext(ctx, `SELECT version, checksum FROM allot_schema_migrations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	applied := map[int]string{}
	for rows.Next() {
		var v int
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, err
		}
		applied[v] = sum
	}
	return applied, rows.Err()
}

func (r sqliteRunner) Apply(ctx context.Context, m migrate.Migration) error {
	if _, err := r.tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	_, err := r.tx.ExecContext(ctx, `INSERT INTO allot_schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`,
		m.Version, m.Name, m.Checksum, time.Now().UnixMicro())
	return err
}

// Migrate applies pending migrations in one IMMEDIATE transaction.
func (s *Store) Migrate(ctx context.Context) error {
	migs, err := migrate.Load(migrationsFS, "migrations")
	if err != nil {
		return err
	}
	err = s.withTx(ctx, func(tx runner) error {
		if err := migrate.Run(ctx, sqliteRunner{tx.tx}, migs, nil); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		return nil
	})
	if err == nil {
		s.prepare(ctx)
	}
	return err
}

// withTx runs fn in an IMMEDIATE transaction (the DSN's _txlock), retrying
// once if the database was busy past the busy timeout.
func (s *Store) withTx(ctx context.Context, fn func(runner) error) error {
	return s.withTurn(ctx, nil, fn)
}

// withTurn is withTx for a group commit with a place in its key's
// pipeline: turn.Locked once the transaction holds the write lock, and
// turn.Ready before it commits (a nil turn is no pipeline).
//
// This process's writers take turns on s.writer rather than in SQLite's
// busy handler, which sleeps (1 ms, then longer) between its retries of a
// locked database: a write waiting on another one of this process starts
// the moment that one ends, and the turn is held across the retry, so a
// pipelined batch never gives the lock to the batch queued behind it and
// then waits for it. Writers of other processes still meet in the busy
// handler.
func (s *Store) withTurn(ctx context.Context, turn allot.Turn, fn func(runner) error) error {
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writer }()
	err := s.tx(ctx, turn, fn)
	if isBusy(err) {
		err = s.tx(ctx, turn, fn)
	}
	return err
}

func (s *Store) tx(ctx context.Context, turn allot.Turn, fn func(runner) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if turn != nil {
		turn.Locked()
	}
	if err := fn(runner{q: tx, tx: tx, hot: &s.hot}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if turn != nil {
		if err := turn.Ready(ctx); err != nil {
			_ = tx.Rollback()
			return err
		}
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

// translated is a driver error translate has named already: translated
// again (a lookup inside an operation that translates its own errors), it
// is left as it is.
type translated struct{ error }

func (e translated) Unwrap() error { return e.error }

// translate maps driver errors to allot's sentinels at the boundary.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.As(err, new(translated)) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return allot.NotFoundf("%s", what)
	}
	if strings.Contains(err.Error(), "sql: database is closed") || strings.Contains(err.Error(), "sql: statement is closed") {
		return allot.ErrClosed
	}
	for _, sentinel := range []error{allot.ErrInvalid, allot.ErrAlreadyExists, allot.ErrNotFound, allot.ErrInvalidState,
		allot.ErrClaimExpired, allot.ErrIdempotencyMismatch, allot.ErrOverlap, allot.ErrPeriodClosed, allot.ErrUnavailable} {
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
		switch e.Code() & 0xff {
		case sqlite3lib.SQLITE_BUSY, sqlite3lib.SQLITE_LOCKED, sqlite3lib.SQLITE_IOERR, sqlite3lib.SQLITE_FULL, sqlite3lib.SQLITE_CANTOPEN,
			sqlite3lib.SQLITE_READONLY, sqlite3lib.SQLITE_PROTOCOL, sqlite3lib.SQLITE_NOMEM, sqlite3lib.SQLITE_CORRUPT, sqlite3lib.SQLITE_NOTADB:
			return &allot.UnavailableError{Store: "sqlite", Err: fmt.Errorf("%s: %w", what, err)}
		}
	}
	return translated{fmt.Errorf("sqlite: %s: %w", what, err)}
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// write runs one statement as a write transaction of its own, in this
// process's turn with the other writers (see withTurn).
func (s *Store) write(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.withTx(ctx, func(tx runner) error {
		var err error
		res, err = tx.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}
