package allot

import (
	"fmt"
	"math"
)

// AdvancePlan is the outcome of planning a batch inside a store's
// transaction: what each request gets and where the counter ends.
type AdvancePlan struct {
	// Results has one entry per request, in order.
	Results []SequenceAdvanceResult
	// First and Last bound every number the batch takes (Last < First when
	// it takes none). They are contiguous because requests that do not fit
	// take nothing.
	First, Last int64
	// NewLast is the highest number taken after the batch.
	NewLast int64
	// Keys are the idempotency records to insert with the numbers.
	Keys []IdempotencyRecord
}

// PlanAdvance decides, for stores, how a batch is served. last (the highest
// number taken so far, start-1 for a fresh period) and max are read from
// the locked counter row and the sequence; existing holds the
// idempotency records already stored for keys in the batch, by key. It is
// pure, so both stores share one definition of the rules:
//
//   - requests are served in arrival order, each a contiguous range right
//     after the previous one;
//   - a request that does not fit below max takes nothing and gets an
//     *ExhaustedError saying how many numbers remain;
//   - a request whose key is already stored takes nothing: it is replayed
//     if the request matches, or fails with ErrIdempotencyMismatch.
func PlanAdvance(p SequenceAdvanceParams, last, max int64, existing map[string]*IdempotencyRecord) AdvancePlan {
	plan := AdvancePlan{Results: make([]SequenceAdvanceResult, len(p.Requests)), First: last + 1, NewLast: last}
	seen := make(map[string]bool)
	for i, r := range p.Requests {
		res := &plan.Results[i]
		if k := r.Idempotency; k != nil {
			if rec := existing[k.Key]; rec != nil {
				if rec.RequestHash == k.RequestHash {
					res.Replayed = rec
				} else {
					res.Err = Errorf(ErrIdempotencyMismatch, "key %q was first used with a different request", k.Key)
				}
				continue
			}
			if seen[k.Key] {
				res.Err = Errorf(ErrIdempotencyInFlight, "key %q is used twice in one batch: send each request with its own key", k.Key)
				continue
			}
			seen[k.Key] = true
		}
		remaining := Remaining(plan.NewLast, max)
		if r.Count < 1 || r.Count > remaining {
			res.Err = &ExhaustedError{Sequence: p.Sequence, Period: p.Period, Requested: r.Count, Remaining: remaining}
			if r.Count < 1 {
				res.Err = Invalidf("count", "must be at least 1, got %d", r.Count)
			}
			continue
		}
		res.First = plan.NewLast + 1
		res.Last = plan.NewLast + r.Count
		plan.NewLast = res.Last
		if k := r.Idempotency; k != nil {
			plan.Keys = append(plan.Keys, IdempotencyRecord{
				Scope: k.Scope, Key: k.Key, RequestHash: k.RequestHash,
				Period: p.Period, Date: k.Date, First: res.First, Last: res.Last,
			})
		}
	}
	plan.Last = plan.NewLast
	return plan
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

// Gaps returns the parts of first..last that the sorted, non-overlapping
// ranges voided do not cover.
func Gaps(first, last int64, voided [][2]int64) [][2]int64 {
	var out [][2]int64
	next := first
	for _, v := range voided {
		if v[1] < next || v[0] > last {
			continue
		}
		if v[0] > next {
			out = append(out, [2]int64{next, v[0] - 1})
		}
		if v[1] >= last {
			return out
		}
		next = v[1] + 1
	}
	return append(out, [2]int64{next, last})
}

// LedgerReason describes a ledger row written by an advance batch.
func LedgerReason(kind LedgerKind, requests int) string {
	if kind == LedgerLeased {
		return "block leased to a server"
	}
	return fmt.Sprintf("issued to %d request(s)", requests)
}
