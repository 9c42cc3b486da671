package allot

import (
	"fmt"
	"slices"
	"time"
)

// The ledger rules, written once.
//
// A period's counter says how far numbers were taken (Last). The ledger's
// taken entries (issued, leased, reserved) cover start..Last without
// overlap; voided, returned and confirmed entries are notes about taken
// numbers. The planners below decide, from what a store read under the
// period's counter lock, what to write: stores only fetch and execute, so
// both stores follow the same rules.

// Span is an inclusive range of numbers.
type Span struct{ First, Last int64 }

// Len is how many numbers the span holds (0 when Last < First).
func (s Span) Len() int64 {
	if s.Last < s.First {
		return 0
	}
	return s.Last - s.First + 1
}

// String names the span for messages: "number 5" or "numbers 5-9".
func (s Span) String() string {
	if s.First == s.Last {
		return fmt.Sprintf("number %d", s.First)
	}
	return fmt.Sprintf("numbers %d-%d", s.First, s.Last)
}

// be is "is" for one number and "are" for several; was is "was" or "were".
func (s Span) be() string {
	if s.First == s.Last {
		return "is"
	}
	return "are"
}

func (s Span) was() string {
	if s.First == s.Last {
		return "was"
	}
	return "were"
}

// MergeSpans returns the spans sorted, with overlapping and adjacent ones
// merged.
func MergeSpans(in []Span) []Span {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b Span) int {
		switch {
		case a.First < b.First:
			return -1
		case a.First > b.First:
			return 1
		}
		return 0
	})
	n := 0
	for _, s := range out {
		if s.Len() == 0 {
			continue
		}
		if n > 0 && s.First <= out[n-1].Last+1 {
			out[n-1].Last = max(out[n-1].Last, s.Last)
			continue
		}
		out[n] = s
		n++
	}
	return out[:n]
}

// Subtract returns the parts of s that the merged spans cover do not cover.
func Subtract(s Span, cover []Span) []Span {
	var out []Span
	next := s.First
	for _, c := range cover {
		if c.Last < next || c.First > s.Last {
			continue
		}
		if c.First > next {
			out = append(out, Span{next, c.First - 1})
		}
		if c.Last >= s.Last {
			return out
		}
		next = c.Last + 1
	}
	if next <= s.Last {
		out = append(out, Span{next, s.Last})
	}
	return out
}

// Covered is how many numbers of s the merged spans cover cover.
func Covered(s Span, cover []Span) int64 {
	var n int64
	for _, g := range Subtract(s, cover) {
		n += g.Len()
	}
	return s.Len() - n
}

func intersect(a, b Span) Span { return Span{max(a.First, b.First), min(a.Last, b.Last)} }

// PeriodLedger is what a store reads, under the period's counter lock, for
// a planner: the counter, the taken entries overlapping the spans the
// operation touches (sorted by First), and the voided and confirmed
// entries overlapping them (Notes).
type PeriodLedger struct {
	Sequence, Period string
	// Start is the sequence's first number; Last the counter.
	Start, Last int64
	Taken       []LedgerEntry
	Notes       []LedgerEntry

	// Voided and Confirmed are the merged ranges of Notes.
	Voided, Confirmed []Span
}

func (l *PeriodLedger) merged() {
	l.Voided, l.Confirmed = nil, nil
	for _, n := range l.Notes {
		switch n.Kind {
		case LedgerVoided:
			l.Voided = append(l.Voided, Span{n.First, n.Last})
		case LedgerConfirmed:
			l.Confirmed = append(l.Confirmed, Span{n.First, n.Last})
		}
	}
	l.Voided, l.Confirmed = MergeSpans(l.Voided), MergeSpans(l.Confirmed)
}

// LedgerNote is an entry a planner adds (voided, returned or confirmed).
type LedgerNote struct {
	Kind      LedgerKind
	Span      Span
	Reason    string
	Reference string
}

// RowChange changes one taken entry: it gives back its tail (NewLast) or
// all of itself (Returned, with Reason).
type RowChange struct {
	ID       int64
	NewLast  int64
	Returned bool
	Reason   string
}

// LedgerPlan is what a planner decided; stores execute it in the same
// transaction, in this order: row changes, the counter, notes, settles.
type LedgerPlan struct {
	Changes []RowChange
	Notes   []LedgerNote
	// NewLast is the counter's new last (equal to the old one unless
	// numbers were handed back).
	NewLast int64
	// Voided and ReservedDelta are what the counter's voided and
	// reserved figures move by.
	Voided, ReservedDelta int64
	// Settle lists pending entries whose numbers are now all accounted
	// for (confirmed or voided).
	Settle []int64
}

// unconfirmedReserved is how many numbers of s lie in reserved entries and
// are neither confirmed nor voided.
func (l *PeriodLedger) unconfirmedReserved(s Span) int64 {
	var n int64
	cover := MergeSpans(append(slices.Clone(l.Voided), l.Confirmed...))
	for _, t := range l.Taken {
		if t.Kind != LedgerReserved {
			continue
		}
		part := intersect(s, Span{t.First, t.Last})
		if part.Len() > 0 {
			n += part.Len() - Covered(part, cover)
		}
	}
	return n
}

// settled lists the pending reserved and issued entries overlapping s that
// the voided and confirmed ranges (after the plan's notes) cover fully.
func (l *PeriodLedger) settled(s Span, notes []LedgerNote) []int64 {
	cover := slices.Clone(l.Voided)
	cover = append(cover, l.Confirmed...)
	for _, n := range notes {
		if n.Kind == LedgerVoided || n.Kind == LedgerConfirmed {
			cover = append(cover, n.Span)
		}
	}
	cover = MergeSpans(cover)
	var out []int64
	for _, t := range l.Taken {
		if !t.Pending || t.Kind == LedgerLeased || intersect(s, Span{t.First, t.Last}).Len() == 0 {
			continue
		}
		if Covered(Span{t.First, t.Last}, cover) == t.Last-t.First+1 {
			out = append(out, t.ID)
		}
	}
	return out
}

func (l *PeriodLedger) checkTaken(s Span) error {
	if s.First < l.Start || s.Last > l.Last || s.Len() == 0 {
		return Invalidf("number", "%s %s never issued", s, s.was())
	}
	return nil
}

// PlanVoid voids s. Every number must be taken; unless skipVoided, none
// may be voided already (ErrAlreadyExists), otherwise only the parts not
// voided yet are.
func PlanVoid(l PeriodLedger, s Span, reason string, skipVoided bool) (LedgerPlan, error) {
	l.merged()
	plan := LedgerPlan{NewLast: l.Last}
	if err := l.checkTaken(s); err != nil {
		return plan, err
	}
	gaps := Subtract(s, l.Voided)
	if !skipVoided && (len(gaps) != 1 || gaps[0] != s) {
		return plan, Errorf(ErrAlreadyExists, "%s %s already voided", s, s.was())
	}
	for _, g := range gaps {
		plan.ReservedDelta -= l.unconfirmedReserved(g)
		plan.Voided += g.Len()
		plan.Notes = append(plan.Notes, LedgerNote{Kind: LedgerVoided, Span: g, Reason: reason})
	}
	plan.Settle = l.settled(s, plan.Notes)
	return plan, nil
}

// PlanReturn gives back spans owner took but did not hand out: the
// unused rest of its leases, or the numbers of requests that were not
// answered. A span at the top of the counter is handed back (the counter
// moves down over it, so the numbers are issued again and no gap is
// left); the rest is voided with reason. Numbers voided or confirmed
// already stay as they are. A span that does not lie in its entry, still
// taken and owned by owner, is skipped: it was given back already (this is
// a retry), and its numbers may belong to someone else by now.
func PlanReturn(l PeriodLedger, spans []ReturnSpan, owner, reason string) (LedgerPlan, error) {
	l.merged()
	plan := LedgerPlan{NewLast: l.Last}
	fixed := MergeSpans(append(slices.Clone(l.Voided), l.Confirmed...))
	taken := slices.Clone(l.Taken)
	spans = slices.Clone(spans)
	slices.SortFunc(spans, func(a, b ReturnSpan) int {
		switch {
		case a.First > b.First:
			return -1
		case a.First < b.First:
			return 1
		}
		return 0
	})
	for _, rs := range spans {
		s := rs.Span
		if s.Len() == 0 {
			continue
		}
		j := slices.IndexFunc(taken, func(t LedgerEntry) bool { return t.ID == rs.Entry })
		if j < 0 || taken[j].Owner != owner || !taken[j].Kind.Taken() || s.First < taken[j].First || s.Last > taken[j].Last {
			continue // given back already, or never this owner's
		}
		// Voided and confirmed numbers stay taken: hand back only what
		// lies above the highest of them in the span.
		floor := s.First
		for _, v := range fixed {
			if v.First <= s.Last && v.Last >= s.First {
				floor = max(floor, min(v.Last, s.Last)+1)
			}
		}
		if s.Last >= floor && s.Last == plan.NewLast && taken[j].Last == plan.NewLast {
			top := &taken[j]
			from := max(floor, top.First)
			part := Span{from, s.Last}
			plan.ReservedDelta -= l.unconfirmedReserved(part)
			if from == top.First {
				plan.Changes = append(plan.Changes, RowChange{ID: top.ID, Returned: true, Reason: reason + ": handed back to the counter"})
				top.Last = top.First - 1 // no longer holds anything
			} else {
				plan.Changes = append(plan.Changes, RowChange{ID: top.ID, NewLast: from - 1})
				plan.Notes = append(plan.Notes, LedgerNote{Kind: LedgerReturned, Span: part, Reason: reason + ": handed back to the counter"})
				top.Last = from - 1
			}
			plan.NewLast = from - 1
			s.Last = from - 1
		}
		if s.Len() == 0 {
			continue
		}
		for _, g := range Subtract(s, fixed) {
			plan.ReservedDelta -= l.unconfirmedReserved(g)
			plan.Voided += g.Len()
			plan.Notes = append(plan.Notes, LedgerNote{Kind: LedgerVoided, Span: g, Reason: reason})
			fixed = MergeSpans(append(fixed, g))
		}
		plan.Settle = append(plan.Settle, l.settled(s, plan.Notes)...)
	}
	return plan, nil
}

// PlanConfirm confirms s at now: every number must be reserved (before its
// deadline), or issued and pending (an operator confirming numbers whose
// answer the server never confirmed), and neither voided nor confirmed. A
// confirm of numbers all confirmed already with the same reference is a
// replay: the plan is empty and replay is true.
func PlanConfirm(l PeriodLedger, s Span, reference string, now time.Time) (plan LedgerPlan, replay bool, err error) {
	l.merged()
	plan.NewLast = l.Last
	if err := l.checkTaken(s); err != nil {
		return plan, false, err
	}
	if Covered(s, l.Confirmed) == s.Len() && Covered(s, l.Voided) == 0 {
		for _, n := range l.Notes {
			if n.Kind == LedgerConfirmed && intersect(s, Span{n.First, n.Last}).Len() > 0 && n.Reference != reference {
				return plan, false, Errorf(ErrInvalidState, "%s %s already confirmed with reference %q", s, s.was(), n.Reference)
			}
		}
		return plan, true, nil
	}
	if Covered(s, l.Confirmed) > 0 {
		return plan, false, Errorf(ErrInvalidState, "part of %s was already confirmed: confirm each reservation as it was returned", s)
	}
	if Covered(s, l.Voided) > 0 {
		return plan, false, Errorf(ErrInvalidState, "part of %s was voided and can't be confirmed", s)
	}
	var covered int64
	for _, t := range l.Taken {
		part := intersect(s, Span{t.First, t.Last})
		if part.Len() == 0 {
			continue
		}
		covered += part.Len()
		switch {
		case t.Kind == LedgerReserved && t.ConfirmBy != nil && !now.Before(*t.ConfirmBy):
			return plan, false, Errorf(ErrInvalidState, "the reservation of %s expired at %s: it is (or will be) voided; take new numbers",
				part, t.ConfirmBy.UTC().Format(time.RFC3339))
		case t.Kind == LedgerReserved:
			plan.ReservedDelta -= part.Len()
		case t.Kind == LedgerIssued && t.Pending:
		default:
			st, _ := NumberStatusOf(NumberInfo{Taken: &t}, "")
			return plan, false, Errorf(ErrInvalidState, "%s %s %s, not reserved: there is nothing to confirm", part, part.be(), st)
		}
	}
	if covered != s.Len() {
		return plan, false, Invalidf("number", "%s %s not all taken", s, s.was())
	}
	plan.Notes = []LedgerNote{{Kind: LedgerConfirmed, Span: s, Reference: reference, Reason: "confirmed by the caller"}}
	plan.Settle = l.settled(s, plan.Notes)
	return plan, false, nil
}

// PlanExpire voids what the reserved entries past their deadline hold
// that was neither confirmed nor voided, with the reason "not confirmed by
// <deadline>", and settles them. l.Taken holds those entries.
func PlanExpire(l PeriodLedger) LedgerPlan {
	l.merged()
	plan := LedgerPlan{NewLast: l.Last}
	cover := MergeSpans(append(slices.Clone(l.Voided), l.Confirmed...))
	for _, t := range l.Taken {
		reason := "not confirmed in time"
		if t.ConfirmBy != nil {
			reason = "not confirmed by " + t.ConfirmBy.UTC().Format(time.RFC3339)
		}
		for _, g := range Subtract(Span{t.First, t.Last}, cover) {
			plan.ReservedDelta -= g.Len()
			plan.Voided += g.Len()
			plan.Notes = append(plan.Notes, LedgerNote{Kind: LedgerVoided, Span: g, Reason: reason})
		}
		plan.Settle = append(plan.Settle, t.ID)
	}
	return plan
}
