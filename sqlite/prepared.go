package sqlite

import (
	"context"
	"database/sql"
	"sync/atomic"
)

// SQLite compiles a statement, with the programs of the triggers it fires,
// every time it is prepared, and on the hot paths (a claim batch, a gapless
// batch) that cost more than running it. So the statements those paths run
// are prepared once and reused: hot lists them, and every transaction and
// read of the store goes through a runner, which runs a statement in hot
// prepared and any other statement as before.
//
// They are prepared after Migrate has committed, outside any transaction:
// preparing needs a connection of its own, and one taken inside a write
// transaction could wait forever for the connections held by the
// transactions queued behind it. Inside a transaction, (*sql.Tx).StmtContext
// reuses the statement prepared on that transaction's connection, preparing
// it there once if it is new.
var hot = []string{
	expireHeldSQL, poolRowSQL, poolGetSQL, customerUsedSQL, claimKeySQL, claimByIDSQL, insertClaimSQL, insertClaimKeySQL,
	confirmClaimSQL, counterStateSQL, idemByKeySQL, insertLedgerSQL, upsertCounterSQL, insertSeqKeySQL, settleSQL, settleAnySQL,
}

// prepared is the store's hot statements by their SQL text.
type prepared = map[string]*sql.Stmt

// prepare prepares the hot statements (once; a statement that fails to
// prepare, on a database not migrated yet, runs unprepared).
func (s *Store) prepare(ctx context.Context) {
	if s.hot.Load() != nil {
		return
	}
	m := prepared{}
	for _, q := range hot {
		if st, err := s.db.PrepareContext(ctx, q); err == nil {
			m[q] = st
		}
	}
	if !s.hot.CompareAndSwap(nil, &m) {
		closeAll(m)
	}
}

func closeAll(m prepared) {
	for _, st := range m {
		_ = st.Close()
	}
}

// runner runs statements on the database or inside a transaction (tx
// set), prepared when they are in hot.
type runner struct {
	q   querier
	tx  *sql.Tx
	hot *atomic.Pointer[prepared]
}

// stmt returns the prepared statement for query, or nil.
func (r runner) stmt(ctx context.Context, query string) *sql.Stmt {
	m := r.hot.Load()
	if m == nil {
		return nil
	}
	st := (*m)[query]
	if st != nil && r.tx != nil {
		return r.tx.StmtContext(ctx, st)
	}
	return st
}

func (r runner) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := r.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return r.q.ExecContext(ctx, query, args...)
}

func (r runner) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.q.QueryContext(ctx, query, args...)
}

func (r runner) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return r.q.QueryRowContext(ctx, query, args...)
}

// read runs statements on the database, outside any transaction.
func (s *Store) read() runner { return runner{q: s.db, hot: &s.hot} }
