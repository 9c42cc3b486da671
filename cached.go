package allot

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allot/allot/batch"
)

// Cached mode.
//
// A cached sequence leases ranges of numbers from the store (recorded in the
// ledger as "leased", pending) and hands them out from memory with one
// mutex operation per request. The allocator fetches the next lease when
// less than half a lease is left, so a steady stream of requests never
// waits on the database. Under sustained demand a lease grows to several
// blocks (doubling while leases last less than a second, up to
// Config.LeaseBlocksMax) and shrinks back when demand falls.
//
// A lease never takes more than 1/LeaseFraction of what the period has left
// (PlanAdvance caps it), and the leases this server holds unsettled in one
// period, over all its document dates, never more than twice that (see
// periodBudget; past it, requests go to the store). So a crash, which loses
// what the server had leased and not handed out, costs at most 2/32 of what
// the period had left. A graceful stop, a lease that sat
// idle for Config.LeaseIdle, and one pushed out by Config.LeasesMax give
// back their unused rest: handed back to the counter when nothing was taken
// after it (so those numbers are issued again and no gap remains), voided
// otherwise. A lease whose numbers were all handed out is settled in the
// ledger, so its numbers count as issued on every server.
//
// Requests that don't fit a lease (more than a block, or more than the cap
// allows), requests with an Idempotency-Key or a reference, and two-phase
// requests go straight to the store (group committed, recorded as issued
// or reserved), because the ledger must say exactly what they got.

// exhaustedRecheck is how long an allocator trusts "the store is exhausted"
// before asking again (another process may have raised max).
const exhaustedRecheck = time.Second

// errDirect tells Next to take the numbers from the store directly.
var errDirect = errors.New("allot: request does not fit a lease")

// errRetired tells Next the allocator was given back; use a new one.
var errRetired = errors.New("allot: allocator retired")

type span struct{ first, last int64 }

func (s span) len() int64 { return s.last - s.first + 1 }

type allocKey struct{ period, date string }

// lease is a leased ledger entry. Each of its numbers is in memory (an
// allocator span), out for delivery (taken by a request not yet answered),
// delivered, or given back. It is settled (the server tells the ledger
// that it handed out what it did not give back) once none is in memory or
// out: whoever brings it there first claims the settle.
type lease struct {
	id          int64
	first, last int64
	budget      *periodBudget
	out         atomic.Int64 // numbers taken and not yet delivered or put back
	drained     atomic.Bool  // no span holds any of its numbers (changed under the allocator's mutex)
	settled     atomic.Bool
}

func (l *lease) span() Span { return Span{l.first, l.last} }

// claimSettle reports whether the caller is the one to settle l. Once no
// number of it is in memory or out, nothing can take or put back any, so
// the state is final and exactly one caller wins.
func (l *lease) claimSettle() bool {
	if l.out.Load() != 0 || !l.drained.Load() || !l.settled.CompareAndSwap(false, true) {
		return false
	}
	l.budget.release(l.last - l.first + 1)
	return true
}

// periodBudget bounds what this server holds in unsettled leases of one
// period, over all its allocators of the period (one per document date):
// at most twice LeaseCap of what the period had left at its latest lease
// (the lease in use and the one fetched ahead), so a crash costs at most
// that much of the period.
type periodBudget struct {
	held atomic.Int64
	cap  atomic.Int64 // LeaseCap at the period's latest lease; 0 before the first
}

// reserve takes up to want numbers of the budget for a lease about to be
// fetched and returns how many it took (0: none left). fallback is the
// cap to assume before the period's first lease.
func (b *periodBudget) reserve(want, fallback int64) int64 {
	limit := b.cap.Load()
	if limit == 0 {
		limit = fallback
	}
	limit *= 2
	for {
		h := b.held.Load()
		n := min(want, limit-h)
		if n <= 0 {
			return 0
		}
		if b.held.CompareAndSwap(h, h+n) {
			return n
		}
	}
}

func (b *periodBudget) release(n int64) { b.held.Add(-n) }

// taken is what one take handed out: count numbers from first, lying in
// the leases one and more (a take can cross from one lease into the next
// when their numbers are adjacent), and the period's counter and max as of
// the latest lease (for remaining and warning).
type taken struct {
	first, count     int64
	one              *lease
	more             []*lease
	counterLast, max int64
}

// each calls fn with every lease of t and the part of t in it.
func (t *taken) each(fn func(l *lease, part Span)) {
	sp := Span{t.first, t.first + t.count - 1}
	if t.one != nil {
		fn(t.one, intersect(sp, t.one.span()))
	}
	for _, l := range t.more {
		fn(l, intersect(sp, l.span()))
	}
}

type allocator struct {
	svc     *Service
	key     allocKey
	seq     string
	dateKey string // the ledger date of the numbers (see seqRuntime.dateKey)
	block   int64

	mu          sync.Mutex
	retired     bool // given back: nothing more may be handed out
	spans       []span
	free        int64    // numbers in spans
	leases      []*lease // the leases with numbers in spans
	out         []*lease // leases with none in spans, not yet known settled
	budget      *periodBudget
	fetching    bool
	fetchDone   chan struct{}
	fetchErr    error
	exhaustedAt time.Time // when the store last refused a lease (range used up, or closedErr)
	closedErr   error     // the period was closed at exhaustedAt
	leaseBlocks int64
	lastFetch   time.Time
	lastUsed    int64 // Service.coarseNow at the latest take
	// capHint is what a lease may take now: LeaseCap of what the period
	// had left at the latest lease (of the whole range before the first).
	capHint int64
	// counterLast and max are the period's counter and max as of the
	// latest lease.
	counterLast, max int64
}

// allocatorFor returns the allocator of a period and date, creating it.
// Past Config.LeasesMax allocators, the one used least recently is retired
// (its lease given back in the background).
func (rt *seqRuntime) allocatorFor(s *Service, k allocKey) *allocator {
	if a := rt.last.Load(); a != nil && a.key == k {
		return a
	}
	rt.allocMu.Lock()
	a := rt.allocs[k]
	var evict *allocator
	if a == nil && s.closed.Load() {
		// Shutting down: Close may have given back every allocator
		// already, so none is made (and none pushed out) any more.
		rt.allocMu.Unlock()
		return nil
	}
	if a == nil {
		if len(rt.allocs) >= s.cfg.LeasesMax {
			for _, o := range rt.allocs {
				if evict == nil || o.used() < evict.used() {
					evict = o
				}
			}
			delete(rt.allocs, evict.key)
		}
		// Before the first lease, what is left is at most the whole
		// range, so no lease can take more than its cap.
		a = &allocator{svc: s, key: k, seq: rt.seq.Name, dateKey: k.date, block: rt.seq.BlockSize, leaseBlocks: 1, lastUsed: s.coarseNow(),
			capHint: LeaseCap(rt.seq.Size()), budget: rt.budgetLocked(k.period, s.cfg.LeasesMax)}
		rt.allocs[k] = a
	}
	rt.allocMu.Unlock()
	rt.last.Store(a) // only on a change of period or date, so the hot path never writes it
	if evict != nil {
		giveBack := func() {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
			defer cancel()
			s.report("give back a lease", s.retire(ctx, rt, []*allocator{evict}, "unused rest of a lease, given back for a newer period or date"))
		}
		if !s.goBackground(giveBack) {
			giveBack() // Close began meanwhile and no longer sees this allocator
		}
	}
	return a
}

// budgetLocked returns the lease budget of a period, creating it. Budgets
// nothing holds are forgotten once there are many (a daily sequence fed
// many dates), so memory stays bounded.
func (rt *seqRuntime) budgetLocked(period string, keep int) *periodBudget {
	if b := rt.budgets[period]; b != nil {
		return b
	}
	if len(rt.budgets) >= 4*keep {
		inUse := map[*periodBudget]bool{}
		for _, a := range rt.allocs {
			inUse[a.budget] = true
		}
		for p, b := range rt.budgets {
			if !inUse[b] && b.held.Load() == 0 {
				delete(rt.budgets, p)
			}
		}
	}
	b := &periodBudget{}
	rt.budgets[period] = b
	return b
}

func (a *allocator) used() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastUsed
}

// take hands out count contiguous numbers from memory, waiting for a lease
// only when memory has none that fit. It returns errDirect when the
// request can't be served from a lease and errRetired when the allocator
// was given back. The caller must then call delivered or putBack with
// what it got.
func (a *allocator) take(ctx context.Context, count int64, t *taken) error {
	a.mu.Lock()
	if a.capHint > 0 && count > a.capHint {
		a.mu.Unlock()
		return errDirect
	}
	for {
		if a.retired {
			a.mu.Unlock()
			return errRetired
		}
		for i := range a.spans {
			sp := &a.spans[i]
			if sp.len() >= count {
				*t = taken{first: sp.first, count: count, counterLast: a.counterLast, max: a.max}
				sp.first += count
				a.free -= count
				next := sp.first // the span's next number, if any
				if sp.first > sp.last {
					a.spans = slices.Delete(a.spans, i, i+1)
					next = -1
				}
				a.lastUsed = a.svc.coarseNow()
				a.markTakenLocked(t, next)
				a.maybeFetchLocked()
				a.mu.Unlock()
				return nil
			}
		}
		if !a.exhaustedAt.IsZero() && time.Since(a.exhaustedAt) < exhaustedRecheck {
			err := a.refusedLocked(count)
			a.mu.Unlock()
			return err
		}
		if a.capHint > 0 && count > a.capHint {
			a.mu.Unlock()
			return errDirect // the range got too small for leases this size
		}
		if !a.fetching {
			n := a.budget.reserve(a.leaseSizeLocked(), a.capHint)
			if n < count {
				// This server holds its share of the period in other
				// leases: take these numbers from the store instead.
				a.budget.release(n)
				a.mu.Unlock()
				return errDirect
			}
			a.startFetchLocked(n)
		}
		done := a.fetchDone
		a.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		a.mu.Lock()
		if a.fetchErr != nil && !a.fetching {
			err := a.fetchErr
			a.mu.Unlock()
			return err
		}
	}
}

// refusedLocked is the answer while the store recently refused a lease:
// the range is used up, or the period closed.
func (a *allocator) refusedLocked(count int64) error {
	if a.closedErr != nil {
		return a.closedErr
	}
	return &ExhaustedError{Sequence: a.seq, Period: a.key.period, Requested: count, Remaining: a.totalLocked()}
}

// markTakenLocked counts t's numbers as out for delivery in their leases,
// and drops from a.leases those no span holds any more.
func (a *allocator) markTakenLocked(t *taken, next int64) {
	sp := Span{t.first, t.first + t.count - 1}
	// The common case: the numbers lie in the oldest lease, and the span
	// they came from goes on inside it, so the lease is still in memory.
	if len(a.leases) > 0 {
		if l := a.leases[0]; sp.First >= l.first && next > sp.Last && next <= l.last {
			l.out.Add(t.count)
			t.one = l
			return
		}
	}
	for i := 0; i < len(a.leases); {
		l := a.leases[i]
		part := intersect(sp, l.span())
		if part.Len() <= 0 {
			i++
			continue
		}
		l.out.Add(part.Len())
		if t.one == nil {
			t.one = l
		} else {
			t.more = append(t.more, l)
		}
		if a.spansHoldLocked(l) {
			i++
			continue
		}
		l.drained.Store(true)
		a.leases = slices.Delete(a.leases, i, i+1)
		a.out = append(slices.DeleteFunc(a.out, func(l *lease) bool { return l.settled.Load() }), l)
	}
}

func (a *allocator) spansHoldLocked(l *lease) bool {
	for _, sp := range a.spans {
		if sp.first <= l.last && sp.last >= l.first {
			return true
		}
	}
	return false
}

// delivered records that t's numbers reached their caller, and settles
// the leases that leaves with nothing in memory or out.
func (a *allocator) delivered(t taken) {
	if t.more == nil {
		// The common case, one lease: no closure, no slice.
		if l := t.one; l.out.Add(-t.count) == 0 && l.claimSettle() {
			a.svc.settle(l.id)
		}
		return
	}
	var ids []int64
	t.each(func(l *lease, part Span) {
		l.out.Add(-part.Len())
		if l.claimSettle() {
			ids = append(ids, l.id)
		}
	})
	a.svc.settle(ids...)
}

// putBack returns numbers taken from memory that could not be delivered:
// back to memory while the allocator runs, otherwise to the store (each
// part naming its lease, settled with it when nothing else of it is out).
func (a *allocator) putBack(t taken) {
	a.mu.Lock()
	if !a.retired {
		a.spans = append(a.spans, span{t.first, t.first + t.count - 1})
		a.free += t.count
		slices.SortFunc(a.spans, func(x, y span) int { return cmp.Compare(x.first, y.first) })
		a.spans = mergeAdjacent(a.spans)
		t.each(func(l *lease, part Span) {
			if l.drained.Load() {
				l.drained.Store(false) // before out drops, so no one settles it meanwhile
				a.leases = append(a.leases, l)
				a.out = slices.DeleteFunc(a.out, func(o *lease) bool { return o == l })
			}
			l.out.Add(-part.Len())
		})
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	// Counted before out drops, so Close, which waits for out to reach 0,
	// also waits for this give-back to land (or be queued).
	a.svc.handoffs.Add(1)
	defer a.svc.handoffs.Add(-1)
	var spans []ReturnSpan
	var ids []int64
	t.each(func(l *lease, part Span) {
		spans = append(spans, ReturnSpan{part, l.id})
		l.out.Add(-part.Len())
		if l.claimSettle() {
			ids = append(ids, l.id)
		}
	})
	a.svc.giveBack(a.seq, a.key.period, spans, ids, ReasonCancelled, nil)
}

func mergeAdjacent(spans []span) []span {
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 && out[n-1].last+1 == s.first {
			out[n-1].last = s.last
			continue
		}
		out = append(out, s)
	}
	return out
}

func (a *allocator) totalLocked() int64 { return a.free }

func (a *allocator) leaseSizeLocked() int64 {
	size := a.block * a.leaseBlocks
	if a.capHint > 0 {
		size = min(size, a.capHint)
	}
	return size
}

func (a *allocator) maybeFetchLocked() {
	if a.fetching || !a.exhaustedAt.IsZero() && time.Since(a.exhaustedAt) < exhaustedRecheck {
		return
	}
	size := a.leaseSizeLocked()
	if a.totalLocked() >= size/2+1 {
		return
	}
	// Fetch ahead only a lease worth the round trip; a request that finds
	// memory empty takes what the budget allows, or goes to the store.
	if n := a.budget.reserve(size, a.capHint); n > size/4 {
		a.startFetchLocked(n)
	} else {
		a.budget.release(n)
	}
}

// startFetchLocked fetches a lease of up to size numbers, reserved in the
// period's budget already.
func (a *allocator) startFetchLocked(size int64) {
	a.fetching = true
	a.fetchErr = nil
	done := make(chan struct{})
	a.fetchDone = done
	if !a.svc.goBackground(func() { a.fetch(size, done) }) {
		// Shutting down: no lease any more.
		a.budget.release(size)
		a.fetching, a.fetchErr = false, ErrClosed
		close(done)
	}
}

// fetch leases up to size numbers (PlanAdvance may grant fewer) in the
// background; what it does not get goes back to the budget.
func (a *allocator) fetch(size int64, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), a.svc.cfg.StoreTimeout)
	defer cancel()
	res, err := a.svc.advance.Do(ctx, advanceKey{a.seq, a.key.period, LedgerLeased}, SequenceAdvanceRequest{Count: size, DateKey: a.dateKey})
	if err == nil {
		err = res.Err
	}

	var after func() // run once the mutex is released
	a.mu.Lock()
	defer func() {
		a.mu.Unlock()
		if after != nil {
			after()
		}
	}()
	now := time.Now()
	switch {
	case err == nil:
		got := span{res.First, res.Last}
		a.budget.release(size - got.len())
		l := &lease{id: res.Row, first: got.first, last: got.last, budget: a.budget}
		a.leases = append(a.leases, l)
		a.spans = mergeAdjacent(append(a.spans, got))
		a.free += got.len()
		a.counterLast, a.max = res.CounterLast, res.Max
		a.capHint = max(LeaseCap(Remaining(res.CounterLast, res.Max)), 1)
		a.budget.cap.Store(a.capHint)
		a.closedErr = nil
		if !a.lastFetch.IsZero() {
			switch since := now.Sub(a.lastFetch); {
			case since < time.Second && a.leaseBlocks < a.svc.cfg.LeaseBlocksMax:
				a.leaseBlocks = min(a.leaseBlocks*2, a.svc.cfg.LeaseBlocksMax)
			case since > 10*time.Second && a.leaseBlocks > 1:
				a.leaseBlocks /= 2
			}
		}
		a.lastFetch = now
		a.exhaustedAt = time.Time{}
		if a.retired {
			// Given back while the lease was on its way: give it back too.
			l.drained.Store(true)
			l.claimSettle()
			after = func() {
				a.svc.giveBack(a.seq, a.key.period, []ReturnSpan{{l.span(), l.id}}, []int64{l.id}, "unused lease, given back at once", nil)
			}
			a.spans, a.leases, a.free = nil, nil, 0
		}
	case errors.Is(err, ErrExhausted):
		a.budget.release(size)
		a.exhaustedAt = now
		var ex *ExhaustedError
		if errors.As(err, &ex) {
			a.capHint = max(LeaseCap(ex.Remaining), 1)
		}
	case errors.Is(err, ErrPeriodClosed):
		// Refused for a second like exhaustion, without a store call
		// (or a log line) per request.
		a.budget.release(size)
		a.exhaustedAt, a.closedErr = now, err
	case errors.Is(err, batch.ErrClosed):
		// Shutting down: nothing was leased.
		a.budget.release(size)
		a.fetchErr = ErrClosed
	default:
		a.budget.release(size)
		a.fetchErr = err
		a.svc.report("lease numbers", err)
	}
	a.fetching = false
	close(done)
}

// holds reports whether n is leased to this process and not yet handed out.
func (a *allocator) holds(n int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, sp := range a.spans {
		if n >= sp.first && n <= sp.last {
			return true
		}
	}
	return false
}

func (a *allocator) clearExhausted() {
	a.mu.Lock()
	a.exhaustedAt, a.closedErr = time.Time{}, nil
	a.mu.Unlock()
}

// drain marks the allocator given back and returns what it holds: the
// unused spans, cut at lease boundaries so each lies in its entry, and the
// leases to settle with them (those with no number out for delivery; the
// takers of the others settle them, or give their numbers back, when they
// are done).
func (a *allocator) drain() (spans []ReturnSpan, ids []int64, busy []*lease) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.retired = true
	for _, l := range a.leases {
		for _, sp := range a.spans {
			if part := intersect(Span{sp.first, sp.last}, l.span()); part.Len() > 0 {
				spans = append(spans, ReturnSpan{part, l.id})
			}
		}
		l.drained.Store(true)
		if l.claimSettle() {
			ids = append(ids, l.id)
		} else if !l.settled.Load() {
			busy = append(busy, l)
		}
	}
	for _, l := range a.out {
		if !l.settled.Load() {
			busy = append(busy, l)
		}
	}
	a.spans, a.leases, a.out, a.free = nil, nil, nil, 0
	return spans, ids, busy
}

// retire gives back the unused rest of the allocators' leases (one store
// transaction for all of them) and settles their leases.
func (s *Service) retire(ctx context.Context, rt *seqRuntime, as []*allocator, reason string) error {
	byPeriod := map[string]*PeriodReturn{}
	var order []string
	for _, a := range as {
		spans, ids, busy := a.drain()
		if len(busy) > 0 {
			s.busyMu.Lock()
			s.busy = append(s.busy, busy...)
			s.busyMu.Unlock()
		}
		if len(spans) == 0 && len(ids) == 0 {
			continue
		}
		pr := byPeriod[a.key.period]
		if pr == nil {
			pr = &PeriodReturn{Period: a.key.period}
			byPeriod[a.key.period] = pr
			order = append(order, a.key.period)
		}
		pr.Spans = append(pr.Spans, spans...)
		pr.Settle = append(pr.Settle, ids...)
	}
	if len(order) == 0 {
		return nil
	}
	slices.Sort(order)
	p := SequenceReturnParams{Sequence: rt.seq.Name, Owner: s.cfg.Owner, Reason: reason}
	for _, period := range order {
		p.Periods = append(p.Periods, *byPeriod[period])
	}
	err := s.returnNumbers(ctx, p)
	if unavailable(err) {
		s.queueReturn(p, nil) // retried; its leases stay pending meanwhile
	}
	return err
}

// retireAll gives back every lease of a sequence (at shutdown).
func (s *Service) retireAll(ctx context.Context, rt *seqRuntime, reason string) error {
	rt.allocMu.Lock()
	as := make([]*allocator, 0, len(rt.allocs))
	for k, a := range rt.allocs {
		as = append(as, a)
		delete(rt.allocs, k)
	}
	rt.allocMu.Unlock()
	rt.last.Store(nil)
	return s.retire(ctx, rt, as, reason)
}

// releaseIdle gives back the leases that sat unused for Config.LeaseIdle.
func (s *Service) releaseIdle(ctx context.Context) error {
	var errs []error
	cutoff := s.coarseNow() - int64(s.cfg.LeaseIdle)
	for _, rt := range *s.seqs.Load() {
		rt.allocMu.Lock()
		var idle []*allocator
		for k, a := range rt.allocs {
			if a.used() < cutoff {
				a.mu.Lock()
				busy := a.fetching
				a.mu.Unlock()
				if busy {
					continue
				}
				idle = append(idle, a)
				delete(rt.allocs, k)
			}
		}
		rt.allocMu.Unlock()
		if len(idle) == 0 {
			continue
		}
		if l := rt.last.Load(); l != nil && slices.Contains(idle, l) {
			rt.last.CompareAndSwap(l, nil)
		}
		if err := s.retire(ctx, rt, idle, "unused rest of a lease, given back after it sat idle"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
