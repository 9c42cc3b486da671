package allot

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"
)

// LedgerReader is what a store lends the ledger lookups, outside any
// transaction (a LedgerTx has them too, inside one).
type LedgerReader interface {
	// OwnerLive says whether server owner is running: it has not stopped
	// and was seen within ServerSilentAfter.
	OwnerLive(ctx context.Context, owner string) (bool, error)
	// Nearest returns the entry of a period whose kind matches kinds (one
	// of the *KindSQL predicates, written into the statement so the
	// store's partial index applies) with the highest first number at or
	// below n, nil when there is none: one backward index probe.
	Nearest(ctx context.Context, seq, period, kinds string, n int64) (*LedgerEntry, error)
	// BatchEntries returns the pending taken entries that group commit
	// batch wrote, if it committed.
	BatchEntries(ctx context.Context, seq, period string, batch int64) ([]LedgerEntry, error)
	// ReservationsDue returns up to limit pending reservations whose
	// deadline is at or before now, by sequence, period and first number.
	ReservationsDue(ctx context.Context, now time.Time, limit int) ([]LedgerEntry, error)
}

// LedgerTx is what a store lends the ledger operations inside one of its
// write transactions. The operations below (void, give back, confirm,
// expire, close a period) are the same on every store: lock the period's
// counter, read the entries the planner needs, let the planner decide,
// write the plan. Only the SQL differs, and that is what a store
// implements here.
type LedgerTx interface {
	LedgerReader
	// Ledger locks the counter of a period and reads the entries around
	// spans. exists is false when the period has no counter yet.
	Ledger(ctx context.Context, seq, period string, spans []Span) (l PeriodLedger, exists bool, err error)
	// ChangeEntry makes one row change of a plan: a returned entry is
	// marked returned with its reason (and settled), any other has its
	// last number moved to NewLast.
	ChangeEntry(ctx context.Context, c RowChange) error
	// MoveCounter sets a period's counter to last and adds voided and
	// reserved to its figures.
	MoveCounter(ctx context.Context, seq, period string, last, voided, reserved int64) error
	// AddNote writes a note of a period by owner and returns it as stored.
	AddNote(ctx context.Context, seq, period string, n LedgerNote, owner string) (*LedgerEntry, error)
	// Settle marks issued and leased entries as no longer pending, and
	// reserved ones too when reserved is set (the planners settle those
	// once confirmed or voided in full).
	Settle(ctx context.Context, ids []int64, reserved bool) error
	// DueReserved returns, as they are now, the entries of ids that are
	// still pending reservations with a deadline at or before now, by
	// first number.
	DueReserved(ctx context.Context, ids []int64, now time.Time) ([]LedgerEntry, error)
	// ReservationsSwept records that owner voided reservations past
	// their deadline at now (what the audit checks the sweeper against).
	ReservationsSwept(ctx context.Context, owner string, now time.Time) error
	// LockCounter makes the counter of a period if it has none yet and
	// locks it; found is false when the sequence does not exist.
	LockCounter(ctx context.Context, seq, period string) (found bool, err error)
	// SetClosed closes a period to new numbers (keeping the first time it
	// was closed), or opens it again.
	SetClosed(ctx context.Context, seq, period string, closed bool) error
	// LeaseHolders lists, by name, the running servers (as OwnerLive
	// says) that hold pending leases in a period.
	LeaseHolders(ctx context.Context, seq, period string) ([]string, error)
}

// inLedger runs fn in one ledger transaction of st and returns what it
// returned.
func inLedger[T any](ctx context.Context, st Store, what string, fn func(LedgerTx) (T, error)) (T, error) {
	return TxValue(ctx, func(ctx context.Context, f func(LedgerTx) error) error { return st.SequenceLedgerTx(ctx, what, f) }, fn)
}

// TxValue runs fn in one transaction of run (a store's transaction
// runner, which may run fn more than once) and returns what fn returned
// on the run that committed, or the zero T and the error.
func TxValue[Tx, T any](ctx context.Context, run func(context.Context, func(Tx) error) error, fn func(Tx) (T, error)) (T, error) {
	var out T
	err := run(ctx, func(tx Tx) (err error) {
		out, err = fn(tx)
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

// expireBatch is how many due reservations one sweep reads.
const expireBatch = 5000

// expireReserved voids the reserved numbers whose deadline is at or
// before now and that were neither confirmed nor voided (up to
// expireBatch entries a call), a period at a time in (sequence, period)
// order, one transaction per period: each waits for the period's counter
// lock like any other writer, so the sweep never holds more than one
// counter at a time. It records that owner swept at now when it voided
// any, and returns how many numbers it voided.
func expireReserved(ctx context.Context, st Store, now time.Time, owner string) (int64, error) {
	const what = "void expired reservations"
	var due []LedgerEntry
	err := st.SequenceLedgerRead(ctx, what, func(r LedgerReader) (err error) {
		due, err = r.ReservationsDue(ctx, now, expireBatch)
		return err
	})
	if err != nil {
		return 0, err
	}
	var voided int64
	for _, group := range byPeriod(due) {
		n, err := inLedger(ctx, st, what, func(tx LedgerTx) (int64, error) { return expireReservedTx(ctx, tx, group, now, owner) })
		if err != nil {
			return voided, err
		}
		voided += n // only once committed: the store may run the closure twice
	}
	return voided, nil
}

// closePeriodTx closes a period to new numbers (or reopens it), run in
// tx. Closing is refused with ErrInvalidState while a server that has not
// stopped holds a lease in the period: it may still hand numbers out.
func closePeriodTx(ctx context.Context, tx LedgerTx, p SequencePeriodCloseParams) error {
	found, err := tx.LockCounter(ctx, p.Sequence, p.Period)
	if err != nil {
		return err
	}
	if !found {
		return NotFoundf("sequence %q", p.Sequence)
	}
	if !p.Reopen {
		owners, err := tx.LeaseHolders(ctx, p.Sequence, p.Period)
		if err != nil {
			return err
		}
		if len(owners) > 0 {
			return Errorf(ErrInvalidState, "period %s can't be closed while running servers hold leases in it (%s): they may still hand numbers out; "+
				"close it once they are stopped or their leases sat idle long enough to be given back", p.Period, strings.Join(owners, ", "))
		}
	}
	return tx.SetClosed(ctx, p.Sequence, p.Period, !p.Reopen)
}

// expireReservedTx is one period's part of expireReserved, run in tx: it voids the entries of group (pending reservations of one
// period found past their deadline) that still are, once the period's
// counter is locked (a confirm may have settled one meanwhile, or a
// give-back handed one back), and returns how many numbers it voided.
func expireReservedTx(ctx context.Context, tx LedgerTx, group []LedgerEntry, now time.Time, owner string) (int64, error) {
	spans := make([]Span, len(group))
	ids := make([]int64, len(group))
	for i, e := range group {
		spans[i], ids[i] = Span{First: e.First, Last: e.Last}, e.ID
	}
	l, _, err := tx.Ledger(ctx, group[0].Sequence, group[0].Period, spans)
	if err != nil {
		return 0, err
	}
	if l.Taken, err = tx.DueReserved(ctx, ids, now); err != nil {
		return 0, err
	}
	plan := PlanExpire(l)
	if _, err := ApplyPlan(ctx, tx, l, plan, owner); err != nil {
		return 0, err
	}
	if plan.Voided > 0 {
		if err := tx.ReservationsSwept(ctx, owner, now); err != nil {
			return 0, err
		}
	}
	return plan.Voided, nil
}

// byPeriod splits entries ordered by sequence and period into the runs of
// one period each.
func byPeriod(es []LedgerEntry) [][]LedgerEntry {
	var out [][]LedgerEntry
	for len(es) > 0 {
		n := 1
		for n < len(es) && es[n].Sequence == es[0].Sequence && es[n].Period == es[0].Period {
			n++
		}
		out = append(out, es[:n])
		es = es[n:]
	}
	return out
}

// ApplyPlan writes a plan made from l by owner in tx (row changes, the
// counter, notes, settles), and returns the last note it wrote (nil if
// none).
func ApplyPlan(ctx context.Context, tx LedgerTx, l PeriodLedger, plan LedgerPlan, owner string) (*LedgerEntry, error) {
	for _, c := range plan.Changes {
		if err := tx.ChangeEntry(ctx, c); err != nil {
			return nil, err
		}
	}
	if plan.NewLast != l.Last || plan.Voided != 0 || plan.ReservedDelta != 0 {
		if err := tx.MoveCounter(ctx, l.Sequence, l.Period, plan.NewLast, plan.Voided, plan.ReservedDelta); err != nil {
			return nil, err
		}
	}
	var last *LedgerEntry
	for _, n := range plan.Notes {
		e, err := tx.AddNote(ctx, l.Sequence, l.Period, n, owner)
		if err != nil {
			return nil, err
		}
		last = e
	}
	if len(plan.Settle) > 0 {
		if err := tx.Settle(ctx, plan.Settle, true); err != nil {
			return nil, err
		}
	}
	return last, nil
}

// VoidRange records numbers p.First..p.Last of a period as voided in
// one ledger transaction of st (see voidTx). Service.SequenceVoid calls
// it once it has checked the request; the conformance suite calls it
// directly for ranges.
func VoidRange(ctx context.Context, st Store, p SequenceVoidParams) (*LedgerEntry, error) {
	return inLedger(ctx, st, "void", func(tx LedgerTx) (*LedgerEntry, error) { return voidTx(ctx, tx, p) })
}

// voidTx records numbers First..Last of a period as voided, as PlanVoid
// decides, run in tx. Unless Force is set, numbers in a block leased to
// another server that has not stopped are refused with ErrInvalidState:
// that server may not have handed them out yet.
func voidTx(ctx context.Context, tx LedgerTx, p SequenceVoidParams) (*LedgerEntry, error) {
	sp := Span{First: p.First, Last: p.Last}
	l, exists, err := tx.Ledger(ctx, p.Sequence, p.Period, []Span{sp})
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, Invalidf("number", "%s %s never issued", sp, sp.was())
	}
	plan, err := PlanVoid(l, sp, p.Reason, false)
	if err != nil {
		return nil, err
	}
	if !p.Force {
		for _, t := range l.Taken {
			if t.Kind != LedgerLeased || !t.Pending || t.Owner == p.Owner || t.Last < sp.First || t.First > sp.Last {
				continue
			}
			live, err := tx.OwnerLive(ctx, t.Owner)
			if err != nil {
				return nil, err
			}
			if live {
				return nil, Errorf(ErrInvalidState, "%s %s in a block leased to server %s, which is running and may not have handed it out yet: "+
					"void it there, or once it has stopped, or with force if it crashed", sp, sp.be(), t.Owner)
			}
		}
	}
	return ApplyPlan(ctx, tx, l, plan, p.Owner)
}

// returnTx gives back numbers the server took and did not hand out, as
// PlanReturn decides (handed back to the counter where possible, voided
// otherwise), and settles the leases listed, run in tx: one period after
// another, in the order given (callers give them in period order, the one lock
// order).
func returnTx(ctx context.Context, tx LedgerTx, p SequenceReturnParams) error {
	for _, pr := range p.Periods {
		if len(pr.Spans) > 0 {
			spans := make([]Span, len(pr.Spans))
			for i, rs := range pr.Spans {
				spans[i] = rs.Span
			}
			l, _, err := tx.Ledger(ctx, p.Sequence, pr.Period, spans)
			if err != nil {
				return err
			}
			plan, err := PlanReturn(l, pr.Spans, p.Owner, p.Reason)
			if err != nil {
				return err
			}
			if _, err := ApplyPlan(ctx, tx, l, plan, p.Owner); err != nil {
				return err
			}
		}
		if err := tx.Settle(ctx, pr.Settle, false); err != nil {
			return err
		}
	}
	return nil
}

// confirmTx confirms reserved numbers, as PlanConfirm decides, run in tx. replayed is true when the
// numbers were confirmed already with the same reference; the entry
// returned is then the confirmation recorded before.
func confirmTx(ctx context.Context, tx LedgerTx, p SequenceConfirmParams) (e *LedgerEntry, replayed bool, err error) {
	l, exists, err := tx.Ledger(ctx, p.Sequence, p.Period, []Span{p.Span})
	if err != nil {
		return nil, false, err
	}
	if !exists {
		return nil, false, Invalidf("first", "%s %s never issued", p.Span, p.Span.was())
	}
	plan, replay, err := PlanConfirm(l, p.Span, p.Reference, p.Now)
	if err != nil {
		return nil, false, err
	}
	if replay {
		for i := range l.Notes {
			if l.Notes[i].Kind == LedgerConfirmed {
				return &l.Notes[i], true, nil
			}
		}
	}
	e, err = ApplyPlan(ctx, tx, l, plan, p.Owner)
	return e, replay, err
}

// ApplyTo copies the settings p changes onto q, max aside (a store checks
// a new max against its counters and the other sequences first).
func (p SequenceUpdateParams) ApplyTo(q *Sequence) {
	if p.WarnAt != nil {
		q.WarnAt = *p.WarnAt
	}
	if p.PeriodsBack != nil {
		q.PeriodsBack = *p.PeriodsBack
	}
	if p.PeriodsAhead != nil {
		q.PeriodsAhead = *p.PeriodsAhead
	}
	if p.ConfirmWithin != nil {
		q.ConfirmWithin = *p.ConfirmWithin
	}
	if p.Label != nil {
		q.Label = *p.Label
	}
}

// ReadNear fills l.Taken and l.Notes with the entries the planners need
// around spans: the taken entries overlapping them (read by taken), and
// the voided and confirmed notes (read by notes, a kind at a time) around
// the spans and around every pending entry they touch, since an operation
// may settle one, which takes all of its notes. An entry read twice is
// kept once; Taken ends sorted by first number.
func ReadNear(l *PeriodLedger, spans []Span, taken func(Span) ([]LedgerEntry, error),
	notes func(LedgerKind, Span) ([]LedgerEntry, error)) error {
	seen := map[int64]bool{}
	add := func(dst *[]LedgerEntry, rows []LedgerEntry, err error) error {
		if err != nil {
			return err
		}
		for _, e := range rows {
			if !seen[e.ID] {
				seen[e.ID] = true
				*dst = append(*dst, e)
			}
		}
		return nil
	}
	for _, sp := range spans {
		rows, err := taken(sp)
		if err := add(&l.Taken, rows, err); err != nil {
			return err
		}
	}
	around := slices.Clone(spans)
	for _, t := range l.Taken {
		if t.Pending && t.Kind != LedgerLeased {
			around = append(around, Span{First: t.First, Last: t.Last})
		}
	}
	for _, sp := range MergeSpans(around) {
		for _, kind := range []LedgerKind{LedgerVoided, LedgerConfirmed} {
			rows, err := notes(kind, sp)
			if err := add(&l.Notes, rows, err); err != nil {
				return err
			}
		}
	}
	slices.SortFunc(l.Taken, func(a, b LedgerEntry) int { return cmp.Compare(a.First, b.First) })
	return nil
}

// Ledger kind predicates, written exactly as the stores' partial indexes
// on the ledger are, so a lookup filtered by one uses its index.
const (
	TakenKindsSQL    = `kind IN ('issued', 'leased', 'reserved')`
	VoidedKindSQL    = `kind = 'voided'`
	ConfirmedKindSQL = `kind = 'confirmed'`
)

// LookUpNumber reads what the ledger of st says of number n of a period,
// each lookup its own statement. It does not check that the sequence
// exists: for an unknown one it says nothing was ever taken (the Service
// checks the name first).
func LookUpNumber(ctx context.Context, st Store, seq, period string, n int64) (info *NumberInfo, err error) {
	err = st.SequenceLedgerRead(ctx, "read ledger", func(r LedgerReader) (err error) {
		info, err = readNumberInfo(ctx, r, seq, period, n)
		return err
	})
	return info, err
}

// readNumberInfo reads what the ledger says of number n of a period.
func readNumberInfo(ctx context.Context, r LedgerReader, seq, period string, n int64) (*NumberInfo, error) {
	info := &NumberInfo{}
	for _, k := range []struct {
		dst   **LedgerEntry
		kinds string
	}{{&info.Taken, TakenKindsSQL}, {&info.Voided, VoidedKindSQL}, {&info.Confirmed, ConfirmedKindSQL}} {
		e, err := r.Nearest(ctx, seq, period, k.kinds, n)
		if err != nil {
			return nil, err
		}
		if e != nil && e.Last >= n {
			*k.dst = e
		}
	}
	if t := info.Taken; t != nil && t.Kind == LedgerLeased && t.Pending {
		live, err := r.OwnerLive(ctx, t.Owner)
		if err != nil {
			return nil, err
		}
		info.OwnerStopped = !live
	}
	return info, nil
}

// ApplyMax checks a new max inside a store's update transaction and sets
// it on q: it may not go below highest, the highest number taken in any
// period (nil when none), and when it grows the range may not reach into
// another sequence's (others lists every sequence, under whatever lock the
// store needs for that).
func ApplyMax(q *Sequence, max int64, highest *int64, others func() ([]*Sequence, error)) error {
	if highest != nil && max < *highest {
		return Invalidf("max", "%d is below %d, the highest number already taken: max may only go down to that", max, *highest)
	}
	if max > q.Max {
		q.Max = max
		all, err := others()
		if err != nil {
			return err
		}
		if err := FindOverlap(q, all); err != nil {
			return err
		}
	}
	q.Max = max
	return nil
}
