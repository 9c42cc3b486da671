package allot

import (
	"context"
	"time"

	"github.com/allot/allot/batch"
)

// Turn is a group commit's place in its key's pipeline (see package
// batch): a Store that can tell when it holds the lock that orders the
// key's writes calls Locked then, so the next batch may start and queue
// behind it, and then calls Ready before it commits anything, rolling back
// and returning Ready's error (batch.ErrPrevious: the batch before failed,
// or its undo must run first) if there is one; once it called Locked it
// must not let that lock go and take it again in the same call unless
// nothing else can take it in between. A Store that never calls Locked
// may ignore the Turn: the next batch of the key starts only once this one
// has been dealt with. A nil Turn means no pipeline.
type Turn = batch.Turn

// Store is the storage seam. A Store is the single source of truth: every
// guarantee allot makes (no number issued twice, never past max, gapless
// means gapless) is enforced by the Store inside one transaction, so any
// number of allot processes may share one database.
//
// Implementations live in one package per database (sqlite, postgres) and
// all pass the same conformance suite (internal/storetest). They translate
// driver errors to the sentinels in this package at their boundary.
type Store interface {
	// Migrate applies the embedded, versioned migrations that are not yet
	// applied. It is safe to run again and from several processes at once.
	Migrate(ctx context.Context) error
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error

	// SequenceCreate stores a new, already validated sequence. It returns
	// ErrAlreadyExists if the name is taken, and an *OverlapError if the
	// sequence could render an ID another sequence renders (checked
	// against every sequence inside the same transaction, so two creates
	// can't race past it) unless seq.AllowOverlap is set.
	SequenceCreate(ctx context.Context, seq *Sequence) (*Sequence, error)
	// SequenceGet returns one sequence or ErrNotFound.
	SequenceGet(ctx context.Context, name string) (*Sequence, error)
	// SequenceList returns every sequence, ordered by name.
	SequenceList(ctx context.Context) ([]*Sequence, error)
	// SequenceUpdate changes the mutable settings of a sequence. Max may
	// not go below the highest number already taken in any period, nor
	// make the sequence overlap another (*OverlapError) unless it allows
	// overlaps.
	SequenceUpdate(ctx context.Context, params SequenceUpdateParams) (*Sequence, error)
	// SequenceCounterGet returns the counter of one period with its
	// figures. A period that was never used returns a counter whose Last
	// is the sequence's start-1.
	SequenceCounterGet(ctx context.Context, name, period string) (*SequenceCounter, error)

	// SequenceAdvance takes numbers for a batch of requests in ONE
	// transaction (group commit), as PlanAdvance decides: requests are
	// served in order, each a contiguous range following the previous
	// one; a request that does not fit gets an *ExhaustedError in its
	// result and takes nothing. Ranges, ledger rows and idempotency keys
	// commit together or not at all. An error return means nothing was
	// committed, except an error wrapping ErrUnavailable, after which the
	// batch may or may not have committed (LedgerReader.BatchEntries finds out).
	SequenceAdvance(ctx context.Context, params SequenceAdvanceParams) ([]SequenceAdvanceResult, error)
	// SequenceSettle marks ledger entries as no longer pending: issued
	// numbers whose answers were sent, leases whose numbers were all
	// handed out.
	SequenceSettle(ctx context.Context, ids []int64) error
	// SequenceLedgerTx runs fn in one write transaction (run again,
	// whole, when the store reports a conflict), lending it the ledger
	// operations: voiding, giving back, confirming, expiring reservations
	// and closing periods run in it, as the root package writes them once
	// for every store. Its error comes back as the root package's errors
	// (what names the work).
	SequenceLedgerTx(ctx context.Context, what string, fn func(LedgerTx) error) error
	// SequenceLedgerRead runs fn with the ledger lookups, outside a
	// transaction; its error is translated as SequenceLedgerTx's.
	SequenceLedgerRead(ctx context.Context, what string, fn func(LedgerReader) error) error
	// SequenceLedger lists ledger entries of a sequence in commit order,
	// after the cursor AfterID.
	SequenceLedger(ctx context.Context, params SequenceLedgerParams) ([]LedgerEntry, error)

	// IdempotencyGet returns a stored idempotency record or ErrNotFound.
	IdempotencyGet(ctx context.Context, scope, key string) (*IdempotencyRecord, error)
	// IdempotencyPurge deletes idempotency records created before the given time.
	IdempotencyPurge(ctx context.Context, before time.Time) (int64, error)

	// ServerStart records that the server owner started.
	ServerStart(ctx context.Context, owner string) error
	// ServerSeen records that the server owner is alive, at now.
	ServerSeen(ctx context.Context, owner string) error
	// ServerStop records that the server owner stopped gracefully, having
	// handed back or voided the unused rest of its leases: the rest of
	// its leases is then known to be issued.
	ServerStop(ctx context.Context, owner string) error

	PoolStore
}

// SequenceUpdateParams are the inputs of Store.SequenceUpdate. Nil fields
// are left as they are.
type SequenceUpdateParams struct {
	Name          string
	Max           *int64
	WarnAt        *float64
	PeriodsBack   *int
	PeriodsAhead  *int
	ConfirmWithin *Duration
	// Label replaces the saved label settings; a pointer to nil removes
	// them.
	Label **LabelSpec
}

// SequenceCounter is the state of one period of a sequence.
type SequenceCounter struct {
	// Period is the reset period ("" for a sequence that never resets).
	Period string
	// Last is the highest number taken (issued, leased or reserved),
	// start-1 when none has been. Numbers start..Last are taken or voided.
	Last int64
	// Voided is how many numbers of the period have been voided.
	Voided int64
	// Leased is how many numbers are in pending leases (of servers that
	// have not said what they handed out), not counting voided ones.
	Leased int64
	// Reserved is how many reserved numbers are neither confirmed nor voided.
	Reserved int64
	// Closed is when the period was closed, nil while it is open.
	Closed *time.Time
}

// SequenceAdvanceParams are the inputs of Store.SequenceAdvance.
type SequenceAdvanceParams struct {
	// Sequence names the sequence.
	Sequence string
	// Period is the reset period the numbers belong to.
	Period string
	// Kind is LedgerIssued for numbers handed straight to callers, or
	// LedgerLeased for a block the server will serve from memory.
	Kind LedgerKind
	// Owner identifies the process taking the numbers, for the ledger.
	Owner string
	// Batch identifies the group commit in the ledger entries it writes,
	// so a commit whose outcome was lost can be found (0 = none).
	Batch int64
	// Pending writes issued entries as pending: the server will settle
	// them once their answers were sent. Leased and reserved entries are
	// always pending.
	Pending bool
	// Requests are served in order.
	Requests []SequenceAdvanceRequest
	// Turn, if set, is the batch's place in the sequence's pipeline.
	Turn Turn
}

// SequenceAdvanceRequest is one caller's share of a batch.
type SequenceAdvanceRequest struct {
	// Count is how many contiguous numbers the caller wants (>= 1). For
	// a lease it is the size wanted; LeaseCap may grant fewer.
	Count int64
	// Idempotency, when set, is stored in the same transaction as the numbers.
	Idempotency *IdempotencyParams
	// DateKey is the document date the numbers render (format's DateKey
	// as text) when the format shows more of the date than the period
	// fixes, "" otherwise.
	DateKey string
	// Reference is the caller's document id, kept with the numbers.
	Reference string
	// ConfirmBy, when set, makes the numbers reserved until that time.
	ConfirmBy *time.Time
}

// SequenceAdvanceResult is one caller's outcome of a batch.
type SequenceAdvanceResult struct {
	// First and Last bound the numbers taken (inclusive) when Err and
	// Replayed are nil.
	First, Last int64
	// Err is *ExhaustedError, *PeriodClosedError, ErrIdempotencyMismatch
	// or ErrIdempotencyInFlight for this request only.
	Err error
	// Replayed is set when the idempotency key had already been used with
	// the same request: the caller answers with the stored outcome and
	// nothing new was taken.
	Replayed *IdempotencyRecord
	// CounterLast and Max are the period's counter and max after the batch.
	CounterLast, Max int64
	// Row is the id of the ledger entry holding this request's numbers.
	Row int64
	// Rows are the ids of the ledger entries the batch wrote (shared by
	// every result of the batch).
	Rows []int64

	answer *answerTracker // set by the Service for pending entries
}

// SequenceVoidParams are the inputs of a void in the ledger.
type SequenceVoidParams struct {
	Sequence string
	Period   string
	First    int64
	Last     int64
	Reason   string
	// Owner is the server voiding (it may void its own leases).
	Owner string
	// Force voids even numbers leased to a server that has not stopped,
	// for a server known to have crashed.
	Force bool
}

// SequenceReturnParams are the inputs of a give-back to the ledger.
type SequenceReturnParams struct {
	Sequence string
	// Owner is the server giving the numbers back.
	Owner string
	// Reason says why, e.g. "unused rest of a lease at shutdown" or
	// ReasonCancelled. Voided numbers get it as
	// their reason; numbers handed back get it with ": handed back to
	// the counter".
	Reason string
	// Periods lists, per period, the spans to give back and the leases to
	// settle.
	Periods []PeriodReturn
}

// ReasonCancelled is the reason of numbers given back because the request
// that took them was cancelled, or timed out, before its answer was
// written.
const ReasonCancelled = "request cancelled before the answer"

// PeriodReturn is one period's share of a SequenceReturnParams.
type PeriodReturn struct {
	Period string
	Spans  []ReturnSpan
	// Settle lists this owner's entries whose every number is now
	// accounted for (handed out, or given back here).
	Settle []int64
}

// ReturnSpan is numbers to give back and the ledger entry they were taken
// in. A span that no longer lies in that entry (it was given back
// already: the give-back is a retry) is skipped, so a give-back can be
// retried safely.
type ReturnSpan struct {
	Span
	Entry int64
}

// SequenceConfirmParams are the inputs of a confirmation in the ledger.
type SequenceConfirmParams struct {
	Sequence, Period string
	Span
	Reference string
	Owner     string
	Now       time.Time
}

// SequencePeriodCloseParams are the inputs of closing a period.
type SequencePeriodCloseParams struct {
	Sequence, Period string
	// Reopen opens a closed period again instead.
	Reopen bool
	// Owner is the server asking (its own leases must be given back first).
	Owner string
}

// SequenceLedgerParams are the inputs of Store.SequenceLedger.
type SequenceLedgerParams struct {
	Sequence string
	// AfterID is the cursor: entries with a larger ID are returned.
	AfterID int64
	// Limit caps the number of entries (1..1000).
	Limit int
}

// PoolStore is the pool half of the storage seam. Every guarantee (held +
// confirmed <= capacity, the per-customer limit, counters equal to the
// claims) is a constraint or trigger in the schema, so it holds whatever
// the application does; the store's code only decides who gets units.
type PoolStore interface {
	// PoolCreate stores a new, validated pool; ErrAlreadyExists if taken.
	PoolCreate(ctx context.Context, p *Pool) (*PoolState, error)
	// PoolGet returns a pool with its figures at now: holds past expiry
	// count as expired even before the sweeper writes them.
	PoolGet(ctx context.Context, name string, now time.Time) (*PoolState, error)
	// PoolList returns every pool, ordered by name, with figures at now.
	PoolList(ctx context.Context, now time.Time) ([]*PoolState, error)
	// PoolUpdate changes a pool. Capacity may not go below held +
	// confirmed, nor per_customer below any customer's usage
	// (*CapacityError / ErrInvalidState).
	PoolUpdate(ctx context.Context, name string, p PoolPatchParams, now time.Time) (*PoolState, error)
	// PoolClaim serves a batch of claims on one pool in one transaction,
	// in arrival order, holding the pool row lock for one round trip.
	PoolClaim(ctx context.Context, p PoolClaimParams) (*PoolClaimResult, error)
	// ClaimTransition confirms, releases or extends one claim with a
	// compare-and-set on its status.
	ClaimTransition(ctx context.Context, p ClaimTransitionStoreParams) (*Claim, error)
	// ClaimConfirmBatch confirms many live holds in one statement (group
	// commit for confirms). It returns, per request, the confirmed claim, or
	// nil when the claim could not be confirmed that simply (unknown,
	// expired, already terminal, or the same claim earlier in the batch):
	// the caller then asks ClaimTransition for the exact outcome.
	ClaimConfirmBatch(ctx context.Context, now time.Time, reqs []ClaimConfirmRequest) ([]*Claim, error)
	// ClaimGet returns a claim as stored (callers apply Effective).
	ClaimGet(ctx context.Context, id string) (*Claim, error)
	// ClaimList lists a pool's claims in creation order after a cursor.
	ClaimList(ctx context.Context, p ClaimListParams, afterSeq int64, now time.Time) ([]*Claim, error)
	// PoolExpire marks holds past expiry at now as expired, returning
	// their units, records that owner swept at now, and returns the pools
	// that got units back.
	PoolExpire(ctx context.Context, now time.Time, owner string) ([]string, error)
	// Audit checks every invariant from the database and reports each check.
	Audit(ctx context.Context, now time.Time) ([]AuditCheck, error)
}

// Notifier is implemented by stores that tell every process sharing the
// database about changes as they commit: PostgreSQL with LISTEN/NOTIFY,
// SQLite in-process (every Service on one *sqlite.Store). Listen calls fn
// with each notice published on one of topics, in commit order, until ctx
// ends or notices may have been lost (the connection dropped, or fn fell
// too far behind); it then returns the error, and the caller, which must
// assume it missed notices, listens again.
type Notifier interface {
	Listen(ctx context.Context, topics []string, fn func(topic, payload string)) error
}

// TopicPoolReturned is the notice of a pool that got units back (a
// release, a cancel, an expiry, a capacity raise, a reopen); the payload is
// the pool's name.
const TopicPoolReturned = "allot_pool"

// PoolClaimParams are the inputs of Store.PoolClaim.
type PoolClaimParams struct {
	Pool     string
	Now      time.Time
	Requests []PoolClaimRequest
	// Turn, if set, is the batch's place in the pool's pipeline.
	Turn Turn
}

// PoolClaimRequest is one claim of a batch.
type PoolClaimRequest struct {
	// ID is the new claim's id, chosen by the caller.
	ID          string
	Customer    string
	Quantity    int64
	TTL         time.Duration
	Idempotency *IdempotencyParams
}

// PoolClaimResult is a batch's outcome.
type PoolClaimResult struct {
	// Results has one entry per request: Claim, or Err (*SoldOutError,
	// *CustomerLimitError, ErrPoolClosed, ErrIdempotencyMismatch).
	Results []PoolClaimOutcome
	// Available is the pool's free units after the batch.
	Available int64
}

// PoolClaimOutcome is one request's outcome.
type PoolClaimOutcome struct {
	Claim    *Claim
	Replayed bool
	Err      error
}

// ClaimConfirmRequest is one confirm of a batch.
type ClaimConfirmRequest struct {
	ID        string
	Reference string
}

// ClaimTransitionStoreParams are the inputs of Store.ClaimTransition.
type ClaimTransitionStoreParams struct {
	ID     string
	Action ClaimAction
	Now    time.Time
	// Reference is a confirm's reference, or a cancel's reason.
	Reference   string
	TTL         time.Duration
	Idempotency *IdempotencyParams
}

// AuditCheck is one invariant checked by an audit.
type AuditCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// AdminStore is what `allot audit`, `allot backup` and `allot restore`
// need of a store beyond Store. Both stores implement it.
type AdminStore interface {
	Store
	// SchemaVersion returns the schema version the database is at and
	// the one this binary's migrations reach.
	SchemaVersion(ctx context.Context) (have, want int, err error)
	// SequenceCounters returns every period's counter of a sequence.
	SequenceCounters(ctx context.Context, name string) ([]SequenceCounter, error)
	// SequenceActivity returns how many numbers of a sequence (all
	// periods) ledger entries created in [from, to) took, leaving out a
	// restore's own skips (RestoreOwner).
	SequenceActivity(ctx context.Context, name string, from, to time.Time) (int64, error)
	// LastActivity returns when the database was last written to (the
	// newest ledger entry other than a restore's own skips, claim,
	// sequence or pool change, or server heartbeat; zero for an empty
	// database).
	LastActivity(ctx context.Context) (time.Time, error)
	// SequenceSkip moves a period's counter past Count numbers (fewer if
	// max comes first) and voids them with Reason, in one transaction;
	// a period never used gets its counter.
	SequenceSkip(ctx context.Context, p SequenceSkipParams) (*SequenceCounter, error)
	// ServersForget records that no server of the database is running
	// (after a restore none is): their leases stay pending, read as held
	// by servers that stopped without saying what they handed out.
	ServersForget(ctx context.Context) error
	// ServersRunning lists the servers that were running as of asOf: not
	// stopped, and seen within ServerSilentAfter before it.
	ServersRunning(ctx context.Context, asOf time.Time) ([]ServerSeen, error)
}

// ServerSeen is a server and when it last said it was alive.
type ServerSeen struct {
	Owner  string
	SeenAt time.Time
}

// SequenceSkipParams are the inputs of AdminStore.SequenceSkip.
type SequenceSkipParams struct {
	Sequence, Period string
	Count            int64
	Reason, Owner    string
}
