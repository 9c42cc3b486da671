// Package allot hands out scarce things exactly once, fast, and never loses
// track of them: sequence numbers (licence plates, policy numbers in a
// reserved range, gapless invoice numbers) and units of finite pools
// (tickets, seats) with holds, confirmation, expiry and per-customer limits.
//
// This root package is the domain: the types (Sequence, Pool, Claim, …),
// the errors every layer shares (ErrExhausted, ErrSoldOut, … and typed
// errors that unwrap to them), the Store seam that the sqlite and postgres
// packages implement, and the Service that serves requests on top of a
// Store.
//
// # What is guaranteed
//
// The Store is the single source of truth, and every guarantee is enforced
// by the database inside one transaction, most of them as schema
// constraints and triggers, so any number of Services, in one process or
// many, may share one database:
//
//   - no sequence number is taken twice, and none outside [start, max];
//   - a gapless sequence has no unexplained gap, even across crashes: every
//     number up to the last one taken went to exactly one request or was
//     voided with a reason; a request answered with an error keeps none
//     (its numbers are handed back to the counter, or voided with the
//     reason); with two-phase numbers (confirm_within) every number is
//     confirmed by its caller or voided;
//   - in a cached sequence every number taken is in a ledger range (issued,
//     leased or reserved), so a crash's gap is explained by the ledger; a
//     lease takes at most 1/LeaseFraction of what its period has left (and
//     a server holds at most two such in a period), and
//     its unused rest goes back to the counter when nothing was taken after
//     it (at a graceful stop, after sitting idle);
//   - what the figures and statuses say comes from the database alone, the
//     same on every server: a number in a lease of a server that has not
//     said what it handed out reads as leased, not issued;
//   - the database itself refuses a counter that moves back over numbers the
//     ledger holds, a ledger entry that is deleted or rewritten, a CHECK or
//     trigger violated by any write;
//   - held + confirmed never exceeds a pool's capacity, no customer passes
//     the per-customer limit, and the counters always equal the claims;
//   - an Idempotency-Key is stored in the same transaction as the outcome
//     it names.
//
// # How it is fast
//
// Concurrent requests for one sequence period or one pool are batched into
// one transaction (group commit, package batch): on PostgreSQL a batch is
// one statement, one round trip. Cached sequences lease blocks and serve
// them from memory with one mutex operation per request, fetching the next
// lease before the current one runs out. A sold-out pool rejects claims from
// memory until units come back on any server.
//
// # What is not guaranteed
//
// Cached sequences may leave gaps after a crash (explained by the ledger,
// never reissued), and do not promise that numbers rise in request order
// across servers. Without an Idempotency-Key or two-phase numbers, a
// gapless number whose answer is lost after it was written (a dropped
// connection, a kill between commit and answer) is lost to its caller; the
// audit reports those the server could not confirm as answered. What a
// server owes the ledger after the fact (settles, give-backs, lost commits
// to look up) is kept in memory: a crash leaves those entries pending,
// which reads truthfully as leased or unanswered. A Service trusts its
// Config.Now clock for holds, dates and deadlines; servers sharing a
// database should keep their clocks in sync.
//
// # Where a change goes
//
// One package per technology, the domain in this one:
//
//   - this package: the types and their validation (sequence.go, pool.go,
//     text.go), the rules as pure functions both stores run (plan.go for
//     sequences, poolplan.go for claims and transitions, ledgertx.go for
//     the ledger's transactions), the seams (store.go: Store, PoolStore,
//     AdminStore, Notifier; admission.go: Admission; observe.go:
//     Observer), and the Service: service.go holds Config, New, Close and
//     the background loops, sequences.go and cached.go the sequence
//     operations, pools.go the pool operations, idempotency.go the keys,
//     ledger.go and ledgerwork.go what a server owes the ledger, health.go
//     the store's health report, restore.go the restore rules;
//   - sqlite and postgres: one Store each, a file per feature like this
//     package (sequences.go, pools.go, idempotency.go, ledger.go,
//     admin.go), their numbered migrations (a shipped migration is never
//     edited: add one, and pin its checksum in internal/migrate), and a
//     schema.sql generated from them by a test; a rule belongs in the Go
//     plan, and in PL/pgSQL only where PostgreSQL must decide a batch in
//     one statement, with the differential test in internal/storetest
//     checking the two agree;
//   - internal/storetest: the conformance suite every store runs; a new
//     Store method gets its test there, not in one store's package;
//   - batch: group commit; format: ID templates; wire: the HTTP contract
//     shared by httpapi and client (problem codes); metrics: Prometheus;
//     httpapi: the HTTP server; client: the Go client; cmd/allot: the CLI;
//     internal/bench: the load generator and baselines of allot bench.
package allot
