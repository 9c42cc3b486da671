// Package audit holds the invariant checks `allot audit` runs, as SQL that
// both stores execute, so both are judged by the same rules. Each query
// returns the rows that break its invariant; an empty result is a pass.
package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/allot/allot"
)

// QueryFunc runs a query and returns its rows.
type QueryFunc func(ctx context.Context, query string, args ...any) ([][]any, error)

// Check is one invariant.
type Check struct {
	Name string
	// SQL selects the violations. Its parameters are Args, in order: by
	// default $1 is the expiry threshold (now minus the sweeper's bound)
	// and $2 the bound, where used.
	SQL string
	// Args names the SQL's parameters when they are not the default:
	// "threshold", "bound", "unanswered" (now minus AnswerBound).
	Args []string
	// Columns name the SQL's columns for the report.
	Columns []string
}

// Checks are every invariant allot promises.
var Checks = []Check{
	{
		Name: "pool counters equal the claims",
		SQL: `SELECT p.name, p.held, p.confirmed, CAST(coalesce(c.h, 0) AS BIGINT), CAST(coalesce(c.cf, 0) AS BIGINT) FROM allot_pools p
			LEFT JOIN (SELECT pool, sum(CASE WHEN status = 'held' THEN quantity ELSE 0 END) AS h,
				sum(CASE WHEN status = 'confirmed' THEN quantity ELSE 0 END) AS cf FROM allot_claims GROUP BY pool) c ON c.pool = p.name
			WHERE p.held <> coalesce(c.h, 0) OR p.confirmed <> coalesce(c.cf, 0)`,
		Columns: []string{"pool", "held", "confirmed", "held by claims", "confirmed by claims"},
	},
	{
		Name: "held + confirmed <= capacity",
		SQL: `SELECT p.name, p.capacity, CAST(coalesce(c.n, 0) AS BIGINT) FROM allot_pools p
			LEFT JOIN (SELECT pool, sum(quantity) AS n FROM allot_claims WHERE status IN ('held', 'confirmed') GROUP BY pool) c ON c.pool = p.name
			WHERE p.held + p.confirmed > p.capacity OR coalesce(c.n, 0) > p.capacity`,
		Columns: []string{"pool", "capacity", "held + confirmed by claims"},
	},
	{
		// Both ways: a usage row that disagrees with the claims, and a
		// customer with units but no usage row.
		Name: "customer counters equal the claims (pools with a per-customer limit)",
		SQL: `SELECT pool, customer, held, confirmed, ch, cc FROM (
				SELECT coalesce(u.pool, c.pool) AS pool, coalesce(u.customer, c.customer) AS customer,
					coalesce(u.held, 0) AS held, coalesce(u.confirmed, 0) AS confirmed, coalesce(c.h, 0) AS ch, coalesce(c.cf, 0) AS cc
				FROM (SELECT x.pool, x.customer, x.held, x.confirmed FROM allot_pool_customers x
					JOIN allot_pools p ON p.name = x.pool AND p.per_customer > 0) u
				FULL OUTER JOIN (SELECT y.pool, y.customer,
						CAST(sum(CASE WHEN y.status = 'held' THEN y.quantity ELSE 0 END) AS BIGINT) AS h,
						CAST(sum(CASE WHEN y.status = 'confirmed' THEN y.quantity ELSE 0 END) AS BIGINT) AS cf
					FROM allot_claims y JOIN allot_pools p ON p.name = y.pool AND p.per_customer > 0
					WHERE y.status IN ('held', 'confirmed') GROUP BY y.pool, y.customer) c
				ON c.pool = u.pool AND c.customer = u.customer) t
			WHERE held <> ch OR confirmed <> cc`,
		Columns: []string{"pool", "customer", "held", "confirmed", "held by claims", "confirmed by claims"},
	},
	{
		Name: "no customer over the per-customer limit",
		SQL: `SELECT c.pool, c.customer, CAST(sum(c.quantity) AS BIGINT), max(p.per_customer) FROM allot_claims c JOIN allot_pools p ON p.name = c.pool
			WHERE c.status IN ('held', 'confirmed') AND p.per_customer > 0
			GROUP BY c.pool, c.customer HAVING sum(c.quantity) > max(p.per_customer)`,
		Columns: []string{"pool", "customer", "units", "limit"},
	},
	{
		// A hold is a violation when it is past expiry by more than the
		// bound AND a sweep ran after it expired. With every server
		// stopped no sweeper runs, and such holds are not a miss (reads
		// count them as expired anyway).
		Name: "no hold past expiry by more than the sweeper's bound",
		SQL: `SELECT id, pool, customer, quantity FROM allot_claims
			WHERE status = 'held' AND expires_at < $1 AND expires_at + $2 < (SELECT max(swept_at) FROM allot_sweeps)`,
		Columns: []string{"claim", "pool", "customer", "quantity"},
	},
	{
		Name: "no sequence number taken twice",
		SQL: `SELECT sequence, period, first, last, prev_last FROM (
				SELECT sequence, period, first, last, max(last) OVER (PARTITION BY sequence, period ORDER BY first, last
					ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_last
				FROM allot_sequence_ledger WHERE kind IN ('issued', 'leased', 'reserved')) t
			WHERE first <= prev_last`,
		Columns: []string{"sequence", "period", "first", "last", "overlaps up to"},
	},
	{
		Name: "every number up to each counter is explained by the ledger (no unexplained gap)",
		SQL: `SELECT c.sequence, c.period, s.start, c.last, CAST(coalesce(t.n, 0) AS BIGINT), t.lo, t.hi FROM allot_sequence_counters c
			JOIN allot_sequences s ON s.name = c.sequence
			LEFT JOIN (SELECT sequence, period, sum(last - first + 1) AS n, min(first) AS lo, max(last) AS hi
				FROM allot_sequence_ledger WHERE kind IN ('issued', 'leased', 'reserved') GROUP BY sequence, period) t
				ON t.sequence = c.sequence AND t.period = c.period
			WHERE coalesce(t.n, 0) <> c.last - s.start + 1 OR (coalesce(t.n, 0) > 0 AND (t.lo <> s.start OR t.hi <> c.last))`,
		Columns: []string{"sequence", "period", "start", "counter", "numbers in ledger", "lowest", "highest"},
	},
	{
		Name: "voids lie in taken ranges and match the counters",
		SQL: `SELECT c.sequence, c.period, c.voided, CAST(coalesce(v.n, 0) AS BIGINT), v.lo, v.hi, c.last FROM allot_sequence_counters c
			JOIN allot_sequences s ON s.name = c.sequence
			LEFT JOIN (SELECT sequence, period, sum(last - first + 1) AS n, min(first) AS lo, max(last) AS hi
				FROM allot_sequence_ledger WHERE kind = 'voided' GROUP BY sequence, period) v
				ON v.sequence = c.sequence AND v.period = c.period
			WHERE c.voided <> coalesce(v.n, 0) OR v.lo < s.start OR v.hi > c.last`,
		Columns: []string{"sequence", "period", "voided", "numbers voided in ledger", "lowest", "highest", "counter"},
	},
	{
		// Reserved numbers awaiting confirmation: each reserved entry's
		// numbers, less those confirmed and those voided (confirms and
		// voids never overlap their own kind, so the numbers both
		// confirmed and voided are added back once).
		Name: "reserved counters equal the ledger (two-phase numbers neither confirmed nor voided)",
		SQL: `SELECT c.sequence, c.period, c.reserved, CAST(coalesce(r.n, 0) AS BIGINT) FROM allot_sequence_counters c
			LEFT JOIN (SELECT l.sequence, l.period, sum((l.last - l.first + 1)
					- coalesce((SELECT sum(least(x.last, l.last) - greatest(x.first, l.first) + 1) FROM allot_sequence_ledger x
						WHERE x.sequence = l.sequence AND x.period = l.period AND x.kind = 'confirmed' AND x.first <= l.last AND x.last >= l.first), 0)
					- coalesce((SELECT sum(least(v.last, l.last) - greatest(v.first, l.first) + 1) FROM allot_sequence_ledger v
						WHERE v.sequence = l.sequence AND v.period = l.period AND v.kind = 'voided' AND v.first <= l.last AND v.last >= l.first), 0)
					+ coalesce((SELECT sum(least(v.last, x.last, l.last) - greatest(v.first, x.first, l.first) + 1)
						FROM allot_sequence_ledger v JOIN allot_sequence_ledger x ON x.sequence = v.sequence AND x.period = v.period
							AND x.kind = 'confirmed' AND x.first <= v.last AND x.last >= v.first
						WHERE v.sequence = l.sequence AND v.period = l.period AND v.kind = 'voided'
							AND least(v.last, x.last, l.last) >= greatest(v.first, x.first, l.first)), 0)) AS n
				FROM allot_sequence_ledger l WHERE l.kind = 'reserved' GROUP BY l.sequence, l.period) r
				ON r.sequence = c.sequence AND r.period = c.period
			WHERE c.reserved <> coalesce(r.n, 0)`,
		Columns: []string{"sequence", "period", "reserved", "reserved by the ledger"},
	},
	{
		// A reservation past its deadline is a violation only if servers
		// kept running after it (and should have voided it).
		Name: "no reserved number past its deadline by more than the sweeper's bound",
		SQL: `SELECT sequence, period, first, last, confirm_by FROM allot_sequence_ledger
			WHERE kind = 'reserved' AND pending AND confirm_by < $1 AND confirm_by + $2 < (SELECT max(seen_at) FROM allot_servers)`,
		Columns: []string{"sequence", "period", "first", "last", "confirm by"},
	},
	{
		// Gapless numbers are committed before the answer is sent; the
		// server settles them once every answer of the group commit was
		// delivered. A server that died in between (kill -9, a crash)
		// leaves them pending: nobody knows whether the caller got them.
		Name: "every gapless number issued was answered (numbers a server committed and may not have answered: confirm them with `allot seq confirm` if a document has them, void them otherwise)",
		SQL: `SELECT l.sequence, l.period, l.first, l.last, l.owner FROM allot_sequence_ledger l
			JOIN allot_sequences s ON s.name = l.sequence AND s.mode = 'gapless'
			WHERE l.kind = 'issued' AND l.pending AND l.created_at < $1`,
		Args:    []string{"unanswered"},
		Columns: []string{"sequence", "period", "first", "last", "server"},
	},
}

// maxShown caps the violations listed in a check's detail.
const maxShown = 5

// Run runs every check. threshold is now minus allot.SweepBound, bound is
// allot.SweepBound and unanswered is now minus AnswerBound, each encoded
// as the store stores times.
func Run(ctx context.Context, threshold, bound, unanswered any, query QueryFunc) ([]allot.AuditCheck, error) {
	out := make([]allot.AuditCheck, 0, len(Checks))
	for _, c := range Checks {
		var args []any
		switch {
		case c.Args != nil:
			named := map[string]any{"threshold": threshold, "bound": bound, "unanswered": unanswered}
			for _, a := range c.Args {
				args = append(args, named[a])
			}
		default:
			if strings.Contains(c.SQL, "$1") {
				args = append(args, threshold)
			}
			if strings.Contains(c.SQL, "$2") {
				args = append(args, bound)
			}
		}
		rows, err := query(ctx, c.SQL, args...)
		if err != nil {
			return nil, fmt.Errorf("audit %q: %w", c.Name, err)
		}
		ac := allot.AuditCheck{Name: c.Name, OK: len(rows) == 0, Detail: "ok"}
		if len(rows) > 0 {
			var b strings.Builder
			fmt.Fprintf(&b, "%d violation(s)", len(rows))
			for i, r := range rows {
				if i == maxShown {
					fmt.Fprintf(&b, "; …")
					break
				}
				b.WriteString("; ")
				for j, v := range r {
					if j > 0 {
						b.WriteString(", ")
					}
					fmt.Fprintf(&b, "%s=%v", c.Columns[j], v)
				}
			}
			ac.Detail = b.String()
		}
		out = append(out, ac)
	}
	return out, nil
}

// Threshold is the expiry threshold of an audit at now.
func Threshold(now time.Time) time.Time { return now.Add(-allot.SweepBound) }

// AnswerBound is how long after its commit an issued gapless number may
// stay unanswered before the audit reports it: far longer than a server
// takes to deliver an answer and settle it.
const AnswerBound = time.Minute

// Unanswered is the unanswered threshold of an audit at now.
func Unanswered(now time.Time) time.Time { return now.Add(-AnswerBound) }
