package allot

import (
	"fmt"
	"math"
	"time"
)

// CounterState is a period's counter as a store reads it under its lock.
type CounterState struct {
	// Last is the highest number taken, start-1 for a fresh period.
	Last int64
	// Max is the sequence's max.
	Max int64
	// Closed is true for a period closed to new numbers.
	Closed bool
}

// LeaseFraction bounds a lease by what is left: a lease takes at most
// 1/LeaseFraction of the numbers remaining in its period (rounded up),
// so a crash, which loses what a server had leased and not handed out, can
// never burn a small range. See LeaseCap.
const LeaseFraction = 32

// LeaseCap is the most numbers one lease may take when remaining numbers
// are left before max: one thirty-second of them, rounded up, so at least
// one while any is left.
func LeaseCap(remaining int64) int64 {
	if remaining <= 0 {
		return 0
	}
	return (remaining-1)/LeaseFraction + 1
}

// AdvancePlan is the outcome of planning a batch inside a store's
// transaction: what each request gets, where the counter ends, and what to
// write.
type AdvancePlan struct {
	// Results has one entry per request, in order.
	Results []SequenceAdvanceResult
	// NewLast is the highest number taken after the batch.
	NewLast int64
	// Keys are the idempotency records to insert with the numbers.
	Keys []IdempotencyRecord
	// Rows are the ledger entries to insert, in order.
	Rows []LedgerRow
	// RowOf gives, per request, the index in Rows of the entry holding
	// its numbers (-1 when it took none).
	RowOf []int
}

// LedgerRow is a taken entry a batch writes.
type LedgerRow struct {
	Kind LedgerKind
	Span
	DateKey   string
	Reference string
	ConfirmBy *time.Time
	Pending   bool
	Reason    string
}

// PlanAdvance decides, for stores, how a batch is served. c is read from
// the locked counter row (for a period never used: Last = start-1);
// existing holds the idempotency records already stored for keys in the
// batch, by key. It is pure, so both stores share one definition of the
// rules:
//
//   - requests are served in arrival order, each a contiguous range right
//     after the previous one;
//   - a closed period serves nobody (*PeriodClosedError);
//   - a request that does not fit below max takes nothing and gets an
//     *ExhaustedError saying how many numbers remain;
//   - a lease takes at most LeaseCap of what remains (so it may be
//     shorter than asked);
//   - a request whose key is already stored takes nothing: it is replayed
//     if the request matches, or fails with ErrIdempotencyMismatch; a key
//     used twice in one batch fails the second use with
//     ErrIdempotencyInFlight.
func PlanAdvance(p SequenceAdvanceParams, c CounterState, existing map[string]*IdempotencyRecord) AdvancePlan {
	plan := AdvancePlan{Results: make([]SequenceAdvanceResult, len(p.Requests)), NewLast: c.Last}
	seen := make(map[string]bool)
	for i, r := range p.Requests {
		res := &plan.Results[i]
		if k := r.Idempotency; k != nil {
			if rec := existing[k.Key]; rec != nil {
				if rec.RequestHash == k.RequestHash {
					res.Replayed = rec
				} else {
					res.Err = KeyMismatch(k.Key)
				}
				continue
			}
			if seen[k.Key] {
				res.Err = KeyTwiceInBatch(k.Key)
				continue
			}
			seen[k.Key] = true
		}
		if c.Closed {
			res.Err = &PeriodClosedError{Sequence: p.Sequence, Period: p.Period}
			continue
		}
		remaining := Remaining(plan.NewLast, c.Max)
		count := r.Count
		if p.Kind == LedgerLeased {
			count = min(count, LeaseCap(remaining))
		}
		if r.Count < 1 {
			res.Err = Invalidf("count", "must be at least 1, got %d", r.Count)
			continue
		}
		if count < 1 || count > remaining {
			res.Err = &ExhaustedError{Sequence: p.Sequence, Period: p.Period, Requested: r.Count, Remaining: remaining}
			continue
		}
		res.First = plan.NewLast + 1
		res.Last = plan.NewLast + count
		plan.NewLast = res.Last
		if k := r.Idempotency; k != nil {
			plan.Keys = append(plan.Keys, IdempotencyRecord{
				Scope: k.Scope, Key: k.Key, RequestHash: k.RequestHash,
				Period: p.Period, Date: k.Date, First: res.First, Last: res.Last, ConfirmBy: r.ConfirmBy,
			})
		}
	}
	plan.Rows, plan.RowOf = PlanRows(p, plan.Results)
	for i := range plan.Results {
		plan.Results[i].CounterLast, plan.Results[i].Max = plan.NewLast, c.Max
	}
	return plan
}

// PlanRows groups the numbers a batch took into ledger entries: one per
// run of consecutive requests of the same kind, document date and
// deadline, one of its own for every request with a reference, so each
// reference names exactly its numbers, and one for every lease, so each
// server's lease is an entry it can settle. res holds the batch's results
// (requests that took nothing are skipped); rowOf gives each request's
// entry (-1 for none).
func PlanRows(p SequenceAdvanceParams, res []SequenceAdvanceResult) (rows []LedgerRow, rowOf []int) {
	rowOf = make([]int, len(p.Requests))
	n := 0 // requests in the last row
	for i, r := range p.Requests {
		rowOf[i] = -1
		if res[i].Err != nil || res[i].Replayed != nil || res[i].Last < res[i].First {
			continue
		}
		kind := p.Kind
		if r.ConfirmBy != nil {
			kind = LedgerReserved
		}
		if k := len(rows) - 1; k >= 0 && kind != LedgerLeased && r.Reference == "" && rows[k].Reference == "" && rows[k].Kind == kind &&
			rows[k].DateKey == r.DateKey && sameTime(rows[k].ConfirmBy, r.ConfirmBy) && rows[k].Last+1 == res[i].First {
			rows[k].Last = res[i].Last
			n++
			rows[k].Reason = rowReason(kind, n)
			rowOf[i] = k
			continue
		}
		n = 1
		rowOf[i] = len(rows)
		rows = append(rows, LedgerRow{
			Kind: kind, Span: Span{res[i].First, res[i].Last}, DateKey: r.DateKey, Reference: r.Reference,
			ConfirmBy: r.ConfirmBy, Pending: p.Pending || kind != LedgerIssued, Reason: rowReason(kind, 1),
		})
	}
	return rows, rowOf
}

// SetRows fills each result's Row and Rows from the ids the store gave the
// plan's rows (in order).
func SetRows(res []SequenceAdvanceResult, rowOf []int, ids []int64) {
	for i := range res {
		res[i].Rows = ids
		if k := rowOf[i]; k >= 0 && k < len(ids) {
			res[i].Row = ids[k]
		}
	}
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func rowReason(kind LedgerKind, requests int) string {
	switch kind {
	case LedgerLeased:
		return "block leased to a server"
	case LedgerReserved:
		return fmt.Sprintf("reserved for %d request(s)", requests)
	}
	return fmt.Sprintf("issued to %d request(s)", requests)
}

// Remaining is how many numbers are left above last up to max, saturating
// at 2^63-1 (the range [0, 2^63-1] holds one more than an int64 counts).
func Remaining(last, max int64) int64 {
	if last >= max {
		return 0
	}
	r := uint64(max) - uint64(last)
	if r > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(r)
}
